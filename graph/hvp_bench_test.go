package graph

import (
	"fmt"
	"github.com/perturb/perturb/kernels"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/nets"
)

// BenchmarkHVP measures one batched Hessian-vector product of K float32
// trials over the same B Fashion-MNIST-shaped (random) images through the
// gorgonia graph (ImageBackend.HVP, kind BatchHVP, on one goroutine) and
// through the walker on the CPU device (DeviceBackend.HVP on
// kernels.NewCPU(F32)): one program over all B images ("walker" on the
// device's default goroutines, "walker-serial" on one) and chunks of
// $PERTURB_HVP_CHUNK images (default DeviceBackend.AutoHVPChunk, as the
// sharpness measures) as programs of one trial ("walker-chunks",
// "walker-chunks-serial"), and reports the time per image and trial
// ("us/image-trial"); $PERTURB_HVP_K sets the number of trials (default
// 8). Every call is at the same parameters and samples, as in Lanczos:
// the walker reruns only the steps that depend on the direction;
// "forward" is the test loss's forward pass (DeviceTestLoss.Mean) over
// the same images and trials, for scale:
//
//	go test -tags openblas -run '^$' -bench 'HVP$' ./graph/
func BenchmarkHVP(b *testing.B) {
	hvpBenchChunk, _ := strconv.Atoi(os.Getenv("PERTURB_HVP_CHUNK"))
	for _, model := range []string{"convnet", "logistic"} {
		a, _ := nets.New(model, 1, 28, 28, 10)
		d := peBenchData(a)
		k, imgs := 8, 128
		if s := os.Getenv("PERTURB_HVP_K"); s != "" {
			k, _ = strconv.Atoi(s)
		}
		r := rand.New(rand.NewPCG(3, 4))
		_, theta := peTrials(a, k, true, r)
		v := hvDirections(a.NumParams(), k, -1, r)
		rows, pts := hvSamples(d.Len(), k, imgs, true, r)
		out := hvPoison(a.NumParams(), k)
		report := func(b *testing.B) {
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/float64(k*imgs)*1e6, "us/image-trial")
		}
		b.Run(fmt.Sprintf("%s/graph/K=%d/B=%d", model, k, imgs), func(b *testing.B) {
			ib := NewImageBackend(a, tensor.Float32, d)
			defer ib.Close()
			if err := ib.HVP(theta, pts, v, out); err != nil { // compile
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if err := ib.HVP(theta, pts, v, out); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		b.Run(fmt.Sprintf("%s/forward/K=%d/B=%d", model, k, imgs), func(b *testing.B) {
			dd, err := UploadData(kernels.NewCPU(kernels.F32), d)
			if err != nil {
				b.Fatal(err)
			}
			defer dd.Close()
			e, err := NewDeviceTestLoss(a, dd, k, imgs)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			loss, acc := make([]float64, k), make([]float64, k)
			b.ResetTimer()
			for range b.N {
				if err := e.Mean(theta, rows[0], loss, acc); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		for _, c := range []struct {
			name           string
			workers, chunk int
		}{{"walker", 0, 0}, {"walker-serial", 1, 0}, {"walker-chunks", 0, -1}, {"walker-chunks-serial", 1, -1}} {
			b.Run(fmt.Sprintf("%s/%s/K=%d/B=%d", model, c.name, k, imgs), func(b *testing.B) {
				dev, _ := kernels.WithWorkers(kernels.NewCPU(kernels.F32), c.workers)
				dd, err := UploadData(dev, d)
				if err != nil {
					b.Fatal(err)
				}
				defer dd.Close()
				be, err := NewDeviceBackend(a, dd, k)
				if err != nil {
					b.Fatal(err)
				}
				be.HVPChunk = c.chunk
				if c.chunk < 0 {
					if be.HVPChunk = hvpBenchChunk; be.HVPChunk == 0 {
						if be.HVPChunk, err = be.AutoHVPChunk(); err != nil {
							b.Fatal(err)
						}
					}
				}
				defer be.Close()
				if err := be.HVP(theta, pts, v, out); err != nil { // compile
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					if err := be.HVP(theta, pts, v, out); err != nil {
						b.Fatal(err)
					}
				}
				report(b)
			})
		}
	}
}
