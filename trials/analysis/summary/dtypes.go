package summary

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/perturb/perturb/trials/results"
)

// DTypePair is the paired difference B − A of test loss between two
// dtypes over trials present (and ok) in both, matched by trial index,
// within the same (model, optimizer, eta, init): the trials of a
// multi-dtype sweep share training sets and initialisations, so the
// difference is the rounding's effect alone. A is the reference, the
// wider dtype (float64), and B the narrower (float32).
type DTypePair struct {
	Model, Optimizer string
	Eta              float64
	Init             int
	A, B             string // dtypes
	Pairs            int    // matched trials
	Mean, Lo, Hi     float64
}

// dtypeRank orders dtypes widest first; unknown dtypes last, by name.
func dtypeRank(d string) int {
	switch d {
	case "float64":
		return 0
	case "float32":
		return 1
	}
	return 2
}

func cmpDType(a, b string) int {
	return cmp.Or(cmp.Compare(dtypeRank(a), dtypeRank(b)), cmp.Compare(a, b))
}

// DTypePairs computes the paired dtype differences of rows: for every
// (model, optimizer, eta, init) and every two dtypes A (wider) and B
// stored for it, the mean of B − A over the trial indices ok in both,
// with its 95% Student-t interval. Rows of one dtype give none. A key
// stored twice counts once (the first in sorted order).
func DTypePairs(rows []results.Row) []DTypePair {
	rs := slices.Clone(rows)
	slices.SortFunc(rs, cmpRows)
	type cellKey struct {
		Model, Optimizer string
		Eta              uint64
		Init             int
	}
	order, groups := groupSides(rs, func(r results.Row) cellKey {
		return cellKey{r.Model, r.Optimizer, etaBits(r.Eta), r.Init}
	}, func(r results.Row) string { return r.DType })
	var out []DTypePair
	for _, k := range order {
		g := groups[k]
		slices.SortFunc(g.names, cmpDType)
		for ai, a := range g.names {
			for _, b := range g.names[ai+1:] {
				d := pairedDiffs(g.loss[a], g.loss[b])
				p := DTypePair{Model: k.Model, Optimizer: k.Optimizer, Eta: math.Float64frombits(k.Eta), Init: k.Init, A: a, B: b, Pairs: len(d)}
				p.Mean, p.Lo, p.Hi = MeanCI(d)
				out = append(out, p)
			}
		}
	}
	slices.SortFunc(out, func(x, y DTypePair) int {
		return cmp.Or(
			cmp.Compare(x.Model, y.Model),
			cmp.Compare(x.Init, y.Init),
			cmp.Compare(x.Optimizer, y.Optimizer),
			cmpFloat(x.Eta, y.Eta),
			cmpDType(x.A, y.A),
			cmpDType(x.B, y.B),
		)
	})
	return out
}

// writeDTypeTable writes the "paired dtype differences" section of the
// table (nothing when there are none).
func writeDTypeTable(w io.Writer, ps []DTypePair) error {
	if len(ps) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "paired dtype differences (test loss B - A, same training sets and initialisations, over trials ok in both, matched by trial index, 95% t-interval)")
	fmt.Fprintln(tw, "model\tinit\toptimizer\teta\tA\tB\tpairs\tmean B-A\t95% CI")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n",
			p.Model, p.Init, p.Optimizer, eta(p.Eta), p.A, p.B, p.Pairs, num(p.Mean), interval(p.Lo, p.Hi))
	}
	return tw.Flush()
}

var dtypePairHeader = []string{"model", "init", "optimizer", "eta", "a", "b", "pairs", "mean", "lo", "hi"}

// WriteDTypePairsCSV writes the paired dtype differences of s as CSV: a
// header row and one row per pair, floats as in WriteCellsCSV.
func WriteDTypePairsCSV(w io.Writer, s Summary) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(dtypePairHeader); err != nil {
		return err
	}
	for _, p := range s.DTypePairs {
		rec := []string{p.Model, strconv.Itoa(p.Init), p.Optimizer, full(p.Eta), p.A, p.B,
			strconv.Itoa(p.Pairs), full(p.Mean), full(p.Lo), full(p.Hi)}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

type jsonDTypePair struct {
	Model     string `json:"model"`
	Init      int    `json:"init"`
	Optimizer string `json:"optimizer"`
	Eta       jfloat `json:"eta"`
	A         string `json:"a"`
	B         string `json:"b"`
	Pairs     int    `json:"pairs"`
	Mean      jfloat `json:"mean"`
	Lo        jfloat `json:"lo"`
	Hi        jfloat `json:"hi"`
}

func jsonDTypePairs(ps []DTypePair) []jsonDTypePair {
	var out []jsonDTypePair
	for _, p := range ps {
		out = append(out, jsonDTypePair{Model: p.Model, Init: p.Init, Optimizer: p.Optimizer, Eta: jfloat(p.Eta),
			A: p.A, B: p.B, Pairs: p.Pairs, Mean: jfloat(p.Mean), Lo: jfloat(p.Lo), Hi: jfloat(p.Hi)})
	}
	return out
}
