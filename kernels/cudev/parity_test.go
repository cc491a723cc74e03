//go:build gpu

package cudev

import (
	"math"
	"math/rand"
	"os"
	"testing"

	"github.com/perturb/perturb/graph"
	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/kernels/devtest"
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

// TestKernelParity compares every kernel of the parity suite
// (kernels/devtest) with its CPU float64 twin on fresh random inputs,
// outputs poisoned before each run.
func TestKernelParity(t *testing.T) {
	gpu := open(t)
	cpu := kernels.NewCPU(kernels.F64)
	r := rand.New(rand.NewSource(1))
	for _, o := range devtest.Ops() {
		t.Run(o.Name, func(t *testing.T) {
			in := devtest.Inputs(o, r)
			want, err := devtest.Run(cpu, o, in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := devtest.Run(gpu, o, in)
			if err != nil {
				t.Fatal(err)
			}
			eps := 6e-8 * math.Max(o.Tol, 1) * 4
			for i := range want {
				for j, w := range want[i] {
					g := got[i][j]
					if math.IsNaN(g) || math.Abs(g-w) > eps*math.Max(1, math.Abs(w)) {
						t.Fatalf("output %d[%d] = %v, CPU float64 %v", i, j, g, w)
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
	x := devtest.RoundInputs()
	for _, f := range []kernels.Format{kernels.BF16, kernels.FP16, kernels.TF32} {
		var res [2][]float64
		for di, d := range []kernels.Device{cpu, gpu} {
			var err error
			if res[di], err = devtest.Round(d, x, f); err != nil {
				t.Fatal(err)
			}
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
			// cuBLAS picks its algorithm by the batch count, so a trial's
			// values on the GPU depend on K at float32 rounding (seen on
			// an H200: 2e-7 relative), not bitwise as on the CPU.
			worst, scale := 0.0, 0.0
			for _, v := range one[0] {
				scale = math.Max(scale, math.Abs(v))
			}
			for j := range one[0] {
				d := math.Abs(one[0][j]-got[0][j]) / scale
				if !(d <= 1e-5) {
					t.Fatalf("%s %s: trial 0 [%d] is %v with K=1 and %v with K=7", name, kind, j, one[0][j], got[0][j])
				}
				worst = math.Max(worst, d)
			}
			t.Logf("%s %s: trial 0, K=1 against K=7: largest difference %.2g of the vector's largest element", name, kind, worst)
		}
	}
}
