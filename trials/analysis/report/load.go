// Package report compares a run's measurements with the perturbative
// theory's predictions and writes the comparison as Markdown with PNG, SVG
// and PDF figures: measured test loss with 95% intervals against η beside
// the order-1/2/3 predictions (smooth curves cut at the ηT limit, with a
// residual panel; see plots.EtaFigure), log-log plots of optimiser
// differences with fitted slopes, and a verdict per claim. Every verdict is
// computed from the stored trials and the estimated statistics by a stated
// test. A model without statistics still gets its measured figure, and
// Options.Stderr hears how to get the predictions. Overlay draws the
// figures of perturb plot: several runs (or dtypes) in one figure per
// model and initialisation.
package report

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/perturb/perturb/trials/analysis/stats"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/results"
)

// Run is one run directory's config, trials and (optional) statistics.
type Run struct {
	Dir    string
	Config *config.Config
	Rows   []results.Row
	Stats  *stats.File // nil without stats.json
}

// Load reads a run directory (or its results.sqlite): the stored trials,
// the config they were run with (from the store), and stats.json next to
// the store if present.
func Load(path string) (*Run, error) {
	dir := path
	if filepath.Ext(path) == ".sqlite" {
		dir = filepath.Dir(path)
	}
	meta, rows, err := results.ReadRows(filepath.Join(dir, "results.sqlite"))
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse(filepath.Join(dir, "results.sqlite")+" (stored config)", meta.ConfigText)
	if err != nil {
		return nil, fmt.Errorf("report %s: the stored config does not parse with this perturb: %w", dir, err)
	}
	r := &Run{Dir: dir, Config: cfg, Rows: rows}
	sp := filepath.Join(dir, stats.FileName)
	if _, err := os.Stat(sp); err == nil {
		if r.Stats, err = stats.ReadFile(sp); err != nil {
			return nil, err
		}
		if r.Stats.ConfigHash != "" && r.Stats.ConfigHash != meta.ConfigHash {
			return nil, fmt.Errorf("report %s: %s was estimated for another config (hash %.12s, the run's is %.12s); re-run perturb stats %s",
				dir, sp, r.Stats.ConfigHash, meta.ConfigHash, dir)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("report %s: %w", dir, err)
	}
	return r, nil
}

// sample is a mean with its standard error and 95% interval over n values.
type sample struct {
	Mean, SE, Lo, Hi float64
	N                int
}

// meanOf summarises xs (non-finite values skipped) with a normal 95%
// interval (the trial counts are large; summary.MeanCI gives the
// Student-t one for the plain tables).
func meanOf(xs []float64) sample {
	var s sample
	var sum, ss float64
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			sum += x
			s.N++
		}
	}
	if s.N == 0 {
		return sample{Mean: math.NaN(), SE: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}
	}
	s.Mean = sum / float64(s.N)
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			ss += (x - s.Mean) * (x - s.Mean)
		}
	}
	if s.N > 1 {
		s.SE = math.Sqrt(ss / float64(s.N-1) / float64(s.N))
	} else {
		s.SE = math.NaN()
	}
	s.Lo, s.Hi = s.Mean-1.96*s.SE, s.Mean+1.96*s.SE
	return s
}

// cellKey identifies the trials of one (model, init, optimiser, η).
type cellKey struct {
	Model, Opt string
	Init       int
	Eta        float64
}

// index groups rows by cell and trial index (ok rows only).
type index struct {
	cells map[cellKey]map[int]results.Row
	etas  []float64
}

func newIndex(rows []results.Row) *index {
	ix := &index{cells: map[cellKey]map[int]results.Row{}}
	seen := map[float64]bool{}
	for _, r := range rows {
		if !seen[r.Eta] {
			seen[r.Eta] = true
			ix.etas = append(ix.etas, r.Eta)
		}
		if r.Status != results.StatusOK {
			continue
		}
		k := cellKey{r.Model, r.Optimizer, r.Init, r.Eta}
		if ix.cells[k] == nil {
			ix.cells[k] = map[int]results.Row{}
		}
		ix.cells[k][r.Trial] = r
	}
	sort.Float64s(ix.etas)
	return ix
}

// measure summarises f over the ok trials of a cell.
func (ix *index) measure(k cellKey, f func(results.Row) float64) sample {
	var xs []float64
	for _, r := range ix.cells[k] {
		xs = append(xs, f(r))
	}
	return meanOf(xs)
}

// paired summarises f(b) − f(a) over the trial indices both cells hold.
func (ix *index) paired(a, b cellKey, f func(results.Row) float64) sample {
	var xs []float64
	for i, rb := range ix.cells[b] {
		if ra, ok := ix.cells[a][i]; ok {
			xs = append(xs, f(rb)-f(ra))
		}
	}
	return meanOf(xs)
}

func testLoss(r results.Row) float64   { return r.TestLoss }
func genGap(r results.Row) float64     { return r.TestLoss - r.TrainLoss }
func testChange(r results.Row) float64 { return r.TestLoss - r.InitTestLoss }
