package trials

import (
	"fmt"
	"math"
	"time"

	"github.com/perturb/perturb/trials/config"
)

// Subset estimates of the test loss (config key trials.test).
//
// Trial t's subset S_t is M pool examples drawn with replacement from its
// own stream (TestSubset), cut into G = min(10, M) consecutive groups of
// sizes n_g (M/G, give or take one). With m_g the group means of
// d_x = l_x(θ_T) − l_x(θ₀) (control "init") or of l_x(θ_T) (control
// "none"), the estimate and its standard error over the draw of S_t are
//
//	L̂  = L(θ₀) + Σ_g n_g m_g / M           (without L(θ₀) for "none")
//	SE² = Σ_g n_g (m_g − m̄)² / ((G − 1) M),  m̄ = Σ_g n_g m_g / M.
//
// Each d_x has expectation L(θ_T) − L(θ₀) over the draw, so L̂ is
// unbiased for the exact pool loss L(θ_T); given θ_T its variance is σ²/M
// with σ² the pool variance of d_x. The between-group sum of squares has
// expectation (G − 1)σ² whatever the group sizes (the one-way analysis of
// variance identity with a weighted mean), so SE² is unbiased for the
// variance of L̂ over the draw. Across trials, the variance of L̂ is the
// exact loss's trial-to-trial variance plus E[σ²]/M: the subset noise is
// inside the spread the summaries and intervals already use, and the
// stored SE lets a report split the two (effective speed-up).
//
// The group means of l_x(θ₀) depend on (model, init, trial index) only:
// they are computed once per run and shared by every optimiser and η of
// the index (controlState), so the control costs about one subset
// evaluation per training set, not per trial.

const (
	// subsetGroups is G, the groups the standard error is estimated from.
	subsetGroups = 10
	// poolCheckEvery: subset-estimated trials whose index is a multiple of
	// it also get the exact pool loss (Row.PoolTestLoss), a running check
	// of the estimator and the cost an exact run would have had.
	poolCheckEvery = 500
)

// subsetGroupBounds returns the G+1 bounds of the groups of m examples.
func subsetGroupBounds(m int) []int {
	g := min(subsetGroups, m)
	b := make([]int, g+1)
	for i := range b {
		b[i] = i * m / g
	}
	return b
}

