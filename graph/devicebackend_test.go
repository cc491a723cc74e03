package graph

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// backendCase is K trials of random parameters, directions and samples.
func backendCase(t *testing.T, arch *nets.Arch, d *Data, k, b int, seed int64) (theta, v [][]float64, pts [][]nets.Sample) {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	vals, err := arch.Init(1)
	if err != nil {
		t.Fatal(err)
	}
	theta, v, pts = make([][]float64, k), make([][]float64, k), make([][]nets.Sample, k)
	for i := range theta {
		for _, p := range vals {
			for _, x := range p {
				theta[i] = append(theta[i], x*(1+0.3*r.NormFloat64()))
				v[i] = append(v[i], r.NormFloat64())
			}
		}
		for j := 0; j < b; j++ {
			pts[i] = append(pts[i], nets.Sample{Row: r.Intn(d.Len())})
		}
	}
	return theta, v, pts
}

func zeros(k, n int) [][]float64 {
	out := make([][]float64, k)
	for i := range out {
		out[i] = make([]float64, n)
	}
	return out
}

// TestDeviceBackendMatchesImageBackend checks the device backend on the
// CPU twin against the CPU backend (gorgonia's TapeMachine) for full
// batches, padded batches (fewer trials than Cap) and wider calls (more
// trials than Cap, as gdc makes), for Grad and HVP: within 1e-10 in
// float64, within float32 rounding in float32; a trial's values in a
// padded call are bitwise those of the same trial in the full call.
func TestDeviceBackendMatchesImageBackend(t *testing.T) {
	for _, tc := range []struct {
		dt  tensor.Dtype
		kdt kernels.DType
		tol float64
	}{{tensor.Float64, kernels.F64, 1e-10}, {tensor.Float32, kernels.F32, 2e-4}} {
		d := walkData(tc.dt, 30)
		dd, err := UploadData(kernels.NewCPU(tc.kdt), d)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"logistic", "convnet"} {
			arch, err := nets.New(name, 1, 28, 28, 10)
			if err != nil {
				t.Fatal(err)
			}
			ref := NewImageBackend(arch, tc.dt, d)
			dev, err := NewDeviceBackend(arch, dd, 4)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []int{4, 2, 1, 6} {
				t.Run(fmt.Sprintf("%s/%v/K=%d", name, tc.dt, k), func(t *testing.T) {
					theta, v, pts := backendCase(t, arch, d, k, 3, 5)
					np := arch.NumParams()
					lw, lg := make([]float64, k), make([]float64, k)
					gw, gg := zeros(k, np), zeros(k, np)
					hw, hg := zeros(k, np), zeros(k, np)
					for _, err := range []error{
						ref.Grad(theta, pts, lw, gw), dev.Grad(theta, pts, lg, gg),
						ref.HVP(theta, pts, v, hw), dev.HVP(theta, pts, v, hg),
					} {
						if err != nil {
							t.Fatal(err)
						}
					}
					worst := 0.0
					for what, p := range map[string][2][][]float64{"loss": {{lw}, {lg}}, "grad": {gw, gg}, "hvp": {hw, hg}} {
						for i := range p[0] {
							scale := 1e-3
							for _, x := range p[0][i] {
								scale = math.Max(scale, math.Abs(x))
							}
							for j, x := range p[0][i] {
								e := math.Abs(p[1][i][j]-x) / scale
								worst = math.Max(worst, e)
								if !(e <= tc.tol) {
									t.Fatalf("%s trial %d [%d]: device %v, CPU %v", what, i, j, p[1][i][j], x)
								}
							}
						}
					}
					// Trial 0 alone (padded to Cap) is bitwise trial 0 of the call.
					l1, g1, h1 := make([]float64, 1), zeros(1, np), zeros(1, np)
					if err := dev.Grad(theta[:1], pts[:1], l1, g1); err != nil {
						t.Fatal(err)
					}
					if err := dev.HVP(theta[:1], pts[:1], v[:1], h1); err != nil {
						t.Fatal(err)
					}
					if l1[0] != lg[0] {
						t.Fatalf("trial 0's loss alone %v, in a call of %d %v", l1[0], k, lg[0])
					}
					for j := range g1[0] {
						if g1[0][j] != gg[0][j] || h1[0][j] != hg[0][j] {
							t.Fatalf("trial 0 alone differs at %d: grad %v vs %v, hvp %v vs %v", j, g1[0][j], gg[0][j], h1[0][j], hg[0][j])
						}
					}
					t.Logf("largest relative difference from the CPU backend %.2g", worst)
				})
			}
			// K = 4, 2, 1 share the programs of Cap = 4; K = 6 has its own.
			if got := dev.Programs(); got != 4 {
				t.Errorf("%s %v: %d programs, want 4 (grad and hvp for 4 trials and for 6)", name, tc.dt, got)
			}
			dev.Close()
			ref.Close()
		}
	}
}

