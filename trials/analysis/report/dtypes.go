package report

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/perturb/perturb/trials/analysis/summary"
	"github.com/perturb/perturb/trials/results"
)

// oneDType is the part of run r the theory sections analyse: r itself
// when its rows hold one dtype, else the rows of the config's dtype (the
// first listed) with the single-dtype config of that dtype, so trials of
// two dtypes never mix in a cell.
func oneDType(r *Run) *Run {
	dts := rowDTypes(r.Rows)
	if len(dts) <= 1 {
		return r
	}
	dt := r.Config.DType
	if !slices.Contains(dts, dt) {
		dt = dts[0]
	}
	var rows []results.Row
	for _, row := range r.Rows {
		if row.DType == dt {
			rows = append(rows, row)
		}
	}
	return &Run{Dir: r.Dir, Config: r.Config.ForDType(dt), Rows: rows, Stats: r.Stats}
}

// rowDTypes is the sorted set of the rows' dtypes.
func rowDTypes(rows []results.Row) []string {
	var out []string
	for _, r := range rows {
		if !slices.Contains(out, r.DType) {
			out = append(out, r.DType)
		}
	}
	slices.Sort(out)
	return out
}

// dtypeSection is the table of paired dtype differences of run r
// (summary.DTypePairs), or false when its rows hold one dtype.
func dtypeSection(r *Run) (Section, bool) {
	ps := summary.DTypePairs(r.Rows)
	if len(ps) == 0 {
		return Section{}, false
	}
	s := Section{
		Title: fmt.Sprintf("Dtypes: %s against %s (%s)", ps[0].B, ps[0].A, r.Config.Name),
		Text: []string{fmt.Sprintf("The trials of each dtype share training sets and initialisations, so the paired difference of test loss B − A "+
			"(mean over the trials ok in both, matched by trial index, with its 95%% t-interval) is the rounding's effect alone. "+
			"The other sections analyse the %s trials.", oneDType(r).Config.DType)},
		Table: [][]string{{"model", "init", "optimizer", "η", "A", "B", "pairs", "mean B − A", "95% CI"}},
	}
	for _, p := range ps {
		ci := "–"
		if p.Pairs >= 2 {
			ci = fmt.Sprintf("[%.3g, %.3g]", p.Lo, p.Hi)
		}
		s.Table = append(s.Table, []string{p.Model, strconv.Itoa(p.Init), p.Optimizer, strconv.FormatFloat(p.Eta, 'g', -1, 64),
			p.A, p.B, strconv.Itoa(p.Pairs), fmt.Sprintf("%.3g", p.Mean), ci})
	}
	return s, true
}
