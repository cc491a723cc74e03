package summary

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/results"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Two-sided 95% Student-t quantiles t_{0.975,nu} from standard tables.
const (
	t1 = 12.706204736174707
	t2 = 4.302652729749464
	t3 = 3.182446305284263
	t4 = 2.7764451051977934
)

func approx(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}

func TestMeanCI(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name         string
		xs           []float64
		mean, lo, hi float64
	}{
		{"empty", nil, nan, nan, nan},
		{"one", []float64{5}, 5, nan, nan},
		// mean 2, sd sqrt(2), half-width t1*sqrt(2)/sqrt(2) = t1
		{"two", []float64{1, 3}, 2, 2 - t1, 2 + t1},
		{"constant", []float64{2, 2, 2}, 2, 2, 2},
		// mean 2.5, sd sqrt(5/3) = 1.290994, half-width 3.182446*1.290994/2 = 2.054260
		{"1..4", []float64{1, 2, 3, 4}, 2.5, 2.5 - t3*math.Sqrt(5.0/3)/2, 2.5 + t3*math.Sqrt(5.0/3)/2},
		// mean 0.3, sd sqrt(0.025) = 0.158114, half-width 2.776445*0.158114/sqrt(5) = 0.196324
		{"five", []float64{0.1, 0.2, 0.3, 0.4, 0.5}, 0.3, 0.3 - t4*math.Sqrt(0.025/5), 0.3 + t4*math.Sqrt(0.025/5)},
		{"negative", []float64{-1, -2, -3, -4}, -2.5, -2.5 - 2.0542602567605, -2.5 + 2.0542602567605},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, lo, hi := MeanCI(tc.xs)
			if !approx(m, tc.mean) || !approx(lo, tc.lo) || !approx(hi, tc.hi) {
				t.Errorf("MeanCI(%v) = %v [%v, %v], want %v [%v, %v]", tc.xs, m, lo, hi, tc.mean, tc.lo, tc.hi)
			}
		})
	}
	// The hand-computed 1..4 half-width, to 6 digits.
	_, lo, _ := MeanCI([]float64{1, 2, 3, 4})
	if math.Abs((2.5-lo)-2.0542603) > 1e-7 {
		t.Errorf("half-width for 1..4 = %.7f, want 2.0542603", 2.5-lo)
	}
}

func row(model, opt string, eta float64, init, trial int, dtype string, test float64) results.Row {
	return results.Row{
		ConfigHash: "h", Model: model, Optimizer: opt, Eta: eta, Init: init, Trial: trial, DType: dtype,
		N: 16, Batch: 4, Epochs: 2, Steps: 8, Status: results.StatusOK,
		InitTestLoss: 0.7, InitTestAcc: 0.5, TestLoss: test, TestAcc: 1 - test/4, TrainLoss: test / 2,
	}
}

func diverged(r results.Row) results.Row {
	r.Status = results.StatusDiverged
	r.TestLoss, r.TestAcc, r.TrainLoss = math.NaN(), math.NaN(), math.NaN()
	return r
}

// fixture: logistic/float64/init 0/eta 0.1 with three optimizers, plus cells
// that exercise sorting (another eta, dtype, init and model).
func fixture() []results.Row {
	okNaN := row("logistic", "gd", 0.1, 0, 5, "float64", math.NaN()) // "ok" but non-finite: counts as diverged
	return []results.Row{
		row("logistic", "sgd", 0.1, 0, 0, "float64", 1.0),
		row("logistic", "sgd", 0.1, 0, 1, "float64", 1.2),
		row("logistic", "sgd", 0.1, 0, 2, "float64", 1.1),
		diverged(row("logistic", "sgd", 0.1, 0, 3, "float64", 0)),
		row("logistic", "gd", 0.1, 0, 0, "float64", 0.9),
		row("logistic", "gd", 0.1, 0, 1, "float64", 1.0),
		row("logistic", "gd", 0.1, 0, 2, "float64", 1.3),
		row("logistic", "gd", 0.1, 0, 3, "float64", 0.8), // sgd diverged: unmatched
		row("logistic", "gd", 0.1, 0, 4, "float64", 0.5), // no sgd trial 4: unmatched
		okNaN,
		row("logistic", "adam", 0.1, 0, 0, "float64", 0.95),
		row("logistic", "adam", 0.1, 0, 1, "float64", 1.05),
		row("logistic", "sgd", 0.01, 0, 0, "float64", 2.0),
		row("logistic", "sgd", 0.01, 0, 1, "float64", 2.5),
		row("logistic", "sgd", 0.1, 0, 0, "float32", 1.000001),
		row("logistic", "gd", 0.1, 0, 0, "float32", 1.000011),
		row("logistic", "sgd", 0.1, 1, 0, "float64", 3.0),
		row("convnet", "sgd", 0.05, 0, 0, "float64", 0.4),
		row("convnet", "sgd", 0.05, 0, 1, "float64", 0.41),
		row("convnet", "sgd", 0.05, 0, 2, "float64", 0.39),
	}
}