// TestDeviceMemoryReused counts the CPU twin's allocations: after the first
// batch of a shape, further batches of the same shape, padded batches and
// test losses allocate nothing; the walker's liveness sharing makes a
// program allocate well under one buffer per node; and Close frees
// everything.
func TestDeviceMemoryReused(t *testing.T) {
	for _, name := range []string{"logistic", "convnet"} {
		t.Run(name, func(t *testing.T) {
			dev := kernels.Count(kernels.NewCPU(kernels.F64))
			d := walkData(tensor.Float64, 25)
			dd, err := UploadData(dev, d)
			if err != nil {
				t.Fatal(err)
			}
			arch, err := nets.New(name, 1, 28, 28, 10)
			if err != nil {
				t.Fatal(err)
			}
			be, err := NewDeviceBackend(arch, dd, 3)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := NewDeviceTestLoss(arch, dd, 3, 10)
			if err != nil {
				t.Fatal(err)
			}
			np := arch.NumParams()
			var after []kernels.Stats
			for batch := 0; batch < 5; batch++ {
				k := 3
				if batch == 4 {
					k = 2 // the short last batch of a group: padded
				}
				theta, v, pts := backendCase(t, arch, d, k, 2, int64(batch))
				loss, acc := make([]float64, k), make([]float64, k)
				if err := be.Grad(theta, pts, loss, zeros(k, np)); err != nil {
					t.Fatal(err)
				}
				if err := be.HVP(theta, pts, v, zeros(k, np)); err != nil {
					t.Fatal(err)
				}
				if err := ev.TestLoss(theta, loss, acc); err != nil {
					t.Fatal(err)
				}
				after = append(after, dev.Stats())
			}
			for i, s := range after[1:] {
				if s.Allocs != after[0].Allocs || s.Live != after[0].Live {
					t.Errorf("batch %d: %d allocations (%d elements live), after the first batch %d (%d)", i+2, s.Allocs, s.Live, after[0].Allocs, after[0].Live)
				}
			}
			// Liveness: the gradient program against one buffer per node.
			dn, err := NewDeviceNet(arch, dd, 3, 2, BatchGrad)
			if err != nil {
				t.Fatal(err)
			}
			var perNode int64
			for _, nd := range dn.g.AllNodes() {
				if _, ok := dn.Prog.slots[nd.ID()]; ok {
					perNode += int64(max(nd.Shape().TotalSize(), 1))
				}
			}
			got := dn.Prog.Elements()
			t.Logf("%s gradient program (K=3, B=2): %d elements allocated, %d with one buffer per node (%.2f)", name, got, perNode, float64(got)/float64(perNode))
			// The logistic graph is mostly its pinned parameters, gradients
			// and inputs; the convnet's patch matrices and activations share.
			if limit := map[string]float64{"logistic": 0.999, "convnet": 0.85}[name]; float64(got) > limit*float64(perNode) {
				t.Errorf("%d elements allocated, more than %.3g of one buffer per node (%d)", got, limit, perNode)
			}
			for _, c := range []interface{ Close() error }{dn, be, ev} {
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
			}
			for _, b := range []kernels.Buffer{dd.X, dd.Y} {
				if err := dev.Free(b); err != nil {
					t.Fatal(err)
				}
			}
			if s := dev.Stats(); s.Live != 0 || s.Allocs != s.Frees {
				t.Errorf("after Close: %d elements live, %d allocations, %d frees", s.Live, s.Allocs, s.Frees)
			}
		})
	}
}

// failingDevice fails its Alloc once ok allocations have succeeded.
type failingDevice struct {
	kernels.Device
	ok, n int
}

func (f *failingDevice) Alloc(n int) (kernels.Buffer, error) {
	if f.n >= f.ok {
		return nil, fmt.Errorf("injected: out of device memory")
	}
	f.n++
	return f.Device.Alloc(n)
}

// TestDeviceSetupFailureFreesAll: whichever allocation of UploadData or
// NewDeviceEval fails, the error is returned and nothing stays allocated.
func TestDeviceSetupFailureFreesAll(t *testing.T) {
	arch, err := nets.New("logistic", 1, 28, 28, 10)
	if err != nil {
		t.Fatal(err)
	}
	d := walkData(tensor.Float64, 25)
	failures := 0
	for ok := 0; ; ok++ {
		count := kernels.Count(kernels.NewCPU(kernels.F64))
		dev := &failingDevice{Device: count, ok: ok}
		dd, err := UploadData(dev, d)
		if err == nil {
			var ev *DeviceEval
			ev, err = NewDeviceEval(arch, dd, 3, 10)
			if err == nil {
				if cerr := ev.Close(); cerr != nil {
					t.Fatal(cerr)
				}
			}
			if cerr := dd.Close(); cerr != nil {
				t.Fatal(cerr)
			}
		}
		if s := count.Stats(); s.Live != 0 || s.Allocs != s.Frees {
			t.Errorf("allocation %d failing (%v): %d elements live, %d allocations, %d frees", ok+1, err, s.Live, s.Allocs, s.Frees)
		}
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "injected") {
			t.Errorf("allocation %d failing: error %q does not carry the cause", ok+1, err)
		}
		failures++
		if ok > 1000 {
			t.Fatal("no end to the allocations")
		}
	}
	if failures < 4 {
		t.Errorf("only %d failure points exercised", failures)
	}
}
