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

// TestHVPEvaluatorMatchesGraph checks the hand-written Hessian-vector
// products against ImageBackend.HVP (the gorgonia graph) for the logistic
// model and the convnet (Fashion-MNIST and CIFAR-10 shapes and a convnet
// of width 6) in both dtypes, on samples shared by the trials and on each
// trial's own samples with repetitions, with chunks and segments small
// enough to split the samples: to 1e-10 of the largest element in
// float64, to float32 rounding (1e-5) in float32. One trial's direction is
// zero (its product must be exactly zero); the outputs are NaN before
// the call, so an element left unwritten fails.
func TestHVPEvaluatorMatchesGraph(t *testing.T) {
	type tc struct {
		model           string
		c, h, w, width  int
		f32, shared     bool
		k, b, chunk, sg int
	}
	var cases []tc
	for _, f32 := range []bool{false, true} {
		for _, shared := range []bool{true, false} {
			cases = append(cases,
				tc{"logistic", 1, 28, 28, 0, f32, shared, 3, 9, 4, 8},
				tc{"convnet", 1, 28, 28, 0, f32, shared, 3, 7, 3, 6},
			)
		}
	}
	cases = append(cases,
		tc{"convnet", 3, 32, 32, 0, false, false, 2, 5, 2, 4},
		tc{"convnet", 1, 28, 28, 6, false, true, 2, 5, 0, 0},
		tc{"convnet", 1, 28, 28, 6, true, false, 2, 5, 0, 0},
		tc{"logistic", 1, 28, 28, 0, true, false, 2, 300, 0, 0},
	)
	for _, c := range cases {
		name := fmt.Sprintf("%s-%dx%dx%d-w%d-f32=%v-shared=%v-K%d-B%d", c.model, c.c, c.h, c.w, c.width, c.f32, c.shared, c.k, c.b)
		t.Run(name, func(t *testing.T) {
			a, err := nets.NewSized(c.model, c.c, c.h, c.w, 10, nets.Size{Width: c.width})
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
			rows, pts := hvSamples(d.Len(), c.k, c.b, c.shared, r)
			ref := NewImageBackend(a, dt, d)
			defer ref.Close()
			want := hvPoison(np, c.k)
			if err := ref.HVP(theta, pts, v, want); err != nil {
				t.Fatal(err)
			}
			e, err := NewHVPEvaluator(a, d, HVPOptions{Chunk: c.chunk, Segment: c.sg, Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			got := hvPoison(np, c.k)
			if err := e.HVP(theta, rows, v, got); err != nil {
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
			// The same through HVPBackend.
			kd := kernels.F64
			if c.f32 {
				kd = kernels.F32
			}
			dd, err := UploadData(kernels.NewCPU(kd), d)
			if err != nil {
				t.Fatal(err)
			}
			db, err := NewDeviceBackend(a, dd, c.k)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			hb, err := NewHVPBackend(db, d, HVPOptions{Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			got2 := hvPoison(np, c.k)
			if err := hb.HVP(theta, pts, v, got2); err != nil {
				t.Fatal(err)
			}
			if c.chunk == 0 {
				for j := range got {
					if !slices.Equal(got[j], got2[j]) {
						t.Errorf("trial %d: HVPBackend differs from HVPEvaluator", j)
					}
				}
			}
		})
	}
}

// TestHVPFiniteDifferences checks the float64 products of the
// hand-written evaluator (chunks of 4) and of the walker's chunked
// products (DeviceBackend.HVPChunk, chunks of 4 and 2 samples) against
// central finite differences of the gradient (ImageBackend.Grad, the
// gorgonia graph): Σ_n H_n v ≈ B·(∇L(θ + hv) − ∇L(θ − hv))/(2h) for the
// mean loss L of B samples, to 1e-6 of the largest element.
func TestHVPFiniteDifferences(t *testing.T) {
	for _, model := range []string{"logistic", "convnet"} {
		for _, engine := range []string{"hand", "walker-chunks"} {
			t.Run(model+"/"+engine, func(t *testing.T) {
				a, _ := nets.New(model, 1, 28, 28, 10)
				r := rand.New(rand.NewPCG(3, 4))
				d := randomData(a, 30, r)
				_, theta := peTrials(a, 2, false, r)
				np := a.NumParams()
				v := hvDirections(np, 2, -1, r)
				rows, pts := hvSamples(d.Len(), 2, 6, false, r)
				got := hvPoison(np, 2)
				if engine == "hand" {
					e, err := NewHVPEvaluator(a, d, HVPOptions{Chunk: 4})
					if err == nil {
						err = e.HVP(theta, rows, v, got)
					}
					if err != nil {
						t.Fatal(err)
					}
				} else {
					dd, err := UploadData(kernels.NewCPU(kernels.F64), d)
					if err != nil {
						t.Fatal(err)
					}
					e, err := NewDeviceBackend(a, dd, 1)
					if err != nil {
						t.Fatal(err)
					}
					defer e.Close()
					e.HVPChunk = 4
					if err := e.HVP(theta, pts, v, got); err != nil {
						t.Fatal(err)
					}
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

// TestHVPEvaluatorIndependence checks that a trial's product is bitwise
// the same alone and in batches of other trials, with 1 or 3 workers, and
// that a NaN parameter makes only its own trial's product NaN.
func TestHVPEvaluatorIndependence(t *testing.T) {
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
				v := hvDirections(np, k, -1, r)
				rows, _ := hvSamples(d.Len(), k, 23, false, r)
				alone := make([][]float64, k)
				for j := range alone {
					e, _ := NewHVPEvaluator(a, d, HVPOptions{Chunk: 4, Workers: 1})
					out := hvPoison(np, 1)
					if err := e.HVP(theta[j:j+1], rows[j:j+1], v[j:j+1], out); err != nil {
						t.Fatal(err)
					}
					alone[j] = out[0]
				}
				theta[4] = slices.Clone(theta[4])
				theta[4][7] = math.NaN()
				for _, workers := range []int{1, 3} {
					e, _ := NewHVPEvaluator(a, d, HVPOptions{Chunk: 4, Workers: workers})
					for _, lo := range []int{0, 2} {
						out := hvPoison(np, k-lo)
						if err := e.HVP(theta[lo:], rows[lo:], v[lo:], out); err != nil {
							t.Fatal(err)
						}
						for j := range out {
							if lo+j == 4 {
								if !slices.ContainsFunc(out[j], math.IsNaN) {
									t.Errorf("workers %d: NaN trial has no NaN", workers)
								}
								continue
							}
							if !slices.Equal(out[j], alone[lo+j]) {
								t.Errorf("workers %d, trials [%d, %d): trial %d differs from its product alone", workers, lo, k, lo+j)
							}
						}
					}
				}
			})
		}
	}
}

// TestHVPEvaluatorErrors checks the refusals.
func TestHVPEvaluatorErrors(t *testing.T) {
	a, _ := nets.New("convnet", 1, 28, 28, 10)
	r := rand.New(rand.NewPCG(1, 2))
	d := randomData(a, 5, r)
	if _, err := NewHVPEvaluator(a, d, HVPOptions{Chunk: 4, Segment: 6}); err == nil {
		t.Error("segment not a multiple of the chunk accepted")
	}
	m, _ := nets.NewSized("mlp", 1, 28, 28, 10, nets.Size{})
	if _, err := NewHVPEvaluator(m, d, HVPOptions{}); err == nil {
		t.Error("mlp accepted")
	}
	e, err := NewHVPEvaluator(a, d, HVPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	np := a.NumParams()
	th, v, out := hvPoison(np, 1), hvPoison(np, 1), hvPoison(np, 1)
	if err := e.HVP(th, [][]int{{5}}, v, out); err == nil {
		t.Error("row out of range accepted")
	}
	if err := e.HVP(th, [][]int{{1}}, v, [][]float64{make([]float64, 3)}); err == nil {
		t.Error("short output accepted")
	}
}

// TestHVPEvaluatorCache checks that the primal values kept between calls
// change no result: repeated calls with new directions (and a trial's
// parameters changed in place, and its rows changed, between calls) give
// bitwise the products of an evaluator that keeps none (also after
// DropCache), with a budget for every trial, for some of them, and for
// none.
func TestHVPEvaluatorCache(t *testing.T) {
	for _, f32 := range []bool{false, true} {
		t.Run(fmt.Sprintf("f32=%v", f32), func(t *testing.T) {
			a, _ := nets.New("convnet", 1, 28, 28, 10)
			r := rand.New(rand.NewPCG(21, 22))
			d := randomData(a, 40, r)
			if f32 {
				d = to32(d)
			}
			const k, b = 4, 9
			_, theta := peTrials(a, k, f32, r)
			np := a.NumParams()
			rows, _ := hvSamples(d.Len(), k, b, false, r)
			ref, _ := NewHVPEvaluator(a, d, HVPOptions{Chunk: 4, CacheBytes: -1})
			one, _ := NewHVPEvaluator(a, d, HVPOptions{Chunk: 4})
			per := one.model.cacheBytes(b)
			for _, budget := range []int64{-1, per, 2*per + 1, 1 << 30} {
				e, _ := NewHVPEvaluator(a, d, HVPOptions{Chunk: 4, CacheBytes: budget})
				for call := range 5 {
					switch call {
					case 2:
						theta[1][100] += 0.5 // in place: the cache must notice
					case 3:
						rows[2] = slices.Clone(rows[2])
						rows[2][3] = (rows[2][3] + 1) % d.Len()
					case 4:
						e.DropCache()
					}
					v := hvDirections(np, k, call%k, r)
					want, got := hvPoison(np, k), hvPoison(np, k)
					if err := ref.HVP(theta, rows, v, want); err != nil {
						t.Fatal(err)
					}
					if err := e.HVP(theta, rows, v, got); err != nil {
						t.Fatal(err)
					}
					for j := range got {
						if !slices.Equal(got[j], want[j]) {
							t.Errorf("budget %d, call %d, trial %d: differs from the product without a cache (by %.3g)", budget, call, j, hvErr(got[j], want[j]))
						}
					}
				}
				cached := 0
				for _, c := range e.cache {
					if c != nil {
						cached++
					}
				}
				if want := map[int64]int{-1: 0, per: 1, 2*per + 1: 2, 1 << 30: k - 1}[budget]; cached < want || budget < 0 && cached > 0 {
					t.Errorf("budget %d: %d trials cached, want at least %d", budget, cached, want)
				}
			}
		})
	}
}

// TestHVPEvaluatorPortable checks that the float32 convnet's products are
// bitwise the same with the assembly patch copies and additions and with
// their pure-Go fallbacks.
func TestHVPEvaluatorPortable(t *testing.T) {
	if !peHavePatchCopy {
		t.Skip("no assembly patch kernels on this architecture")
	}
	a, _ := nets.New("convnet", 1, 28, 28, 10)
	r := rand.New(rand.NewPCG(31, 32))
	d := to32(randomData(a, 30, r))
	_, theta := peTrials(a, 2, true, r)
	np := a.NumParams()
	v := hvDirections(np, 2, -1, r)
	rows, _ := hvSamples(d.Len(), 2, 11, false, r)
	run := func() [][]float64 {
		e, _ := NewHVPEvaluator(a, d, HVPOptions{Chunk: 4})
		out := hvPoison(np, 2)
		if err := e.HVP(theta, rows, v, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	fast := run()
	peHavePatchCopy = false
	defer func() { peHavePatchCopy = true }()
	slow := run()
	for j := range fast {
		if !slices.Equal(fast[j], slow[j]) {
			t.Errorf("trial %d: the pure-Go patch copies change the product by %.3g", j, hvErr(fast[j], slow[j]))
		}
	}
}
