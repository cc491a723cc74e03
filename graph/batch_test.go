package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/trials/optim"
)

var _ optim.Backend = (*ImageBackend)(nil)

// batchModels are the small image models of the batched tests: 1×16×16
// images with 3 classes (the convnet's smallest input is 13×13), so that
// every check runs in milliseconds while every layer is exercised (the
// convnet's maps are 6×6 then 1×1), and the convnet on 3-channel 19×17
// images (maps 8×7 then 2×2), which exercises the channel order of the
// patches, non-square maps and the (y, x, channel) flattening.
var batchModels = []string{"logistic", "convnet", "convnet/3x19x17"}

// trialData is a pool of random examples for the batched tests.
func trialData(t testing.TB, model string, pool int, seed uint64) (*nets.Arch, *Data) {
	t.Helper()
	c, h, w := 1, 16, 16
	if name, shape, ok := strings.Cut(model, "/"); ok {
		model = name
		if _, err := fmt.Sscanf(shape, "%dx%dx%d", &c, &h, &w); err != nil {
			t.Fatal(err)
		}
	}
	a, err := nets.New(model, c, h, w, 3)
	if err != nil {
		t.Fatal(err)
	}
	return a, randomData(a, pool, rand.New(rand.NewPCG(seed, 77)))
}

// randomTheta is initialisation id moved off by noise of size 0.3, so that
// biases and every weight get non-trivial gradients and curvature.
func randomTheta(t testing.TB, a *nets.Arch, id int, r *rand.Rand) []float64 {
	t.Helper()
	vals, err := a.Init(id)
	if err != nil {
		t.Fatal(err)
	}
	var theta []float64
	for _, v := range vals {
		for j := range v {
			v[j] += 0.3 * r.NormFloat64()
		}
		theta = append(theta, v...)
	}
	return theta
}

func randomVec(n int, r *rand.Rand) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return v
}

func randomSamples(b, pool int, r *rand.Rand) []nets.Sample {
	s := make([]nets.Sample, b)
	for i := range s {
		s[i].Row = r.IntN(pool)
	}
	return s
}

func sampleRows(s []nets.Sample) []int {
	rows := make([]int, len(s))
	for i, x := range s {
		rows[i] = x.Row
	}
	return rows
}

// splitParams cuts a flat vector into the parameter tensors of a.
func splitParams(a *nets.Arch, flat []float64) [][]float64 {
	var out [][]float64
	off := 0
	for _, p := range a.Params {
		out = append(out, flat[off:off+p.Size()])
		off += p.Size()
	}
	return out
}

func flattenTensors(g []tensor.Tensor) []float64 {
	var out []float64
	for _, t := range g {
		out = append(out, t.Data().([]float64)...)
	}
	return out
}

func matrix(k, n int) [][]float64 {
	m := make([][]float64, k)
	for i := range m {
		m[i] = make([]float64, n)
	}
	return m
}

func maxAbs(x []float64) float64 {
	m := 0.0
	for _, v := range x {
		m = math.Max(m, math.Abs(v))
	}
	return m
}

func maxDiff(x, y []float64) float64 {
	m := 0.0
	for i := range x {
		m = math.Max(m, math.Abs(x[i]-y[i]))
	}
	return m
}

func dot(x, y []float64) float64 {
	s := 0.0
	for i := range x {
		s += x[i] * y[i]
	}
	return s
}

func norm(x []float64) float64 { return math.Sqrt(dot(x, x)) }

// grads runs the backend's Grad and returns fresh outputs.
func grads(t testing.TB, e *ImageBackend, theta [][]float64, pts [][]nets.Sample) ([]float64, [][]float64) {
	t.Helper()
	loss, g := make([]float64, len(theta)), matrix(len(theta), e.NumParams())
	if err := e.Grad(theta, pts, loss, g); err != nil {
		t.Fatal(err)
	}
	return loss, g
}

