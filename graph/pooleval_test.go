package graph

import (
	"github.com/perturb/perturb/nets/fastmath"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/nets"
	netsdata "github.com/perturb/perturb/nets/data"
)

// peTrials returns k parameter sets of a: initialisation j+1 moved by
// Gaussian noise so that biases and every layer matter, each as per-tensor
// values and as a flat vector, rounded to float32 when f32.
func peTrials(a *nets.Arch, k int, f32 bool, r *rand.Rand) (vals [][][]float64, flat [][]float64) {
	for j := 0; j < k; j++ {
		v, err := a.Init(j + 1)
		if err != nil {
			panic(err)
		}
		var fl []float64
		for i := range v {
			for n := range v[i] {
				v[i][n] += 0.3 * r.NormFloat64()
				if f32 {
					v[i][n] = float64(float32(v[i][n]))
				}
			}
			fl = append(fl, v[i]...)
		}
		vals = append(vals, v)
		flat = append(flat, fl)
	}
	return vals, flat
}

func peRelDiff(a, b float64) float64 {
	return math.Abs(a-b) / math.Max(math.Abs(b), 1e-300)
}

// TestPoolEvaluatorMatchesGorgonia checks every trial's loss and accuracy
// against graph.Evaluator (the gorgonia graph), for both models and dtypes
// and the CIFAR-10 convnet shape, over the whole pool with a remainder
// chunk and over a row list with repetitions.
func TestPoolEvaluatorMatchesGorgonia(t *testing.T) {
	peMatchGorgonia(t)
}

// TestPoolEvaluatorPortable is TestPoolEvaluatorMatchesGorgonia without the
// assembly kernels (tanh, exp, patch copies), as on CPUs without AVX2 or
// other architectures.
func TestPoolEvaluatorPortable(t *testing.T) {
	avx, patch := fastmath.HaveAVX2, peHavePatchCopy
	defer func() { fastmath.HaveAVX2, peHavePatchCopy = avx, patch }()
	fastmath.HaveAVX2, peHavePatchCopy = false, false
	peMatchGorgonia(t)
}

func peMatchGorgonia(t *testing.T) {
	cases := []struct {
		model   string
		c, h, w int
		n       int
	}{
		{"logistic", 1, 28, 28, 45},
		{"convnet", 1, 28, 28, 45},
		{"convnet", 3, 32, 32, 13},
	}
	for _, tc := range cases {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			name := tc.model + "/" + dt.String()
			if tc.c == 3 {
				name += "/cifar"
			}
			t.Run(name, func(t *testing.T) {
				a, err := nets.New(tc.model, tc.c, tc.h, tc.w, 10)
				if err != nil {
					t.Fatal(err)
				}
				r := rand.New(rand.NewPCG(21, uint64(tc.n)))
				d := randomData(a, tc.n, r)
				f32 := dt == tensor.Float32
				if f32 {
					d = to32(d)
				}
				tol := 1e-10
				if f32 {
					tol = 1e-5
				}
				vals, flat := peTrials(a, 3, f32, r)
				// Chunk 8 leaves a remainder chunk of 5 (45) or 5 (13).
				e, err := NewPoolEvaluator(a, d, PoolOptions{Chunk: 8, Workers: 3})
				if err != nil {
					t.Fatal(err)
				}
				ref := NewEvaluator(a, dt, 10)
				defer ref.Close()
				rows := []int{4, 0, 4, tc.n - 1, 7, 7, 7, 2, 11, 3, 9}
				for _, rs := range [][]int{nil, rows} {
					loss, acc := make([]float64, 3), make([]float64, 3)
					if err := e.Mean(flat, rs, loss, acc); err != nil {
						t.Fatal(err)
					}
					for j := range vals {
						wl, wa, err := ref.Mean(NewParams(a, vals[j], dt), d, rs)
						if err != nil {
							t.Fatal(err)
						}
						if peRelDiff(loss[j], wl) > tol || acc[j] != wa {
							t.Errorf("rows %v trial %d: loss %.15g acc %v, gorgonia %.15g %v (rel %.2g)",
								rs != nil, j, loss[j], acc[j], wl, wa, peRelDiff(loss[j], wl))
						}
					}
				}
			})
		}
	}
}

// poolModels are the models of nets.Names that the pool evaluator knows
// (TestPoolSupports checks the list).
var poolModels = []string{"logistic", "convnet"}

