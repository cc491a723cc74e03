package graph

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// BenchmarkTrainStep measures one batched gradient call (one training step
// of K float32 trials, B samples each) through the two engines that can
// train: the gorgonia TapeMachine over the batched graph (ImageBackend,
// "graph") and the walker over the CPU device (DeviceBackend on
// kernels.NewCPU(F32), "walker", and the same on one goroutine, "walker1",
// as each of the runner's workers would be), side by side in one run, and
// reports the time per trial-step ("us/trial-step"):
//
//	go test -tags openblas -run '^$' -bench 'TrainStep$' ./graph/
func BenchmarkTrainStep(b *testing.B) {
	for _, model := range []string{"logistic", "convnet"} {
		a, _ := nets.New(model, 1, 28, 28, 10)
		d := peBenchData(a)
		for _, kb := range [][2]int{{64, 1}, {256, 1}, {64, 8}} {
			k, bs := kb[0], kb[1]
			r := rand.New(rand.NewPCG(5, 6))
			_, theta := peTrials(a, k, true, r)
			_, pts := hvSamples(d.Len(), k, bs, false, r)
			loss, grad := make([]float64, k), matrix(k, a.NumParams())
			report := func(b *testing.B) {
				b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/float64(k)*1e6, "us/trial-step")
			}
			b.Run(fmt.Sprintf("%s/graph/K=%d/B=%d", model, k, bs), func(b *testing.B) {
				ib := NewImageBackend(a, tensor.Float32, d)
				defer ib.Close()
				if err := ib.Grad(theta, pts, loss, grad); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					if err := ib.Grad(theta, pts, loss, grad); err != nil {
						b.Fatal(err)
					}
				}
				report(b)
			})
			walker := func(b *testing.B, workers int) {
				dev, _ := kernels.WithWorkers(kernels.NewCPU(kernels.F32), workers)
				dd, err := UploadData(dev, d)
				if err != nil {
					b.Fatal(err)
				}
				defer dd.Close()
				be, err := NewDeviceBackend(a, dd, k)
				if err != nil {
					b.Fatal(err)
				}
				defer be.Close()
				if err := be.Grad(theta, pts, loss, grad); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					if err := be.Grad(theta, pts, loss, grad); err != nil {
						b.Fatal(err)
					}
				}
				report(b)
			}
			b.Run(fmt.Sprintf("%s/walker/K=%d/B=%d", model, k, bs), func(b *testing.B) { walker(b, 0) })
			b.Run(fmt.Sprintf("%s/walker1/K=%d/B=%d", model, k, bs), func(b *testing.B) { walker(b, 1) })
		}
	}
}

// BenchmarkTrainHVP measures one batched Hessian-vector product call (as
// gdc, igr and smith make them: each trial replicated per sample, B = 1,
// or over its training set, B = 10) through the TapeMachine ("graph") and
// the walker on a serial CPU device ("walker1"), side by side, and reports
// the time per trial ("us/trial"):
//
//	go test -tags openblas -run '^$' -bench 'TrainHVP$' ./graph/
func BenchmarkTrainHVP(b *testing.B) {
	for _, model := range []string{"logistic", "convnet"} {
		a, _ := nets.New(model, 1, 28, 28, 10)
		d := peBenchData(a)
		for _, kb := range [][2]int{{640, 1}, {64, 10}} {
			k, bs := kb[0], kb[1]
			r := rand.New(rand.NewPCG(5, 6))
			_, theta := peTrials(a, k, true, r)
			_, pts := hvSamples(d.Len(), k, bs, false, r)
			out := matrix(k, a.NumParams())
			report := func(b *testing.B) {
				b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/float64(k)*1e6, "us/trial")
			}
			b.Run(fmt.Sprintf("%s/graph/K=%d/B=%d", model, k, bs), func(b *testing.B) {
				ib := NewImageBackend(a, tensor.Float32, d)
				defer ib.Close()
				for i := range b.N + 1 {
					if i == 1 {
						b.ResetTimer()
					}
					if err := ib.HVP(theta, pts, theta, out); err != nil {
						b.Fatal(err)
					}
				}
				report(b)
			})
			b.Run(fmt.Sprintf("%s/walker1/K=%d/B=%d", model, k, bs), func(b *testing.B) {
				dev, _ := kernels.WithWorkers(kernels.NewCPU(kernels.F32), 1)
				dd, err := UploadData(dev, d)
				if err != nil {
					b.Fatal(err)
				}
				defer dd.Close()
				be, err := NewDeviceBackend(a, dd, 1)
				if err != nil {
					b.Fatal(err)
				}
				defer be.Close()
				for i := range b.N + 1 {
					if i == 1 {
						b.ResetTimer()
					}
					if err := be.HVP(theta, pts, theta, out); err != nil {
						b.Fatal(err)
					}
				}
				report(b)
			})
		}
	}
}
