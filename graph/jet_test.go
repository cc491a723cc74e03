package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/nets"
)

// jetModels are the models of the jet tests: the logistic model on 1×4×4
// images (4 classes), and the convnet on 1×16×16 and on 3×19×17 images
// (3 classes; see batchModels).
var jetModels = []string{"logistic/1x4x4", "convnet", "convnet/3x19x17"}

// jetData is trialData with 4 classes for the small logistic model.
func jetData(t testing.TB, model string, pool int, seed uint64) (*nets.Arch, *Data) {
	t.Helper()
	a, d := trialData(t, model, pool, seed)
	if a.Name == "logistic" {
		b, err := nets.New("logistic", a.Channels, a.Height, a.Width, 4)
		if err != nil {
			t.Fatal(err)
		}
		a, d = b, randomData(b, pool, rand.New(rand.NewPCG(seed, 78)))
	}
	return a, d
}

// refLogits are the logits of pool row x of the model at the flat
// parameters theta, by a loop-by-loop float64 reference: refConvnet for
// the paper's convnet, z = s·Wᵀx + b for the logistic model, refLayers
// for the other sized models (mlp, other convnets).
func refLogits(a *nets.Arch, theta, x []float64) []float64 {
	vals := splitParams(a, theta)
	switch {
	case a.Name == "convnet" && len(a.Params) == 8 && a.Params[0].Shape[1] == 10 && a.Params[4].Shape[1] == 10:
		return refConvnet(a, vals, x)
	case a.Name != "logistic":
		return refLayers(a, vals, x)
	}
	z := make([]float64, a.Classes)
	for c := range z {
		for i, xi := range x {
			z[c] += xi * vals[0][i*a.Classes+c]
		}
		z[c] = a.Params[0].Scale*z[c] + vals[1][c]
	}
	return z
}

// refSampleLoss is the cross-entropy of pool row r of d at theta.
func refSampleLoss(a *nets.Arch, theta []float64, d *Data, r int) float64 {
	z := refLogits(a, theta, d.X64[r*d.Dim:(r+1)*d.Dim])
	return logSumExp(z) - z[d.Y[r]]
}

// stencil returns weights a_i (i = −m..m) with Σ_i a_i p(i) = the
// coefficient of t^k of every polynomial p of degree ≤ 2m: for a smooth f,
// Σ_i a_i f(i·h)/h^k is its k-th Taylor coefficient with an error
// O(h^{2m+1−k}) (O(h^{2m+2−k}) by symmetry).
func stencil(m, k int) []float64 {
	n := 2*m + 1
	// Solve Vᵀa = e_k with V[i][p] = i^p (Gaussian elimination with
	// partial pivoting on the augmented matrix).
	A := make([][]float64, n)
	for p := 0; p < n; p++ {
		A[p] = make([]float64, n+1)
		for i := 0; i < n; i++ {
			A[p][i] = math.Pow(float64(i-m), float64(p))
		}
		if p == k {
			A[p][n] = 1
		}
	}
	for col := 0; col < n; col++ {
		piv := col
		for r := col + 1; r < n; r++ {
			if math.Abs(A[r][col]) > math.Abs(A[piv][col]) {
				piv = r
			}
		}
		A[col], A[piv] = A[piv], A[col]
		for r := 0; r < n; r++ {
			if r != col {
				f := A[r][col] / A[col][col]
				for c := col; c <= n; c++ {
					A[r][c] -= f * A[col][c]
				}
			}
		}
	}
	a := make([]float64, n)
	for i := range a {
		a[i] = A[i][n] / A[i][i]
	}
	return a
}

// fdCoeffs returns the Taylor coefficients c_1..c_3 of f at 0 by the
// (2m+1)-point stencils with step h (c[0] = f(0)).
func fdCoeffs(f func(t float64) float64, m int, h float64) [4]float64 {
	vals := make([]float64, 2*m+1)
	for i := range vals {
		vals[i] = f(float64(i-m) * h)
	}
	var c [4]float64
	c[0] = vals[m]
	for k := 1; k <= 3; k++ {
		s := 0.0
		for i, a := range stencil(m, k) {
			s += a * vals[i]
		}
		c[k] = s / math.Pow(h, float64(k))
	}
	return c
}

func TestStencil(t *testing.T) {
	// The 5-point stencils are the textbook ones.
	cases := []struct {
		k    int
		want []float64
	}{
		{1, []float64{1.0 / 12, -8.0 / 12, 0, 8.0 / 12, -1.0 / 12}},
		{2, []float64{-1.0 / 24, 16.0 / 24, -30.0 / 24, 16.0 / 24, -1.0 / 24}},
		{3, []float64{-1.0 / 12, 2.0 / 12, 0, -2.0 / 12, 1.0 / 12}},
	}
	for _, tc := range cases {
		got := stencil(2, tc.k)
		if maxDiff(got, tc.want) > 1e-14 {
			t.Errorf("stencil(2, %d) = %v, want %v", tc.k, got, tc.want)
		}
	}
}

