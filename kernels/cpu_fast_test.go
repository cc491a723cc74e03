package kernels

import (
	"math"
	"math/rand"
	"testing"

	"github.com/perturb/perturb/nets/fastmath"
)

// gemmRef is the float64 reference of g on float64 operands.
func gemmRef(g Gemm, c, a, b []float64) []float64 {
	want := append([]float64(nil), c...)
	for bi := 0; bi < g.Batch; bi++ {
		for i := 0; i < g.M; i++ {
			for j := 0; j < g.N; j++ {
				s := 0.0
				for k := 0; k < g.K; k++ {
					av := a[bi*g.StrideA+i*g.K+k]
					if g.TransA {
						av = a[bi*g.StrideA+k*g.M+i]
					}
					bv := b[bi*g.StrideB+k*g.N+j]
					if g.TransB {
						bv = b[bi*g.StrideB+j*g.K+k]
					}
					s += av * bv
				}
				x := bi*g.StrideC + i*g.N + j
				want[x] = g.Alpha * s
				if g.Beta != 0 {
					want[x] += g.Beta * c[x]
				}
			}
		}
	}
	return want
}

// TestCPUGemmPaths covers every path of the CPU products (the small-M and
// small-N micro-kernel paths, with and without transposes and shared
// operands, and the BLAS row blocks) against the float64 reference, with
// NaN in C for Beta = 0, and checks that an entry's result is bitwise the
// same alone as in a batch, with 1 or 3 workers and with or without the
// AVX-512 kernel, on the default device
// and on WithUniformProducts (every small product on the micro-kernel).
func TestCPUGemmPaths(t *testing.T) {
	uniform, _ := WithUniformProducts(NewCPU(F32))
	for _, d := range []Device{NewCPU(F32), uniform} {
		cpuGemmPaths(t, d)
	}
}

func cpuGemmPaths(t *testing.T, d Device) {
	r := rand.New(rand.NewSource(11))
	for _, g := range []Gemm{
		{Batch: 3, M: 10, N: 300, K: 25, TransA: true, Alpha: 1},              // conv, small M
		{Batch: 3, M: 10, N: 37, K: 250, TransA: true, Alpha: 1, Beta: 1},     // small M, beta
		{Batch: 2, M: 7, N: 20, K: 9, Alpha: 0.5},                             // small M, plain A
		{Batch: 3, M: 77, N: 10, K: 40, Alpha: 1},                             // small N, A's rows packed
		{Batch: 2, M: 41, N: 18, K: 50, Alpha: 0.5, Beta: 1},                  // small N, two column blocks
		{Batch: 2, M: 50, N: 10, K: 30, TransA: true, Alpha: 2, Beta: 0.5},    // small N, A in place
		{Batch: 2, M: 33, N: 6, K: 12, TransB: true, Alpha: 1},                // small N, Bᵀ: OpenBLAS or op(B) packed
		{Batch: 2, M: 41, N: 18, K: 50, TransB: true, Alpha: 2, Beta: 0.5},    // the same, two column blocks
		{Batch: 3, M: 10, N: 150, K: 250, TransA: true, Alpha: 1, Beta: 1},    // small M, beta
		{Batch: 2, M: 7, N: 130, K: 9, Alpha: 0.5},                            // small M, plain A
		{Batch: 2, M: 784, N: 10, K: 1, TransA: true, Alpha: 0.5},             // outer product (weight gradient): BLAS
		{Batch: 2, M: 300, N: 40, K: 30, Alpha: 1},                            // BLAS, row blocks
		{Batch: 2, M: 10, N: 30, K: 20, TransB: true, Alpha: 1},               // BLAS (small M, Bᵀ)
		{Batch: 2, M: 250, N: 10, K: 256, TransB: true, Alpha: 0.25, Beta: 1}, // a weight gradient: the dot kernel
	} {
		g = g.Strided()
		for _, shared := range []string{"", "A", "B"} {
			g := g
			switch shared {
			case "A":
				g.StrideA = 0
			case "B":
				g.StrideB = 0
			}
			a := rnd(r, (g.Batch-1)*g.StrideA+g.M*g.K)
			b := rnd(r, (g.Batch-1)*g.StrideB+g.K*g.N)
			c := rnd(r, g.Batch*g.M*g.N)
			if g.Beta == 0 {
				for i := range c {
					c[i] = math.NaN()
				}
			}
			run := func(g Gemm, c, a, b []float64, workers int) []float64 {
				defer SetWorkers(SetWorkers(workers))
				cb := up(t, d, c)
				if err := d.Gemm(g, cb, up(t, d, a), up(t, d, b)); err != nil {
					t.Fatal(err)
				}
				return down(t, d, cb)
			}
			a32, b32, c32 := round32(a), round32(b), round32(c)
			got := run(g, c32, a32, b32, 2)
			near(t, "gemm "+shared, got, gemmRef(g, c32, a32, b32), 1e-5*math.Sqrt(float64(g.K)))
			for _, w := range []int{1, 3} {
				if other := run(g, c32, a32, b32, w); !bitwise(other, got) {
					t.Fatalf("%+v: %d workers change the result", g, w)
				}
			}
			dot := !g.TransA && g.TransB && g.N <= smallSide && g.K >= dotMinK && g.M >= 2
			if fastmath.HaveAVX512 && !dot { // the 32-column kernel against two 16-column ones
				fastmath.HaveAVX512 = false
				other := run(g, c32, a32, b32, 2)
				fastmath.HaveAVX512 = true
				if !bitwise(other, got) {
					t.Fatalf("%+v shared %q: the AVX-512 kernel changes the result", g, shared)
				}
			}
			// The last entry alone.
			e := g.Batch - 1
			one := g
			one.Batch = 1
			alone := run(one, c32[e*g.StrideC:], a32[e*g.StrideA:], b32[e*g.StrideB:], 2)
			if !bitwise(alone, got[e*g.StrideC:]) {
				t.Fatalf("%+v shared %q: entry %d differs alone", g, shared, e)
			}
		}
	}
}

