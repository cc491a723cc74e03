package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas/gonum"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// familyCases are the model families the batched graphs build from
// nets.Arch.Layers: the logistic model, a tanh MLP, the paper's convnet,
// deeper convnets whose layers ≥ 3 are padded 3×3 convolutions (on maps of
// 3×3, so that the padding touches every position; on non-square maps of
// two channels), and a CIFAR-shaped convnet.
var familyCases = []struct {
	name           string
	model          string
	c, h, w, class int
	size           nets.Size
}{
	{"logistic", "logistic", 1, 12, 12, 4, nets.Size{}},
	{"mlp/w7d3", "mlp", 1, 12, 12, 4, nets.Size{Width: 7, Depth: 3}},
	{"convnet", "convnet", 1, 16, 16, 4, nets.Size{}},
	{"convnet/w4d3", "convnet", 1, 24, 22, 4, nets.Size{Width: 4, Depth: 3}},
	{"convnet/w3d4/2x21x23", "convnet", 2, 21, 23, 4, nets.Size{Width: 3, Depth: 4}},
	{"convnet/w3d3/cifar", "convnet", 3, 32, 32, 10, nets.Size{Width: 3, Depth: 3}},
}

func familyArch(t testing.TB, i int) (*nets.Arch, *Data) {
	t.Helper()
	fc := familyCases[i]
	a, err := nets.NewSized(fc.model, fc.c, fc.h, fc.w, fc.class, fc.size)
	if err != nil {
		t.Fatal(err)
	}
	return a, randomData(a, 12, rand.New(rand.NewPCG(uint64(i), 5)))
}

// refModel are the logits of one example x (CHW) at the flat parameters
// theta by direct float64 loops, independent of the batched graphs: every
// layer z = s·(x W) + b, then tanh but for the last. A convolution with
// kernel k, stride st and padding pd computes, for output channel o at
// (y, x),
//
//	z = s·Σ_{c,ky,kx} in[c][y·st+ky−pd][x·st+kx−pd] · W[(c·k+ky)·k+kx][o] + b[o],
//
// pixels outside the maps reading 0; maps are kept as CHW arrays and
// flattened in (y, x, channel) order before a dense layer.
func refModel(a *nets.Arch, theta, x []float64) []float64 {
	layers, err := a.Layers()
	if err != nil {
		panic(err)
	}
	vals := splitParams(a, theta)
	in, c, h, w := x, a.Channels, a.Height, a.Width
	convMaps := false // in holds a convolution's CHW maps
	for _, l := range layers {
		wt, b, s := vals[l.W], vals[l.B], a.Params[l.W].Scale
		act := func(z float64) float64 {
			if l.Tanh {
				return math.Tanh(z)
			}
			return z
		}
		if l.Conv {
			k, st, pd, out := l.K, l.Stride, l.Pad, l.Out
			oh, ow := (h+2*pd-k)/st+1, (w+2*pd-k)/st+1
			next := make([]float64, out*oh*ow)
			for o := 0; o < out; o++ {
				for y := 0; y < oh; y++ {
					for xx := 0; xx < ow; xx++ {
						z := 0.0
						for ci := 0; ci < c; ci++ {
							for ky := 0; ky < k; ky++ {
								for kx := 0; kx < k; kx++ {
									iy, ix := y*st+ky-pd, xx*st+kx-pd
									if iy < 0 || iy >= h || ix < 0 || ix >= w {
										continue // zero padding
									}
									z += in[ci*h*w+iy*w+ix] * wt[((ci*k+ky)*k+kx)*out+o]
								}
							}
						}
						next[o*oh*ow+y*ow+xx] = act(s*z + b[o])
					}
				}
			}
			in, c, h, w, convMaps = next, out, oh, ow, true
			continue
		}
		flat := in // the image is read as one row in CHW order
		if convMaps {
			flat = make([]float64, c*h*w) // (y, x, channel) order
			for ci := 0; ci < c; ci++ {
				for p := 0; p < h*w; p++ {
					flat[p*c+ci] = in[ci*h*w+p]
				}
			}
		}
		z := make([]float64, l.Out)
		for o := range z {
			for i, v := range flat {
				z[o] += v * wt[i*l.Out+o]
			}
			z[o] = act(s*z[o] + b[o])
		}
		in, c, h, w, convMaps = z, l.Out, 1, 1, false
	}
	return in
}

