package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// jetFamily is a model of the jets' family tests.
type jetFamily struct {
	name         string
	model        string
	size         nets.Size
	c, h, w, cls int
	needsPadding bool    // convnets deeper than 2 (padded 3×3 layers)
	step         float64 // the finite differences' step
}

// jetFamilies covers every kind of layer the builder walks: a dense layer
// alone (logistic), a stack of dense tanh layers (mlp of width 7 and depth
// 3), the paper's convnet, a narrower convnet on CIFAR-shaped 3×32×32
// images, and a convnet of depth 3 (its padded 3×3 layer).
var jetFamilies = []jetFamily{
	{name: "logistic", model: "logistic", c: 1, h: 4, w: 4, cls: 4, step: 0.2},
	{name: "mlp/w7d3", model: "mlp", size: nets.Size{Width: 7, Depth: 3}, c: 1, h: 4, w: 4, cls: 3, step: 0.2},
	{name: "convnet", model: "convnet", c: 1, h: 16, w: 16, cls: 3, step: 0.4},
	{name: "convnet/w4d2/3x32x32", model: "convnet", size: nets.Size{Width: 4, Depth: 2}, c: 3, h: 32, w: 32, cls: 3, step: 0.4},
	{name: "convnet/w3d3", model: "convnet", size: nets.Size{Width: 3, Depth: 3}, c: 1, h: 16, w: 16, cls: 3, step: 0.15, needsPadding: true},
}