// hvps runs the backend's HVP and returns fresh outputs.
func hvps(t testing.TB, e *ImageBackend, theta [][]float64, pts [][]nets.Sample, v [][]float64) [][]float64 {
	t.Helper()
	out := matrix(len(theta), e.NumParams())
	if err := e.HVP(theta, pts, v, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBatchGradMatchesNet checks (a): for K trials with their own
// parameters and samples, the batched loss and gradient of every trial equal
// those of the unbatched graph.Net (nets.Arch.Forward) on the same rows, to
// 1e-12 relative to the trial's largest gradient entry. (They differ by
// rounding only, about 1e-16: some products sum in other orders, the
// backward products take the Xavier scale as their GEMM factor, and
// G.LogSoftMax, which graph.Net uses, shifts every row by the first logit of
// the whole batch instead of the row's maximum; see logSoftmaxKernel.)
func TestBatchGradMatchesNet(t *testing.T) {
	cases := []struct{ k, b int }{{5, 3}, {1, 1}, {4, 1}, {2, 6}}
	for _, model := range batchModels {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/K=%d/B=%d", model, tc.k, tc.b), func(t *testing.T) {
				a, d := trialData(t, model, 20, 1)
				r := rand.New(rand.NewPCG(2, uint64(tc.k*10+tc.b)))
				theta := make([][]float64, tc.k)
				pts := make([][]nets.Sample, tc.k)
				for k := range theta {
					theta[k] = randomTheta(t, a, k+1, r)
					pts[k] = randomSamples(tc.b, d.Len(), r)
				}
				e := NewImageBackend(a, tensor.Float64, d)
				loss, g := grads(t, e, theta, pts)
				ref, err := Compile(a, tensor.Float64, tc.b, true)
				if err != nil {
					t.Fatal(err)
				}
				for k := range theta {
					l, rg, err := ref.Grad(NewParams(a, splitParams(a, theta[k]), tensor.Float64), d, sampleRows(pts[k]))
					if err != nil {
						t.Fatal(err)
					}
					want := flattenTensors(rg)
					if diff := math.Abs(loss[k] - l); diff > 1e-12*math.Abs(l) {
						t.Errorf("trial %d: loss %.17g, unbatched %.17g", k, loss[k], l)
					}
					diff, scale := maxDiff(g[k], want), maxAbs(want)
					if diff > 1e-12*scale {
						t.Errorf("trial %d: gradient differs from the unbatched one by %.3g (scale %.3g)", k, diff, scale)
					}
					t.Logf("trial %d: max |Δgrad| / max |grad| = %.2g, |Δloss| = %.2g", k, diff/scale, math.Abs(loss[k]-l))
				}
			})
		}
	}
}

// TestBatchIndependentOfK checks (b): a trial's loss, gradient and
// Hessian-vector product are bitwise the same alone (K = 1) and at any
// position of a K = 7 batch with other random neighbours, in both dtypes.
// Every per-trial computation is one GEMM of a shape that does not depend
// on K, element-wise maps, and reductions within one trial's rows, so
// equality is exact.
func TestBatchIndependentOfK(t *testing.T) {
	for _, model := range batchModels {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			t.Run(model+"/"+dt.String(), func(t *testing.T) {
				a, d := trialData(t, model, 30, 3)
				if dt == tensor.Float32 {
					d = to32(d)
				}
				e := NewImageBackend(a, dt, d)
				r := rand.New(rand.NewPCG(4, 5))
				const b = 4
				theta := randomTheta(t, a, 1, r)
				e.Round(theta)
				v := randomVec(len(theta), r)
				e.Round(v)
				pts := randomSamples(b, d.Len(), r)
				loss1, g1 := grads(t, e, [][]float64{theta}, [][]nets.Sample{pts})
				h1 := hvps(t, e, [][]float64{theta}, [][]nets.Sample{pts}, [][]float64{v})
				for _, pos := range []int{0, 3, 6} {
					const K = 7
					th, vs, ps := make([][]float64, K), make([][]float64, K), make([][]nets.Sample, K)
					for k := range th {
						th[k] = randomTheta(t, a, k+2, r)
						e.Round(th[k])
						vs[k] = randomVec(len(theta), r)
						e.Round(vs[k])
						ps[k] = randomSamples(b, d.Len(), r)
					}
					th[pos], vs[pos], ps[pos] = theta, v, pts
					loss, g := grads(t, e, th, ps)
					h := hvps(t, e, th, ps, vs)
					if loss[pos] != loss1[0] {
						t.Errorf("position %d: loss %.17g, alone %.17g", pos, loss[pos], loss1[0])
					}
					if diff := maxDiff(g[pos], g1[0]); diff != 0 {
						t.Errorf("position %d: gradient differs from the K=1 one by %.3g", pos, diff)
					}
					if diff := maxDiff(h[pos], h1[0]); diff != 0 {
						t.Errorf("position %d: Hessian-vector product differs from the K=1 one by %.3g", pos, diff)
					}
				}
			})
		}
	}
}