func findCell(t *testing.T, s Summary, model, opt string, eta float64, init int, dtype string) Cell {
	t.Helper()
	for _, c := range s.Cells {
		if c.Model == model && c.Optimizer == opt && c.Eta == eta && c.Init == init && c.DType == dtype {
			return c
		}
	}
	t.Fatalf("no cell %s/%s/%v/%d/%s", model, opt, eta, init, dtype)
	return Cell{}
}

func findPair(t *testing.T, s Summary, model, a, b string, eta float64, init int, dtype string) Pair {
	t.Helper()
	for _, p := range s.Pairs {
		if p.Model == model && p.A == a && p.B == b && p.Eta == eta && p.Init == init && p.DType == dtype {
			return p
		}
	}
	t.Fatalf("no pair %s/%s-%s/%v/%d/%s", model, a, b, eta, init, dtype)
	return Pair{}
}

func TestSummarizeCells(t *testing.T) {
	s := Summarize(fixture())
	nan := math.NaN()
	tests := []struct {
		name               string
		opt                string
		eta                float64
		init               int
		dtype              string
		trials, diverged   int
		mean, lo, hi, std  float64
		trainMean, accMean float64
		initTestLoss       float64
		model              string
	}{
		// {1.0, 1.2, 1.1}: mean 1.1, sd 0.1, half-width t2*0.1/sqrt(3); trial 3 diverged.
		{"sgd with a diverged trial", "sgd", 0.1, 0, "float64", 4, 1, 1.1, 1.1 - t2*0.1/math.Sqrt(3), 1.1 + t2*0.1/math.Sqrt(3), 0.1,
			0.55, 1 - 1.1/4, 0.7, "logistic"},
		// {0.9, 1.0, 1.3, 0.8, 0.5}: mean 0.9, ss = 0+0.01+0.16+0.01+0.16 = 0.34, sd sqrt(0.085); ok-but-NaN trial 5 diverged.
		{"gd with an ok NaN", "gd", 0.1, 0, "float64", 6, 1, 0.9, 0.9 - t4*math.Sqrt(0.085/5), 0.9 + t4*math.Sqrt(0.085/5), math.Sqrt(0.085),
			0.45, 1 - 0.9/4, 0.7, "logistic"},
		{"single trial", "sgd", 0.1, 1, "float64", 1, 0, 3, nan, nan, nan, 1.5, 0.25, 0.7, "logistic"},
		{"convnet", "sgd", 0.05, 0, "float64", 3, 0, 0.4, 0.4 - t2*0.01/math.Sqrt(3), 0.4 + t2*0.01/math.Sqrt(3), 0.01,
			0.2, 0.9, 0.7, "convnet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := findCell(t, s, tc.model, tc.opt, tc.eta, tc.init, tc.dtype)
			if c.Trials != tc.trials || c.Diverged != tc.diverged {
				t.Errorf("trials/diverged = %d/%d, want %d/%d", c.Trials, c.Diverged, tc.trials, tc.diverged)
			}
			for _, f := range []struct {
				name      string
				got, want float64
			}{
				{"mean", c.Mean, tc.mean}, {"lo", c.Lo, tc.lo}, {"hi", c.Hi, tc.hi}, {"std", c.Std, tc.std},
				{"train", c.TrainMean, tc.trainMean}, {"acc", c.TestAccMean, tc.accMean}, {"init", c.InitTestLoss, tc.initTestLoss},
			} {
				if !approx(f.got, f.want) {
					t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
				}
			}
		})
	}

	// Sorted by (model, dtype, init, optimizer, eta).
	var order []string
	for _, c := range s.Cells {
		order = append(order, c.Model+"/"+c.DType+"/"+itoa(c.Init)+"/"+c.Optimizer+"/"+eta(c.Eta))
	}
	want := []string{
		"convnet/float64/0/sgd/0.05",
		"logistic/float32/0/gd/0.1",
		"logistic/float32/0/sgd/0.1",
		"logistic/float64/0/adam/0.1",
		"logistic/float64/0/gd/0.1",
		"logistic/float64/0/sgd/0.01",
		"logistic/float64/0/sgd/0.1",
		"logistic/float64/1/sgd/0.1",
	}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("cell order:\n got  %v\n want %v", order, want)
	}
}

