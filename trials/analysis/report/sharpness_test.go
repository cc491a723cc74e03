package report

import (
	"context"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/perturb/perturb/trials"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/results"
	"github.com/perturb/perturb/trials/study/sharp"
)

const sharpTestConfig = `name = "sharp-test"
seed = 1
dtype = "float64"

[trials]
count = 8
n     = 10
etas  = [0.1, 0.2]

[[model]]
name  = "gauss"
inits = [0]

[[optimizer]]
name   = "sgd"
batch  = 1
epochs = 1

[[optimizer]]
name  = "gd"
steps = 10

[[optimizer]]
name  = "gdc"
steps = 10

[sharpness]
`

// sharpLevel is an optimiser's mean change of tr Ĉ in the synthetic rows.
type sharpLevel map[string]float64

// synthRows makes 8 trials per (optimiser, η) of model gauss whose change
// of every measure on both losses is level[opt] + e_i + u_{opt,i}, with e_i
// shared across optimisers (the training set's effect) and u a small
// optimiser-specific part, and whose test-loss change is
// testSlope·level[opt] + 0.01·e_i, u scaled by uScale (so the paired test-loss differences
// have the sign of testSlope times the paired measure differences).
func synthRows(t *testing.T, level sharpLevel, testSlope, uScale float64) []results.Row {
	t.Helper()
	var rows []results.Row
	for oi, opt := range []string{"sgd", "gd", "gdc"} {
		for _, eta := range []float64{0.1, 0.2} {
			for i := range 8 {
				e := 0.1 * math.Sin(float64(i+1))
				delta := level[opt] + e + uScale*synthU(oi, i)
				m0 := func(base float64) *sharp.Measures {
					return &sharp.Measures{Samples: 10, Lambda: []sharp.Num{sharp.Num(base + 5)},
						TrH: &sharp.Stat{Value: sharp.Num(base + 20)}, TrC: &sharp.Stat{Value: sharp.Num(base + 3)},
						TrHC: &sharp.Stat{Value: sharp.Num(base + 7)}}
				}
				rec := sharp.Record{Init: &sharp.Point{Train: m0(0), Pool: m0(0)}, End: &sharp.Point{Train: m0(delta), Pool: m0(delta)}}
				b, err := rec.Encode()
				if err != nil {
					t.Fatal(err)
				}
				rows = append(rows, results.Row{Model: "gauss", Optimizer: opt, Eta: eta, Init: 0, Trial: i, DType: "float64",
					Status: results.StatusOK, InitTestLoss: 2, TestLoss: 2 + testSlope*level[opt] + 0.01*e, TrainLoss: 1, Sharpness: b})
			}
		}
	}
	return rows
}

// synthU is the optimiser-specific part of trial i's change.
func synthU(oi, i int) float64 { return 0.05 * math.Cos(float64((oi+2)*(i+1))) }