// TestBatchRepeatable checks that a compiled graph gives bitwise the same
// results when called again, also after a call with other inputs: the ops
// reuse their output tensors from run to run, so a kernel that forgot to
// overwrite (rather than accumulate into) its output would show here.
func TestBatchRepeatable(t *testing.T) {
	for _, model := range batchModels {
		t.Run(model, func(t *testing.T) {
			a, d := trialData(t, model, 20, 31)
			e := NewImageBackend(a, tensor.Float64, d)
			r := rand.New(rand.NewPCG(32, 33))
			const K = 3
			mk := func() ([][]float64, [][]float64, [][]nets.Sample) {
				th, vs, ps := make([][]float64, K), make([][]float64, K), make([][]nets.Sample, K)
				for k := range th {
					th[k] = randomTheta(t, a, k+1, r)
					vs[k] = randomVec(len(th[k]), r)
					ps[k] = randomSamples(2, d.Len(), r)
				}
				return th, vs, ps
			}
			th, vs, ps := mk()
			l1, g1 := grads(t, e, th, ps)
			h1 := hvps(t, e, th, ps, vs)
			th2, vs2, ps2 := mk()
			grads(t, e, th2, ps2)
			hvps(t, e, th2, ps2, vs2)
			l2, g2 := grads(t, e, th, ps)
			h2 := hvps(t, e, th, ps, vs)
			for k := range th {
				if l1[k] != l2[k] || maxDiff(g1[k], g2[k]) != 0 || maxDiff(h1[k], h2[k]) != 0 {
					t.Errorf("trial %d: a repeated call gives other results", k)
				}
			}
		})
	}
}

// TestBatchGradFiniteDifferences checks (c): the batched gradient against
// float64 central differences of the batched loss, with step 1e-5 (error
// about 1e-10, see TestGradientFiniteDifferences), on 8 random coordinates
// of every parameter tensor. All 2·8·P perturbed copies run as the trials of
// one batch.
func TestBatchGradFiniteDifferences(t *testing.T) {
	for _, model := range batchModels {
		t.Run(model, func(t *testing.T) {
			a, d := trialData(t, model, 20, 6)
			e := NewImageBackend(a, tensor.Float64, d)
			r := rand.New(rand.NewPCG(7, 8))
			theta := randomTheta(t, a, 2, r)
			pts := randomSamples(3, d.Len(), r)
			_, g := grads(t, e, [][]float64{theta}, [][]nets.Sample{pts})
			const h = 1e-5
			var coords []int
			off := 0
			for _, p := range a.Params {
				for i := 0; i < 8; i++ {
					coords = append(coords, off+r.IntN(p.Size()))
				}
				off += p.Size()
			}
			var th [][]float64
			var ps [][]nets.Sample
			for _, j := range coords {
				for _, sign := range []float64{1, -1} {
					x := append([]float64(nil), theta...)
					x[j] += sign * h
					th = append(th, x)
					ps = append(ps, pts)
				}
			}
			loss, _ := grads(t, e, th, ps)
			scale := math.Max(maxAbs(g[0]), 1e-3)
			worst := 0.0
			for i, j := range coords {
				fd := (loss[2*i] - loss[2*i+1]) / (2 * h)
				if math.Abs(fd-g[0][j]) > 1e-7*scale {
					t.Errorf("coordinate %d: gradient %.12g, finite difference %.12g", j, g[0][j], fd)
				}
				worst = math.Max(worst, math.Abs(fd-g[0][j])/scale)
			}
			t.Logf("max |fd − grad| / max |grad| = %.2g", worst)
		})
	}
}

// TestBatchHVPFiniteDifferences checks (d): Σ_n H_n v against central
// differences of the mean gradient, B·(ḡ(θ+hv) − ḡ(θ−hv))/(2h) with h =
// 1e-5 and |v| = 1, for random directions (each trial of one batch has its
// own θ, samples and v). The truncation error is O(h²) ≈ 1e-10 and the
// rounding error O(1e-16·|g|/h) ≈ 1e-11, so 1e-7 relative to the largest
// entry of Hv holds with a wide margin; a wrong layer misses by far more.
func TestBatchHVPFiniteDifferences(t *testing.T) {
	for _, model := range batchModels {
		t.Run(model, func(t *testing.T) {
			a, d := trialData(t, model, 20, 9)
			e := NewImageBackend(a, tensor.Float64, d)
			r := rand.New(rand.NewPCG(10, 11))
			const K, b, h = 4, 3, 1e-5
			th, vs, ps := make([][]float64, K), make([][]float64, K), make([][]nets.Sample, K)
			for k := range th {
				th[k] = randomTheta(t, a, k+1, r)
				vs[k] = randomVec(len(th[k]), r)
				nv := norm(vs[k])
				for j := range vs[k] {
					vs[k][j] /= nv
				}
				ps[k] = randomSamples(b, d.Len(), r)
			}
			hv := hvps(t, e, th, ps, vs)
			var shifted [][]float64
			var sp [][]nets.Sample
			for k := range th {
				for _, sign := range []float64{1, -1} {
					x := append([]float64(nil), th[k]...)
					for j := range x {
						x[j] += sign * h * vs[k][j]
					}
					shifted = append(shifted, x)
					sp = append(sp, ps[k])
				}
			}
			_, g := grads(t, e, shifted, sp)
			for k := range th {
				fd := make([]float64, len(hv[k]))
				for j := range fd {
					fd[j] = b * (g[2*k][j] - g[2*k+1][j]) / (2 * h)
				}
				diff, scale := maxDiff(hv[k], fd), maxAbs(hv[k])
				if diff > 1e-7*scale || scale == 0 {
					t.Errorf("trial %d: HVP differs from finite differences by %.3g (scale %.3g)", k, diff, scale)
				}
				t.Logf("trial %d: max |fd − Hv| / max |Hv| = %.2g", k, diff/scale)
			}
		})
	}
}