// refMeanLoss is the mean cross-entropy of the rows of d at theta by
// refModel.
func refMeanLoss(a *nets.Arch, theta []float64, d *Data, rows []int) float64 {
	s := 0.0
	for _, r := range rows {
		z := refModel(a, theta, d.X64[r*d.Dim:(r+1)*d.Dim])
		s += logSumExp(z) - z[d.Y[r]]
	}
	return s / float64(len(rows))
}

// familyTrials returns k trials' parameters (initialisation 1 plus noise),
// directions and rows of b samples.
func familyTrials(t testing.TB, a *nets.Arch, d *Data, k, b int, seed uint64) (theta, v [][]float64, rows [][]int) {
	r := rand.New(rand.NewPCG(seed, 3))
	for i := 0; i < k; i++ {
		theta = append(theta, randomTheta(t, a, 1, r))
		v = append(v, randomVec(a.NumParams(), r))
		var rs []int
		for j := 0; j < b; j++ {
			rs = append(rs, r.IntN(d.Len()))
		}
		rows = append(rows, rs)
	}
	return theta, v, rows
}

func batchGrad(t testing.TB, n *BatchNet, d *Data, theta [][]float64, rows [][]int) ([]float64, [][]float64) {
	t.Helper()
	loss, g := make([]float64, len(theta)), matrix(len(theta), n.Arch.NumParams())
	if err := n.Grad(theta, d, rows, loss, g); err != nil {
		t.Fatal(err)
	}
	return loss, g
}

