package trials

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/results"
	"github.com/perturb/perturb/trials/study/sharp"
)

const sharpConfig = `name = "sharp"
seed = 3
dtype = "float64"
[data]
set = "fashion-mnist"
[trials]
count = 3
n = 6
etas = [0.05, 0.2]
[[model]]
name = "archimedes"
inits = [0, 1]
[[model]]
name = "logistic"
inits = [1]
[[optimizer]]
name = "sgd"
batch = 1
[[optimizer]]
name = "gd"
steps = 6
[sharpness]
every = 2
subset = 40
tol = 1e-4
max_iter = 40
min_probes = 4
max_probes = 12
`

// archimedesTrain returns Archimedes' closed-form λ1, tr H and tr C of the
// empirical loss over samples at theta: H̄ = H(θ; x̄) and Ĉ = s²_x b bᵀ
// (the gradient is g_0 + x b with b = (cos(z−π/4), sin(z−π/4), r)), from
// package landscape's formulas.
func archimedesTrain(theta []float64, set []nets.Sample) (lambda, trH, trC float64) {
	var xm, v float64
	for _, x := range set {
		xm += x.X / float64(len(set))
	}
	for _, x := range set {
		v += (x.X - xm) * (x.X - xm) / float64(len(set)-1)
	}
	u, w, z := theta[0], theta[1], theta[2]
	s, c := math.Sincos(z)
	s4, c4 := math.Sincos(z - math.Pi/4)
	p, q := c*u+s*w, -s*u+c*w
	h := [3][3]float64{{1 + c*c, c * s, q*c - p*s - xm*s4}, {c * s, 1 + s*s, q*s + p*c + xm*c4}, {0, 0, q*q - p*p - xm*(c4*u+s4*w)}}
	h[2][0], h[2][1] = h[0][2], h[1][2]
	// Largest eigenvalue by power iteration on H + shift (exact enough to 1e-9).
	x := []float64{1, 0.5, 0.25}
	shift := 10.0
	for range 2000 {
		var y [3]float64
		for i := range 3 {
			y[i] = shift * x[i]
			for j := range 3 {
				y[i] += h[i][j] * x[j]
			}
		}
		nrm := math.Sqrt(y[0]*y[0] + y[1]*y[1] + y[2]*y[2])
		for i := range 3 {
			x[i] = y[i] / nrm
		}
	}
	for i := range 3 {
		for j := range 3 {
			lambda += x[i] * h[i][j] * x[j]
		}
	}
	r := -s4*u + c4*w
	return lambda, h[0][0] + h[1][1] + h[2][2], v * (c4*c4 + s4*s4 + r*r)
}