// TestPoolSupports checks which architectures the pool evaluator accepts:
// every model of poolModels and the paper's convnet at other widths, but
// not the mlp family nor deeper convnets, with an error naming the model.
func TestPoolSupports(t *testing.T) {
	for _, tc := range []struct {
		name string
		size nets.Size
		ok   bool
	}{
		{"logistic", nets.Size{}, true},
		{"convnet", nets.Size{}, true},
		{"convnet", nets.Size{Width: 16}, true},
		{"convnet", nets.Size{Depth: 3}, false},
		{"mlp", nets.Size{}, false},
	} {
		a, err := nets.NewSized(tc.name, 1, 28, 28, 10, tc.size)
		if err != nil {
			t.Fatal(err)
		}
		err = PoolSupports(a)
		if (err == nil) != tc.ok {
			t.Errorf("%s %+v: PoolSupports = %v, want ok %v", tc.name, tc.size, err, tc.ok)
		}
		if tc.ok {
			continue
		}
		if !strings.Contains(err.Error(), "pool evaluator") {
			t.Errorf("%s %+v: error %q does not say what refused it", tc.name, tc.size, err)
		}
	}
	for _, m := range nets.Names {
		a, _ := nets.New(m, 1, 28, 28, 10)
		if got := PoolSupports(a) == nil; got != slices.Contains(poolModels, m) {
			t.Errorf("PoolSupports(%s) = %v, but poolModels says %v", m, got, !got)
		}
	}
}