func batchHVP(t testing.TB, n *BatchNet, d *Data, theta, v [][]float64, rows [][]int) [][]float64 {
	t.Helper()
	out := matrix(len(theta), n.Arch.NumParams())
	if err := n.HVP(theta, d, rows, v, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFamiliesMatchReference checks, for every family, BatchNet's loss
// against refModel (and refModel against nets' own forward through
// graph.Net, gorgonia's Im2Col with padding), its gradient against central
// differences of the reference loss (per coordinate, h = 1e-5: error
// O(h²) + O(1e-16/h) ≈ 1e-10 relative), and BatchHVP's Σ_n H_n v against
// central differences of the gradient, B·(ḡ(θ+hv) − ḡ(θ−hv))/(2h), and
// uᵀ(Σ_n H_n v) against the reference's four-point second difference
// B·[L(θ+hu+hv) − L(θ+hu−hv) − L(θ−hu+hv) + L(θ−hu−hv)]/(4h²) (h = 1e-3:
// error O(h²) ≈ 1e-6 relative).
func TestFamiliesMatchReference(t *testing.T) {
	for i, fc := range familyCases {
		t.Run(fc.name, func(t *testing.T) {
			a, d := familyArch(t, i)
			const k, b = 3, 4
			theta, v, rows := familyTrials(t, a, d, k, b, uint64(i)+40)
			gn, err := CompileBatch(a, tensor.Float64, k, b, BatchGrad)
			if err != nil {
				t.Fatal(err)
			}
			defer gn.Close()
			hn, err := CompileBatch(a, tensor.Float64, k, b, BatchHVP)
			if err != nil {
				t.Fatal(err)
			}
			defer hn.Close()
			loss, g := batchGrad(t, gn, d, theta, rows)
			hv := batchHVP(t, hn, d, theta, v, rows)
			net, err := Compile(a, tensor.Float64, b, false)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(uint64(i), 99))
			for tr := 0; tr < k; tr++ {
				want := refMeanLoss(a, theta[tr], d, rows[tr])
				if math.Abs(loss[tr]-want) > 1e-12*math.Abs(want) {
					t.Errorf("trial %d: loss %.15g, reference %.15g", tr, loss[tr], want)
				}
				sum, _, err := net.Eval(NewParams(a, splitParams(a, theta[tr]), tensor.Float64), d, rows[tr], 0)
				if err != nil {
					t.Fatal(err)
				}
				if math.Abs(sum/b-want) > 1e-12*math.Abs(want) {
					t.Errorf("trial %d: nets' forward (graph.Net) loss %.15g, reference %.15g", tr, sum/b, want)
				}
			}
			// Gradient: coordinates of every parameter tensor of trial 0.
			const h = 1e-5
			scale := math.Max(maxAbs(g[0]), 1e-3)
			worst, off := 0.0, 0
			for _, p := range a.Params {
				for c := 0; c < 4; c++ {
					j := off + r.IntN(p.Size())
					x := append([]float64(nil), theta[0]...)
					x[j] += h
					lp := refMeanLoss(a, x, d, rows[0])
					x[j] -= 2 * h
					lm := refMeanLoss(a, x, d, rows[0])
					fd := (lp - lm) / (2 * h)
					if math.Abs(fd-g[0][j]) > 1e-7*scale {
						t.Errorf("%s coordinate %d: gradient %.12g, finite difference %.12g", p.Name, j, g[0][j], fd)
					}
					worst = math.Max(worst, math.Abs(fd-g[0][j])/scale)
				}
				off += p.Size()
			}
			// HVP against differences of the gradient (unit directions).
			const hh = 1e-5
			unit := make([][]float64, k)
			plus, minus := make([][]float64, k), make([][]float64, k)
			for tr := range unit {
				unit[tr] = make([]float64, len(v[tr]))
				nv := norm(v[tr])
				for j, x := range v[tr] {
					unit[tr][j] = x / nv
				}
				plus[tr], minus[tr] = shifted(theta[tr], unit[tr], hh), shifted(theta[tr], unit[tr], -hh)
			}
			hu := batchHVP(t, hn, d, theta, unit, rows)
			_, gp := batchGrad(t, gn, d, plus, rows)
			_, gm := batchGrad(t, gn, d, minus, rows)
			worstH := 0.0
			for tr := 0; tr < k; tr++ {
				s := math.Max(maxAbs(hu[tr]), 1e-3)
				for j := range hu[tr] {
					fd := b * (gp[tr][j] - gm[tr][j]) / (2 * hh)
					if math.Abs(fd-hu[tr][j]) > 1e-6*s {
						t.Fatalf("trial %d: (Hv)[%d] = %.12g, finite difference %.12g", tr, j, hu[tr][j], fd)
					}
					worstH = math.Max(worstH, math.Abs(fd-hu[tr][j])/s)
				}
			}
			// uᵀHv against the reference loss alone (trial 1).
			const h2 = 1e-3
			u := randomVec(a.NumParams(), r)
			nu, nv := norm(u), norm(v[1])
			for j := range u {
				u[j] /= nu
			}
			vv := make([]float64, len(v[1]))
			for j, x := range v[1] {
				vv[j] = x / nv
			}
			l := func(su, sv float64) float64 {
				x := shifted(shifted(theta[1], u, su*h2), vv, sv*h2)
				return refMeanLoss(a, x, d, rows[1])
			}
			fd := b * (l(1, 1) - l(1, -1) - l(-1, 1) + l(-1, -1)) / (4 * h2 * h2)
			got := dot(u, hv[1]) / nv
			if math.Abs(fd-got) > 1e-5*math.Max(math.Abs(fd), norm(hv[1])/nv) {
				t.Errorf("uᵀHv = %.12g, reference second difference %.12g", got, fd)
			}
			t.Logf("%d parameters: grad fd error %.1e, Hv fd error %.1e, uᵀHv %.6g vs %.6g", a.NumParams(), worst, worstH, got, fd)
		})
	}
}

// TestFamiliesWalkerMatchesTapeMachine runs every family's Grad and HVP
// graphs through the walker on the float64 CPU twin (DeviceNet) and
// compares with the TapeMachine BatchNet (1e-10 relative), and the device
// test loss (DeviceTestLoss, the walked forward pass) with the reference
// over the whole pool (1e-12).
func TestFamiliesWalkerMatchesTapeMachine(t *testing.T) {
	dev := kernels.NewCPU(kernels.F64)
	for i, fc := range familyCases {
		t.Run(fc.name, func(t *testing.T) {
			a, d := familyArch(t, i)
			dd, err := UploadData(dev, d)
			if err != nil {
				t.Fatal(err)
			}
			defer dd.Close()
			const k, b = 3, 4
			theta, v, rows := familyTrials(t, a, d, k, b, uint64(i)+70)
			for _, kind := range []BatchKind{BatchGrad, BatchHVP} {
				cpu, err := CompileBatch(a, tensor.Float64, k, b, kind)
				if err != nil {
					t.Fatal(err)
				}
				dn, err := NewDeviceNet(a, dd, k, b, kind)
				if err != nil {
					t.Fatal(err)
				}
				want, got := matrix(k, a.NumParams()), matrix(k, a.NumParams())
				lw, lg := make([]float64, k), make([]float64, k)
				if kind == BatchGrad {
					if err := cpu.Grad(theta, d, rows, lw, want); err != nil {
						t.Fatal(err)
					}
					if err := dn.Grad(theta, rows, lg, got); err != nil {
						t.Fatal(err)
					}
				} else {
					if err := cpu.HVP(theta, d, rows, v, want); err != nil {
						t.Fatal(err)
					}
					if err := dn.HVP(theta, rows, v, got); err != nil {
						t.Fatal(err)
					}
				}
				cpu.Close()
				dn.Close()
				closeTo(t, fmt.Sprintf("%s loss", kind), lg, lw, 1e-10)
				for tr := range got {
					closeTo(t, fmt.Sprintf("%s trial %d", kind, tr), got[tr], want[tr], 1e-10)
				}
			}
			tl, err := NewDeviceTestLoss(a, dd, 2, 5) // chunks of 5 and 2 of the 12 examples
			if err != nil {
				t.Fatal(err)
			}
			defer tl.Close()
			loss, acc := make([]float64, k), make([]float64, k)
			if err := tl.TestLoss(theta, loss, acc); err != nil {
				t.Fatal(err)
			}
			all := make([]int, d.Len())
			for j := range all {
				all[j] = j
			}
			for tr := range theta {
				want := refMeanLoss(a, theta[tr], d, all)
				if math.Abs(loss[tr]-want) > 1e-12*math.Abs(want) || acc[tr] < 0 || acc[tr] > 1 {
					t.Errorf("trial %d: device test loss %.15g (accuracy %g), reference %.15g", tr, loss[tr], acc[tr], want)
				}
			}
		})
	}
}

// closeTo fails unless |got − want| ≤ tol·max|want| elementwise.
func closeTo(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	scale := math.Max(maxAbs(want), 1e-3)
	for j := range got {
		if !(math.Abs(got[j]-want[j]) <= tol*scale) {
			t.Fatalf("%s[%d] = %v, want %v (scale %g)", what, j, got[j], want[j], scale)
		}
	}
}

// TestFamiliesIndependentOfK: every trial's loss, gradient and
// Hessian-vector product are bitwise the same in a batch of K = 3 and
// alone (K = 1), on the TapeMachine and on the walker (CPU twin), in
// float64 and float32 (float32 products through gonum's BLAS are a known
// exception, logged: see below).
func TestFamiliesIndependentOfK(t *testing.T) {
	for i, fc := range familyCases {
		t.Run(fc.name, func(t *testing.T) {
			a, d := familyArch(t, i)
			const k, b = 3, 4
			theta, v, rows := familyTrials(t, a, d, k, b, uint64(i)+90)
			run := func(kk int, tr int, dt tensor.Dtype, dat *Data, dev kernels.Device, dd *DeviceData) (loss []float64, g, hv [][]float64) {
				th, vs, rs := theta, v, rows
				if kk == 1 {
					th, vs, rs = theta[tr:tr+1], v[tr:tr+1], rows[tr:tr+1]
				}
				loss, g, hv = make([]float64, kk), matrix(kk, a.NumParams()), matrix(kk, a.NumParams())
				if dev == nil {
					gn, err := CompileBatch(a, dt, kk, b, BatchGrad)
					if err != nil {
						t.Fatal(err)
					}
					defer gn.Close()
					hn, err := CompileBatch(a, dt, kk, b, BatchHVP)
					if err != nil {
						t.Fatal(err)
					}
					defer hn.Close()
					return loss, batchGradInto(t, gn, dat, th, rs, loss, g), batchHVP(t, hn, dat, th, vs, rs)
				}
				gn, err := NewDeviceNet(a, dd, kk, b, BatchGrad)
				if err != nil {
					t.Fatal(err)
				}
				defer gn.Close()
				hn, err := NewDeviceNet(a, dd, kk, b, BatchHVP)
				if err != nil {
					t.Fatal(err)
				}
				defer hn.Close()
				if err := gn.Grad(th, rs, loss, g); err != nil {
					t.Fatal(err)
				}
				if err := hn.HVP(th, rs, vs, hv); err != nil {
					t.Fatal(err)
				}
				return loss, g, hv
			}
			for _, path := range []string{"tape float64", "tape float32", "cpu float64", "cpu float32"} {
				var dev kernels.Device
				var dd *DeviceData
				dt, dat := tensor.Float64, d
				if strings.HasSuffix(path, "32") {
					dt, dat = tensor.Float32, to32(d)
				}
				switch path {
				case "cpu float64":
					dev = kernels.NewCPU(kernels.F64)
				case "cpu float32":
					dev = kernels.NewCPU(kernels.F32)
				}
				if dev != nil {
					var err error
					if dd, err = UploadData(dev, d); err != nil {
						t.Fatal(err)
					}
				}
				// gonum's float32 dot products (internal/asm/f32) first step to
				// a 16-byte boundary, so their summation order depends on
				// where a trial's slice starts: float32 products through gonum
				// (the CPU twin; graph's gemm without the openblas tag) are
				// K-dependent when a per-trial tensor is not a multiple of 4
				// elements (mlp width 7, the CIFAR convnet of width 3). Known;
				// logged, not failed, until those products stop using gonum's
				// f32 kernels.
				_, gonumBLAS := tensor.WhichBLAS().(gonum.Implementation)
				known := path == "cpu float32" || path == "tape float32" && gonumBLAS
				fail := t.Errorf
				if known {
					fail = t.Logf
				}
				l3, g3, h3 := run(k, 0, dt, dat, dev, dd)
			trials:
				for tr := 0; tr < k; tr++ {
					l1, g1, h1 := run(1, tr, dt, dat, dev, dd)
					if math.Float64bits(l1[0]) != math.Float64bits(l3[tr]) {
						fail("%s trial %d: loss %v alone, %v in a batch of %d", path, tr, l1[0], l3[tr], k)
					}
					for j := range g1[0] {
						if math.Float64bits(g1[0][j]) != math.Float64bits(g3[tr][j]) ||
							math.Float64bits(h1[0][j]) != math.Float64bits(h3[tr][j]) {
							fail("%s trial %d entry %d: gradient %v / %v, Hv %v / %v alone / in a batch", path, tr, j, g1[0][j], g3[tr][j], h1[0][j], h3[tr][j])
							break trials
						}
					}
				}
				if dd != nil {
					dd.Close()
				}
			}
		})
	}
}

func batchGradInto(t testing.TB, n *BatchNet, d *Data, theta [][]float64, rows [][]int, loss []float64, g [][]float64) [][]float64 {
	t.Helper()
	if err := n.Grad(theta, d, rows, loss, g); err != nil {
		t.Fatal(err)
	}
	return g
}
