package graph

import (
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/nets"
)

// benchEach runs f for every model and dtype on n Fashion-MNIST-shaped
// random examples, with initialisation 1.
func benchEach(b *testing.B, n int, f func(b *testing.B, a *nets.Arch, dt tensor.Dtype, d *Data, p Params)) {
	for _, model := range nets.Names {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			b.Run(model+"/"+dt.String(), func(b *testing.B) {
				a, _ := nets.New(model, 1, 28, 28, 10)
				d := randomData(a, n, rand.New(rand.NewPCG(1, 1)))
				if dt == tensor.Float32 {
					d = to32(d)
				}
				vals, _ := a.Init(1)
				f(b, a, dt, d, NewParams(a, vals, dt))
			})
		}
	}
}

// BenchmarkPoolLoss measures one full-pool (70,000 Fashion-MNIST-shaped
// examples) test-loss evaluation per model and dtype.
func BenchmarkPoolLoss(b *testing.B) {
	benchEach(b, 70000, func(b *testing.B, a *nets.Arch, dt tensor.Dtype, d *Data, p Params) {
		e := NewEvaluator(a, dt, DefaultChunk(a))
		for i := 0; i < b.N; i++ {
			if _, _, err := e.Mean(p, d, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStep measures one SGD step (batch 1) per model and dtype.
func BenchmarkStep(b *testing.B) {
	benchEach(b, 10, func(b *testing.B, a *nets.Arch, dt tensor.Dtype, d *Data, p Params) {
		n, err := Compile(a, dt, 1, true)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			_, g, err := n.Grad(p, d, []int{i % 10})
			if err != nil {
				b.Fatal(err)
			}
			p.Step(1e-3, g)
		}
	})
}