// TestBatchHVPLogisticClosedForm checks (e) against the explicit Hessian of
// the logistic model.
//
// Derivation. With stored weights W (d×C, row-major index i·C+c), bias b,
// scale s and one sample (x, y): z = s·Wᵀx + b, l = logsumexp(z) − z_y and
// p = softmax(z). Then ∂l/∂z = p − e_y and ∂²l/∂z∂zᵀ = A = diag(p) − p pᵀ
// (e_y does not depend on z). z is affine in θ = (vec W, b) with Jacobian
// ∂z_c/∂W_ic' = s·x_i·δ_cc', ∂z_c/∂b_c' = δ_cc', i.e. J = [s·xᵀ ⊗ I_C, I_C],
// so the Gauss–Newton term is the whole Hessian: H = Jᵀ A J, i.e.
//
//	H_{(i,c),(i',c')} = s²·x_i·x_i'·A_cc'   (W–W block, (x xᵀ s²) ⊗ A)
//	H_{(i,c),b_c'}    = s·x_i·A_cc'          (W–b blocks, s·x ⊗ A)
//	H_{b_c,b_c'}      = A_cc'                (b–b block)
//
// The backend's HVP is the SUM over the trial's samples (no 1/N), so the
// reference is (Σ_n H_n) v with the matrix Σ_n H_n built entry by entry.
func TestBatchHVPLogisticClosedForm(t *testing.T) {
	a, d := trialData(t, "logistic", 20, 12)
	e := NewImageBackend(a, tensor.Float64, d)
	r := rand.New(rand.NewPCG(13, 14))
	const K, b = 3, 4
	dim, C := a.Dim(), a.Classes
	np := a.NumParams()
	s := a.Params[0].Scale
	th, vs, ps := make([][]float64, K), make([][]float64, K), make([][]nets.Sample, K)
	for k := range th {
		th[k] = randomTheta(t, a, k, r) // k = 0 is the zero initialisation plus noise
		vs[k] = randomVec(np, r)
		ps[k] = randomSamples(b, d.Len(), r)
	}
	got := hvps(t, e, th, ps, vs)
	for k := range th {
		w, bias := th[k][:dim*C], th[k][dim*C:]
		H := matrix(np, np)
		for _, smp := range ps[k] {
			x := d.X64[smp.Row*dim : (smp.Row+1)*dim]
			z := make([]float64, C)
			for c := range z {
				for i := range x {
					z[c] += x[i] * w[i*C+c]
				}
				z[c] = s*z[c] + bias[c]
			}
			lse := logSumExp(z)
			p := make([]float64, C)
			for c := range p {
				p[c] = math.Exp(z[c] - lse)
			}
			A := func(c, c2 int) float64 {
				v := -p[c] * p[c2]
				if c == c2 {
					v += p[c]
				}
				return v
			}
			// Row/column index of W_ic is i·C+c, of b_c is dim·C+c.
			for i := 0; i < dim; i++ {
				for c := 0; c < C; c++ {
					for i2 := 0; i2 < dim; i2++ {
						for c2 := 0; c2 < C; c2++ {
							H[i*C+c][i2*C+c2] += s * s * x[i] * x[i2] * A(c, c2)
						}
					}
					for c2 := 0; c2 < C; c2++ {
						H[i*C+c][dim*C+c2] += s * x[i] * A(c, c2)
						H[dim*C+c2][i*C+c] += s * x[i] * A(c2, c)
					}
				}
			}
			for c := 0; c < C; c++ {
				for c2 := 0; c2 < C; c2++ {
					H[dim*C+c][dim*C+c2] += A(c, c2)
				}
			}
		}
		want := make([]float64, np)
		for i := range want {
			want[i] = dot(H[i], vs[k])
		}
		diff, scale := maxDiff(got[k], want), maxAbs(want)
		if diff > 1e-12*scale || scale == 0 {
			t.Errorf("trial %d: HVP differs from the closed form by %.3g (scale %.3g)", k, diff, scale)
		}
		t.Logf("trial %d: max |Hv − closed form| / max |Hv| = %.2g", k, diff/scale)
	}
}

