package graph

import (
	"math/rand/v2"
	"slices"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// TestDeviceHVPChunksFiniteDifferences checks the chunked float64
// products of the walker (DeviceBackend.HVPChunk) against central finite
// differences of the gradient (ImageBackend.Grad, the gorgonia graph on
// the TapeMachine): Σ_n H_n v ≈ B·(∇L(θ + hv) − ∇L(θ − hv))/(2h) for the
// mean loss L of B samples, to 1e-6 of the largest element.
// TestDeviceHVPChunksFiniteDifferences checks the float64 products against
// central finite differences of the gradient (ImageBackend.Grad, the
// gorgonia graph): Σ_n H_n v ≈ B·(∇L(θ + hv) − ∇L(θ − hv))/(2h) for the
// mean loss L of B samples, to 1e-6 of the largest element.
func TestDeviceHVPChunksFiniteDifferences(t *testing.T) {
	for _, model := range []string{"logistic", "convnet"} {
		t.Run(model, func(t *testing.T) {
			a, _ := nets.New(model, 1, 28, 28, 10)
			r := rand.New(rand.NewPCG(3, 4))
			d := randomData(a, 30, r)
			_, theta := peTrials(a, 2, false, r)
			np := a.NumParams()
			v := hvDirections(np, 2, -1, r)
			rows, pts := hvSamples(d.Len(), 2, 6, false, r)
			_ = rows
			dd, err := UploadData(kernels.NewCPU(kernels.F64), d)
			if err != nil {
				t.Fatal(err)
			}
			e, err := NewDeviceBackend(a, dd, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			e.HVPChunk = 4 // chunks of 4 and 2 samples
			got := hvPoison(np, 2)
			if err := e.HVP(theta, pts, v, got); err != nil {
				t.Fatal(err)
			}
			ref := NewImageBackend(a, tensor.Float64, d)
			defer ref.Close()
			const h = 1e-4
			grad := func(sign float64) [][]float64 {
				th := make([][]float64, 2)
				for j := range th {
					th[j] = slices.Clone(theta[j])
					for i := range th[j] {
						th[j][i] += sign * h * v[j][i]
					}
				}
				g := hvPoison(np, 2)
				if err := ref.Grad(th, pts, make([]float64, 2), g); err != nil {
					t.Fatal(err)
				}
				return g
			}
			gp, gm := grad(1), grad(-1)
			for j := range got {
				fd := make([]float64, np)
				for i := range fd {
					fd[i] = 6 * (gp[j][i] - gm[j][i]) / (2 * h)
				}
				if err := hvErr(got[j], fd); !(err <= 1e-6) {
					t.Errorf("trial %d: differs from finite differences by %.3g of its largest element", j, err)
				} else {
					t.Logf("trial %d: %.3g", j, err)
				}
			}
		})
	}
}
