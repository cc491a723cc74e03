package summary

import (
	"math"
	"slices"

	"github.com/perturb/perturb/trials/results"
)

// sides holds, for one group of rows, each side's test loss by trial index
// (NaN for a trial that is not ok), the sides in first-seen order.
type sides struct {
	names []string
	loss  map[string]map[int]float64
}

// groupSides groups the rows rs (sorted) by key and, within a group, by
// side (an optimizer, a dtype), keeping the first row of each (side, trial).
// It returns the keys in first-seen order and the groups.
func groupSides[K comparable](rs []results.Row, key func(results.Row) K, side func(results.Row) string) ([]K, map[K]*sides) {
	groups := map[K]*sides{}
	var order []K
	for _, r := range rs {
		k := key(r)
		g := groups[k]
		if g == nil {
			g = &sides{loss: map[string]map[int]float64{}}
			groups[k] = g
			order = append(order, k)
		}
		s := side(r)
		m := g.loss[s]
		if m == nil {
			m = map[int]float64{}
			g.loss[s] = m
			g.names = append(g.names, s)
		}
		if _, dup := m[r.Trial]; dup {
			continue
		}
		if isOK(r) {
			m[r.Trial] = r.TestLoss
		} else {
			m[r.Trial] = math.NaN()
		}
	}
	return order, groups
}

// pairedDiffs returns lb[t] − la[t] for the trial indices t ok on both
// sides, in increasing t.
func pairedDiffs(la, lb map[int]float64) []float64 {
	trials := make([]int, 0, len(la))
	for t := range la {
		trials = append(trials, t)
	}
	slices.Sort(trials)
	var d []float64
	for _, t := range trials {
		xa := la[t]
		xb, ok := lb[t]
		if !ok || math.IsNaN(xa) || math.IsNaN(xb) {
			continue
		}
		d = append(d, xb-xa)
	}
	return d
}
