// Package summary reduces trial rows to per-cell test-loss statistics and
// paired optimiser differences, and writes them as a table, CSV or JSON.
//
// Everything here is a pure function of the rows: no timings, paths or map
// iteration order reach the output, so equal stores (in any row order) give
// byte-identical text.
//
// A row counts as ok when its Status is "ok" and its test loss is finite;
// every other row counts as diverged and is excluded from the statistics.
package summary

import (
	"cmp"
	"math"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/perturb/perturb/trials/results"
)

// Cell is the test-loss summary of one (model, optimizer, eta, init, dtype)
// group.
type Cell struct {
	Model, Optimizer string
	Eta              float64
	Init             int
	DType            string
	Trials, Diverged int // rows in the group; of them, not ok
	// Mean test loss over the ok trials, its two-sided 95% Student-t
	// confidence interval [Lo, Hi], and the sample standard deviation.
	Mean, Lo, Hi, Std float64
	TrainMean         float64 // mean train loss over the ok trials
	TestAccMean       float64 // mean test accuracy over the ok trials
	InitTestLoss      float64 // mean (finite) test loss at initialisation over all trials
}

// Pair is the paired difference B − A of test loss over trials present (and
// ok) in both, matched by Trial index, within the same (model, eta, init,
// dtype). A < B alphabetically.
type Pair struct {
	Model        string
	A, B         string
	Eta          float64
	Init         int
	DType        string
	Pairs        int // matched trials
	Mean, Lo, Hi float64
}

// Summary holds the cells and pairs, each sorted by (model, dtype, init,
// optimizer(s), eta).
type Summary struct {
	Cells []Cell
	Pairs []Pair
	// DTypePairs are the paired differences between dtypes (see
	// DTypePairs); empty when the rows hold one dtype.
	DTypePairs []DTypePair
}

// MeanCI returns the mean and the two-sided 95% Student-t confidence interval
// for the mean (NaN bounds if n<2; all NaN if n==0).
func MeanCI(xs []float64) (mean, lo, hi float64) {
	mean, sd := meanSD(xs)
	n := len(xs)
	if n < 2 {
		return mean, math.NaN(), math.NaN()
	}
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(n - 1)}.Quantile(0.975)
	h := t * sd / math.Sqrt(float64(n))
	return mean, mean - h, mean + h
}

// meanSD returns the mean and the sample (n−1) standard deviation, summing
// in the order given.
func meanSD(xs []float64) (mean, sd float64) {
	n := len(xs)
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	mean = s / float64(n)
	if n < 2 {
		return mean, math.NaN()
	}
	var ss float64
	for _, x := range xs {
		d := x - mean
		ss += d * d
	}
	return mean, math.Sqrt(ss / float64(n-1))
}

func mean(xs []float64) float64 {
	m, _ := meanSD(xs)
	return m
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func isOK(r results.Row) bool { return r.Status == results.StatusOK && finite(r.TestLoss) }

// pairKey identifies a group of optimizers to compare. Eta is held as bits
// (with ±0 merged) so that every float, NaN included, can be a map key.
type pairKey struct {
	Model string
	Eta   uint64
	Init  int
	DType string
}

func etaBits(x float64) uint64 {
	if x == 0 {
		return 0
	}
	return math.Float64bits(x)
}

// cmpFloat orders floats numerically, NaN first.
func cmpFloat(a, b float64) int { return cmp.Compare(a, b) }

// cmpRows is a total order on rows: the summary order of the identity, then
// the remaining fields, so that sorting makes the result independent of the
// input order even for duplicate keys.
func cmpRows(a, b results.Row) int {
	return cmp.Or(
		cmp.Compare(a.Model, b.Model),
		cmp.Compare(a.DType, b.DType),
		cmp.Compare(a.Init, b.Init),
		cmp.Compare(a.Optimizer, b.Optimizer),
		cmpFloat(a.Eta, b.Eta),
		cmp.Compare(a.Trial, b.Trial),
		cmp.Compare(a.Status, b.Status),
		cmpFloat(a.TestLoss, b.TestLoss),
		cmpFloat(a.TrainLoss, b.TrainLoss),
		cmpFloat(a.TestAcc, b.TestAcc),
		cmpFloat(a.InitTestLoss, b.InitTestLoss),
		cmpFloat(a.InitTestAcc, b.InitTestAcc),
		cmp.Compare(a.ConfigHash, b.ConfigHash),
		cmp.Compare(a.N, b.N),
		cmp.Compare(a.Batch, b.Batch),
		cmp.Compare(a.Epochs, b.Epochs),
		cmp.Compare(a.Steps, b.Steps),
	)
}

// Summarize computes the cells and the paired differences of rows. Should
// rows hold the same key twice (rows merged from several stores), each
// counts in its cell, and pairing uses the first in sorted order.
func Summarize(rows []results.Row) Summary {
	rs := slices.Clone(rows)
	slices.SortFunc(rs, cmpRows)

	var s Summary
	// Cells: rs is sorted by (model, dtype, init, optimizer, eta, trial), so
	// each group is a contiguous run.
	for i := 0; i < len(rs); {
		first := rs[i]
		j := i
		var test, train, acc, init []float64
		c := Cell{Model: first.Model, Optimizer: first.Optimizer, Eta: first.Eta, Init: first.Init, DType: first.DType}
		for ; j < len(rs) && sameCell(rs[j], first); j++ {
			r := rs[j]
			c.Trials++
			if finite(r.InitTestLoss) {
				init = append(init, r.InitTestLoss)
			}
			if !isOK(r) {
				c.Diverged++
				continue
			}
			test = append(test, r.TestLoss)
			train = append(train, r.TrainLoss)
			acc = append(acc, r.TestAcc)
		}
		c.Mean, c.Lo, c.Hi = MeanCI(test)
		_, c.Std = meanSD(test)
		c.TrainMean = mean(train)
		c.TestAccMean = mean(acc)
		c.InitTestLoss = mean(init)
		s.Cells = append(s.Cells, c)
		i = j
	}

	// Pairs: per (model, eta, init, dtype), the ok test loss of each
	// optimizer by trial index.
	order, groups := groupSides(rs, func(r results.Row) pairKey {
		return pairKey{r.Model, etaBits(r.Eta), r.Init, r.DType}
	}, func(r results.Row) string { return r.Optimizer })
	for _, pk := range order {
		g := groups[pk]
		slices.Sort(g.names)
		for ai, a := range g.names {
			for _, b := range g.names[ai+1:] {
				d := pairedDiffs(g.loss[a], g.loss[b])
				p := Pair{Model: pk.Model, A: a, B: b, Eta: math.Float64frombits(pk.Eta), Init: pk.Init, DType: pk.DType, Pairs: len(d)}
				p.Mean, p.Lo, p.Hi = MeanCI(d)
				s.Pairs = append(s.Pairs, p)
			}
		}
	}
	s.DTypePairs = DTypePairs(rows)
	slices.SortFunc(s.Pairs, func(x, y Pair) int {
		return cmp.Or(
			cmp.Compare(x.Model, y.Model),
			cmp.Compare(x.DType, y.DType),
			cmp.Compare(x.Init, y.Init),
			cmp.Compare(x.A, y.A),
			cmp.Compare(x.B, y.B),
			cmpFloat(x.Eta, y.Eta),
		)
	})
	return s
}

// sameCell reports whether a and b fall in the same cell (NaN etas equal).
func sameCell(a, b results.Row) bool {
	return a.Model == b.Model && a.Optimizer == b.Optimizer && cmpFloat(a.Eta, b.Eta) == 0 &&
		a.Init == b.Init && a.DType == b.DType
}
