package sharp

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// denseOp applies K dense symmetric matrices.
type denseOp struct{ a []*mat.SymDense }

func (d denseOp) Len() int { return len(d.a) }
func (d denseOp) Dim() int { return d.a[0].SymmetricDim() }
func (d denseOp) Apply(dst, v [][]float64) error {
	for k, a := range d.a {
		mat.NewVecDense(len(dst[k]), dst[k]).MulVec(a, mat.NewVecDense(len(v[k]), v[k]))
	}
	return nil
}

// withSpectrum returns Q diag(eig) Qᵀ for a random orthogonal Q.
func withSpectrum(eig []float64, r *rand.Rand) *mat.SymDense {
	n := len(eig)
	g := mat.NewDense(n, n, nil)
	for i := range n {
		for j := range n {
			g.Set(i, j, r.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(g)
	var q mat.Dense
	qr.QTo(&q)
	out := mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			s := 0.0
			for l := range n {
				s += q.At(i, l) * eig[l] * q.At(j, l)
			}
			out.SetSym(i, j, s)
		}
	}
	return out
}

func streams(k int, seed uint64) []*rand.Rand {
	out := make([]*rand.Rand, k)
	for i := range out {
		out[i] = rand.New(rand.NewPCG(seed, uint64(i)))
	}
	return out
}

// spectrum returns n eigenvalues: top given explicitly, the rest a bulk
// uniform on [lo, hi].
func spectrum(top []float64, n int, lo, hi float64, r *rand.Rand) []float64 {
	out := slices.Clone(top)
	for len(out) < n {
		out = append(out, lo+(hi-lo)*r.Float64())
	}
	return out
}

// TestLanczosDense checks the largest eigenvalues of dense matrices with
// known spectra (n = 300) against the exact values: each converged value
// lies within its stated bound and within Tol relative of the exact one.
func TestLanczosDense(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name  string
		top   []float64
		lo    float64
		hi    float64
		count int
		tol   float64
	}{
		{"separated", []float64{50, 20}, -1, 5, 1, 1e-3},
		{"top three", []float64{50, 30, 20}, -1, 5, 3, 1e-6},
		{"indefinite bulk", []float64{8}, -6, 4, 1, 1e-4},
		{"near-degenerate top", []float64{10, 9.99}, 0, 2, 2, 1e-3},
	} {
		t.Run(c.name, func(t *testing.T) {
			eig := spectrum(c.top, 300, c.lo, c.hi, r)
			a := withSpectrum(eig, r)
			res, err := Lanczos(denseOp{[]*mat.SymDense{a}}, streams(1, 7), LanczosOptions{Count: c.count, Tol: c.tol, MaxIter: 200})
			if err != nil {
				t.Fatal(err)
			}
			e := res[0]
			if !e.Converged {
				t.Fatalf("not converged: %v", e.Err)
			}
			want := slices.Clone(eig)
			slices.Sort(want)
			slices.Reverse(want)
			for j := range c.count {
				got := e.Values[j]
				if d := math.Abs(got - want[j]); d > e.Bounds[j]+1e-12 || d > c.tol*math.Abs(want[j]) {
					t.Errorf("λ%d = %.12g, exact %.12g: error %.3g, bound %.3g, tol·|λ| %.3g", j+1, got, want[j], d, e.Bounds[j], c.tol*math.Abs(want[j]))
				}
			}
			t.Logf("%d iterations, λ1 %.10g (exact %.10g)", e.Iterations, e.Values[0], want[0])
		})
	}
}

// TestLanczosNotConverged checks that a clustered spectrum (the top 100
// eigenvalues within 1e-3 of each other, tolerance 1e-7) with too few
// iterations is reported as not converged, with NaN values and an error
// matching ErrNotConverged, and that enough iterations (n) give the exact
// top eigenvalue.
func TestLanczosNotConverged(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var eig []float64
	for i := range 100 {
		eig = append(eig, 1+1e-3*float64(i)/99)
	}
	eig = spectrum(eig, 150, 0, 0.5, r)
	a := withSpectrum(eig, r)
	op := denseOp{[]*mat.SymDense{a}}
	res, err := Lanczos(op, streams(1, 1), LanczosOptions{Tol: 1e-7, MaxIter: 20})
	if err != nil {
		t.Fatal(err)
	}
	e := res[0]
	if e.Converged || !math.IsNaN(e.Values[0]) || !errors.Is(e.Err, ErrNotConverged) {
		t.Fatalf("20 iterations on a cluster: converged %v, value %v, err %v; want not converged, NaN, ErrNotConverged", e.Converged, e.Values[0], e.Err)
	}
	if e.Bounds[0] <= 1e-7*e.Ritz[0] {
		t.Errorf("bound %.3g should exceed the tolerance", e.Bounds[0])
	}
	t.Logf("reported: %v", e.Err)
	res, err = Lanczos(op, streams(1, 1), LanczosOptions{Tol: 1e-7, MaxIter: 150})
	if err != nil {
		t.Fatal(err)
	}
	if e := res[0]; !e.Converged || math.Abs(e.Values[0]-1.001) > 1e-10 {
		t.Errorf("full Krylov space: converged %v, λ1 %.15g, want 1.001", e.Converged, e.Values[0])
	}
}