// TestBatchHVPSymmetric checks (f): uᵀ(Hv) = vᵀ(Hu) for random u, v, to
// 1e-12 relative to |u|·|Hv|.
func TestBatchHVPSymmetric(t *testing.T) {
	for _, model := range batchModels {
		t.Run(model, func(t *testing.T) {
			a, d := trialData(t, model, 20, 15)
			e := NewImageBackend(a, tensor.Float64, d)
			r := rand.New(rand.NewPCG(16, 17))
			const K = 3
			th, us, ps := make([][]float64, 2*K), make([][]float64, 2*K), make([][]nets.Sample, 2*K)
			// Trials k and K+k share θ and samples; trial k applies H to u,
			// trial K+k to v.
			for k := 0; k < K; k++ {
				th[k] = randomTheta(t, a, k+1, r)
				th[K+k] = th[k]
				ps[k] = randomSamples(3, d.Len(), r)
				ps[K+k] = ps[k]
				us[k] = randomVec(len(th[k]), r)
				us[K+k] = randomVec(len(th[k]), r)
			}
			hv := hvps(t, e, th, ps, us)
			for k := 0; k < K; k++ {
				u, v := us[k], us[K+k]
				Hu, Hv := hv[k], hv[K+k]
				lhs, rhs := dot(u, Hv), dot(v, Hu)
				if math.Abs(lhs-rhs) > 1e-12*norm(u)*norm(Hv) {
					t.Errorf("trial %d: uᵀHv = %.17g, vᵀHu = %.17g", k, lhs, rhs)
				}
				t.Logf("trial %d: |uᵀHv − vᵀHu| / (|u||Hv|) = %.2g", k, math.Abs(lhs-rhs)/(norm(u)*norm(Hv)))
			}
		})
	}
}

// TestBatchFloat32 checks (g): the float32 backend's loss, gradient and
// Hessian-vector product are within 1e-4 (relative, in the max norm) of
// float64 on the same float32-representable parameters.
func TestBatchFloat32(t *testing.T) {
	for _, model := range batchModels {
		t.Run(model, func(t *testing.T) {
			a, d := trialData(t, model, 20, 18)
			e64 := NewImageBackend(a, tensor.Float64, d)
			e32 := NewImageBackend(a, tensor.Float32, to32(d))
			r := rand.New(rand.NewPCG(19, 20))
			const K = 4
			th, vs, ps := make([][]float64, K), make([][]float64, K), make([][]nets.Sample, K)
			for k := range th {
				th[k] = randomTheta(t, a, k+1, r)
				e32.Round(th[k])
				vs[k] = randomVec(len(th[k]), r)
				e32.Round(vs[k])
				ps[k] = randomSamples(3, d.Len(), r)
			}
			l64, g64 := grads(t, e64, th, ps)
			l32, g32 := grads(t, e32, th, ps)
			h64 := hvps(t, e64, th, ps, vs)
			h32 := hvps(t, e32, th, ps, vs)
			for k := range th {
				if math.Abs(l64[k]-l32[k]) > 1e-5*math.Abs(l64[k]) {
					t.Errorf("trial %d: float32 loss %v, float64 %v", k, l32[k], l64[k])
				}
				dg, sg := maxDiff(g32[k], g64[k]), maxAbs(g64[k])
				if dg > 1e-4*sg {
					t.Errorf("trial %d: float32 gradient off by %.3g (scale %.3g)", k, dg, sg)
				}
				dh, sh := maxDiff(h32[k], h64[k]), maxAbs(h64[k])
				if dh > 1e-4*sh {
					t.Errorf("trial %d: float32 HVP off by %.3g (scale %.3g)", k, dh, sh)
				}
				t.Logf("trial %d: float32 vs float64: loss %.2g, gradient %.2g, HVP %.2g (relative)", k,
					math.Abs(l64[k]-l32[k])/math.Abs(l64[k]), dg/sg, dh/sh)
			}
		})
	}
}