// TestSharpnessRun runs a tiny config with [sharpness] (Archimedes and
// the logistic model on a synthetic pool, SGD and GD, two etas) and
// checks: trials with an index multiple of every = 2 carry a record and
// the others none; the measures at initialisation are the same for every
// optimiser and eta of a training set (and the pool one for every trial of
// an initialisation); Archimedes' stored λ1, tr H and tr C on the training
// set and the pool subset at the end equal the closed forms at the stored
// final weights to 1e-9; the logistic model's top eigenvalue converged.
func TestSharpnessRun(t *testing.T) {
	c := mustConfig(t, sharpConfig)
	pool := smallPool(t, 200)
	r, err := NewRunner(c, pool)
	if err != nil {
		t.Fatal(err)
	}
	var rec collect
	if err := r.Run(context.Background(), &rec, Settings{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	initTrain := map[[3]int]string{}
	initPool := map[int]string{}
	checked := 0
	for _, row := range rec.rows {
		if (row.Trial%2 == 0) != (row.Sharpness != nil) {
			t.Fatalf("%v: sharpness %s", row.Key(), row.Sharpness)
		}
		if row.Sharpness == nil {
			continue
		}
		sr, err := sharp.Decode(row.Sharpness)
		if err != nil {
			t.Fatal(err)
		}
		if sr.Init == nil || sr.Init.Train == nil || sr.Init.Pool == nil {
			t.Fatalf("%v: no initial measures: %s", row.Key(), row.Sharpness)
		}
		mi := 0
		if row.Model == "logistic" {
			mi = 1
		}
		tj, _ := json.Marshal(sr.Init.Train)
		pj, _ := json.Marshal(sr.Init.Pool)
		if prev, ok := initTrain[[3]int{mi, row.Init, row.Trial}]; ok && prev != string(tj) {
			t.Errorf("%v: initial train measures differ between optimisers/etas", row.Key())
		}
		initTrain[[3]int{mi, row.Init, row.Trial}] = string(tj)
		if prev, ok := initPool[mi*10+row.Init]; ok && prev != string(pj) {
			t.Errorf("%v: initial pool measures differ between trials", row.Key())
		}
		initPool[mi*10+row.Init] = string(pj)
		if row.Status != results.StatusOK {
			continue
		}
		if sr.End == nil || sr.End.Train == nil || sr.End.Pool == nil {
			t.Fatalf("%v: no final measures", row.Key())
		}
		if row.Model == "logistic" {
			if !sr.End.Pool.LanczosConverged || !(sr.End.Pool.Value(sharp.Lambda) > 0) || sr.End.Pool.TrHC == nil {
				t.Errorf("%v: pool measures %+v", row.Key(), sr.End.Pool)
			}
			continue
		}
		for _, c := range []struct {
			m   *sharp.Measures
			set []nets.Sample
		}{{sr.End.Train, r.Samples(Trial{Model: row.Model, Init: row.Init, Index: row.Trial})}, {sr.End.Pool, r.poolSubset(row.Model)}} {
			lam, trH, trC := archimedesTrain(row.Weights, c.set)
			for name, p := range map[string][2]float64{"λ1": {c.m.Value(sharp.Lambda), lam}, "tr H": {c.m.Value(sharp.TrH), trH}, "tr C": {c.m.Value(sharp.TrC), trC}} {
				if math.Abs(p[0]-p[1]) > 1e-9*max(1, math.Abs(p[1])) {
					t.Errorf("%v: %s = %.12g, closed form %.12g", row.Key(), name, p[0], p[1])
				}
			}
			checked++
		}
	}
	if checked < 8 {
		t.Errorf("only %d closed-form checks", checked)
	}
}

// TestSharpnessResume runs the config into a store in two parts (a run
// of some trials, then a resumed run of the rest into the same store) and
// checks that every stored sharpness record equals, byte for byte, that of
// an uninterrupted run.
func TestSharpnessResume(t *testing.T) {
	c := mustConfig(t, sharpConfig)
	pool := smallPool(t, 200)
	ref := runAll(t, c, pool, Settings{Workers: 1})
	path := filepath.Join(t.TempDir(), "results.sqlite")
	st, err := results.Create(path, results.Meta{ConfigHash: c.Hash(), ConfigText: c.Text, ConfigName: c.Name})
	if err != nil {
		t.Fatal(err)
	}
	store := func(s Settings) {
		r, err := NewRunner(c, pool)
		if err != nil {
			t.Fatal(err)
		}
		w := results.NewWriter(st, 0, 1)
		if err := r.Run(context.Background(), recorderFunc(w.Add), s); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	first := map[results.Key]bool{}
	for k := range ref {
		if k.Optimizer == "gd" || k.Init == 1 {
			first[k] = true // skipped by the first part
		}
	}
	store(Settings{Workers: 2, Skip: first, K: 3})
	keys, err := st.Keys()
	if err != nil {
		t.Fatal(err)
	}
	store(Settings{Workers: 2, Skip: keys, K: 2})
	rows, err := st.Rows()
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if len(rows) != len(ref) {
		t.Fatalf("%d rows stored, %d in the uninterrupted run", len(rows), len(ref))
	}
	for _, row := range rows {
		want := ref[row.Key()]
		if !bytes.Equal(row.Sharpness, want.Sharpness) {
			t.Errorf("%v: resumed sharpness\n%s\nuninterrupted\n%s", row.Key(), row.Sharpness, want.Sharpness)
		}
	}
}

type recorderFunc func(results.Row) error

func (f recorderFunc) Record(r results.Row) error { return f(r) }

// TestSharpnessArchimedesConfig runs configs/sharpness/archimedes.toml at
// tiny scale (2 trials per cell) and checks the pool measures at the
// origin against the closed forms on its 2,000 points (x̄, s²_x their
// mean and unbiased variance): H̄ = [[2, 0, −x̄/√2], [0, 1, x̄/√2], [·, ·, 0]],
// so tr H = 3 exactly and λ1 = 2 + O(x̄²); b = (1/√2, −1/√2, 0), so
// tr C = s²_x and tr(HC) = 3 s²_x/2 (within 4 standard errors of the
// stored estimate); every finished trial has final measures.
func TestSharpnessArchimedesConfig(t *testing.T) {
	c, err := config.Load("../configs/sharpness/archimedes.toml")
	if err != nil {
		t.Fatal(err)
	}
	c.Trials.Count = 2
	r, err := NewRunner(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	var rec collect
	if err := r.Run(context.Background(), &rec, Settings{}); err != nil {
		t.Fatal(err)
	}
	if len(rec.rows) != 40 {
		t.Fatalf("%d rows, want 40", len(rec.rows))
	}
	var xm, v float64
	set := r.poolSubset("archimedes")
	for _, x := range set {
		xm += x.X / float64(len(set))
	}
	for _, x := range set {
		v += (x.X - xm) * (x.X - xm) / float64(len(set)-1)
	}
	lam, _, _ := archimedesTrain([]float64{0, 0, 0}, set)
	for _, row := range rec.rows {
		sr, err := sharp.Decode(row.Sharpness)
		if err != nil || sr == nil {
			t.Fatalf("%v: %v", row.Key(), err)
		}
		p := sr.Init.Pool
		if math.Abs(p.Value(sharp.TrH)-3) > 1e-12 || math.Abs(p.Value(sharp.Lambda)-lam) > 1e-9 || math.Abs(lam-2) > 1e-3 ||
			math.Abs(p.Value(sharp.TrC)-v) > 1e-9 || math.Abs(p.Value(sharp.TrHC)-1.5*v) > 4*float64(p.TrHC.StdErr) {
			t.Errorf("%v: init pool λ1 %v (closed form %v), tr H %v, tr C %v (s² %v), tr(HC) %v ± %v (3s²/2 = %v)", row.Key(),
				p.Value(sharp.Lambda), lam, p.Value(sharp.TrH), p.Value(sharp.TrC), v, p.Value(sharp.TrHC), p.TrHC.StdErr, 1.5*v)
		}
		if row.Status == results.StatusOK && (sr.End == nil || sr.End.Pool == nil || sr.End.Train == nil) {
			t.Errorf("%v: no final measures", row.Key())
		}
	}
}

// TestSharpnessInitPanicReleases: a panic inside the first measurement at
// initialisation (recovered by the batch's retry) must release the
// entries it claimed, so that the retry and the other workers compute them
// instead of waiting for ever; the records equal an undisturbed run's.
func TestSharpnessInitPanicReleases(t *testing.T) {
	c := mustConfig(t, strings.Replace(sharpConfig, "[[model]]\nname = \"logistic\"\ninits = [1]\n", "", 1))
	want := runAll(t, c, nil, Settings{K: 8, Workers: 2})
	var calls atomic.Int64
	sharpMeasureFault = func() {
		if calls.Add(1) == 1 {
			panic("injected")
		}
	}
	t.Cleanup(func() { sharpMeasureFault = nil })
	done := make(chan map[results.Key]results.Row, 1)
	go func() { done <- runAll(t, c, nil, Settings{K: 8, Workers: 2}) }()
	var got map[results.Key]results.Row
	select {
	case got = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the run hangs after a panic in the sharpness measurement")
	}
	if calls.Load() < 2 {
		t.Fatalf("%d measurements: the fault was not exercised", calls.Load())
	}
	for k, w := range want {
		if !bytes.Equal(got[k].Sharpness, w.Sharpness) {
			t.Errorf("%v: record after the panic\n%s\nwant\n%s", k, got[k].Sharpness, w.Sharpness)
		}
	}
}
