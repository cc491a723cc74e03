//go:build gpu

package cudev

import (
	"math"
	"math/rand"
	"os"
	"testing"

	"github.com/perturb/perturb/graph"
	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// open returns the GPU device in debug mode (a synchronisation and error
// check after every launch), or skips the test when there is none.
func open(t *testing.T) *Device {
	t.Helper()
	if err := Probe(); err != nil {
		t.Skipf("no usable GPU: %v", err)
	}
	os.Setenv("PERTURB_GPU_SYNC", "1")
	d, err := Open(0)
	if err != nil {
		t.Fatalf("open the GPU: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// op runs one kernel on a device from float64 inputs and returns its
// outputs; outputs are poisoned (NaN) first.
type op struct {
	name string
	in   []int // input lengths
	out  []int // output lengths
	run  func(d kernels.Device, out, in []kernels.Buffer) error
	// scale of the tolerance (products over long sums)
	tol float64
}

func ops() []op {
	conv := kernels.Conv{Trials: 3, Images: 4, C: 2, H: 12, W: 12, Size: 5, Stride: 2}
	convM := kernels.Conv{Trials: 3, Images: 4, C: 10, H: 12, W: 12, Size: 5, Stride: 2, CBHW: true}
	convP := kernels.Conv{Trials: 3, Images: 4, C: 6, H: 5, W: 4, Size: 3, Stride: 1, Pad: 1, CBHW: true}
	g := kernels.Gemm{Batch: 5, M: 33, N: 17, K: 250, TransA: true, Alpha: 0.3}.Strided()
	g2 := kernels.Gemm{Batch: 5, M: 33, N: 17, K: 250, TransB: true, Alpha: 1, Beta: 1}.Strided()
	return []op{
		{"gemm TN", []int{5 * 33 * 250, 5 * 250 * 17}, []int{5 * 33 * 17}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Gemm(g, o[0], i[0], i[1]) }, 30},
		{"gemm NT beta", []int{5 * 33 * 250, 5 * 250 * 17, 5 * 33 * 17}, []int{5 * 33 * 17}, func(d kernels.Device, o, i []kernels.Buffer) error {
			if err := d.Copy(o[0], 0, i[2], 0, 5*33*17); err != nil {
				return err
			}
			return d.Gemm(g2, o[0], i[0], i[1])
		}, 30},
		{"bias_act cm", []int{4 * 6 * 7, 4 * 6}, []int{4 * 6 * 7}, func(d kernels.Device, o, i []kernels.Buffer) error {
			if err := d.Copy(o[0], 0, i[0], 0, 4*6*7); err != nil {
				return err
			}
			return d.BiasAct(o[0], 4, 6, 7, 0.37, i[1], true, true)
		}, 1},
		{"bias_act rows", []int{4 * 6 * 7, 4 * 7}, []int{4 * 6 * 7}, func(d kernels.Device, o, i []kernels.Buffer) error {
			if err := d.Copy(o[0], 0, i[0], 0, 4*6*7); err != nil {
				return err
			}
			return d.BiasAct(o[0], 4, 6, 7, 0.37, i[1], false, false)
		}, 1},
		{"neg", []int{1000}, []int{1000}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Unary(kernels.Neg, o[0], i[0]) }, 1},
		{"view", []int{10}, []int{10}, func(d kernels.Device, o, i []kernels.Buffer) error {
			// out = (−in[0:4], in[4:10]) through views of both buffers.
			if err := d.Copy(o[0], 0, i[0], 0, 10); err != nil {
				return err
			}
			vo, err := d.View(o[0], 4)
			if err != nil {
				return err
			}
			vi, err := d.View(i[0], 4)
			if err != nil {
				return err
			}
			return d.Unary(kernels.Neg, vo, vi)
		}, 0},
		{"exp", []int{1000}, []int{1000}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Unary(kernels.Exp, o[0], i[0]) }, 1},
		{"tanh", []int{1000}, []int{1000}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Unary(kernels.Tanh, o[0], i[0]) }, 1},
		{"add", []int{999, 999}, []int{999}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Binary(kernels.Add, o[0], i[0], i[1]) }, 1},
		{"sub", []int{999, 999}, []int{999}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Binary(kernels.Sub, o[0], i[0], i[1]) }, 1},
		{"mul", []int{999, 999}, []int{999}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Binary(kernels.Mul, o[0], i[0], i[1]) }, 1},
		{"tanh_back", []int{500, 500}, []int{500}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.TanhBack(o[0], i[0], i[1]) }, 1},
		{"tanh_back2", []int{500, 500, 500}, []int{500}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.TanhBack2(o[0], i[0], i[1], i[2]) }, 1},
		{"sum mid", []int{7 * 40 * 3}, []int{7 * 3}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Sum(o[0], i[0], 7, 40, 3) }, 10},
		{"repeat", []int{7 * 3}, []int{7 * 5 * 3}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Repeat(o[0], i[0], 7, 5, 3) }, 0},
		{"im2col", []int{conv.ImagesLen()}, []int{conv.ColsLen()}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Im2col(conv, o[0], i[0]) }, 0},
		{"im2col cbhw", []int{convM.ImagesLen()}, []int{convM.ColsLen()}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Im2col(convM, o[0], i[0]) }, 0},
		{"col2im", []int{conv.ColsLen()}, []int{conv.ImagesLen()}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Col2im(conv, o[0], i[0]) }, 4},
		{"col2im cbhw", []int{convM.ColsLen()}, []int{convM.ImagesLen()}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Col2im(convM, o[0], i[0]) }, 4},
		{"im2col padded", []int{convP.ImagesLen()}, []int{convP.ColsLen()}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Im2col(convP, o[0], i[0]) }, 0},
		{"col2im padded", []int{convP.ColsLen()}, []int{convP.ImagesLen()}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Col2im(convP, o[0], i[0]) }, 4},
		{"flatten", []int{3 * 10 * 4 * 16}, []int{3 * 10 * 4 * 16}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Flatten(o[0], i[0], 3, 10, 4, 16, false) }, 0},
		{"flatten inverse", []int{3 * 10 * 4 * 16}, []int{3 * 10 * 4 * 16}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Flatten(o[0], i[0], 3, 10, 4, 16, true) }, 0},
		{"log_softmax", []int{60 * 10}, []int{60 * 10}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.LogSoftmax(o[0], i[0], 60, 10) }, 4},
		{"log_softmax_back", []int{60 * 10, 60 * 10}, []int{60 * 10}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.LogSoftmaxBack(o[0], i[0], i[1], 60, 10) }, 4},
		{"moments", []int{64 * 30}, []int{30, 30}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Moments(o[0], o[1], i[0], 64, 30) }, 20},
		{"tanh_jet", []int{4 * 100}, []int{4 * 100}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.TanhJet(o[0], i[0], 3, 100) }, 10},
	}
}