// TestBatchNonFiniteTrial checks (h): a trial whose parameters hold NaN or
// Inf, or are so large that its logits reach ±1e3 and beyond, leaves every
// other trial's loss, gradient and HVP finite and bitwise unchanged, in both
// dtypes, wherever it sits in the batch (position 0 matters: gorgonia's own
// log-softmax would shift every row by the batch's first logit).
func TestBatchNonFiniteTrial(t *testing.T) {
	bad := []struct {
		name string
		f    func(theta []float64)
	}{
		{"nan", func(th []float64) { th[len(th)/3] = math.NaN() }},
		{"inf", func(th []float64) { th[0] = math.Inf(1) }},
		{"huge", func(th []float64) {
			for j := range th {
				th[j] *= 1e4
			}
		}},
	}
	for _, model := range batchModels {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			for _, bc := range bad {
				for _, pos := range []int{0, 2} {
					t.Run(fmt.Sprintf("%s/%s/%s/%d", model, dt, bc.name, pos), func(t *testing.T) {
						a, d := trialData(t, model, 20, 21)
						if dt == tensor.Float32 {
							d = to32(d)
						}
						e := NewImageBackend(a, dt, d)
						r := rand.New(rand.NewPCG(22, 23))
						const K = 4
						th, vs, ps := make([][]float64, K), make([][]float64, K), make([][]nets.Sample, K)
						for k := range th {
							th[k] = randomTheta(t, a, k+1, r)
							e.Round(th[k])
							vs[k] = randomVec(len(th[k]), r)
							e.Round(vs[k])
							ps[k] = randomSamples(3, d.Len(), r)
						}
						cleanL, cleanG := grads(t, e, th, ps)
						cleanH := hvps(t, e, th, ps, vs)
						th[pos] = append([]float64(nil), th[pos]...)
						bc.f(th[pos])
						e.Round(th[pos])
						l, g := grads(t, e, th, ps)
						h := hvps(t, e, th, ps, vs)
						for k := range th {
							if k == pos {
								continue
							}
							ok := l[k] == cleanL[k] && maxDiff(g[k], cleanG[k]) == 0 && maxDiff(h[k], cleanH[k]) == 0
							if !ok || !allFinite(g[k]) || !allFinite(h[k]) || !allFinite(l[k:k+1]) {
								t.Errorf("trial %d changed (loss %v, was %v) or is not finite", k, l[k], cleanL[k])
							}
						}
					})
				}
			}
		}
	}
}

func allFinite(x []float64) bool {
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// TestLogSoftmaxRows checks the row-wise log-softmax against a direct
// computation, including a row whose logits dwarf the others' (which
// G.LogSoftMax gets wrong for every row but the first) and a NaN row.
func TestLogSoftmaxRows(t *testing.T) {
	x := []float64{1000, 0, -3, 0.5, 1, 2, math.NaN(), 0, 1, -1e3, 0, 1e3}
	out := make([]float64, len(x))
	kernels.LogSoftmaxRows(out, x, 3)
	for r := 0; r < 4; r++ {
		row := x[3*r : 3*r+3]
		lse := logSumExp(row)
		for j, v := range row {
			got, want := out[3*r+j], v-lse
			if r == 2 {
				if !math.IsNaN(got) {
					t.Errorf("row 2 (with NaN): %v, want NaN", got)
				}
				continue
			}
			if math.Abs(got-want) > 1e-13*math.Max(1, math.Abs(want)) {
				t.Errorf("row %d col %d: %v, want %v", r, j, got, want)
			}
		}
	}
}

// TestBmmOp checks the batched product and its symbolic derivative for all
// transpose flags against direct loops: the gradient of Σ R ⊙ α·op(A)op(B)
// with respect to A and B.
func TestBmmOp(t *testing.T) {
	const K, m, k, n = 3, 4, 5, 2
	r := rand.New(rand.NewPCG(24, 25))
	for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
		t.Run(fmt.Sprint(tr), func(t *testing.T) {
			sa, sb := []int{K, m, k}, []int{K, k, n}
			if tr[0] {
				sa = []int{K, k, m}
			}
			if tr[1] {
				sb = []int{K, n, k}
			}
			av, bv, rv := randomVec(K*m*k, r), randomVec(K*k*n, r), randomVec(K*m*n, r)
			// at(A, i, j) is op(A)[i][j] of slice s.
			at := func(x []float64, shape []int, trans bool, s, i, j int) float64 {
				if trans {
					i, j = j, i
				}
				return x[s*shape[1]*shape[2]+i*shape[2]+j]
			}
			g := G.NewGraph()
			A := G.NewTensor(g, tensor.Float64, 3, G.WithShape(sa...), G.WithValue(tensor.New(tensor.WithShape(sa...), tensor.WithBacking(av))))
			B := G.NewTensor(g, tensor.Float64, 3, G.WithShape(sb...), G.WithValue(tensor.New(tensor.WithShape(sb...), tensor.WithBacking(bv))))
			R := G.NewTensor(g, tensor.Float64, 3, G.WithShape(K, m, n), G.WithValue(tensor.New(tensor.WithShape(K, m, n), tensor.WithBacking(rv))))
			const alpha = 1.5
			C, err := bmm(A, B, tr[0], tr[1], alpha)
			if err != nil {
				t.Fatal(err)
			}
			prod, _ := G.HadamardProd(C, R)
			total, _ := G.Sum(prod)
			gs, err := G.Grad(total, A, B)
			if err != nil {
				t.Fatal(err)
			}
			vm := G.NewTapeMachine(g)
			defer vm.Close()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			cv, ga, gb := C.Value().Data().([]float64), gs[0].Value().Data().([]float64), gs[1].Value().Data().([]float64)
			wantA, wantB := make([]float64, len(av)), make([]float64, len(bv))
			for s := 0; s < K; s++ {
				for i := 0; i < m; i++ {
					for j := 0; j < n; j++ {
						c := 0.0
						for l := 0; l < k; l++ {
							c += alpha * at(av, sa, tr[0], s, i, l) * at(bv, sb, tr[1], s, l, j)
						}
						if got := cv[s*m*n+i*n+j]; math.Abs(got-c) > 1e-14*(1+math.Abs(c)) {
							t.Errorf("C[%d,%d,%d] = %v, want %v", s, i, j, got, c)
						}
						// ∂/∂op(A)[i][l] = R[i][j]·op(B)[l][j], scattered back
						// through the transposition.
						for l := 0; l < k; l++ {
							ri := alpha * rv[s*m*n+i*n+j]
							ai, al := i, l
							if tr[0] {
								ai, al = l, i
							}
							wantA[s*m*k+ai*sa[2]+al] += ri * at(bv, sb, tr[1], s, l, j)
							bl, bj := l, j
							if tr[1] {
								bl, bj = j, l
							}
							wantB[s*k*n+bl*sb[2]+bj] += ri * at(av, sa, tr[0], s, i, l)
						}
					}
				}
			}
			if diff := maxDiff(ga, wantA); diff > 1e-13 {
				t.Errorf("dA off by %.3g", diff)
			}
			if diff := maxDiff(gb, wantB); diff > 1e-13 {
				t.Errorf("dB off by %.3g", diff)
			}
		})
	}
}