// TestPoolEvaluatorIndependence checks that a trial's float64 result is the
// same alone and inside batches of different sizes and positions (across
// first-layer groups of the convnet), whatever the chunk size and the
// number of workers.
func TestPoolEvaluatorIndependence(t *testing.T) {
	for _, model := range poolModels {
		t.Run(model, func(t *testing.T) {
			a, _ := nets.New(model, 1, 28, 28, 10)
			r := rand.New(rand.NewPCG(5, 6))
			d := randomData(a, 101, r)
			_, flat := peTrials(a, 20, false, r)
			alone, err := NewPoolEvaluator(a, d, PoolOptions{Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			want, wantAcc := make([]float64, 20), make([]float64, 20)
			for j := range flat {
				if err := alone.TestLoss(flat[j:j+1], want[j:j+1], wantAcc[j:j+1]); err != nil {
					t.Fatal(err)
				}
			}
			for _, opts := range []PoolOptions{{Chunk: 1, Workers: 2}, {Chunk: 7, Workers: 3}, {Chunk: 64, Workers: 1}, {}} {
				e, err := NewPoolEvaluator(a, d, opts)
				if err != nil {
					t.Fatal(err)
				}
				for _, batch := range [][2]int{{0, 20}, {3, 20}, {15, 19}, {17, 18}} {
					lo, hi := batch[0], batch[1]
					loss, acc := make([]float64, hi-lo), make([]float64, hi-lo)
					if err := e.TestLoss(flat[lo:hi], loss, acc); err != nil {
						t.Fatal(err)
					}
					for j := range loss {
						if peRelDiff(loss[j], want[lo+j]) > 1e-12 || acc[j] != wantAcc[lo+j] {
							t.Errorf("%+v trials [%d,%d) #%d: loss %.17g acc %v, alone %.17g %v",
								opts, lo, hi, j, loss[j], acc[j], want[lo+j], wantAcc[lo+j])
						}
					}
				}
			}
		})
	}
}

// TestPoolEvaluatorNaN checks that a NaN parameter makes that trial's loss
// NaN and leaves every other trial of the batch untouched.
func TestPoolEvaluatorNaN(t *testing.T) {
	for _, model := range poolModels {
		for _, f32 := range []bool{false, true} {
			a, _ := nets.New(model, 1, 28, 28, 10)
			r := rand.New(rand.NewPCG(7, 8))
			d := randomData(a, 30, r)
			if f32 {
				d = to32(d)
			}
			_, flat := peTrials(a, 4, f32, r)
			e, err := NewPoolEvaluator(a, d, PoolOptions{Chunk: 7})
			if err != nil {
				t.Fatal(err)
			}
			want, acc := make([]float64, 4), make([]float64, 4)
			if err := e.TestLoss(flat, want, acc); err != nil {
				t.Fatal(err)
			}
			// One weight of the first layer of trial 1, one bias of the last
			// layer of trial 2.
			flat[1][5] = math.NaN()
			flat[2][len(flat[2])-3] = math.NaN()
			loss := make([]float64, 4)
			if err := e.TestLoss(flat, loss, acc); err != nil {
				t.Fatal(err)
			}
			for j, l := range loss {
				if j == 1 || j == 2 {
					if !math.IsNaN(l) {
						t.Errorf("%s f32=%v: trial %d with a NaN parameter has loss %v", model, f32, j, l)
					}
				} else if l != want[j] {
					t.Errorf("%s f32=%v: trial %d loss %v changed to %v by another trial's NaN", model, f32, j, want[j], l)
				}
			}
		}
	}
}

// TestPoolEvaluatorMemory checks the documented buffer sizes and that the
// automatic chunk keeps the buffers within MaxBytes.
func TestPoolEvaluatorMemory(t *testing.T) {
	for _, tc := range []struct {
		model       string
		base, trial int64 // float32 bytes per example, per example and trial
		group       int   // trials counted at most
	}{
		{"logistic", 3136, 84, 1 << 30},
		{"convnet", 31164, 5760, 8},
	} {
		a, _ := nets.New(tc.model, 1, 28, 28, 10)
		// Never read: the pages of the zero slices are not even touched.
		d := &Data{X32: make([]float32, 70000*784), Y: make([]uint8, 70000), Dim: 784, Classes: 10}
		for _, k := range []int{1, 16, 64} {
			for _, maxBytes := range []int64{1 << 30, 64 << 20} {
				e, err := NewPoolEvaluator(a, d, PoolOptions{MaxBytes: maxBytes, Workers: 4})
				if err != nil {
					t.Fatal(err)
				}
				if got, want := e.BytesPerChunk(k, 10), 10*(tc.base+tc.trial*int64(min(k, tc.group))); got != want {
					t.Errorf("%s: BytesPerChunk(%d, 10) = %d, want %d", tc.model, k, got, want)
				}
				chunk, err := e.ChunkSize(k, d.Len())
				if err != nil {
					t.Fatal(err)
				}
				if used := 4*e.BytesPerChunk(k, chunk) + e.FixedBytes(k); used > maxBytes || chunk < 1 || chunk > 256 {
					t.Errorf("%s k=%d MaxBytes=%d: chunk %d uses %d bytes", tc.model, k, maxBytes, chunk, used)
				}
			}
		}
		e, _ := NewPoolEvaluator(a, d, PoolOptions{MaxBytes: 1000, Workers: 4})
		if _, err := e.ChunkSize(16, d.Len()); err == nil || !strings.Contains(err.Error(), "fewer trials") {
			t.Errorf("%s: ChunkSize with MaxBytes 1000 gave error %v", tc.model, err)
		}
		// A tight budget reduces the chunk below the cap.
		e, _ = NewPoolEvaluator(a, d, PoolOptions{MaxBytes: 4*e.BytesPerChunk(64, 5) + e.FixedBytes(64), Workers: 4})
		if chunk, err := e.ChunkSize(64, d.Len()); err != nil || chunk != 5 {
			t.Errorf("%s: tight budget gives chunk %d, %v; want 5", tc.model, chunk, err)
		}
	}
}

// TestPoolEvaluatorErrors checks argument validation.
func TestPoolEvaluatorErrors(t *testing.T) {
	a, _ := nets.New("logistic", 1, 28, 28, 10)
	d := randomData(a, 5, rand.New(rand.NewPCG(1, 1)))
	e, err := NewPoolEvaluator(a, d, PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, flat := peTrials(a, 1, false, rand.New(rand.NewPCG(1, 1)))
	loss, acc := make([]float64, 1), make([]float64, 1)
	if err := e.Mean(flat, []int{5}, loss, acc); err == nil {
		t.Error("row out of range accepted")
	}
	if err := e.TestLoss([][]float64{flat[0][1:]}, loss, acc); err == nil {
		t.Error("short parameter vector accepted")
	}
	if err := e.TestLoss(append(flat, flat[0]), loss, acc); err == nil {
		t.Error("short loss slice accepted")
	}
	b, _ := nets.New("convnet", 3, 32, 32, 10)
	if _, err := NewPoolEvaluator(b, d, PoolOptions{}); err == nil {
		t.Error("data of the wrong shape accepted")
	}
}

// TestPoolEvaluatorRealFashion compares the pool evaluator with the
// gorgonia graph on 3,000 random rows of the installed Fashion-MNIST
// (float32, normalised as the runner does), where one is installed. The
// accuracy may differ by one example: a near-tie of two float32 logits can
// round either way in two implementations.
func TestPoolEvaluatorRealFashion(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if _, err := os.Stat(netsdata.DefaultFashionDir); err != nil {
		t.Skipf("Fashion-MNIST not installed: %v", err)
	}
	pool, err := netsdata.LoadFashionMNIST(netsdata.DefaultFashionDir)
	if err != nil {
		t.Fatal(err)
	}
	d := &Data{X32: pool.Float32(), Y: pool.Labels, Dim: pool.Dim(), Classes: pool.Classes}
	r := rand.New(rand.NewPCG(12, 13))
	rows := make([]int, 3000)
	for i := range rows {
		rows[i] = r.IntN(d.Len())
	}
	for _, model := range poolModels {
		a, _ := nets.New(model, 1, 28, 28, 10)
		vals, flat := peTrials(a, 3, true, r)
		e, err := NewPoolEvaluator(a, d, PoolOptions{})
		if err != nil {
			t.Fatal(err)
		}
		loss, acc := make([]float64, 3), make([]float64, 3)
		if err := e.Mean(flat, rows, loss, acc); err != nil {
			t.Fatal(err)
		}
		ref := NewEvaluator(a, tensor.Float32, DefaultChunk(a))
		for j := range vals {
			wl, wa, err := ref.Mean(NewParams(a, vals[j], tensor.Float32), d, rows)
			if err != nil {
				t.Fatal(err)
			}
			if peRelDiff(loss[j], wl) > 1e-5 || math.Abs(acc[j]-wa) > 1.5/float64(len(rows)) {
				t.Errorf("%s trial %d: loss %.9g acc %v, gorgonia %.9g %v", model, j, loss[j], acc[j], wl, wa)
			}
		}
		ref.Close()
	}
}