// subsetCombine returns the estimate's part from the subset, Σ n_g m_g / M,
// and its standard error from the group means m of groups bounded by b.
func subsetCombine(m []float64, b []int) (mean, se float64) {
	total := float64(b[len(b)-1])
	for g, v := range m {
		mean += float64(b[g+1]-b[g]) * v
	}
	mean /= total
	if len(m) < 2 {
		return mean, math.NaN()
	}
	var ss float64
	for g, v := range m {
		ss += float64(b[g+1]-b[g]) * (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss / (float64(len(m)-1) * total))
}

type controlKey struct {
	model       string
	init, index int
}

// controlState is the group means of l_x(θ₀) and of the accuracy over a
// trial index's subset, computed once per run.
type controlState struct {
	ready     chan struct{}
	loss, acc []float64
	err       error
}

// subsetRows returns trial t's subset.
func (w *worker) subsetRows(t Trial) []int {
	return TestSubset(w.r.cfg, t, w.r.cfg.Trials.Test.Subset, w.r.data.Len())
}

// subsetMeans sets loss[g][k] and acc[g][k] to the means of theta[k]'s
// loss and accuracy over group g of rows (accuracy NaN where the model's
// path gives none).
func (w *worker) subsetMeans(name string, theta [][]float64, rows []int, b []int) (loss, acc [][]float64, err error) {
	loss, acc = make([][]float64, len(b)-1), make([][]float64, len(b)-1)
	for g := range loss {
		loss[g], acc[g] = make([]float64, len(theta)), make([]float64, len(theta))
		if err := w.meanOver(name, theta, rows[b[g]:b[g+1]], loss[g], acc[g]); err != nil {
			return nil, nil, err
		}
	}
	return loss, acc, nil
}

// meanOver sets the mean loss and accuracy of each theta over the pool
// rows through the model's test-loss programs (graph.DeviceTestLoss.Mean:
// the result does not depend on the chunk length nor on how many trials
// share the call).
func (w *worker) meanOver(name string, theta [][]float64, rows []int, loss, acc []float64) error {
	e, err := w.imageEval(name)
	if err != nil {
		return err
	}
	return e.Mean(theta, rows, loss, acc)
}

// control returns the group means at the initialisation theta0 over
// trial t's subset, computed by the first worker that needs them.
func (w *worker) control(t Trial, theta0 []float64) (*controlState, error) {
	k := controlKey{t.Model, t.Init, t.Index}
	w.r.mu.Lock()
	if w.r.controls == nil {
		w.r.controls = map[controlKey]*controlState{}
	}
	st, ok := w.r.controls[k]
	if !ok {
		st = &controlState{ready: make(chan struct{})}
		w.r.controls[k] = st
	}
	w.r.mu.Unlock()
	if !ok {
		rows := w.subsetRows(t)
		loss, acc, err := w.subsetMeans(t.Model, [][]float64{theta0}, rows, subsetGroupBounds(len(rows)))
		st.loss, st.acc, st.err = make([]float64, len(loss)), make([]float64, len(loss)), err
		for g := range loss {
			st.loss[g], st.acc[g] = loss[g][0], acc[g][0]
		}
		close(st.ready)
	}
	<-st.ready
	return st, st.err
}

// subsetTestLoss sets the subset estimates of the test loss and accuracy
// of the trials ts at theta (and their standard errors), evaluating the
// trials that share a subset (one trial index, several optimisers or η)
// in one call.
func (w *worker) subsetTestLoss(ts []Trial, init *initState, theta [][]float64, loss, acc, se []float64) error {
	test := w.r.cfg.Trials.Test
	byIndex := map[int][]int{}
	var order []int
	for j, t := range ts {
		if _, ok := byIndex[t.Index]; !ok {
			order = append(order, t.Index)
		}
		byIndex[t.Index] = append(byIndex[t.Index], j)
	}
	for _, idx := range order {
		js := byIndex[idx]
		t := ts[js[0]]
		rows := w.subsetRows(t)
		b := subsetGroupBounds(len(rows))
		th := make([][]float64, len(js))
		for i, j := range js {
			th[i] = theta[j]
		}
		gl, ga, err := w.subsetMeans(t.Model, th, rows, b)
		if err != nil {
			return fmt.Errorf("subset test loss of trial %d: %w", idx, err)
		}
		var ctl *controlState
		if test.Control == "init" {
			if ctl, err = w.control(t, init.theta); err != nil {
				return fmt.Errorf("control variate of trial %d at the initialisation: %w", idx, err)
			}
		}
		ml, ma := make([]float64, len(gl)), make([]float64, len(gl))
		for i, j := range js {
			for g := range gl {
				ml[g], ma[g] = gl[g][i], ga[g][i]
				if ctl != nil {
					ml[g] -= ctl.loss[g]
					ma[g] -= ctl.acc[g]
				}
			}
			dl, s := subsetCombine(ml, b)
			da, _ := subsetCombine(ma, b)
			if ctl != nil {
				dl += init.loss
				da += init.acc
			}
			loss[j], acc[j], se[j] = dl, da, s
		}
	}
	return nil
}

// PoolChecked reports whether a subset-estimated trial also gets the exact
// pool loss.
func PoolChecked(c *config.Config, t Trial) bool {
	return c.Trials.Test != nil && t.Index%poolCheckEvery == 0
}

// coreSeconds is the worker's share of the CPUs times the wall time since
// start: the cost of work done by one worker, comparable across worker
// counts.
func (w *worker) coreSeconds(start time.Time) float64 {
	return time.Since(start).Seconds() * float64(w.threads)
}

// poolCheck sets, for the checked trials among ts (PoolChecked), the
// exact pool loss poolLoss[live[j]] of theta[j] and the core-seconds it
// took per trial, poolSec[live[j]].
func (w *worker) poolCheck(ts []Trial, theta [][]float64, live []int, poolLoss, poolSec []float64) error {
	var th [][]float64
	var at []int
	for j, t := range ts {
		if PoolChecked(w.r.cfg, t) {
			th, at = append(th, theta[j]), append(at, live[j])
		}
	}
	if len(th) == 0 {
		return nil
	}
	start := time.Now()
	loss, acc := make([]float64, len(th)), make([]float64, len(th))
	if err := w.testLoss(ts[0].Model, th, loss, acc); err != nil {
		return err
	}
	sec := w.coreSeconds(start) / float64(len(th))
	for j, i := range at {
		poolLoss[i], poolSec[i] = loss[j], sec
	}
	return nil
}