// TestImageBackendCache checks that graphs are compiled once per (K, B,
// kind), that mismatched inputs are errors, and float32 rounding.
func TestImageBackendCache(t *testing.T) {
	a, d := trialData(t, "logistic", 10, 26)
	e := NewImageBackend(a, tensor.Float64, d)
	defer e.Close()
	r := rand.New(rand.NewPCG(27, 28))
	th := [][]float64{randomTheta(t, a, 1, r), randomTheta(t, a, 2, r)}
	ps := [][]nets.Sample{randomSamples(2, 10, r), randomSamples(2, 10, r)}
	grads(t, e, th, ps)
	grads(t, e, th, ps)
	hvps(t, e, th, ps, th)
	grads(t, e, th[:1], ps[:1])
	if len(e.nets) != 3 {
		t.Errorf("%d compiled graphs, want 3", len(e.nets))
	}
	loss, g := make([]float64, 2), matrix(2, e.NumParams())
	if err := e.Grad(th, ps[:1], loss, g); err == nil {
		t.Error("no error for 2 trials with 1 sample list")
	}
	if err := e.Grad(th, [][]nets.Sample{ps[0], ps[1][:1]}, loss, g); err == nil {
		t.Error("no error for trials with different sample counts")
	}
	if err := e.Grad(th, [][]nets.Sample{ps[0], {{Row: 10}, {Row: 0}}}, loss, g); err == nil {
		t.Error("no error for a row outside the pool")
	}
	if err := e.Grad(th, ps, loss[:1], g); err == nil {
		t.Error("no error for 1 loss for 2 trials")
	}
	if err := e.Grad(th, ps, loss, [][]float64{g[0], g[1][1:]}); err == nil {
		t.Error("no error for a short gradient vector")
	}
	if err := e.HVP(th, ps, th[:1], g); err == nil {
		t.Error("no error for 1 direction for 2 trials")
	}
	if err := e.HVP([][]float64{th[0], th[1][1:]}, ps, th, g); err == nil {
		t.Error("no error for a short parameter vector")
	}
	x := []float64{0.1, 1.0 / 3}
	NewImageBackend(a, tensor.Float32, to32(d)).Round(x)
	if x[0] != float64(float32(0.1)) || x[1] != float64(float32(1.0/3)) {
		t.Errorf("float32 rounding gave %v", x)
	}
	y := []float64{0.1}
	e.Round(y)
	if y[0] != 0.1 {
		t.Errorf("float64 rounding changed 0.1 to %v", y[0])
	}
}