func buildSharp(t *testing.T, rows []results.Row) (*Report, string) {
	t.Helper()
	c, err := config.Parse("sharp-test.toml", sharpTestConfig)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rep, err := Build([]*Run{{Dir: dir, Config: c, Rows: rows}}, dir, Options{Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return rep, dir
}

// verdict returns the verdict whose claim contains all of parts.
func verdict(t *testing.T, rep *Report, parts ...string) Verdict {
	t.Helper()
	var found []Verdict
	for _, s := range rep.Sections {
	next:
		for _, v := range s.Verdicts {
			for _, p := range parts {
				if !strings.Contains(v.Claim, p) {
					continue next
				}
			}
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d verdicts with %q, want 1: %+v", len(found), parts, found)
	}
	return found[0]
}

// checkPNGs decodes every PNG of the report's sections and checks that the
// Markdown names it.
func checkPNGs(t *testing.T, rep *Report, dir string) int {
	t.Helper()
	var md strings.Builder
	if err := rep.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range rep.Sections {
		for _, f := range s.Figures {
			n++
			fh, err := os.Open(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(fh)
			fh.Close()
			if err != nil || img.Bounds().Dx() < 100 || img.Bounds().Dy() < 100 {
				t.Errorf("%s: %v", f, err)
			}
			if !strings.Contains(md.String(), "("+f+")") {
				t.Errorf("%s is not in the Markdown", f)
			}
		}
	}
	return n
}

// TestSharpnessReport renders synthetic sharpness records and checks the
// numbers and verdicts against the construction: SGD's change is 2 below
// GD's, so "SGD ends lower in tr Ĉ than GD" agrees with the paired mean
// −2 + mean(u_sgd − u_gd); swapping the levels flips it; and "the flatter
// optimiser has the lower test loss" agrees when the test loss follows the
// measure and disagrees when it goes against it.
func TestSharpnessReport(t *testing.T) {
	level := sharpLevel{"sgd": -1, "gd": 1, "gdc": 0}
	rows := synthRows(t, level, 0.5, 1)
	// Lanczos did not converge at the end of sgd's trial 0 at η = 0.1.
	for i, r := range rows {
		if r.Optimizer == "sgd" && r.Eta == 0.1 && r.Trial == 0 {
			rec, err := sharp.Decode(r.Sharpness)
			if err != nil {
				t.Fatal(err)
			}
			rec.End.Train.Lambda = nil
			if rows[i].Sharpness, err = rec.Encode(); err != nil {
				t.Fatal(err)
			}
		}
	}
	rep, dir := buildSharp(t, rows)
	if !tableHasSuffix(rep, "training loss, initialisation to end", []string{"0.1", "sgd", "8"}, 4, " (N=7)") ||
		!tableHasSuffix(rep, "paired differences between optimisers on the training loss", []string{"0.1", "sgd − gd", "8"}, 4, " (N=7)") {
		t.Errorf("λ1 of sgd at η = 0.1 on the training loss does not say N=7")
	}
	// One more figure: the measured test loss against η (no stats.json).
	if n := checkPNGs(t, rep, dir); n != 2*(4*2+4+4*2)+1 {
		t.Errorf("%d figures, want %d (per loss: 4 measures × (mean, quartiles) + 4 paired + 4 measures × 2 η scatter; and the measured test loss)", n, 2*(4*2+4+4*2)+1)
	}
	want := 0.0
	for i := range 8 {
		want += (level["sgd"] + synthU(0, i) - level["gd"] - synthU(1, i)) / 8
	}
	for _, loss := range []string{"training loss", "pool loss"} {
		for _, eta := range []string{"η = 0.1;", "η = 0.2;"} {
			v := verdict(t, rep, "sgd ends with a lower tr Ĉ than gd on the "+loss, eta)
			if !v.Agrees || !strings.HasPrefix(v.Result, fmt.Sprintf("%.3g [", want)) || !strings.Contains(v.Result, "sgd lower") {
				t.Errorf("%s: %+v, want agrees with mean %.3g", loss, v, want)
			}
			v = verdict(t, rep, "lower tr(HĈ) on the "+loss+" also ends with the lower test loss", strings.TrimSuffix(eta, ";"))
			if !v.Agrees || !strings.Contains(v.Result, "3 of 3 pairs differ") || !strings.Contains(v.Result, "lower test loss in 3") {
				t.Errorf("%+v, want all 3 pairs agreeing", v)
			}
		}
	}
	// The changes table holds SGD's mean change of tr Ĉ.
	wantSGD := 0.0
	for i := range 8 {
		wantSGD += (level["sgd"] + 0.1*math.Sin(float64(i+1)) + synthU(0, i)) / 8
	}
	if !tableHas(rep, "training loss, initialisation to end", []string{"0.1", "sgd", "8"}, fmt.Sprintf("%.3g [", wantSGD)) {
		t.Errorf("no row 0.1 | sgd | 8 with Δ tr Ĉ %.3g in the changes table", wantSGD)
	}

	flipped, _ := buildSharp(t, synthRows(t, sharpLevel{"sgd": 1, "gd": -1, "gdc": 0}, 0.5, 1))
	v := verdict(t, flipped, "sgd ends with a lower tr Ĉ than gd on the pool loss", "η = 0.2;")
	if v.Agrees || !strings.Contains(v.Result, "sgd higher") {
		t.Errorf("levels swapped: %+v, want disagrees (sgd higher)", v)
	}
	against, _ := buildSharp(t, synthRows(t, level, -0.5, 1))
	v = verdict(t, against, "lower tr Ĉ on the pool loss also ends with the lower test loss", "η = 0.1)")
	if v.Agrees || !strings.Contains(v.Result, "higher in 3") {
		t.Errorf("test loss against the measure: %+v, want disagrees with 3 contradicting pairs", v)
	}
	// A difference of rounding size (1e-13 on values near 3, with no
	// spread) is significant by its interval but counts as none.
	tiny, _ := buildSharp(t, synthRows(t, sharpLevel{"sgd": 0, "gd": 1e-13, "gdc": 1}, 0.5, 0))
	v = verdict(t, tiny, "sgd ends with a lower tr Ĉ than gd on the pool loss", "η = 0.1;")
	if v.Agrees || !v.Inconclusive || v.Word() != "inconclusive" || !strings.Contains(v.Result, "inconclusive") {
		t.Errorf("rounding-sized difference: %+v, want inconclusive", v)
	}
	v = verdict(t, tiny, "lower tr Ĉ on the pool loss also ends with the lower test loss", "η = 0.1)")
	if !v.Agrees || !strings.Contains(v.Result, "2 of 3 pairs differ") {
		t.Errorf("rounding-sized difference: %+v, want 2 of 3 pairs differing (sgd − gdc, gd − gdc)", v)
	}
	same, _ := buildSharp(t, synthRows(t, sharpLevel{"sgd": 0, "gd": 0, "gdc": 0}, 0.5, 1))
	v = verdict(t, same, "sgd ends with a lower tr(HĈ) than gd on the training loss", "η = 0.1;")
	if v.Agrees || !v.Inconclusive || v.Word() != "inconclusive" || !strings.Contains(v.Result, "inconclusive") {
		t.Errorf("equal levels: %+v, want inconclusive", v)
	}
}

// tableHas reports whether the section whose title contains title has a
// row starting with lead and holding a cell that starts with cell.
func tableHas(rep *Report, title string, lead []string, cell string) bool {
	for _, s := range rep.Sections {
		if !strings.Contains(s.Title, title) {
			continue
		}
	row:
		for _, r := range s.Table[1:] {
			for i, l := range lead {
				if r[i] != l {
					continue row
				}
			}
			for _, c := range r {
				if strings.HasPrefix(c, cell) {
					return true
				}
			}
		}
	}
	return false
}

// tableHasSuffix reports whether the section whose title contains title
// has a row starting with lead whose column col ends with suffix.
func tableHasSuffix(rep *Report, title string, lead []string, col int, suffix string) bool {
	for _, s := range rep.Sections {
		if !strings.Contains(s.Title, title) {
			continue
		}
	row:
		for _, r := range s.Table[1:] {
			for i, l := range lead {
				if r[i] != l {
					continue row
				}
			}
			if strings.HasSuffix(r[col], suffix) {
				return true
			}
		}
	}
	return false
}

// TestSharpnessReportArchimedes runs configs/sharpness/archimedes.toml at
// 4 trials per cell and two learning rates through the trials runner and
// renders its report: every figure decodes, the sections of both losses
// are there with N = 4 per cell, and on the pool every optimiser's λ1 at
// initialisation is the one shared value.
func TestSharpnessReportArchimedes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a small Archimedes sharpness config")
	}
	c, err := config.Load("../../../configs/sharpness/archimedes.toml")
	if err != nil {
		t.Fatal(err)
	}
	c.Trials.Count, c.Trials.Etas = 4, []float64{0.05, 0.2}
	r, err := trials.NewRunner(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	var rows rowCollector
	if err := r.Run(context.Background(), &rows, trials.Settings{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rep, err := Build([]*Run{{Dir: dir, Config: c, Rows: rows.rows}}, dir, Options{Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if n := checkPNGs(t, rep, dir); n < 2*(8+4+8) {
		t.Errorf("%d figures, want at least %d", n, 2*(8+4+8))
	}
	for _, loss := range []string{"training loss", "pool loss"} {
		for _, o := range []string{"sgd", "gd", "gdc", "igr", "smith"} {
			if !tableHas(rep, loss+", initialisation to end", []string{"0.05", o, "4"}, "") {
				t.Errorf("%s: no row for %s at η = 0.05 with N = 4", loss, o)
			}
		}
	}
	inits := map[string]bool{}
	for _, s := range rep.Sections {
		if !strings.Contains(s.Title, "distributions of the sharpness change on the pool loss") {
			continue
		}
		for _, r := range s.Table[1:] {
			if r[0] == "λ1" {
				inits[r[4]] = true
			}
		}
	}
	if len(inits) != 1 {
		t.Errorf("initial pool λ1 by cell: %v, want one shared value", inits)
	}
	if len(verdictsWith(rep, "Corollary 3: SGD moves away")) != 2*2*2 {
		t.Errorf("want a SGD-below-GD verdict per loss, noise measure and η")
	}
}

func verdictsWith(rep *Report, s string) []Verdict {
	var out []Verdict
	for _, sec := range rep.Sections {
		for _, v := range sec.Verdicts {
			if strings.Contains(v.Claim, s) {
				out = append(out, v)
			}
		}
	}
	return out
}

// rowCollector keeps the rows a runner records (from several workers).
type rowCollector struct {
	mu   sync.Mutex
	rows []results.Row
}

// Record implements trials.Recorder.
func (c *rowCollector) Record(r results.Row) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows = append(c.rows, r)
	return nil
}
