package report

import (
	"bytes"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/analysis/stats"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/results"
)

// lossTestConfig is a gauss sweep of sgd, gd and gdc (T = 10) at three η.
const lossTestConfig = `name = "%s"
seed = 1
dtype = "%s"

[trials]
count = 8
n     = 10
etas  = [0.02, 0.05, 0.2]

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
`

// lossRun is a run of lossTestConfig whose test-loss change is −η plus
// noise, with statistics (every one 1 ± 0.1) when withStats.
func lossRun(t *testing.T, name, dtype string, withStats bool) *Run {
	t.Helper()
	c, err := config.Parse(name+".toml", fmt.Sprintf(lossTestConfig, name, dtype))
	if err != nil {
		t.Fatal(err)
	}
	var rows []results.Row
	for _, o := range []string{"sgd", "gd", "gdc"} {
		for _, eta := range c.Trials.Etas {
			for i := range 8 {
				change := -eta + 0.01*math.Sin(float64(3*i+1))
				rows = append(rows, results.Row{Model: "gauss", Optimizer: o, Eta: eta, Init: 0, Trial: i, DType: dtype,
					Status: results.StatusOK, InitTestLoss: 2, TestLoss: 2 + change, TrainLoss: 1.9 + change})
			}
		}
	}
	r := &Run{Dir: filepath.Join(t.TempDir(), name), Config: c, Rows: rows}
	if withStats {
		e := stats.Entry{Model: "gauss", Init: 0, DType: dtype}
		for _, n := range stats.Names {
			e.Estimates = append(e.Estimates, stats.Estimate{Name: n, Value: 1, StdErr: 0.1, Groups: 16})
		}
		r.Stats = &stats.File{ConfigName: name, Entries: []stats.Entry{e}}
	}
	return r
}

// checkFigureFiles checks that the PNG decodes and the SVG and PDF are
// beside it.
func checkFigureFiles(t *testing.T, pngPath string) {
	t.Helper()
	data, err := os.ReadFile(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(data)); err != nil {
		t.Errorf("%s does not decode: %v", pngPath, err)
	}
	base := strings.TrimSuffix(pngPath, ".png")
	for _, ext := range []string{".svg", ".pdf"} {
		if fi, err := os.Stat(base + ext); err != nil || fi.Size() == 0 {
			t.Errorf("%s%s missing or empty (%v)", base, ext, err)
		}
	}
}

// TestReportWithoutStats: the report of a run without stats.json still
// plots the measured test loss against η, and says on stderr how to get
// the predictions.
func TestReportWithoutStats(t *testing.T) {
	r := lossRun(t, "nostats", "float64", false)
	dir := t.TempDir()
	var stderr bytes.Buffer
	rep, err := Build([]*Run{r}, dir, Options{Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	var figs []string
	for _, s := range rep.Sections {
		if strings.Contains(s.Title, "measured only") {
			figs = append(figs, s.Figures...)
		}
	}
	if len(figs) != 1 {
		t.Fatalf("measured-only figures %v, want one", figs)
	}
	checkFigureFiles(t, filepath.Join(dir, figs[0]))
	svg, err := os.ReadFile(filepath.Join(dir, strings.TrimSuffix(figs[0], ".png")+".svg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sgd", "gdc"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("figure lacks %q", want)
		}
	}
	if bytes.Contains(svg, []byte("order 1")) {
		t.Error("figure without statistics shows an order-1 prediction")
	}
	msg := stderr.String()
	for _, want := range []string{r.Dir, "no stats.json", "perturb stats", "--out " + r.Dir} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr %q lacks %q", msg, want)
		}
	}
	var md bytes.Buffer
	if err := rep.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "]("+figs[0]+")") {
		t.Errorf("report.md does not show %s", figs[0])
	}
}

// TestReportEtaTLimitChangesFigure: the ηT limit cuts the prediction
// curves, so the loss figure differs between limits (and the verdicts'
// claims name the limit).
func TestReportEtaTLimitChangesFigure(t *testing.T) {
	r := lossRun(t, "withstats", "float64", true)
	var svgs [2][]byte
	for i, limit := range []float64{0.5, 2} {
		dir := t.TempDir()
		var stderr bytes.Buffer
		if _, err := Build([]*Run{r}, dir, Options{EtaTLimit: limit, Stderr: &stderr}); err != nil {
			t.Fatal(err)
		}
		if stderr.Len() > 0 {
			t.Errorf("stderr %q for a run with statistics", stderr.String())
		}
		png := filepath.Join(dir, "withstats-gauss-init0-loss.png")
		checkFigureFiles(t, png)
		var err error
		if svgs[i], err = os.ReadFile(strings.TrimSuffix(png, ".png") + ".svg"); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("ηT ≤ %g", limit); !bytes.Contains(svgs[i], []byte(want)) {
			t.Errorf("limit %g: figure lacks %q", limit, want)
		}
		if !bytes.Contains(svgs[i], []byte("order 3")) {
			t.Errorf("limit %g: figure lacks the order-3 prediction", limit)
		}
	}
	if bytes.Equal(svgs[0], svgs[1]) {
		t.Error("the loss figure is the same for ηT limits 0.5 and 2")
	}
}

// TestOverlay: perturb plot's figures overlay the runs, labelled by run
// name (and dtype), and --dtype keeps one of them.
func TestOverlay(t *testing.T) {
	a := lossRun(t, "run-a", "float32", true)
	b := lossRun(t, "run-b", "float64", false)
	dir := t.TempDir()
	var stderr bytes.Buffer
	paths, err := Overlay([]*Run{a, b}, dir, PlotOptions{Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 1 || filepath.Base(paths[0]) != "plot-gauss-init0.png" {
		t.Fatalf("paths %v, want plot-gauss-init0.png", paths)
	}
	checkFigureFiles(t, paths[0])
	svg, err := os.ReadFile(strings.TrimSuffix(paths[0], ".png") + ".svg")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"run-a float32 sgd", "run-b float64 gdc", "order 2"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("overlay lacks %q", want)
		}
	}
	if msg := stderr.String(); !strings.Contains(msg, b.Dir) || strings.Contains(msg, a.Dir+" ") {
		t.Errorf("stderr %q: want a note for %s only", msg, b.Dir)
	}

	paths, err = Overlay([]*Run{a, b}, dir, PlotOptions{DTypes: []string{"float32"}, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	svg, err = os.ReadFile(strings.TrimSuffix(paths[0], ".png") + ".svg")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(svg, []byte("run-b")) || bytes.Contains(svg, []byte("float64")) {
		t.Error("--dtype float32 still shows the float64 run")
	}
	if _, err := Overlay([]*Run{a}, dir, PlotOptions{DTypes: []string{"float64"}}); err == nil {
		t.Error("no error when --dtype leaves no trial")
	}
}
