package graph

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// walkData is a random pool of 1×28×28 images.
func walkData(dt tensor.Dtype, n int) *Data {
	r := rand.New(rand.NewSource(7))
	d := &Data{Dim: 784, Classes: 10, Y: make([]uint8, n)}
	x := make([]float64, n*784)
	for i := range x {
		x[i] = r.Float64()
	}
	for i := range d.Y {
		d.Y[i] = uint8(r.Intn(10))
	}
	if dt == tensor.Float32 {
		d.X32 = make([]float32, len(x))
		convert(d.X32, x)
	} else {
		d.X64 = x
	}
	return d
}

// TestWalkerMatchesTapeMachine runs the real batched graphs (forward,
// G.Grad's reverse pass, the HVP tangent passes) of both image models
// through the walker on the CPU twin and compares with gorgonia's
// TapeMachine on the same graph: the strongest check of the walker without
// a GPU. float64 agrees to 1e-10 relative, float32 to float32 rounding.
func TestWalkerMatchesTapeMachine(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		kdt, tol := kernels.F64, 1e-10
		if dt == tensor.Float32 {
			kdt, tol = kernels.F32, 2e-4
		}
		dev := kernels.NewCPU(kdt)
		d := walkData(dt, 40)
		dd, err := UploadData(dev, d)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"logistic", "convnet"} {
			arch, err := nets.New(name, 1, 28, 28, 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, kind := range []BatchKind{BatchGrad, BatchHVP} {
				t.Run(fmt.Sprintf("%s/%v/%s", name, dt, kind), func(t *testing.T) {
					const k, b = 3, 4
					r := rand.New(rand.NewSource(int64(kind) + 11))
					theta, v, rows := make([][]float64, k), make([][]float64, k), make([][]int, k)
					vals, err := arch.Init(1)
					if err != nil {
						t.Fatal(err)
					}
					for i := range theta {
						for _, p := range vals {
							for _, x := range p {
								theta[i] = append(theta[i], x*(1+0.3*r.NormFloat64()))
								v[i] = append(v[i], r.NormFloat64())
							}
						}
						for j := 0; j < b; j++ {
							rows[i] = append(rows[i], r.Intn(d.Len()))
						}
					}
					cpu, err := CompileBatch(arch, dt, k, b, kind)
					if err != nil {
						t.Fatal(err)
					}
					defer cpu.Close()
					dn, err := NewDeviceNet(arch, dd, k, b, kind)
					if err != nil {
						t.Fatal(err)
					}
					defer dn.Close()
					want, got := make([][]float64, k), make([][]float64, k)
					for i := range want {
						want[i] = make([]float64, arch.NumParams())
						got[i] = make([]float64, arch.NumParams())
					}
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
					compare := func(what string, got, want []float64) {
						scale := 0.0
						for _, w := range want {
							scale = math.Max(scale, math.Abs(w))
						}
						for j := range got {
							if !(math.Abs(got[j]-want[j]) <= tol*math.Max(scale, 1e-3)) {
								t.Fatalf("%s[%d] = %v, TapeMachine %v (scale %g)", what, j, got[j], want[j], scale)
							}
						}
					}
					compare("loss", lg, lw)
					for i := range got {
						compare(fmt.Sprintf("trial %d", i), got[i], want[i])
					}
					if len(dn.Prog.Ops()) == 0 {
						t.Fatal("empty program")
					}
				})
			}
		}
	}
}

// TestWalkerUnmappedOp: an operation without a device mapping is an error
// naming it.
func TestWalkerUnmappedOp(t *testing.T) {
	arch, err := nets.New("logistic", 1, 28, 28, 10)
	if err != nil {
		t.Fatal(err)
	}
	n, err := CompileBatch(arch, tensor.Float64, 1, 1, BatchGrad)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// A node of an unmapped op (softmax) on the net's own graph.
	sm, err := gSoftMax(n.losses)
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.Compile(kernels.NewCPU(kernels.F64), sm)
	if err == nil {
		t.Fatal("no error for an unmapped operation")
	}
	t.Log(err)
}

func gSoftMax(x *G.Node) (*G.Node, error) { return G.SoftMax(x) }
