package cudaemu_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/perturb/perturb/graph"
	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/kernels/cudaemu"
	"github.com/perturb/perturb/kernels/devtest"
	"github.com/perturb/perturb/nets"
)

// open builds the emulator with one multiprocessor (at most 32 blocks of
// 256 threads: the larger cases wrap the grid-stride loops) and two
// workers, or skips without a C++ compiler.
func open(t *testing.T) *cudaemu.Device {
	t.Helper()
	d, err := cudaemu.Open(cudaemu.Options{SMs: 1, Workers: 2})
	if errors.Is(err, cudaemu.ErrNoCompiler) {
		t.Skipf("CUDA emulation skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// same reports whether a and b hold the same float32 values (NaN equal to
// NaN) and, if not, the first difference.
func same(what string, got, want []float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("%s: %d values, CPU %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] && !(math.IsNaN(got[i]) && math.IsNaN(want[i])) {
			return fmt.Errorf("%s[%d] = %v, CPU float32 %v", what, i, got[i], want[i])
		}
	}
	return nil
}

// TestCUDAEmulation runs the device parity suite on perturb.cu compiled
// for the CPU (kernels/cudaemu) against the exact CPU twin (NewExactCPU) in float32, bit for
// bit: every kernel (kernels/devtest), the bf16/fp16/tf32 rounding, and
// the walker's programs — DeviceNet's gradient and HVP, a few steps of
// training through DeviceBackend and DeviceEval's test loss — for the
// logistic and convnet models.
func TestCUDAEmulation(t *testing.T) {
	emu := open(t)
	cpu := kernels.NewExactCPU(kernels.F32)
	t.Logf("device: %s", emu.Name())

	t.Run("kernels", func(t *testing.T) {
		r := rand.New(rand.NewSource(1))
		for _, o := range devtest.Ops() {
			in := devtest.Inputs(o, r)
			want, err := devtest.Run(cpu, o, in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := devtest.Run(emu, o, in)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if err := same(fmt.Sprintf("%s output %d", o.Name, i), got[i], want[i]); err != nil {
					t.Error(err)
				}
			}
		}
	})

	t.Run("round", func(t *testing.T) {
		x := devtest.RoundInputs()
		for _, f := range []kernels.Format{kernels.BF16, kernels.FP16, kernels.TF32} {
			want, err := devtest.Round(cpu, x, f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := devtest.Round(emu, x, f)
			if err != nil {
				t.Fatal(err)
			}
			if err := same(fmt.Sprintf("format %d", f), got, want); err != nil {
				t.Error(err)
			}
		}
	})

	data := randomData(60)
	upload := func(t *testing.T, d kernels.Device) *graph.DeviceData {
		dd, err := graph.UploadData(d, data)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dd.Close() })
		return dd
	}
	for _, name := range []string{"logistic", "convnet"} {
		t.Run(name, func(t *testing.T) {
			arch, err := nets.New(name, 1, 28, 28, 10)
			if err != nil {
				t.Fatal(err)
			}
			vals, err := arch.Init(1)
			if err != nil {
				t.Fatal(err)
			}
			ed, cd := upload(t, emu), upload(t, cpu)
			const k, b = 3, 5
			r := rand.New(rand.NewSource(3))
			theta, v := make([][]float64, k), make([][]float64, k)
			rows, pts := make([][]int, k), make([][]nets.Sample, k)
			for i := range theta {
				for _, p := range vals {
					for _, x := range p {
						theta[i] = append(theta[i], float64(float32(x*(1+0.3*r.NormFloat64()))))
						v[i] = append(v[i], float64(float32(r.NormFloat64())))
					}
				}
				for j := 0; j < b; j++ {
					rows[i] = append(rows[i], r.Intn(data.Len()))
					pts[i] = append(pts[i], nets.Sample{Row: rows[i][j]})
				}
			}
			newOut := func() [][]float64 {
				out := make([][]float64, k)
				for i := range out {
					out[i] = make([]float64, arch.NumParams())
				}
				return out
			}

			// DeviceNet: the batched gradient and HVP programs.
			for _, kind := range []graph.BatchKind{graph.BatchGrad, graph.BatchHVP} {
				var res [2][][]float64
				var loss [2][]float64
				for di, dd := range []*graph.DeviceData{cd, ed} {
					net, err := graph.NewDeviceNet(arch, dd, k, b, kind)
					if err != nil {
						t.Fatal(err)
					}
					res[di], loss[di] = newOut(), make([]float64, k)
					if kind == graph.BatchGrad {
						err = net.Grad(theta, rows, loss[di], res[di])
					} else {
						err = net.HVP(theta, rows, v, res[di])
					}
					if err != nil {
						t.Fatalf("%s on %s: %v", kind, dd.Dev.Name(), err)
					}
					if err := net.Close(); err != nil {
						t.Fatal(err)
					}
				}
				for i := range res[0] {
					if err := same(fmt.Sprintf("%s trial %d", kind, i), res[1][i], res[0][i]); err != nil {
						t.Error(err)
					}
				}
				if err := same(fmt.Sprintf("%s loss", kind), loss[1], loss[0]); err != nil {
					t.Error(err)
				}
			}

			// DeviceBackend: four SGD steps (the trial path's training), a
			// padded call with fewer trials than the cap.
			var trained [2][][]float64
			for di, dd := range []*graph.DeviceData{cd, ed} {
				be, err := graph.NewDeviceBackend(arch, dd, k+1)
				if err != nil {
					t.Fatal(err)
				}
				th := make([][]float64, k)
				for i := range th {
					th[i] = append([]float64(nil), theta[i]...)
				}
				g, loss := newOut(), make([]float64, k)
				for step := 0; step < 4; step++ {
					if err := be.Grad(th, pts, loss, g); err != nil {
						t.Fatalf("step %d on %s: %v", step, dd.Dev.Name(), err)
					}
					for i := range th {
						for j := range th[i] {
							th[i][j] -= 0.1 * g[i][j]
						}
						be.Round(th[i])
					}
					trained[di] = append(trained[di], append([]float64(nil), loss...))
				}
				trained[di] = append(trained[di], th...)
				if err := be.Close(); err != nil {
					t.Fatal(err)
				}
			}
			for i := range trained[0] {
				if err := same(fmt.Sprintf("training row %d", i), trained[1][i], trained[0][i]); err != nil {
					t.Error(err)
				}
			}

			// DeviceEval: the test loss over the pool in chunks (a short
			// last chunk).
			var tl [2][2][]float64
			for di, dd := range []*graph.DeviceData{cd, ed} {
				ev, err := graph.NewDeviceEval(arch, dd, k, 25)
				if err != nil {
					t.Fatal(err)
				}
				tl[di][0], tl[di][1] = make([]float64, k), make([]float64, k)
				if err := ev.TestLoss(theta, tl[di][0], tl[di][1]); err != nil {
					t.Fatalf("test loss on %s: %v", dd.Dev.Name(), err)
				}
				if err := ev.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if err := same("test loss", tl[1][0], tl[0][0]); err != nil {
				t.Error(err)
			}
			if err := same("test accuracy", tl[1][1], tl[0][1]); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestCUDAEmulationArguments: operands of the wrong lengths are errors of
// the shared launch plans (kernels/launch.go), before any launch.
func TestCUDAEmulationArguments(t *testing.T) {
	emu := open(t)
	b, err := emu.Alloc(10)
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Free(b)
	small, err := emu.Alloc(5)
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Free(small)
	if err := emu.Unary(kernels.Neg, b, small); err == nil {
		t.Fatal("unary on operands of 10 and 5 elements: no error")
	}
	if _, err := emu.View(b, 11); err == nil {
		t.Fatal("view of 11 elements of 10: no error")
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

// TestEmulatorBarriers checks the emulator's fiber mode on its own test
// kernels (csrc/selftest.cu): a block reduction through __shared__ memory
// and __syncthreads gives each block's sum in tree order and, through
// atomicAdd from blocks on two OS threads, the total; a barrier that half
// of each block skips is an error; perturb.cu's kernels give the same
// results in fiber mode; and without fiber mode __syncthreads is an
// error, not a silent wrong result.
func TestEmulatorBarriers(t *testing.T) {
	d, err := cudaemu.Open(cudaemu.Options{SMs: 1, Workers: 2, Fibers: true})
	if errors.Is(err, cudaemu.ErrNoCompiler) {
		t.Skipf("CUDA emulation skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const n, block = 3000, kernels.LaunchBlock
	grid := (n + block - 1) / block
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i%7) - 2.5
	}
	in, err := d.Alloc(n)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free(in)
	out, err := d.Alloc(grid + 1)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free(out)
	if err := d.Upload32(in, 0, x); err != nil {
		t.Fatal(err)
	}
	if err := d.Fill(out, 0); err != nil {
		t.Fatal(err)
	}
	args := []kernels.Arg{{Kind: kernels.ArgBuffer, Operand: 0}, {Kind: kernels.ArgBuffer, Operand: 1}, {Kind: kernels.ArgInt, Int: n}}
	l := kernels.Launch{Kernel: "emu_selftest_block_sum", N: n, Args: args}
	if g := l.Grid(1); g != grid {
		t.Fatalf("grid %d, want %d", g, grid)
	}
	if err := d.Launch(l, out, in); err != nil {
		t.Fatal(err)
	}
	got := make([]float64, grid+1)
	if err := d.Download(got, out, 0); err != nil {
		t.Fatal(err)
	}
	var total float64
	for b := 0; b < grid; b++ {
		s := make([]float32, block)
		for i := range s {
			if j := b*block + i; j < n {
				s[i] = x[j]
			}
		}
		for h := block / 2; h > 0; h /= 2 {
			for i := 0; i < h; i++ {
				s[i] += s[i+h]
			}
		}
		if got[b] != float64(s[0]) {
			t.Errorf("block %d sum %v, want %v", b, got[b], s[0])
		}
		total += float64(s[0])
	}
	if math.Abs(got[grid]-total) > 1e-3 {
		t.Errorf("atomic total %v, want %v", got[grid], total)
	}

	l.Kernel = "emu_selftest_divergent" // copies in to itself
	if err := d.Launch(l, in, in); err == nil || !strings.Contains(err.Error(), "__syncthreads not reached by every thread") {
		t.Errorf("divergent barrier: error %v", err)
	} else {
		t.Logf("divergent barrier: %v", err)
	}

	// perturb.cu's kernels in fiber mode: the same results.
	cpu := kernels.NewExactCPU(kernels.F32)
	r := rand.New(rand.NewSource(1))
	for _, o := range devtest.Ops() {
		in := devtest.Inputs(o, r)
		want, err := devtest.Run(cpu, o, in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := devtest.Run(d, o, in)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if err := same(fmt.Sprintf("%s output %d (fibers)", o.Name, i), got[i], want[i]); err != nil {
				t.Error(err)
			}
		}
	}

	plain := open(t)
	l.Kernel = "emu_selftest_block_sum"
	if err := plain.Launch(l, out, in); err == nil {
		t.Error("__syncthreads without fiber mode: no error")
	}
}
