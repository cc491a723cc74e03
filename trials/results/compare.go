package results

import (
	"fmt"
	"math"
	"sort"
)

// Difference is one measurement in which two rows of the same trial differ.
type Difference struct {
	Key   Key
	Field string
	A, B  string // the two values, formatted
	Rel   float64
}

// Comparison is how two sets of rows differ: trials present in only one,
// and measurements that differ by more than the tolerance.
type Comparison struct {
	Common       int   // trials in both
	OnlyA, OnlyB []Key // sorted
	Differences  []Difference
	// MaxRel is the largest relative difference of any measurement of
	// the common trials (0 when all are equal).
	MaxRel float64
}

// Same reports whether the two sets hold the same trials with equal
// measurements (within the tolerance used).
func (c Comparison) Same() bool {
	return len(c.OnlyA) == 0 && len(c.OnlyB) == 0 && len(c.Differences) == 0
}

// relDiff is |x−y| / max(|x|, |y|): 0 for equal values (NaN equals NaN, as
// both stand for a non-finite measurement), +Inf when only one is NaN.
func relDiff(x, y float64) float64 {
	switch {
	case math.IsNaN(x) && math.IsNaN(y), x == y:
		return 0
	case math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0):
		return math.Inf(1)
	}
	return math.Abs(x-y) / max(math.Abs(x), math.Abs(y))
}

// Compare compares rows a and b trial by trial. Settings, status and
// diverged step must be equal; losses, accuracies and weights may differ
// by the relative tolerance tol.
func Compare(a, b []Row, tol float64) Comparison {
	var c Comparison
	bk := make(map[Key]Row, len(b))
	for _, r := range b {
		bk[r.Key()] = r
	}
	seen := make(map[Key]bool, len(a))
	for _, ra := range a {
		k := ra.Key()
		seen[k] = true
		rb, ok := bk[k]
		if !ok {
			c.OnlyA = append(c.OnlyA, k)
			continue
		}
		c.Common++
		exact := func(field string, x, y any) {
			if x != y {
				c.Differences = append(c.Differences, Difference{Key: k, Field: field, A: fmt.Sprint(x), B: fmt.Sprint(y), Rel: math.Inf(1)})
			}
		}
		exact("n", ra.N, rb.N)
		exact("batch", ra.Batch, rb.Batch)
		exact("epochs", ra.Epochs, rb.Epochs)
		exact("steps", ra.Steps, rb.Steps)
		exact("status", ra.Status, rb.Status)
		exact("diverged_step", ra.DivergedStep, rb.DivergedStep)
		exact("number of weights", len(ra.Weights), len(rb.Weights))
		exact("sharpness recorded", ra.Sharpness != nil, rb.Sharpness != nil)
		near := func(field string, x, y float64) {
			d := relDiff(x, y)
			c.MaxRel = max(c.MaxRel, d)
			if !(d <= tol) {
				c.Differences = append(c.Differences, Difference{Key: k, Field: field, A: fmt.Sprint(x), B: fmt.Sprint(y), Rel: d})
			}
		}
		near("init_test_loss", ra.InitTestLoss, rb.InitTestLoss)
		near("init_test_acc", ra.InitTestAcc, rb.InitTestAcc)
		near("test_loss", ra.TestLoss, rb.TestLoss)
		near("test_acc", ra.TestAcc, rb.TestAcc)
		near("train_loss", ra.TrainLoss, rb.TrainLoss)
		if len(ra.Weights) == len(rb.Weights) {
			for i := range ra.Weights {
				near(fmt.Sprintf("weights[%d]", i), ra.Weights[i], rb.Weights[i])
			}
		}
	}
	for _, r := range b {
		if !seen[r.Key()] {
			c.OnlyB = append(c.OnlyB, r.Key())
		}
	}
	SortKeys(c.OnlyA)
	SortKeys(c.OnlyB)
	return c
}

// SortKeys sorts keys by model, init, optimiser, eta, trial and dtype.
func SortKeys(ks []Key) {
	sort.Slice(ks, func(i, j int) bool { return ks[i].Less(ks[j]) })
}

// Less orders keys by model, init, optimiser, eta, trial and dtype.
func (k Key) Less(o Key) bool {
	switch {
	case k.Model != o.Model:
		return k.Model < o.Model
	case k.Init != o.Init:
		return k.Init < o.Init
	case k.Optimizer != o.Optimizer:
		return k.Optimizer < o.Optimizer
	case k.Eta != o.Eta:
		return k.Eta < o.Eta
	case k.Trial != o.Trial:
		return k.Trial < o.Trial
	}
	return k.DType < o.DType
}

// CompareDTypes compares the rows of dtype da in a with those of dtype db
// in b, pairing trials of the same identity but for the dtype (a and b may
// be the rows of one multi-dtype store). It is Compare of the two
// selections, b's rows relabelled da: the keys reported carry da.
func CompareDTypes(a, b []Row, da, db string, tol float64) Comparison {
	var sa, sb []Row
	for _, r := range a {
		if r.DType == da {
			sa = append(sa, r)
		}
	}
	for _, r := range b {
		if r.DType == db {
			r.DType = da
			sb = append(sb, r)
		}
	}
	return Compare(sa, sb, tol)
}
