package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// hvDirections returns k random directions: standard normal, one zero
// where zero >= 0 (trial zero).
func hvDirections(np, k, zero int, r *rand.Rand) [][]float64 {
	v := make([][]float64, k)
	for j := range v {
		v[j] = make([]float64, np)
		if j == zero {
			continue
		}
		for i := range v[j] {
			v[j][i] = r.NormFloat64()
		}
	}
	return v
}

// hvPoison returns k vectors of NaN.
func hvPoison(np, k int) [][]float64 {
	out := make([][]float64, k)
	for j := range out {
		out[j] = make([]float64, np)
		for i := range out[j] {
			out[j][i] = math.NaN()
		}
	}
	return out
}

// hvErr is max_i |a_i − b_i| / max_i |b_i|, +Inf where a has a NaN.
func hvErr(a, b []float64) float64 {
	var d, s float64
	for i := range b {
		if math.IsNaN(a[i]) {
			return math.Inf(1)
		}
		d = max(d, math.Abs(a[i]-b[i]))
		s = max(s, math.Abs(b[i]))
	}
	return d / s
}

// hvSamples returns k row lists of b rows each: the same shuffled distinct
// rows for every trial when shared, else each trial's own draw with
// repetitions (every list repeats its first row at least once).
func hvSamples(n, k, b int, shared bool, r *rand.Rand) ([][]int, [][]nets.Sample) {
	rows := make([][]int, k)
	pts := make([][]nets.Sample, k)
	var perm []int
	if shared {
		perm = r.Perm(n)[:b]
	}
	for j := range rows {
		if shared {
			rows[j] = perm
		} else {
			rows[j] = make([]int, b)
			for i := range rows[j] {
				rows[j][i] = r.IntN(n)
			}
			rows[j][b-1] = rows[j][0]
		}
		for _, row := range rows[j] {
			pts[j] = append(pts[j], nets.Sample{Row: row})
		}
	}
	return rows, pts
}

// chunkedBackend returns a DeviceBackend of a on the CPU device of d's
// dtype with workers goroutines whose HVPs run in chunks of chunk samples.
func chunkedBackend(t *testing.T, a *nets.Arch, d *Data, workers, chunk int, bytes int64) *DeviceBackend {
	t.Helper()
	kd := kernels.F64
	if d.X32 != nil {
		kd = kernels.F32
	}
	dev, _ := kernels.WithWorkers(kernels.NewCPU(kd), workers)
	dd, err := UploadData(dev, d)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewDeviceBackend(a, dd, 1)
	if err != nil {
		t.Fatal(err)
	}
	e.HVPChunk, e.HVPBytes = chunk, bytes
	t.Cleanup(func() { e.Close(); dd.Close() })
	return e
}

// TestHVPChunksMatchGraph checks the chunked Hessian-vector products of
// the walker (DeviceBackend.HVPChunk, the sharpness measures' products)
// against ImageBackend.HVP (the gorgonia graph) for every image model
// family (logistic, mlp, the convnet in Fashion-MNIST and CIFAR-10 shapes,
// of width 6 and of depth 3 with a padded layer) in both dtypes, on
// samples shared by the trials and on each trial's own samples with
// repetitions, with chunks that split the samples and, for 300 samples,
// segments: to 1e-10 of the largest element in float64, to float32
// rounding (1e-5) in float32. One trial's direction is zero (its product
// must be exactly zero); the outputs are NaN before the call, so an
// element left unwritten fails.
func TestHVPChunksMatchGraph(t *testing.T) {
	type tc struct {
		model                 string
		c, h, w, width, depth int
		f32, shared           bool
		k, b, chunk           int
	}
	var cases []tc
	for _, f32 := range []bool{false, true} {
		for _, shared := range []bool{true, false} {
			cases = append(cases,
				tc{"logistic", 1, 28, 28, 0, 0, f32, shared, 3, 9, 4},
				tc{"convnet", 1, 28, 28, 0, 0, f32, shared, 3, 7, 3},
			)
		}
	}
	cases = append(cases,
		tc{"convnet", 3, 32, 32, 0, 0, false, false, 2, 5, 2},
		tc{"convnet", 1, 28, 28, 6, 0, false, true, 2, 5, 2},
		tc{"convnet", 1, 28, 28, 6, 0, true, false, 2, 5, 4},
		tc{"convnet", 1, 28, 28, 0, 3, false, false, 3, 5, 2},
		tc{"mlp", 1, 28, 28, 0, 0, false, false, 3, 7, 3},
		tc{"mlp", 1, 28, 28, 0, 0, true, true, 3, 7, 3},
		tc{"logistic", 1, 28, 28, 0, 0, true, false, 2, 300, 16},
	)
	for _, c := range cases {
		name := fmt.Sprintf("%s-%dx%dx%d-w%d-d%d-f32=%v-shared=%v-K%d-B%d", c.model, c.c, c.h, c.w, c.width, c.depth, c.f32, c.shared, c.k, c.b)
		t.Run(name, func(t *testing.T) {
			a, err := nets.NewSized(c.model, c.c, c.h, c.w, 10, nets.Size{Width: c.width, Depth: c.depth})
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(11, uint64(len(name))))
			d := randomData(a, 40, r)
			dt := tensor.Float64
			tol := 1e-10
			if c.f32 {
				d, dt, tol = to32(d), tensor.Float32, 1e-5
			}
			_, theta := peTrials(a, c.k, c.f32, r)
			np := a.NumParams()
			v := hvDirections(np, c.k, 1, r)
			_, pts := hvSamples(d.Len(), c.k, c.b, c.shared, r)
			ref := NewImageBackend(a, dt, d)
			defer ref.Close()
			want := hvPoison(np, c.k)
			if err := ref.HVP(theta, pts, v, want); err != nil {
				t.Fatal(err)
			}
			e := chunkedBackend(t, a, d, 2, c.chunk, 0)
			got := hvPoison(np, c.k)
			if err := e.HVP(theta, pts, v, got); err != nil {
				t.Fatal(err)
			}
			for j := range got {
				if j == 1 {
					if slices.ContainsFunc(got[j], func(x float64) bool { return x != 0 }) {
						t.Errorf("trial %d: zero direction gives a nonzero product", j)
					}
					continue
				}
				if err := hvErr(got[j], want[j]); !(err <= tol) {
					t.Errorf("trial %d: differs from the graph by %.3g of its largest element (tolerance %g)", j, err, tol)
				} else {
					t.Logf("trial %d: %.3g", j, err)
				}
			}
		})
	}
}