// familyJets returns the family's model, a pool of 20 random examples and
// the model's jets (K, B) on the TapeMachine, or skips a padded convnet
// while im2colKernel has no padding.
func familyJets(t *testing.T, f jetFamily, dt tensor.Dtype, k, b int, dev kernels.Device) (*nets.Arch, *Data, *Jets) {
	t.Helper()
	a, err := nets.NewSized(f.model, f.c, f.h, f.w, f.cls, f.size)
	if err != nil {
		t.Fatal(err)
	}
	d := randomData(a, 20, rand.New(rand.NewPCG(31, 32)))
	if dt == tensor.Float32 {
		d = to32(d)
	}
	var j *Jets
	if dev == nil {
		j, err = NewJets(a, dt, d, k, b)
	} else {
		j, err = NewDeviceJets(a, dt, d, k, b, dev)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return a, d, j
}

// refLayers is a direct, loop-by-loop float64 forward pass of any model
// of nets.Arch.Layers (independent of the graphs' layouts): a convolution
// computes, for output channel o at (y, x),
//
//	tanh(s·Σ_{c,ky,kx} in[c, y·stride + ky − pad, x·stride + kx − pad]·W[(c·K + ky)·K + kx, o] + b_o)
//
// with zero padding, on maps stored channel by channel; a dense layer
// reads the previous maps in (y, x, channel) order.
func refLayers(a *nets.Arch, vals [][]float64, x []float64) []float64 {
	layers, err := a.Layers()
	if err != nil {
		panic(err)
	}
	h := append([]float64(nil), x...) // CHW maps, or a row
	conv := false
	var prev nets.Layer
	for _, l := range layers {
		w, b, s := vals[l.W], vals[l.B], l.Scale
		if l.Conv {
			out := make([]float64, l.Out*l.OutH*l.OutW)
			for o := 0; o < l.Out; o++ {
				for y := 0; y < l.OutH; y++ {
					for xx := 0; xx < l.OutW; xx++ {
						z := 0.0
						for c := 0; c < l.InC; c++ {
							for ky := 0; ky < l.K; ky++ {
								for kx := 0; kx < l.K; kx++ {
									iy, ix := y*l.Stride+ky-l.Pad, xx*l.Stride+kx-l.Pad
									if iy < 0 || ix < 0 || iy >= l.InH || ix >= l.InW {
										continue
									}
									z += h[(c*l.InH+iy)*l.InW+ix] * w[((c*l.K+ky)*l.K+kx)*l.Out+o]
								}
							}
						}
						out[(o*l.OutH+y)*l.OutW+xx] = math.Tanh(s*z + b[o])
					}
				}
			}
			h, conv, prev = out, true, l
			continue
		}
		if conv { // CHW to (y, x, c)
			p := prev.OutH * prev.OutW
			flat := make([]float64, len(h))
			for c := 0; c < prev.Out; c++ {
				for i := 0; i < p; i++ {
					flat[i*prev.Out+c] = h[c*p+i]
				}
			}
			h, conv = flat, false
		}
		z := make([]float64, l.Out)
		for o := range z {
			for i, v := range h {
				z[o] += v * w[i*l.Out+o]
			}
			z[o] = s*z[o] + b[o]
			if l.Tanh {
				z[o] = math.Tanh(z[o])
			}
		}
		h = z
	}
	return h
}

// TestRefLayersMatchesRefConvnet checks the generic reference against the
// convnet's own (refConvnet) on the paper's convnet.
func TestRefLayersMatchesRefConvnet(t *testing.T) {
	a, d := trialData(t, "convnet/3x19x17", 5, 41)
	r := rand.New(rand.NewPCG(42, 43))
	vals := splitParams(a, randomTheta(t, a, 1, r))
	for i := range 5 {
		x := d.X64[i*a.Dim() : (i+1)*a.Dim()]
		if diff := maxDiff(refLayers(a, vals, x), refConvnet(a, vals, x)); diff > 1e-13 {
			t.Errorf("example %d: refLayers and refConvnet differ by %.3g", i, diff)
		}
	}
}

// TestJetsFamiliesFiniteDifferences checks the jets of every family
// (float64, TapeMachine) against central finite differences of the loss
// along each direction by the independent reference (refLogits: the
// logistic closed form, refConvnet, or refLayers), as
// TestJetsFiniteDifferences: 11-point stencils with the family's step h
// (0.4; 0.2 for the models on 4×4 inputs and 0.15 for the narrow
// depth-3 convnet, whose few parameters make a unit direction move the
// logits more, so that the loss along the line has a smaller radius of
// convergence and the stencil's truncation error at 0.4 reaches 1e-5 for
// c_3; the difference to the stencil at 0.75h, logged, estimates it),
// tolerances
// relative to the largest |c_k| of the order of 1e-13 (c_0 = l), 1e-10
// (c_1 = g·v), 1e-8 (c_2 = vᵀHv/2) and 1e-7 (c_3 = J(v, v, v)/6).
func TestJetsFamiliesFiniteDifferences(t *testing.T) {
	for _, f := range jetFamilies {
		t.Run(f.name, func(t *testing.T) {
			const K, B, m = 3, 4, 5
			a, d, j := familyJets(t, f, tensor.Float64, K, B, nil)
			r := rand.New(rand.NewPCG(33, 34))
			theta, dirs, rows := jetSetup(t, a, d, K, B, r)
			got := coeffs(t, j, theta, dirs, rows)
			var worst, trunc, scale [4]float64
			for k := range dirs {
				for n, row := range rows[k] {
					l := func(s float64) float64 { return refSampleLoss(a, shifted(theta, dirs[k], s), d, row) }
					fd, fd2 := fdCoeffs(l, m, f.step), fdCoeffs(l, m, 0.75*f.step)
					for o := range 4 {
						scale[o] = math.Max(scale[o], math.Abs(fd[o]))
						trunc[o] = math.Max(trunc[o], math.Abs(fd[o]-fd2[o]))
						worst[o] = math.Max(worst[o], math.Abs(got[k*B+n][o]-fd[o]))
					}
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

// TestJetsFamiliesOnWalker checks the jets run by the walker on the CPU
// device against the TapeMachine's: the coefficients and the weighted
// covectors of every order, relative to the largest value, to 1e-10 in
// float64 (they differ by rounding only: the device's tanh recurrence and
// products sum in other orders; seen: 3e-15) and 1e-5 in float32
// (float32 products in other orders, and the cancellations of c_2 and
// c_3; seen: 1e-6).
func TestJetsFamiliesOnWalker(t *testing.T) {
	for _, f := range jetFamilies {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			t.Run(f.name+"/"+dt.String(), func(t *testing.T) {
				const K, B = 2, 3
				dd, tol := kernels.F64, 1e-10
				if dt == tensor.Float32 {
					dd, tol = kernels.F32, 1e-5
				}
				a, d, tape := familyJets(t, f, dt, K, B, nil)
				_, _, walk := familyJets(t, f, dt, K, B, kernels.NewCPU(dd))
				r := rand.New(rand.NewPCG(35, 36))
				theta, dirs, rows := jetSetup(t, a, d, K, B, r)
				w := randomVec(K*B, r)
				check := func(what string, got, want []float64) {
					t.Helper()
					scale := 0.0
					for _, v := range want {
						scale = math.Max(scale, math.Abs(v))
					}
					diff := maxDiff(got, want)
					t.Logf("%s: max |walker − tape| = %.2g (max |value| %.3g)", what, diff, scale)
					if diff > tol*scale || scale == 0 {
						t.Errorf("%s: walker and TapeMachine differ by %.3g (scale %.3g, tolerance %g relative)", what, diff, scale, tol)
					}
				}
				var got, want []float64
				for _, c := range coeffs(t, walk, theta, dirs, rows) {
					got = append(got, c[:]...)
				}
				for _, c := range coeffs(t, tape, theta, dirs, rows) {
					want = append(want, c[:]...)
				}
				check("coefficients", got, want)
				for order := 0; order <= jetOrder; order++ {
					got := covector(t, walk, order, theta, dirs, rows, w)
					want := covector(t, tape, order, theta, dirs, rows, w)
					check(fmt.Sprintf("covector %d", order), slices.Concat(got...), slices.Concat(want...))
				}
				// Only the log-sum-exp of the logits runs on the host.
				for i, jg := range walk.graphs {
					if jg == nil {
						continue
					}
					host := 0
					for _, op := range jg.dv.prog.Ops() {
						if strings.HasPrefix(op, "host ") {
							host++
							if !strings.HasPrefix(op, "host lsejet") {
								t.Errorf("graph %d runs %s on the host", i, op)
							}
						}
					}
					t.Logf("graph %d on %s: %d steps (%d on the host), %d elements", i, walk.dev.Name(), len(jg.dv.prog.Ops()), host, jg.dv.prog.Elements())
				}
			})
		}
	}
}

// TestDeviceJetsErrors checks NewDeviceJets' dtype check.
func TestDeviceJetsErrors(t *testing.T) {
	a, d := jetData(t, "logistic/1x4x4", 10, 131)
	_, err := NewDeviceJets(a, tensor.Float64, d, 1, 1, kernels.NewCPU(kernels.F32))
	if want := "jets of logistic: float32 device (cpu float32) for float64 jets"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

// TestLeibniz checks the product rule's terms, zero coefficients left
// out: for a = (a_0, a_1, 0, a_3) and b = (b_0, b_1, 0, 0) (a layer's
// weights), (ab)_n = Σ_i a_i b_{n−i}.
func TestLeibniz(t *testing.T) {
	g := G.NewGraph()
	node := func(name string) *G.Node { return G.NewScalar(g, tensor.Float64, G.WithName(name)) }
	a := series{node("a0"), node("a1"), nil, node("a3")}
	b := series{node("b0"), node("b1"), nil, nil}
	want := []string{"a0 b0", "a1 b0 a0 b1", "a1 b1", "a3 b0"}
	for n := 0; n <= jetOrder; n++ {
		var got []string
		for _, x := range leibniz(a, b, n) {
			got = append(got, x.Name())
		}
		if s := strings.Join(got, " "); s != want[n] {
			t.Errorf("coefficient %d: terms %q, want %q", n, s, want[n])
		}
	}
}
