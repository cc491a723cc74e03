package graph

import (
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/nets"
)

// BenchmarkPoolLoss measures one full-pool (70,000 Fashion-MNIST-shaped
// examples) test-loss evaluation per model and dtype.
func BenchmarkPoolLoss(b *testing.B) {
	for _, model := range nets.Names {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			b.Run(model+"/"+dt.String(), func(b *testing.B) {
				a, _ := nets.New(model, 1, 28, 28, 10)
				d := randomData(a, 70000, rand.New(rand.NewPCG(1, 1)))
				if dt == tensor.Float32 {
					d = to32(d)
				}
				vals, _ := a.Init(1)
				p := NewParams(a, vals, dt)
				e := NewEvaluator(a, dt, DefaultChunk(a))
				for i := 0; i < b.N; i++ {
					if _, _, err := e.Mean(p, d, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkStep measures one SGD gradient (batch 1) per model and dtype.
func BenchmarkStep(b *testing.B) {
	for _, model := range nets.Names {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			b.Run(model+"/"+dt.String(), func(b *testing.B) {
				a, _ := nets.New(model, 1, 28, 28, 10)
				d := randomData(a, 10, rand.New(rand.NewPCG(1, 1)))
				if dt == tensor.Float32 {
					d = to32(d)
				}
				vals, _ := a.Init(1)
				p := NewParams(a, vals, dt)
				n, _ := Compile(a, dt, 1, true)
				for i := 0; i < b.N; i++ {
					_, g, err := n.Grad(p, d, []int{i % 10})
					if err != nil {
						b.Fatal(err)
					}
					p.Step(1e-3, g)
				}
			})
		}
	}
}