// TestHVPFiniteDifferences checks the float64 products of the walker, one
// program over all samples and in chunks of 4 samples
// (DeviceBackend.HVPChunk), for every image model family, against
// central finite differences of the gradient (ImageBackend.Grad, the
// gorgonia graph): Σ_n H_n v ≈ B·(∇L(θ + hv) − ∇L(θ − hv))/(2h) for the
// mean loss L of B samples, to 1e-6 of the largest element.
func TestHVPFiniteDifferences(t *testing.T) {
	for _, model := range []string{"logistic", "mlp", "convnet"} {
		for _, chunk := range []int{0, 4} {
			t.Run(fmt.Sprintf("%s/chunk=%d", model, chunk), func(t *testing.T) {
				a, _ := nets.New(model, 1, 28, 28, 10)
				r := rand.New(rand.NewPCG(3, 4))
				d := randomData(a, 30, r)
				_, theta := peTrials(a, 2, false, r)
				np := a.NumParams()
				v := hvDirections(np, 2, -1, r)
				_, pts := hvSamples(d.Len(), 2, 6, false, r)
				got := hvPoison(np, 2)
				if err := chunkedBackend(t, a, d, 2, chunk, 0).HVP(theta, pts, v, got); err != nil {
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
}

// TestHVPChunksIndependence checks that a trial's chunked product is
// bitwise the same alone and in batches of other trials, with 1 or 3
// goroutines, with and without banks, and that a NaN parameter makes only
// its own trial's product NaN (and a NaN trial with a zero direction gets
// a zero product).
func TestHVPChunksIndependence(t *testing.T) {
	for _, f32 := range []bool{false, true} {
		for _, model := range []string{"logistic", "convnet"} {
			t.Run(fmt.Sprintf("%s-f32=%v", model, f32), func(t *testing.T) {
				a, _ := nets.New(model, 1, 28, 28, 10)
				r := rand.New(rand.NewPCG(8, 9))
				d := randomData(a, 50, r)
				if f32 {
					d = to32(d)
				}
				const k = 6
				_, theta := peTrials(a, k, f32, r)
				np := a.NumParams()
				v := hvDirections(np, k, 5, r)
				_, pts := hvSamples(d.Len(), k, 23, false, r)
				alone := make([][]float64, k)
				for j := range alone {
					out := hvPoison(np, 1)
					if err := chunkedBackend(t, a, d, 1, 4, 0).HVP(theta[j:j+1], pts[j:j+1], v[j:j+1], out); err != nil {
						t.Fatal(err)
					}
					alone[j] = out[0]
				}
				for _, i := range []int{4, 5} {
					theta[i] = slices.Clone(theta[i])
					theta[i][7] = math.NaN()
				}
				for _, workers := range []int{1, 3} {
					for _, bytes := range []int64{0, 1} {
						e := chunkedBackend(t, a, d, workers, 4, bytes)
						for _, lo := range []int{0, 2} {
							out := hvPoison(np, k-lo)
							if err := e.HVP(theta[lo:], pts[lo:], v[lo:], out); err != nil {
								t.Fatal(err)
							}
							for j := range out {
								switch lo + j {
								case 4:
									if !slices.ContainsFunc(out[j], math.IsNaN) {
										t.Errorf("workers %d: NaN trial has no NaN", workers)
									}
								case 5:
									if slices.ContainsFunc(out[j], func(x float64) bool { return x != 0 }) {
										t.Errorf("workers %d: NaN trial with a zero direction has a nonzero product", workers)
									}
								default:
									if !slices.Equal(out[j], alone[lo+j]) {
										t.Errorf("workers %d, budget %d, trials [%d, %d): trial %d differs from its product alone", workers, bytes, lo, k, lo+j)
									}
								}
							}
						}
					}
				}
			})
		}
	}
}