func itoa(i int) string { return eta(float64(i)) }

func TestSummarizePairs(t *testing.T) {
	s := Summarize(fixture())
	nan := math.NaN()
	// gd vs sgd, matched trials 0,1,2 (gd 3: sgd diverged; gd 4: no sgd; gd 5: not ok):
	// sgd - gd = {0.1, 0.2, -0.2}, mean 1/30, ss = 0.0866667, sd sqrt(0.0433333).
	dm := (0.1 + 0.2 - 0.2) / 3
	dh := t2 * math.Sqrt(((0.1-dm)*(0.1-dm)+(0.2-dm)*(0.2-dm)+(-0.2-dm)*(-0.2-dm))/2) / math.Sqrt(3)
	tests := []struct {
		name         string
		a, b         string
		eta          float64
		dtype        string
		pairs        int
		mean, lo, hi float64
	}{
		{"gd-sgd ignores unmatched", "gd", "sgd", 0.1, "float64", 3, dm, dm - dh, dm + dh},
		// gd - adam over trials 0,1: {-0.05, -0.05}: sd 0.
		{"adam-gd", "adam", "gd", 0.1, "float64", 2, -0.05, -0.05, -0.05},
		// sgd - adam over trials 0,1: {0.05, 0.15}: mean 0.1, sd 0.0707107, half-width t1*0.05.
		{"adam-sgd", "adam", "sgd", 0.1, "float64", 2, 0.1, 0.1 - t1*0.05, 0.1 + t1*0.05},
		{"float32 single pair", "gd", "sgd", 0.1, "float32", 1, 1.000001 - 1.000011, nan, nan},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := findPair(t, s, "logistic", tc.a, tc.b, tc.eta, 0, tc.dtype)
			if p.Pairs != tc.pairs {
				t.Errorf("pairs = %d, want %d", p.Pairs, tc.pairs)
			}
			if !approx(p.Mean, tc.mean) || !approx(p.Lo, tc.lo) || !approx(p.Hi, tc.hi) {
				t.Errorf("pair = %v [%v, %v], want %v [%v, %v]", p.Mean, p.Lo, p.Hi, tc.mean, tc.lo, tc.hi)
			}
		})
	}
	// Groups with a single optimizer have no pairs; 4 pairs in all.
	if len(s.Pairs) != 4 {
		t.Errorf("%d pairs, want 4: %+v", len(s.Pairs), s.Pairs)
	}
	var order []string
	for _, p := range s.Pairs {
		order = append(order, p.DType+"/"+p.A+"-"+p.B)
	}
	if got, want := strings.Join(order, " "), "float32/gd-sgd float64/adam-gd float64/adam-sgd float64/gd-sgd"; got != want {
		t.Errorf("pair order %q, want %q", got, want)
	}
}

