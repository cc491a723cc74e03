package graph

import (
	"fmt"
	"github.com/perturb/perturb/kernels"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/nets"
)

// BenchmarkHVP measures one batched Hessian-vector product of K float32
// trials over the same B Fashion-MNIST-shaped (random) images through the
// gorgonia graph (ImageBackend.HVP, kind BatchHVP, on one goroutine),
// through the walker on the CPU device (DeviceBackend.HVP on
// kernels.NewCPU(F32)): one program over all B images ("walker" on the
// device's default goroutines, "walker-serial" on one) and chunks of
// $PERTURB_HVP_CHUNK images (default 16, as the sharpness measures of the
// other models) as separate programs ("walker-chunks",
// "walker-chunks-serial"), and through the hand-written HVPEvaluator
// ("hand" on one goroutine, "hand-parallel" on one per CPU), and reports
// the time per image and trial ("us/image-trial"); $PERTURB_HVP_K sets
// the number of trials (default 8). Every call is at the
// same parameters and samples, as in Lanczos: "hand" reuses the cached
// primal values after the first call, the walker reruns only the steps
// that depend on the direction; "hand-nocache" recomputes them; "forward"
// is the test loss's forward pass (DeviceTestLoss.Mean) over the same
// images and trials, for scale. On random images the chunked walker beats
// the hand-written path; in the runner's sharpness benchmark on the real
// pool it does not (docs/engine.md):
//
//	go test -tags openblas -run '^$' -bench 'HVP$' ./graph/
func BenchmarkHVP(b *testing.B) {
	hvpBenchChunk := 16
	if s := os.Getenv("PERTURB_HVP_CHUNK"); s != "" {
		hvpBenchChunk, _ = strconv.Atoi(s)
	}
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
		}{{"walker", 0, 0}, {"walker-serial", 1, 0}, {"walker-chunks", 0, hvpBenchChunk}, {"walker-chunks-serial", 1, hvpBenchChunk}} {
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
		for _, c := range []struct {
			name    string
			workers int
			cache   int64
		}{{"hand-parallel", runtime.NumCPU(), 0}, {"hand-nocache", 1, -1}, {"hand", 1, 0}} {
			b.Run(fmt.Sprintf("%s/%s/K=%d/B=%d", model, c.name, k, imgs), func(b *testing.B) {
				e, err := NewHVPEvaluator(a, d, HVPOptions{Workers: c.workers, CacheBytes: c.cache})
				if err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					if err := e.HVP(theta, rows, v, out); err != nil {
						b.Fatal(err)
					}
				}
				report(b)
			})
		}
	}
}