// TestKernelParity compares every kernel with its CPU float64 twin on fresh
// random inputs, outputs poisoned before each run.
func TestKernelParity(t *testing.T) {
	gpu := open(t)
	cpu := kernels.NewCPU(kernels.F64)
	r := rand.New(rand.NewSource(1))
	for _, o := range ops() {
		t.Run(o.name, func(t *testing.T) {
			in := make([][]float64, len(o.in))
			for i, n := range o.in {
				in[i] = make([]float64, n)
				for j := range in[i] {
					in[i][j] = float64(float32(r.NormFloat64()))
				}
			}
			res := make([][][]float64, 2)
			for di, d := range []kernels.Device{cpu, gpu} {
				ins, outs := make([]kernels.Buffer, len(in)), make([]kernels.Buffer, len(o.out))
				for i, x := range in {
					b, err := d.Alloc(len(x))
					if err != nil {
						t.Fatal(err)
					}
					defer d.Free(b)
					if err := d.Upload(b, 0, x); err != nil {
						t.Fatal(err)
					}
					ins[i] = b
				}
				for i, n := range o.out {
					b, err := d.Alloc(n)
					if err != nil {
						t.Fatal(err)
					}
					defer d.Free(b)
					if err := d.Fill(b, math.NaN()); err != nil {
						t.Fatal(err)
					}
					outs[i] = b
				}
				if err := o.run(d, outs, ins); err != nil {
					t.Fatalf("%s: %v", d.Name(), err)
				}
				if err := d.Sync(); err != nil {
					t.Fatalf("%s: %v", d.Name(), err)
				}
				for _, b := range outs {
					x := make([]float64, b.Len())
					if err := d.Download(x, b, 0); err != nil {
						t.Fatal(err)
					}
					res[di] = append(res[di], x)
				}
			}
			eps := 6e-8 * math.Max(o.tol, 1) * 4
			for i := range res[0] {
				for j, want := range res[0][i] {
					got := res[1][i][j]
					if math.IsNaN(got) || math.Abs(got-want) > eps*math.Max(1, math.Abs(want)) {
						t.Fatalf("output %d[%d] = %v, CPU float64 %v", i, j, got, want)
					}
				}
			}
		})
	}
}