// TestLanczosIndependentOfK checks that a trial's result is the same,
// bitwise, alone or batched with other trials that converge at other
// times.
func TestLanczosIndependentOfK(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var as []*mat.SymDense
	for _, top := range []float64{30, 10, 5.5} {
		as = append(as, withSpectrum(spectrum([]float64{top}, 80, -1, 5, r), r))
	}
	all, err := Lanczos(denseOp{as}, streams(3, 9), LanczosOptions{Tol: 1e-8})
	if err != nil {
		t.Fatal(err)
	}
	for k := range as {
		s := streams(3, 9)
		one, err := Lanczos(denseOp{as[k : k+1]}, s[k:k+1], LanczosOptions{Tol: 1e-8})
		if err != nil {
			t.Fatal(err)
		}
		if one[0].Values[0] != all[k].Values[0] || one[0].Iterations != all[k].Iterations {
			t.Errorf("trial %d: alone %v in %d iterations, batched %v in %d", k, one[0].Values[0], one[0].Iterations, all[k].Values[0], all[k].Iterations)
		}
	}
}

// TestTraceDense checks Hutchinson's trace against the exact trace of
// matrices with a few large eigenvalues and a bulk (n = 400): deflated by
// 30 Lanczos vectors it meets the 5% target with few probes and lies within
// 4 standard errors of the exact trace; undeflated it needs more probes
// for the same target; a 5×5 matrix, whose Lanczos basis spans R^5, gets
// its trace exactly.
func TestTraceDense(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	eig := spectrum([]float64{100, 60, 40, 30}, 400, -0.2, 1, r)
	exact := 0.0
	for _, x := range eig {
		exact += x
	}
	op := denseOp{[]*mat.SymDense{withSpectrum(eig, r)}}
	lz, err := Lanczos(op, streams(1, 1), LanczosOptions{Count: 1, Tol: 1e-12, MaxIter: 30})
	if err != nil {
		t.Fatal(err)
	}
	opts := TraceOptions{RelSE: 0.05, MinProbes: 10, MaxProbes: 2000}
	defl, err := Trace(op, streams(1, 2), lz, opts)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Trace(op, streams(1, 2), nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	for name, e := range map[string]Estimate{"deflated": defl[0], "plain": plain[0]} {
		if !e.Converged || e.StdErr > 0.05*math.Abs(e.Value) || math.Abs(e.Value-exact) > 4*e.StdErr {
			t.Errorf("%s: %.6g ± %.3g after %d probes, exact %.6g", name, e.Value, e.StdErr, e.Probes, exact)
		}
		t.Logf("%s: %.6g ± %.3g (%d probes), exact %.6g", name, e.Value, e.StdErr, e.Probes, exact)
	}
	if defl[0].Probes >= plain[0].Probes {
		t.Errorf("deflation used %d probes, plain %d", defl[0].Probes, plain[0].Probes)
	}

	small := []float64{3, -1, 2, 0.5, 7}
	op = denseOp{[]*mat.SymDense{withSpectrum(small, r)}}
	lz, err = Lanczos(op, streams(1, 3), LanczosOptions{Count: 5, Tol: 1e-9})
	if err != nil {
		t.Fatal(err)
	}
	if !lz[0].Converged || math.Abs(lz[0].Values[4]+1) > 1e-12 {
		t.Errorf("5×5: Lanczos values %v, want 7 3 2 0.5 −1", lz[0].Values)
	}
	tr, err := Trace(op, streams(1, 4), lz, opts)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(tr[0].Value-11.5) > 1e-12 || tr[0].StdErr != 0 || tr[0].Probes != 0 {
		t.Errorf("5×5 trace %v ± %v (%d probes), want 11.5 exactly", tr[0].Value, tr[0].StdErr, tr[0].Probes)
	}
}
