package summary

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
)

// num formats a measurement for the table: 6 significant digits (enough to
// see relative differences of 1e-5), "-" for NaN.
func num(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	return fmt.Sprintf("%.6g", x)
}

// interval formats [lo, hi] for the table.
func interval(lo, hi float64) string {
	if math.IsNaN(lo) && math.IsNaN(hi) {
		return "-"
	}
	return "[" + num(lo) + ", " + num(hi) + "]"
}

// eta formats a learning rate exactly (shortest representation that reads
// back to the same float64).
func eta(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// full formats a float64 for CSV with full precision ("NaN", "+Inf", "-Inf"
// for non-finite values).
func full(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// WriteTable writes s as an aligned human-readable table: the cells, then a
// "paired differences" section, and a "paired dtype differences" section
// when the rows hold several dtypes.
func WriteTable(w io.Writer, s Summary) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "test loss per cell (mean over ok trials, 95% t-interval of the mean)")
	fmt.Fprintln(tw, "model\tdtype\tinit\toptimizer\teta\ttrials\tdiverged\tmean\t95% CI\tstd\ttrain mean\ttest acc\tinit test loss")
	for _, c := range s.Cells {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n",
			c.Model, c.DType, c.Init, c.Optimizer, eta(c.Eta), c.Trials, c.Diverged,
			num(c.Mean), interval(c.Lo, c.Hi), num(c.Std), num(c.TrainMean), num(c.TestAccMean), num(c.InitTestLoss))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "paired differences (test loss B - A over trials ok in both, matched by trial index, 95% t-interval)")
	fmt.Fprintln(tw, "model\tdtype\tinit\tA\tB\teta\tpairs\tmean B-A\t95% CI")
	for _, p := range s.Pairs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n",
			p.Model, p.DType, p.Init, p.A, p.B, eta(p.Eta), p.Pairs, num(p.Mean), interval(p.Lo, p.Hi))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeDTypeTable(w, s.DTypePairs)
}

// CSV headers.
var (
	cellHeader = []string{"model", "dtype", "init", "optimizer", "eta", "trials", "diverged",
		"mean", "lo", "hi", "std", "train_mean", "test_acc_mean", "init_test_loss"}
	pairHeader = []string{"model", "dtype", "init", "a", "b", "eta", "pairs", "mean", "lo", "hi"}
)

// WriteCellsCSV writes the cells of s as CSV: a header row and one row
// per cell. Floats have full precision; non-finite values are written as
// NaN, +Inf, -Inf.
func WriteCellsCSV(w io.Writer, s Summary) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(cellHeader); err != nil {
		return err
	}
	for _, c := range s.Cells {
		rec := []string{c.Model, c.DType, strconv.Itoa(c.Init), c.Optimizer, full(c.Eta),
			strconv.Itoa(c.Trials), strconv.Itoa(c.Diverged),
			full(c.Mean), full(c.Lo), full(c.Hi), full(c.Std), full(c.TrainMean), full(c.TestAccMean), full(c.InitTestLoss)}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WritePairsCSV writes the paired differences of s as CSV: a header row
// and one row per pair, floats as in WriteCellsCSV.
func WritePairsCSV(w io.Writer, s Summary) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(pairHeader); err != nil {
		return err
	}
	for _, p := range s.Pairs {
		rec := []string{p.Model, p.DType, strconv.Itoa(p.Init), p.A, p.B, full(p.Eta),
			strconv.Itoa(p.Pairs), full(p.Mean), full(p.Lo), full(p.Hi)}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// jfloat is a float64 that marshals non-finite values as null.
type jfloat float64

func (f jfloat) MarshalJSON() ([]byte, error) {
	x := float64(f)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(x)
}

type jsonCell struct {
	Model        string `json:"model"`
	DType        string `json:"dtype"`
	Init         int    `json:"init"`
	Optimizer    string `json:"optimizer"`
	Eta          jfloat `json:"eta"`
	Trials       int    `json:"trials"`
	Diverged     int    `json:"diverged"`
	Mean         jfloat `json:"mean"`
	Lo           jfloat `json:"lo"`
	Hi           jfloat `json:"hi"`
	Std          jfloat `json:"std"`
	TrainMean    jfloat `json:"train_mean"`
	TestAccMean  jfloat `json:"test_acc_mean"`
	InitTestLoss jfloat `json:"init_test_loss"`
}

type jsonPair struct {
	Model string `json:"model"`
	DType string `json:"dtype"`
	Init  int    `json:"init"`
	A     string `json:"a"`
	B     string `json:"b"`
	Eta   jfloat `json:"eta"`
	Pairs int    `json:"pairs"`
	Mean  jfloat `json:"mean"`
	Lo    jfloat `json:"lo"`
	Hi    jfloat `json:"hi"`
}

type jsonSummary struct {
	Cells      []jsonCell      `json:"cells"`
	Pairs      []jsonPair      `json:"pairs"`
	DTypePairs []jsonDTypePair `json:"dtype_pairs,omitempty"`
}

// WriteJSON writes s as indented JSON {"cells":[...],"pairs":[...]},
// with "dtype_pairs":[...] when the rows hold several dtypes, and
// snake_case field names; non-finite numbers are written as null.
func WriteJSON(w io.Writer, s Summary) error {
	js := jsonSummary{Cells: []jsonCell{}, Pairs: []jsonPair{}}
	for _, c := range s.Cells {
		js.Cells = append(js.Cells, jsonCell{
			Model: c.Model, DType: c.DType, Init: c.Init, Optimizer: c.Optimizer, Eta: jfloat(c.Eta),
			Trials: c.Trials, Diverged: c.Diverged,
			Mean: jfloat(c.Mean), Lo: jfloat(c.Lo), Hi: jfloat(c.Hi), Std: jfloat(c.Std),
			TrainMean: jfloat(c.TrainMean), TestAccMean: jfloat(c.TestAccMean), InitTestLoss: jfloat(c.InitTestLoss),
		})
	}
	for _, p := range s.Pairs {
		js.Pairs = append(js.Pairs, jsonPair{
			Model: p.Model, DType: p.DType, Init: p.Init, A: p.A, B: p.B, Eta: jfloat(p.Eta),
			Pairs: p.Pairs, Mean: jfloat(p.Mean), Lo: jfloat(p.Lo), Hi: jfloat(p.Hi),
		})
	}
	js.DTypePairs = jsonDTypePairs(s.DTypePairs)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(js)
}