func round32(x []float64) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(float32(v))
	}
	return y
}

func bitwise(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

// ulps32 is the distance in float32 steps.
func ulps32(a, b float32) int64 {
	key := func(f float32) int64 {
		i := int64(math.Float32bits(f))
		if i&(1<<31) != 0 {
			return -(i &^ (1 << 31))
		}
		return i
	}
	d := key(a) - key(b)
	return max(d, -d)
}

// TestCPUFastMath checks the float32 activations against math.Tanh and
// math.Exp (5 and 3 ulp with AVX2, see nets/fastmath), the fused
// cross-entropy against float64 (float32 accuracy), and that BiasAct,
// Unary and CrossEntropy are bitwise independent of the number of workers.
func TestCPUFastMath(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	d := NewCPU(F32)
	tanhULP, expULP := int64(1), int64(0)
	if fastmath.HaveAVX2 {
		tanhULP, expULP = 5, 3
	}
	const n = 50001 // several workers' ranges and a tail
	x := round32(rnd(r, n))
	for i := range x {
		x[i] *= 4
	}
	for _, f := range []Unary{Tanh, Exp} {
		var ref []float64
		for w := 1; w <= 3; w++ {
			prev := SetWorkers(w)
			out := alloc(t, d, n)
			if err := d.Unary(f, out, up(t, d, x)); err != nil {
				t.Fatal(err)
			}
			SetWorkers(prev)
			got := down(t, d, out)
			if ref == nil {
				ref = got
				for i, v := range x {
					want, lim := math.Tanh(v), tanhULP
					if f == Exp {
						want, lim = math.Exp(v), expULP
					}
					if u := ulps32(float32(got[i]), float32(want)); u > lim {
						t.Fatalf("unary %d of %v = %v, want %v (%d ulp)", f, v, got[i], want, u)
					}
				}
			} else if !bitwise(got, ref) {
				t.Fatalf("unary %d: %d workers change the result", f, w)
			}
		}
	}
	// BiasAct both layouts, against the scalar formula.
	const batch, m, cols = 3, 7, 1001
	z := round32(rnd(r, batch*m*cols))
	for _, cm := range []bool{false, true} {
		nb := cols
		if cm {
			nb = m
		}
		bias := round32(rnd(r, batch*nb))
		var ref []float64
		for w := 1; w <= 3; w++ {
			prev := SetWorkers(w)
			zb := up(t, d, z)
			if err := d.BiasAct(zb, batch, m, cols, 0.75, up(t, d, bias), cm, true); err != nil {
				t.Fatal(err)
			}
			SetWorkers(prev)
			got := down(t, d, zb)
			if ref == nil {
				ref = got
				for i, v := range z {
					tr, row, j := i/(m*cols), i/cols%m, i%cols
					k := j
					if cm {
						k = row
					}
					b := bias[tr*nb+k]
					want := math.Tanh(float64(float32(float32(0.75)*float32(v)) + float32(b)))
					if u := ulps32(float32(got[i]), float32(want)); u > tanhULP {
						t.Fatalf("biasact cm=%t [%d] = %v, want %v (%d ulp)", cm, i, got[i], want, u)
					}
				}
			} else if !bitwise(got, ref) {
				t.Fatalf("biasact cm=%t: %d workers change the result", cm, w)
			}
		}
	}
	// Cross-entropy against float64.
	const trials, rows, c = 3, 1500, 10
	logits := round32(rnd(r, trials*rows*c))
	labels := make([]float64, rows)
	for i := range labels {
		labels[i] = float64(r.Intn(c))
	}
	var ref []float64
	for w := 1; w <= 3; w++ {
		prev := SetWorkers(w)
		loss, corr := alloc(t, d, trials*rows), alloc(t, d, trials*rows)
		if err := d.CrossEntropy(loss, corr, up(t, d, logits), up(t, d, labels), trials, rows, c); err != nil {
			t.Fatal(err)
		}
		SetWorkers(prev)
		got := append(down(t, d, loss), down(t, d, corr)...)
		if ref == nil {
			ref = got
			for i := 0; i < trials*rows; i++ {
				z := logits[i*c : (i+1)*c]
				m, arg := z[0], 0
				for j, v := range z {
					if v > m {
						m, arg = v, j
					}
				}
				s := 0.0
				for _, v := range z {
					s += math.Exp(v - m)
				}
				lab := int(labels[i%rows])
				want := m + math.Log(s) - z[lab]
				if math.Abs(got[i]-want) > 1e-6*math.Max(1, want) || (got[trials*rows+i] == 1) != (arg == lab) {
					t.Fatalf("cross-entropy row %d: %v, %v, want %v, %t", i, got[i], got[trials*rows+i], want, arg == lab)
				}
			}
		} else if !bitwise(got, ref) {
			t.Fatalf("cross-entropy: %d workers change the result", w)
		}
	}
}

// TestCPUPatchesBitwise checks the division-free im2col and col2im against
// the element-by-element reference (patches), bitwise, in float64 and
// float32 (the AVX2 gathers and, for channel-major stride-2 maps with rows
// of a multiple of four pixels, the AVX2 scatter of col2im), with 1 and 3
// workers.
func TestCPUPatchesBitwise(t *testing.T) {
	r := rand.New(rand.NewSource(13))
	for _, c := range []Conv{
		{Trials: 3, Images: 4, C: 2, H: 12, W: 11, Size: 5, Stride: 2},
		{Trials: 2, Images: 3, C: 3, H: 9, W: 9, Size: 3, Stride: 1, CBHW: true},
		{Trials: 2, Images: 9, C: 3, H: 12, W: 12, Size: 5, Stride: 2, CBHW: true},
		{Trials: 2, Images: 3, C: 2, H: 11, W: 11, Size: 5, Stride: 2, CBHW: true},
	} {
		im := rnd(r, c.ImagesLen())
		cols := rnd(r, c.ColsLen())
		patchesBitwise(t, r, c, im, cols)
		im32, cols32 := make([]float32, len(im)), make([]float32, len(cols))
		for i, v := range im {
			im32[i] = float32(v)
		}
		for i, v := range cols {
			cols32[i] = float32(v)
		}
		patchesBitwise(t, r, c, im32, cols32)
	}
}

func patchesBitwise[T float](t *testing.T, r *rand.Rand, c Conv, im, cols []T) {
	t.Helper()
	wantCols := make([]T, c.ColsLen())
	patches(c, wantCols, im, false)
	wantIm := make([]T, c.ImagesLen())
	patches(c, cols, wantIm, true)
	for w := 1; w <= 3; w += 2 {
		gotCols := make([]T, c.ColsLen())
		im2col(w, c, gotCols, im)
		gotIm := make([]T, c.ImagesLen()) // cleared by col2im
		for i := range gotIm {
			gotIm[i] = T(r.NormFloat64())
		}
		col2im(w, c, gotIm, cols)
		for i := range wantCols {
			if math.Float64bits(float64(gotCols[i])) != math.Float64bits(float64(wantCols[i])) {
				t.Fatalf("%T %+v, %d workers: im2col differs from the reference at %d", wantCols[0], c, w, i)
			}
		}
		for i := range wantIm {
			if math.Float64bits(float64(gotIm[i])) != math.Float64bits(float64(wantIm[i])) {
				t.Fatalf("%T %+v, %d workers: col2im differs from the reference at %d", wantIm[0], c, w, i)
			}
		}
	}
}

// TestCPUSumBitwise checks Sum (eight sums at a time along the middle
// axis when inner is 1) against one sum at a time in increasing order,
// bitwise, in float32.
func TestCPUSumBitwise(t *testing.T) {
	r := rand.New(rand.NewSource(17))
	d := NewCPU(F32)
	for _, sh := range [][3]int{{1, 37, 1}, {8, 37, 1}, {10, 2304, 1}, {17, 5, 1}, {10, 7, 3}} {
		outer, mid, inner := sh[0], sh[1], sh[2]
		x := rnd(r, outer*mid*inner)
		out := alloc(t, d, outer*inner)
		if err := d.Sum(out, up(t, d, x), outer, mid, inner); err != nil {
			t.Fatal(err)
		}
		got := down(t, d, out)
		for a := range outer {
			for i := range inner {
				var s float32
				for j := range mid {
					s += float32(x[(a*mid+j)*inner+i])
				}
				if math.Float32bits(float32(got[a*inner+i])) != math.Float32bits(s) {
					t.Fatalf("sum %v: element (%d, %d) is %v, want %v", sh, a, i, got[a*inner+i], s)
				}
			}
		}
	}
}