// benchBatch runs f once per iteration for K trials of b = 1 Fashion-MNIST
// shaped samples (28×28, 10 classes) per model and dtype, and reports the
// time per trial-step (ns/trial).
func benchBatch(b *testing.B, f func(b *testing.B, e *ImageBackend, th, v [][]float64, pts [][]nets.Sample)) {
	for _, model := range poolModels {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			for _, K := range []int{1, 64} {
				b.Run(fmt.Sprintf("%s/%s/K=%d", model, dt, K), func(b *testing.B) {
					a, _ := nets.New(model, 1, 28, 28, 10)
					r := rand.New(rand.NewPCG(1, 1))
					d := randomData(a, 1000, r)
					if dt == tensor.Float32 {
						d = to32(d)
					}
					e := NewImageBackend(a, dt, d)
					defer e.Close()
					th, v, pts := make([][]float64, K), make([][]float64, K), make([][]nets.Sample, K)
					for k := range th {
						th[k] = randomTheta(b, a, k+1, r)
						e.Round(th[k])
						v[k] = randomVec(len(th[k]), r)
						pts[k] = randomSamples(1, d.Len(), r)
					}
					f(b, e, th, v, pts) // compile outside the timer
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						f(b, e, th, v, pts)
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*K), "ns/trial")
				})
			}
		}
	}
}

// BenchmarkBatchGrad measures one batched Grad call (one SGD step of batch
// 1 for every trial) for K = 1 and K = 64 trials.
func BenchmarkBatchGrad(b *testing.B) {
	var loss []float64
	var grad [][]float64
	benchBatch(b, func(b *testing.B, e *ImageBackend, th, v [][]float64, pts [][]nets.Sample) {
		if len(loss) != len(th) || len(grad[0]) != e.NumParams() {
			loss, grad = make([]float64, len(th)), matrix(len(th), e.NumParams())
		}
		if err := e.Grad(th, pts, loss, grad); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkBatchHVP measures one batched Hessian-vector product call.
func BenchmarkBatchHVP(b *testing.B) {
	var out [][]float64
	benchBatch(b, func(b *testing.B, e *ImageBackend, th, v [][]float64, pts [][]nets.Sample) {
		if len(out) != len(th) || len(out[0]) != e.NumParams() {
			out = matrix(len(th), e.NumParams())
		}
		if err := e.HVP(th, pts, v, out); err != nil {
			b.Fatal(err)
		}
	})
}

// TestGemmBlocks checks that gemm, which cuts large products into blocks
// for gonum's serial kernels, gives bitwise the same result as one BLAS call
// (for every transposition and beta 0 and 1) and the product of a direct
// loop.
func TestGemmBlocks(t *testing.T) {
	const m, n, k = 150, 400, 7
	r := rand.New(rand.NewPCG(29, 30))
	impl := tensor.WhichBLAS()
	for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
		for _, beta := range []float64{0, 1} {
			a, b, c0 := randomVec(m*k, r), randomVec(k*n, r), randomVec(m*n, r)
			lda, ldb := k, n
			tA, tB := blas.NoTrans, blas.NoTrans
			if tr[0] {
				lda, tA = m, blas.Trans
			}
			if tr[1] {
				ldb, tB = k, blas.Trans
			}
			got := append([]float64(nil), c0...)
			gemm(tr[0], tr[1], m, n, k, 0.5, a, lda, b, ldb, beta, got, n)
			want := append([]float64(nil), c0...)
			impl.Dgemm(tA, tB, m, n, k, 0.5, a, lda, b, ldb, beta, want, n)
			if d := maxDiff(got, want); d != 0 {
				t.Errorf("%v beta %v: blocks differ from one call by %.3g", tr, beta, d)
			}
			for i := 0; i < m; i += 37 {
				for j := 0; j < n; j += 41 {
					s := beta * c0[i*n+j]
					for l := 0; l < k; l++ {
						var av, bv float64
						if tr[0] {
							av = a[l*lda+i]
						} else {
							av = a[i*lda+l]
						}
						if tr[1] {
							bv = b[j*ldb+l]
						} else {
							bv = b[l*ldb+j]
						}
						s += 0.5 * av * bv
					}
					if math.Abs(got[i*n+j]-s) > 1e-13 {
						t.Errorf("%v beta %v: c[%d,%d] = %v, want %v", tr, beta, i, j, got[i*n+j], s)
					}
				}
			}
		}
	}
}