// TestRoundParity: bf16, fp16 and tf32 rounding bit for bit against the
// CPU twin (nets/precision).
func TestRoundParity(t *testing.T) {
	gpu := open(t)
	cpu := kernels.NewCPU(kernels.F32)
	r := rand.New(rand.NewSource(2))
	x := make([]float64, 4096)
	for i := range x {
		x[i] = r.NormFloat64() * math.Pow(2, float64(r.Intn(60)-40))
	}
	x = append(x, 65519, 65520, 1e-7, -3e-8, 0, math.Inf(1), math.NaN())
	for _, f := range []kernels.Format{kernels.BF16, kernels.FP16, kernels.TF32} {
		var res [2][]float64
		for di, d := range []kernels.Device{cpu, gpu} {
			b, err := d.Alloc(len(x))
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Upload(b, 0, x); err != nil {
				t.Fatal(err)
			}
			if err := d.Round(b, f); err != nil {
				t.Fatal(err)
			}
			res[di] = make([]float64, len(x))
			if err := d.Download(res[di], b, 0); err != nil {
				t.Fatal(err)
			}
			d.Free(b)
		}
		for i := range x {
			if res[0][i] != res[1][i] && !(math.IsNaN(res[0][i]) && math.IsNaN(res[1][i])) {
				t.Fatalf("format %d: round(%v) = %v, CPU %v", f, x[i], res[1][i], res[0][i])
			}
		}
	}
}

func randomData(n int) *graph.Data {
	r := rand.New(rand.NewSource(7))
	d := &graph.Data{Dim: 784, Classes: 10, Y: make([]uint8, n), X32: make([]float32, n*784)}
	for i := range d.X32 {
		d.X32[i] = float32(r.Float64())
	}
	for i := range d.Y {
		d.Y[i] = uint8(r.Intn(10))
	}
	return d
}

// TestTrialPathParity runs the batched gradient and HVP graphs of both
// image models on the GPU and on the CPU in float64, and checks that
// trial k's results on the GPU do not depend on K (K = 1 against K = 7).
func TestTrialPathParity(t *testing.T) {
	gpu := open(t)
	d := randomData(500)
	gd, err := graph.UploadData(gpu, d)
	if err != nil {
		t.Fatal(err)
	}
	d64 := &graph.Data{Dim: d.Dim, Classes: d.Classes, Y: d.Y, X64: make([]float64, len(d.X32))}
	for i, v := range d.X32 {
		d64.X64[i] = float64(v)
	}
	cd, err := graph.UploadData(kernels.NewCPU(kernels.F64), d64)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"logistic", "convnet"} {
		arch, err := nets.New(name, 1, 28, 28, 10)
		if err != nil {
			t.Fatal(err)
		}
		vals, err := arch.Init(1)
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range []graph.BatchKind{graph.BatchGrad, graph.BatchHVP} {
			const k, b = 7, 16
			r := rand.New(rand.NewSource(3))
			theta, v, rows := make([][]float64, k), make([][]float64, k), make([][]int, k)
			for i := range theta {
				for _, p := range vals {
					for _, x := range p {
						theta[i] = append(theta[i], float64(float32(x*(1+0.3*r.NormFloat64()))))
						v[i] = append(v[i], float64(float32(r.NormFloat64())))
					}
				}
				for j := 0; j < b; j++ {
					rows[i] = append(rows[i], r.Intn(d.Len()))
				}
			}
			run := func(data *graph.DeviceData, kk int) ([][]float64, []float64) {
				net, err := graph.NewDeviceNet(arch, data, kk, b, kind)
				if err != nil {
					t.Fatal(err)
				}
				defer net.Close()
				out := make([][]float64, kk)
				for i := range out {
					out[i] = make([]float64, arch.NumParams())
				}
				loss := make([]float64, kk)
				if kind == graph.BatchGrad {
					err = net.Grad(theta[:kk], rows[:kk], loss, out)
				} else {
					err = net.HVP(theta[:kk], rows[:kk], v[:kk], out)
				}
				if err != nil {
					t.Fatal(err)
				}
				return out, loss
			}
			want, wl := run(cd, k)
			got, gl := run(gd, k)
			one, _ := run(gd, 1)
			for i := range got {
				scale := 0.0
				for _, w := range want[i] {
					scale = math.Max(scale, math.Abs(w))
				}
				for j := range got[i] {
					if math.IsNaN(got[i][j]) || math.Abs(got[i][j]-want[i][j]) > 1e-4*scale {
						t.Fatalf("%s %s trial %d [%d]: GPU %v, CPU float64 %v", name, kind, i, j, got[i][j], want[i][j])
					}
				}
				if math.Abs(gl[i]-wl[i]) > 1e-5*math.Max(1, wl[i]) {
					t.Fatalf("%s loss %d: GPU %v, CPU %v", name, i, gl[i], wl[i])
				}
			}
			for j := range one[0] {
				if one[0][j] != got[0][j] {
					t.Fatalf("%s %s: trial 0 [%d] is %v with K=1 and %v with K=7", name, kind, j, one[0][j], got[0][j])
				}
			}
		}
	}
}