// shifted returns theta + t·v.
func shifted(theta, v []float64, t float64) []float64 {
	out := make([]float64, len(theta))
	for i := range out {
		out[i] = theta[i] + t*v[i]
	}
	return out
}

func unitVec(n int, r *rand.Rand) []float64 {
	v := randomVec(n, r)
	nv := norm(v)
	for i := range v {
		v[i] /= nv
	}
	return v
}

func newJets(t testing.TB, a *nets.Arch, dt tensor.Dtype, d *Data, k, b int) *Jets {
	t.Helper()
	j, err := NewJets(a, dt, d, k, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func coeffs(t testing.TB, j *Jets, theta []float64, dirs [][]float64, rows [][]int) [][4]float64 {
	t.Helper()
	out := make([][4]float64, j.K*j.B)
	if err := j.Coeffs(theta, dirs, rows, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func covector(t testing.TB, j *Jets, order int, theta []float64, dirs [][]float64, rows [][]int, w []float64) [][]float64 {
	t.Helper()
	out := matrix(j.K, j.Arch.NumParams())
	if err := j.Covector(order, theta, dirs, rows, w, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// jetSetup draws theta, K unit directions and K lists of B rows.
func jetSetup(t testing.TB, a *nets.Arch, d *Data, k, b int, r *rand.Rand) ([]float64, [][]float64, [][]int) {
	theta := randomTheta(t, a, 1, r)
	dirs := make([][]float64, k)
	rows := make([][]int, k)
	for i := range dirs {
		dirs[i] = unitVec(len(theta), r)
		rows[i] = sampleRows(randomSamples(b, d.Len(), r))
	}
	return theta, dirs, rows
}

// TestJetsFiniteDifferences checks Coeffs (float64) against central
// finite differences of the loss along each direction, computed with the
// independent float64 reference forward pass (refConvnet, refLogits), for
// random θ, unit directions and samples: the 11-point stencils (m = 5)
// with h = 0.4, exact for polynomials of degree 11 along the line. Their
// truncation error, O(h^10) for c_1 and c_3 and O(h^12) for c_2, and the
// rounding error of the loss (about 1e-14 relative, amplified by the
// stencil's weights over h^k) are both near 1e-8 relative for c_3 (the
// steps 0.2 and 0.3 are rounding-limited, 0.5 truncation-limited; the
// stencil at h = 0.3 is logged for comparison). The models include the
// convnet on CIFAR-shaped 3×32×32 images. The tolerances, relative
// to the largest |c_k| of the order over the test's samples, are 1e-7
// for c_3, 1e-8 for c_2, 1e-10 for c_1 and 1e-13 for c_0 (no differences).
func TestJetsFiniteDifferences(t *testing.T) {
	for _, model := range append(jetModels, "convnet/3x32x32") {
		t.Run(model, func(t *testing.T) {
			a, d := jetData(t, model, 20, 21)
			r := rand.New(rand.NewPCG(22, 23))
			const K, B, m, h = 3, 4, 5, 0.4
			theta, dirs, rows := jetSetup(t, a, d, K, B, r)
			j := newJets(t, a, tensor.Float64, d, K, B)
			got := coeffs(t, j, theta, dirs, rows)
			var worst, trunc, scale [4]float64
			want := make([][4]float64, K*B)
			for k := range dirs {
				for n, row := range rows[k] {
					f := func(s float64) float64 { return refSampleLoss(a, shifted(theta, dirs[k], s), d, row) }
					fd, fd2 := fdCoeffs(f, m, h), fdCoeffs(f, m, 0.75*h)
					want[k*B+n] = fd
					for o := range 4 {
						scale[o] = math.Max(scale[o], math.Abs(fd[o]))
						trunc[o] = math.Max(trunc[o], math.Abs(fd[o]-fd2[o]))
					}
				}
			}
			for i := range got {
				for o := range 4 {
					worst[o] = math.Max(worst[o], math.Abs(got[i][o]-want[i][o]))
				}
			}
			tol := [4]float64{1e-13, 1e-10, 1e-8, 1e-7}
			for o := range 4 {
				rel := worst[o] / scale[o]
				t.Logf("c_%d: max |jet − fd| / max |c| = %.2g (fd(h) − fd(0.75h): %.2g; max |c| = %.3g)", o, rel, trunc[o]/scale[o], scale[o])
				if rel > tol[o] || scale[o] == 0 {
					t.Errorf("c_%d differs from finite differences by %.3g relative (tolerance %g)", o, rel, tol[o])
				}
			}
		})
	}
}

// logisticJet is an independent float64 implementation of the logistic
// model's jets. With z = s·Wᵀx + b (affine in θ, with Jacobian
// ∂z_c/∂W_ic' = s·x_i·δ_cc', ∂z_c/∂b_c' = δ_cc'), the logits along θ + t v
// are exactly z_0 + t z_1 with z_1 = s·V_Wᵀx + V_b, so
// l(t) = logsumexp(z_0 + t z_1) − z_y(t), whose t-derivatives are the
// cumulants of z_1 under p = softmax(z_0) (the derivatives of a cumulant
// generating function):
//
//	c_0 = logsumexp(z_0) − z_0y,  c_1 = μ − z_1y,  c_2 = σ²/2,  c_3 = κ₃/6,
//
// μ = E_p z_1, σ² = E_p (z_1 − μ)², κ₃ = E_p (z_1 − μ)³, i.e. the third
// derivative tensor of logsumexp, T_abc = p_a δ_abc − p_a p_b δ_ac −
// p_a p_c δ_ab − p_a p_b δ_bc + 2 p_a p_b p_c, contracted with z_1 three
// times. The covectors are ∇_θ c_m = Jacᵀ γ_m with γ_m = ∂c_m/∂z_0 (z_1
// does not depend on θ); with ∂_d E_p f = p_d (f_d − E_p f) for fixed f,
// ∂μ/∂z_0d = p_d (z_1d − μ) and ∂σ²/∂μ = 0, ∂κ₃/∂μ = −3σ²:
//
//	γ_0 = p − e_y
//	γ_1 = p ⊙ (z_1 − μ)
//	γ_2 = p ⊙ ((z_1 − μ)² − σ²)/2
//	γ_3 = (p ⊙ ((z_1 − μ)³ − κ₃) − 3σ² p ⊙ (z_1 − μ))/6
//
// and (Jacᵀγ)_{W_ic} = s·x_i·γ_c, (Jacᵀγ)_{b_c} = γ_c. The test also
// evaluates c_3 through T explicitly.
func logisticJet(a *nets.Arch, theta, v, x []float64, y int) (c [4]float64, cov [4][]float64) {
	C, s := a.Classes, a.Params[0].Scale
	z0 := refLogits(a, theta, x)
	z1 := refLogits(a, v, x) // s·V_Wᵀx + V_b
	lse := logSumExp(z0)
	p := make([]float64, C)
	for k := range p {
		p[k] = math.Exp(z0[k] - lse)
	}
	mu := dot(p, z1)
	var s2, k3 float64
	for k := range p {
		d := z1[k] - mu
		s2 += p[k] * d * d
		k3 += p[k] * d * d * d
	}
	// κ₃ again through the tensor T.
	T := 0.0
	delta := func(i, j int) float64 {
		if i == j {
			return 1
		}
		return 0
	}
	for i := range C {
		for j := range C {
			for k := range C {
				t := p[i]*delta(i, j)*delta(i, k) - p[i]*p[j]*delta(i, k) - p[i]*p[k]*delta(i, j) - p[i]*p[j]*delta(j, k) + 2*p[i]*p[j]*p[k]
				T += t * z1[i] * z1[j] * z1[k]
			}
		}
	}
	if math.Abs(T-k3) > 1e-12*(math.Abs(k3)+s2) {
		panic(fmt.Sprintf("logisticJet: T(z1, z1, z1) = %g, κ₃ = %g", T, k3))
	}
	c = [4]float64{lse - z0[y], mu - z1[y], s2 / 2, k3 / 6}
	var gam [4][]float64
	for m := range gam {
		gam[m] = make([]float64, C)
	}
	for k := range p {
		d := z1[k] - mu
		gam[0][k] = p[k] - delta(k, y)
		gam[1][k] = p[k] * d
		gam[2][k] = p[k] * (d*d - s2) / 2
		gam[3][k] = (p[k]*(d*d*d-k3) - 3*s2*p[k]*d) / 6
	}
	for m := range cov {
		cov[m] = make([]float64, len(theta))
		for i, xi := range x {
			for k := range C {
				cov[m][i*C+k] = s * xi * gam[m][k]
			}
		}
		for k := range C {
			cov[m][len(x)*C+k] = gam[m][k]
		}
	}
	return c, cov
}

// TestJetsLogisticClosedForm checks the logistic model's coefficients
// and covectors of every order (each direction with its own weighted
// samples) against logisticJet, to 1e-12 relative to the largest entry of
// each order.
func TestJetsLogisticClosedForm(t *testing.T) {
	for _, shape := range []string{"1x4x4", "3x5x4"} {
		t.Run(shape, func(t *testing.T) {
			a, d := jetData(t, "logistic/"+shape, 30, 31)
			r := rand.New(rand.NewPCG(32, 33))
			const K, B = 4, 3
			theta, dirs, rows := jetSetup(t, a, d, K, B, r)
			w := randomVec(K*B, r)
			j := newJets(t, a, tensor.Float64, d, K, B)
			got := coeffs(t, j, theta, dirs, rows)
			var cwant [][4]float64
			covWant := make([][][]float64, 4)
			for m := range covWant {
				covWant[m] = matrix(K, len(theta))
			}
			for k := range dirs {
				for n, row := range rows[k] {
					c, cov := logisticJet(a, theta, dirs[k], d.X64[row*d.Dim:(row+1)*d.Dim], int(d.Y[row]))
					cwant = append(cwant, c)
					for m := range cov {
						for i, v := range cov[m] {
							covWant[m][k][i] += w[k*B+n] * v
						}
					}
				}
			}
			for o := range 4 {
				var diff, scale float64
				for i := range got {
					diff = math.Max(diff, math.Abs(got[i][o]-cwant[i][o]))
					scale = math.Max(scale, math.Abs(cwant[i][o]))
				}
				t.Logf("c_%d: max |jet − closed form| / max |c| = %.2g", o, diff/scale)
				if diff > 1e-12*scale || scale == 0 {
					t.Errorf("c_%d differs from the closed form by %.3g (scale %.3g)", o, diff, scale)
				}
			}
			for m := range 4 {
				cov := covector(t, j, m, theta, dirs, rows, w)
				for k := range cov {
					diff, scale := maxDiff(cov[k], covWant[m][k]), maxAbs(covWant[m][k])
					if diff > 1e-12*scale || scale == 0 {
						t.Errorf("covector %d, direction %d: differs from the closed form by %.3g (scale %.3g)", m, k, diff, scale)
					}
					if k == 0 {
						t.Logf("covector %d: max |Δ| / max |closed form| = %.2g", m, diff/scale)
					}
				}
			}
		})
	}
}

func compileBatch(t testing.TB, a *nets.Arch, dt tensor.Dtype, k, b int, kind BatchKind) *BatchNet {
	t.Helper()
	n, err := CompileBatch(a, dt, k, b, kind)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// repeat returns k copies of x (shared).
func repeat[T any](x T, k int) []T {
	out := make([]T, k)
	for i := range out {
		out[i] = x
	}
	return out
}

// stencil5 is the 5-point central first derivative of f at 0 with step h,
// (f(−2h) − 8f(−h) + 8f(h) − f(2h))/(12h), error h⁴ f⁽⁵⁾/30, for
// vector-valued f evaluated at the four points at once.
func stencil5(f func(ts []float64) [][]float64, h float64) [][]float64 {
	ts := []float64{-2 * h, -h, h, 2 * h}
	a := []float64{1, -8, 8, -1}
	vals := f(ts)
	out := make([][]float64, len(vals)/4)
	for k := range out {
		out[k] = make([]float64, len(vals[0]))
		for i := range ts {
			for j, v := range vals[4*k+i] {
				out[k][j] += a[i] * v / (12 * h)
			}
		}
	}
	return out
}

// TestJetsCovectors checks the covectors of the convnets (float64, unit
// weights) against lower-order quantities, direction by direction, each
// with its own B samples:
//
//	order 0: Σ_n g_n = B·(BatchNet mean gradient), to 1e-12;
//	order 1: Σ_n H_n v = BatchNet.HVP, to 1e-12;
//	order 2: J(v, v, ·)/2, against the 5-point central difference of
//	         BatchNet.HVP along v (h = 1e-3: truncation h⁴ ≈ 1e-12,
//	         rounding ≈ 1e-16/h ≈ 1e-13 relative), to 1e-9;
//	order 3: ∇⁴l(v, v, v, ·)/6, against the 5-point difference of the
//	         order-2 covector along v (its derivative is 3 times it), to 1e-9;
//
// and the identity v·∇c_m = (m+1)·Σ_n c_{m+1} with Coeffs, to 1e-12
// relative to |v|·|∇c_m|. All relative to the largest entry.
func TestJetsCovectors(t *testing.T) {
	for _, model := range jetModels {
		t.Run(model, func(t *testing.T) {
			a, d := jetData(t, model, 20, 41)
			r := rand.New(rand.NewPCG(42, 43))
			const K, B, h = 3, 4, 1e-3
			theta, dirs, rows := jetSetup(t, a, d, K, B, r)
			j := newJets(t, a, tensor.Float64, d, K, B)
			var cov [4][][]float64
			for m := range cov {
				cov[m] = covector(t, j, m, theta, dirs, rows, nil)
			}
			check := func(what string, got, want [][]float64, tol float64) {
				t.Helper()
				worst := 0.0
				for k := range got {
					diff, scale := maxDiff(got[k], want[k]), maxAbs(want[k])
					if diff > tol*scale || scale == 0 {
						t.Errorf("%s, direction %d: differs by %.3g (scale %.3g)", what, k, diff, scale)
					}
					worst = math.Max(worst, diff/scale)
				}
				t.Logf("%s: max |Δ| / max |want| = %.2g", what, worst)
			}
			thetas := repeat(theta, K)

			bg := compileBatch(t, a, tensor.Float64, K, B, BatchGrad)
			loss, g := make([]float64, K), matrix(K, len(theta))
			if err := bg.Grad(thetas, d, rows, loss, g); err != nil {
				t.Fatal(err)
			}
			for k := range g {
				for i := range g[k] {
					g[k][i] *= B
				}
			}
			check("order 0 vs B·mean gradient", cov[0], g, 1e-12)

			bh := compileBatch(t, a, tensor.Float64, K, B, BatchHVP)
			hv := matrix(K, len(theta))
			if err := bh.HVP(thetas, d, rows, dirs, hv); err != nil {
				t.Fatal(err)
			}
			check("order 1 vs HVP", cov[1], hv, 1e-12)

			bh4 := compileBatch(t, a, tensor.Float64, 4*K, B, BatchHVP)
			jvv := stencil5(func(ts []float64) [][]float64 {
				var th, vs [][]float64
				var rs [][]int
				for k := range dirs {
					for _, s := range ts {
						th = append(th, shifted(theta, dirs[k], s))
						vs = append(vs, dirs[k])
						rs = append(rs, rows[k])
					}
				}
				out := matrix(len(th), len(theta))
				if err := bh4.HVP(th, d, rs, vs, out); err != nil {
					t.Fatal(err)
				}
				return out
			}, h)
			for k := range jvv {
				for i := range jvv[k] {
					jvv[k][i] /= 2
				}
			}
			check("order 2 vs d/dt HVP / 2", cov[2], jvv, 1e-9)

			j4 := newJets(t, a, tensor.Float64, d, K, B)
			d4 := stencil5(func(ts []float64) [][]float64 {
				var out [][]float64
				for k := range K {
					for _, s := range ts {
						c := covector(t, j4, 2, shifted(theta, dirs[k], s), dirs, rows, nil)
						out = append(out, c[k])
					}
				}
				return out
			}, h)
			for k := range d4 {
				for i := range d4[k] {
					d4[k][i] /= 3
				}
			}
			check("order 3 vs d/dt order 2 / 3", cov[3], d4, 1e-9)

			c := coeffs(t, j, theta, dirs, rows)
			for m := 0; m < 3; m++ {
				worst := 0.0
				for k, v := range dirs {
					want := 0.0
					for n := range B {
						want += float64(m+1) * c[k*B+n][m+1]
					}
					got := dot(v, cov[m][k])
					rel := math.Abs(got-want) / (norm(v) * norm(cov[m][k]))
					if rel > 1e-12 {
						t.Errorf("direction %d: v·∇c_%d = %.17g, %d·Σc_%d = %.17g", k, m, got, m+1, m+1, want)
					}
					worst = math.Max(worst, rel)
				}
				t.Logf("v·∇c_%d = %d·c_%d: max |Δ| / (|v||∇c|) = %.2g", m, m+1, m+1, worst)
			}
		})
	}
}

// TestJetsPerSample checks CovectorPerSample (B = 1, one direction per
// sample) against per-sample references: gradients and Hessian-vector
// products of BatchNets of K = samples trials of 1 sample, and orders 2
// and 3 against separate K = 1 Jets, sample by sample; and Covector's
// weights against the weighted sum of per-sample covectors. All to 1e-12
// relative to the largest entry.
func TestJetsPerSample(t *testing.T) {
	for _, model := range jetModels {
		t.Run(model, func(t *testing.T) {
			a, d := jetData(t, model, 20, 51)
			r := rand.New(rand.NewPCG(52, 53))
			const N = 6
			theta, dirs, rr := jetSetup(t, a, d, N, 1, r)
			rows := make([]int, N)
			for n := range rows {
				rows[n] = rr[n][0]
			}
			j := newJets(t, a, tensor.Float64, d, N, 1)
			per := func(order int, dirs [][]float64) [][]float64 {
				out := matrix(N, len(theta))
				if err := j.CovectorPerSample(order, theta, dirs, rows, out); err != nil {
					t.Fatal(err)
				}
				return out
			}
			check := func(what string, got, want [][]float64) {
				t.Helper()
				worst := 0.0
				for n := range got {
					diff, scale := maxDiff(got[n], want[n]), maxAbs(want[n])
					if diff > 1e-12*scale || scale == 0 {
						t.Errorf("%s, sample %d: differs by %.3g (scale %.3g)", what, n, diff, scale)
					}
					worst = math.Max(worst, diff/scale)
				}
				t.Logf("%s: max |Δ| / max |want| = %.2g", what, worst)
			}
			thetas := repeat(theta, N)
			bg := compileBatch(t, a, tensor.Float64, N, 1, BatchGrad)
			loss, g := make([]float64, N), matrix(N, len(theta))
			if err := bg.Grad(thetas, d, rr, loss, g); err != nil {
				t.Fatal(err)
			}
			check("per-sample gradients", per(0, nil), g)
			bh := compileBatch(t, a, tensor.Float64, N, 1, BatchHVP)
			hv := matrix(N, len(theta))
			if err := bh.HVP(thetas, d, rr, dirs, hv); err != nil {
				t.Fatal(err)
			}
			check("per-sample H_n v_n", per(1, dirs), hv)
			one := newJets(t, a, tensor.Float64, d, 1, 1)
			for _, order := range []int{2, 3} {
				want := make([][]float64, N)
				for n := range want {
					want[n] = covector(t, one, order, theta, dirs[n:n+1], rr[n:n+1], nil)[0]
				}
				check(fmt.Sprintf("per-sample order %d", order), per(order, dirs), want)
			}

			// Weighted: one direction for B = N samples, against Σ_n w_n of
			// the per-sample covectors along that direction.
			jb := newJets(t, a, tensor.Float64, d, 1, N)
			w := randomVec(N, r)
			for _, order := range []int{0, 2} {
				got := covector(t, jb, order, theta, dirs[:1], [][]int{rows}, w)
				ps := per(order, repeat(dirs[0], N))
				want := make([]float64, len(theta))
				for n := range ps {
					for i, v := range ps[n] {
						want[i] += w[n] * v
					}
				}
				check(fmt.Sprintf("weighted order %d", order), got, [][]float64{want})
			}
		})
	}
}

// randomSymmetric3 returns a random symmetric 3-tensor on R^n.
func randomSymmetric3(n int, r *rand.Rand) [][][]float64 {
	T := make([][][]float64, n)
	for i := range T {
		T[i] = matrix(n, n)
	}
	for i := range n {
		for j := i; j < n; j++ {
			for k := j; k < n; k++ {
				v := r.NormFloat64()
				for _, p := range [][3]int{{i, j, k}, {i, k, j}, {j, i, k}, {j, k, i}, {k, i, j}, {k, j, i}} {
					T[p[0]][p[1]][p[2]] = v
				}
			}
		}
	}
	return T
}

func contract3(T [][][]float64, a, b, c []float64) float64 {
	s := 0.0
	for i := range a {
		for j := range b {
			for k := range c {
				s += T[i][j][k] * a[i] * b[j] * c[k]
			}
		}
	}
	return s
}

// TestPolarisationExact checks the polarisation identities on a cubic
// and a quadratic form with known tensors (c_3(v) = J(v,v,v)/6, c_2(v) =
// vᵀHv/2 for random symmetric J, H): they are exact, so to 1e-13.
func TestPolarisationExact(t *testing.T) {
	r := rand.New(rand.NewPCG(61, 62))
	const n = 5
	J := randomSymmetric3(n, r)
	Hm := matrix(n, n)
	for i := range n {
		for k := i; k < n; k++ {
			Hm[i][k] = r.NormFloat64()
			Hm[k][i] = Hm[i][k]
		}
	}
	c3 := func(v []float64) float64 { return contract3(J, v, v, v) / 6 }
	c2 := func(v []float64) float64 {
		s := 0.0
		for i := range v {
			s += v[i] * dot(Hm[i], v)
		}
		return s / 2
	}
	for trial := range 5 {
		a, b, c := randomVec(n, r), randomVec(n, r), randomVec(n, r)
		want := contract3(J, a, b, c)
		var d4 [4]float64
		for i, v := range TrilinearDirs(a, b, c) {
			d4[i] = c3(v)
		}
		var d7 [7]float64
		for i, v := range TrilinearDirs7(a, b, c) {
			d7[i] = c3(v)
		}
		var d3 [3]float64
		for i, v := range SymTrilinearDirs(a, c) {
			d3[i] = c3(v)
		}
		var d2 [2]float64
		for i, v := range BilinearDirs(a, b) {
			d2[i] = c2(v)
		}
		Hb := make([]float64, n)
		for i := range Hb {
			Hb[i] = dot(Hm[i], b)
		}
		scale := norm(a) * norm(b) * norm(c) * 10
		for _, tc := range []struct {
			name      string
			got, want float64
		}{
			{"Trilinear", Trilinear(d4), want},
			{"Trilinear7", Trilinear7(d7), want},
			{"SymTrilinear", SymTrilinear(d3), contract3(J, a, a, c)},
			{"Bilinear", Bilinear(d2), dot(a, Hb)},
		} {
			if math.Abs(tc.got-tc.want) > 1e-13*scale {
				t.Errorf("trial %d: %s = %.17g, want %.17g", trial, tc.name, tc.got, tc.want)
			}
		}
	}
}

// TestJetsPolarisation checks the polarisation helpers on the models'
// jets: 16 directions in one Coeffs call (2 for uᵀHw, 4 and 7 for
// J(a, b, c), 3 for J(a, a, c)), each summed over the same B samples,
// against uᵀ(Σ H_n w) from BatchNet.HVP, J(a, b, c) = (∇c_2(a+b) −
// ∇c_2(a−b))·c/2 and J(a, a, c) = 2∇c_2(a)·c from covectors, to 1e-12
// relative to the sum of the magnitudes of the coefficients combined
// (the scale of the cancellation).
func TestJetsPolarisation(t *testing.T) {
	for _, model := range jetModels {
		t.Run(model, func(t *testing.T) {
			a, d := jetData(t, model, 20, 71)
			r := rand.New(rand.NewPCG(72, 73))
			const B = 5
			theta := randomTheta(t, a, 1, r)
			np := len(theta)
			u, v, w := unitVec(np, r), unitVec(np, r), unitVec(np, r)
			rows := sampleRows(randomSamples(B, d.Len(), r))
			var dirs [][]float64
			dirs = append(dirs, BilinearDirs(u, v)...)
			dirs = append(dirs, TrilinearDirs(u, v, w)...)
			dirs = append(dirs, TrilinearDirs7(u, v, w)...)
			dirs = append(dirs, SymTrilinearDirs(u, w)...)
			K := len(dirs)
			j := newJets(t, a, tensor.Float64, d, K, B)
			c := coeffs(t, j, theta, dirs, repeat(rows, K))
			sum := func(k, o int) float64 {
				s := 0.0
				for n := range B {
					s += c[k*B+n][o]
				}
				return s
			}
			var d2 [2]float64
			var d4 [4]float64
			var d7 [7]float64
			var d3 [3]float64
			for i := range d2 {
				d2[i] = sum(i, 2)
			}
			for i := range d4 {
				d4[i] = sum(2+i, 3)
			}
			for i := range d7 {
				d7[i] = sum(6+i, 3)
			}
			for i := range d3 {
				d3[i] = sum(13+i, 3)
			}

			bh := compileBatch(t, a, tensor.Float64, 1, B, BatchHVP)
			hv := matrix(1, np)
			if err := bh.HVP([][]float64{theta}, d, [][]int{rows}, [][]float64{v}, hv); err != nil {
				t.Fatal(err)
			}
			j3 := newJets(t, a, tensor.Float64, d, 3, B)
			cov := covector(t, j3, 2, theta, [][]float64{combine(1, u, 1, v), combine(1, u, -1, v), u}, repeat(rows, 3), nil)
			juvw := (dot(cov[0], w) - dot(cov[1], w)) / 2
			juuw := 2 * dot(cov[2], w)
			l1 := func(x []float64) float64 {
				s := 0.0
				for _, v := range x {
					s += math.Abs(v)
				}
				return s
			}
			for _, tc := range []struct {
				name      string
				got, want float64
				terms     float64 // Σ|coefficients| combined
			}{
				{"uᵀHv", Bilinear(d2), dot(u, hv[0]), l1(d2[:])},
				{"J(u,v,w) 4 directions", Trilinear(d4), juvw, l1(d4[:])},
				{"J(u,v,w) 7 directions", Trilinear7(d7), juvw, l1(d7[:])},
				{"J(u,u,w)", SymTrilinear(d3), juuw, l1(d3[:])},
			} {
				diff, tol := math.Abs(tc.got-tc.want), 1e-12*tc.terms
				t.Logf("%s = %.10g: |Δ| = %.2g (tolerance %.2g)", tc.name, tc.got, diff, tol)
				if diff > tol {
					t.Errorf("%s = %.17g, want %.17g", tc.name, tc.got, tc.want)
				}
			}
		})
	}
}

// TestJetsFloat32 compares float32 jets with float64 jets on the same
// float32-representable θ, directions and data: coefficients and
// covectors of every order, relative to the largest entry of each order
// (the float32 errors, logged, are at most about 2.5e-6: the tolerances
// are 1e-5 for c_0, c_1 and the covectors of orders 0 and 1, 2e-5 for
// c_2, c_3 and the higher-order covectors, whose terms cancel more). The
// models include the convnet on CIFAR-shaped 3×32×32 images.
func TestJetsFloat32(t *testing.T) {
	for _, model := range append(jetModels, "convnet/3x32x32") {
		t.Run(model, func(t *testing.T) {
			a, d := jetData(t, model, 20, 81)
			r := rand.New(rand.NewPCG(82, 83))
			const K, B = 3, 4
			theta, dirs, rows := jetSetup(t, a, d, K, B, r)
			round := func(x []float64) {
				for i, v := range x {
					x[i] = float64(float32(v))
				}
			}
			round(theta)
			for _, v := range dirs {
				round(v)
			}
			round(d.X64)
			j64 := newJets(t, a, tensor.Float64, d, K, B)
			j32 := newJets(t, a, tensor.Float32, to32(d), K, B)
			c64, c32 := coeffs(t, j64, theta, dirs, rows), coeffs(t, j32, theta, dirs, rows)
			tol := [4]float64{1e-5, 1e-5, 2e-5, 2e-5}
			for o := range 4 {
				var diff, scale float64
				for i := range c64 {
					diff = math.Max(diff, math.Abs(c64[i][o]-c32[i][o]))
					scale = math.Max(scale, math.Abs(c64[i][o]))
				}
				t.Logf("c_%d: max |float32 − float64| / max |c| = %.2g", o, diff/scale)
				if diff > tol[o]*scale {
					t.Errorf("c_%d: float32 differs by %.3g relative", o, diff/scale)
				}
			}
			for m := range 4 {
				g64, g32 := covector(t, j64, m, theta, dirs, rows, nil), covector(t, j32, m, theta, dirs, rows, nil)
				worst := 0.0
				for k := range g64 {
					worst = math.Max(worst, maxDiff(g64[k], g32[k])/maxAbs(g64[k]))
				}
				t.Logf("covector %d: max |float32 − float64| / max |float64| = %.2g", m, worst)
				if worst > tol[m] {
					t.Errorf("covector %d: float32 differs by %.3g relative", m, worst)
				}
			}
		})
	}
}

// TestJetsIndependentOfK checks that a direction's coefficients and
// covectors are bitwise the same alone (K = 1) and at any position among
// K = 4 directions with other samples, in both dtypes, and again after a
// call with other inputs (the ops reuse their outputs).
func TestJetsIndependentOfK(t *testing.T) {
	for _, model := range jetModels {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			t.Run(model+"/"+dt.String(), func(t *testing.T) {
				a, d := jetData(t, model, 20, 91)
				if dt == tensor.Float32 {
					d = to32(d)
				}
				r := rand.New(rand.NewPCG(92, 93))
				const K, B = 4, 3
				theta, dirs, rows := jetSetup(t, a, d, K, B, r)
				one := newJets(t, a, dt, d, 1, B)
				all := newJets(t, a, dt, d, K, B)
				for pass := range 2 {
					c := coeffs(t, all, theta, dirs, rows)
					g := covector(t, all, 2, theta, dirs, rows, nil)
					for k := range dirs {
						c1 := coeffs(t, one, theta, dirs[k:k+1], rows[k:k+1])
						g1 := covector(t, one, 2, theta, dirs[k:k+1], rows[k:k+1], nil)
						for n := range B {
							if c[k*B+n] != c1[n] {
								t.Errorf("pass %d, direction %d, sample %d: coefficients %v, alone %v", pass, k, n, c[k*B+n], c1[n])
							}
						}
						if diff := maxDiff(g[k], g1[0]); diff != 0 {
							t.Errorf("pass %d, direction %d: covector differs from the K = 1 one by %.3g", pass, k, diff)
						}
					}
					// Other inputs in between.
					th2, dirs2, rows2 := jetSetup(t, a, d, K, B, r)
					coeffs(t, all, th2, dirs2, rows2)
					covector(t, all, 2, th2, dirs2, rows2, nil)
				}
			})
		}
	}
}

// TestJetsErrors checks NewJets' errors and the panics on caller bugs.
func TestJetsErrors(t *testing.T) {
	a, d := jetData(t, "logistic/1x4x4", 10, 121)
	other, _ := nets.New("logistic", 1, 4, 4, 3)
	for _, tc := range []struct {
		name string
		arch *nets.Arch
		dt   tensor.Dtype
		d    *Data
		k, b int
		want string
	}{
		{"no directions", a, tensor.Float64, d, 0, 1, "0 directions of 1 samples"},
		{"dtype", a, tensor.Int, d, 1, 1, "unsupported dtype"},
		{"data dtype", a, tensor.Float32, d, 1, 1, "float64 data for float32 jets"},
		{"classes", other, tensor.Float64, d, 1, 1, "data of dimension 16 and 4 classes"},
	} {
		if _, err := NewJets(tc.arch, tc.dt, tc.d, tc.k, tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	j := newJets(t, a, tensor.Float64, d, 2, 3)
	r := rand.New(rand.NewPCG(122, 123))
	theta, dirs, rows := jetSetup(t, a, d, 2, 3, r)
	panics := func(name, want string, f func()) {
		t.Helper()
		defer func() {
			if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), want) {
				t.Errorf("%s: panic %v, want one containing %q", name, p, want)
			}
		}()
		f()
	}
	out := make([][4]float64, 6)
	panics("short theta", "parameters, want", func() { j.Coeffs(theta[1:], dirs, rows, out) })
	panics("one direction", "1 directions, want 2", func() { j.Coeffs(theta, dirs[:1], rows, out) })
	panics("short rows", "has 2 rows, want 3", func() { j.Coeffs(theta, dirs, [][]int{rows[0][:2], rows[1]}, out) })
	panics("row outside", "row 10 outside the pool of 10", func() { j.Coeffs(theta, dirs, [][]int{{0, 1, 10}, rows[1]}, out) })
	panics("outputs", "5 outputs, want K·B = 6", func() { j.Coeffs(theta, dirs, rows, out[:5]) })
	panics("order", "covector of order 4", func() { j.Covector(4, theta, dirs, rows, nil, matrix(2, len(theta))) })
	panics("no directions", "0 directions, want 2", func() { j.Covector(1, theta, nil, rows, nil, matrix(2, len(theta))) })
	panics("weights", "5 weights", func() { j.Covector(1, theta, dirs, rows, make([]float64, 5), matrix(2, len(theta))) })
	panics("per sample", "need B = 1", func() { j.CovectorPerSample(0, theta, nil, []int{0, 1}, matrix(2, len(theta))) })
	// Order 0 needs no directions.
	covector(t, j, 0, theta, nil, rows, nil)
}