func TestSummarizeEmpty(t *testing.T) {
	s := Summarize(nil)
	if len(s.Cells) != 0 || len(s.Pairs) != 0 {
		t.Fatalf("Summarize(nil) = %+v", s)
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"cells": []`) || !strings.Contains(b.String(), `"pairs": []`) {
		t.Errorf("empty JSON = %s", b.String())
	}
}

type writer struct {
	name  string
	write func(*bytes.Buffer, Summary) error
}

var writers = []writer{
	{"table", func(b *bytes.Buffer, s Summary) error { return WriteTable(b, s) }},
	{"cells csv", func(b *bytes.Buffer, s Summary) error { return WriteCellsCSV(b, s) }},
	{"pairs csv", func(b *bytes.Buffer, s Summary) error { return WritePairsCSV(b, s) }},
	{"json", func(b *bytes.Buffer, s Summary) error { return WriteJSON(b, s) }},
}

func render(t *testing.T, w writer, rows []results.Row) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := w.write(&b, Summarize(rows)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestWritersDeterministic(t *testing.T) {
	rows := fixture()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, w := range writers {
		t.Run(w.name, func(t *testing.T) {
			ref := render(t, w, rows)
			if again := render(t, w, rows); !bytes.Equal(ref, again) {
				t.Fatalf("two renderings differ:\n%s\n---\n%s", ref, again)
			}
			for i := 0; i < 20; i++ {
				sh := append([]results.Row(nil), rows...)
				rng.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
				if got := render(t, w, sh); !bytes.Equal(ref, got) {
					t.Fatalf("shuffled input changes the output:\n%s\n---\n%s", ref, got)
				}
			}
		})
	}
}

func TestWriteJSONParses(t *testing.T) {
	out := render(t, writers[3], fixture())
	var got struct {
		Cells []map[string]any `json:"cells"`
		Pairs []map[string]any `json:"pairs"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("JSON does not parse: %v\n%s", err, out)
	}
	s := Summarize(fixture())
	if len(got.Cells) != len(s.Cells) || len(got.Pairs) != len(s.Pairs) {
		t.Fatalf("JSON has %d cells, %d pairs; want %d, %d", len(got.Cells), len(got.Pairs), len(s.Cells), len(s.Pairs))
	}
	for _, k := range []string{"model", "dtype", "init", "optimizer", "eta", "trials", "diverged", "mean", "lo", "hi", "std",
		"train_mean", "test_acc_mean", "init_test_loss"} {
		if _, ok := got.Cells[0][k]; !ok {
			t.Errorf("cell lacks field %q: %v", k, got.Cells[0])
		}
	}
	for _, k := range []string{"model", "dtype", "init", "a", "b", "eta", "pairs", "mean", "lo", "hi"} {
		if _, ok := got.Pairs[0][k]; !ok {
			t.Errorf("pair lacks field %q: %v", k, got.Pairs[0])
		}
	}
	// The single-trial cell (last) has NaN bounds: null in JSON.
	last := got.Cells[len(got.Cells)-1]
	if last["lo"] != nil || last["hi"] != nil || last["std"] != nil || last["mean"] != 3.0 {
		t.Errorf("single-trial cell = %v, want null lo/hi/std and mean 3", last)
	}
	if c0 := got.Cells[0]; c0["model"] != "convnet" || c0["trials"] != 3.0 {
		t.Errorf("first cell = %v", c0)
	}
}

func TestWriteCSV(t *testing.T) {
	blocks := []string{string(render(t, writers[1], fixture())), string(render(t, writers[2], fixture()))}
	out := blocks[1]
	s := Summarize(fixture())
	for i, want := range []struct {
		header []string
		n      int
	}{{cellHeader, len(s.Cells)}, {pairHeader, len(s.Pairs)}} {
		recs, err := csv.NewReader(strings.NewReader(blocks[i])).ReadAll()
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if strings.Join(recs[0], ",") != strings.Join(want.header, ",") || len(recs)-1 != want.n {
			t.Errorf("block %d: header %v, %d records; want %v, %d", i, recs[0], len(recs)-1, want.header, want.n)
		}
	}
	if !strings.Contains(out, "logistic,float32,0,gd,sgd,0.1,1,-1.0000000000065512e-05,NaN,NaN\n") {
		t.Errorf("CSV lacks the full-precision float32 pair:\n%s", out)
	}
}

func TestWriteTableGolden(t *testing.T) {
	out := render(t, writers[0], fixture())
	golden := filepath.Join("testdata", "table.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("table differs from %s (run go test -update if intended):\n got:\n%s\nwant:\n%s", golden, out, want)
	}
	// 1e-5 relative differences are visible.
	if !strings.Contains(string(out), "1.00001") || !strings.Contains(string(out), "-1e-05") {
		t.Errorf("table hides a 1e-5 difference:\n%s", out)
	}
}
