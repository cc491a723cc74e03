package kernels

import (
	"math"
	"math/rand"
	"testing"

	"github.com/perturb/perturb/nets/precision"
)

// The CPU twins against independent float64 references (naive loops,
// direct convolution, closed forms). Each runs in float64 (tolerance 1e-12
// relative) and float32 (float32 rounding).

func rnd(r *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = r.NormFloat64()
	}
	return x
}

func up(t *testing.T, d Device, x []float64) Buffer {
	t.Helper()
	b, err := d.Alloc(len(x))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Upload(b, 0, x); err != nil {
		t.Fatal(err)
	}
	return b
}

func alloc(t *testing.T, d Device, n int) Buffer {
	t.Helper()
	b, err := d.Alloc(n)
	if err != nil {
		t.Fatal(err)
	}
	// Poison: every element must be written.
	if err := d.Fill(b, math.NaN()); err != nil {
		t.Fatal(err)
	}
	return b
}

func down(t *testing.T, d Device, b Buffer) []float64 {
	t.Helper()
	x := make([]float64, b.Len())
	if err := d.Download(x, b, 0); err != nil {
		t.Fatal(err)
	}
	return x
}

func tol(d Device) float64 {
	if d.DType() == F64 {
		return 1e-12
	}
	return 2e-5
}

// near fails unless got and want agree to tol relative to max(1, |want|)
// element by element.
func near(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !(math.Abs(got[i]-want[i]) <= tol*math.Max(1, math.Abs(want[i]))) {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func devices() []Device { return []Device{NewCPU(F64), NewCPU(F32)} }

func TestCPUGemm(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, d := range devices() {
		for _, g := range []Gemm{
			{Batch: 3, M: 4, N: 5, K: 6, Alpha: 1},
			{Batch: 2, M: 4, N: 5, K: 6, TransA: true, Alpha: 0.5, Beta: 0.25},
			{Batch: 2, M: 3, N: 7, K: 2, TransB: true, Alpha: -2},
			{Batch: 3, M: 1, N: 2, K: 9, TransA: true, TransB: true, Alpha: 1.5, Beta: 1},
		} {
			g = g.Strided()
			for _, shared := range []bool{false, true} {
				if shared {
					g.StrideB = 0
				}
				a := rnd(r, g.Batch*g.M*g.K)
				b := rnd(r, g.Batch*g.K*g.N)
				c := rnd(r, g.Batch*g.M*g.N)
				want := make([]float64, len(c))
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
							want[bi*g.StrideC+i*g.N+j] = g.Alpha*s + g.Beta*c[bi*g.StrideC+i*g.N+j]
						}
					}
				}
				cb := up(t, d, c)
				if err := d.Gemm(g, cb, up(t, d, a), up(t, d, b)); err != nil {
					t.Fatal(err)
				}
				near(t, d.Name()+" gemm", down(t, d, cb), want, 10*tol(d))
			}
		}
	}
}

func TestCPUBiasActSumRepeat(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for _, d := range devices() {
		const batch, m, n = 2, 3, 4
		for _, cm := range []bool{false, true} {
			for _, act := range []bool{false, true} {
				z, bias := rnd(r, batch*m*n), rnd(r, batch*max(m, n))
				nb := n
				if cm {
					nb = m
				}
				bias = bias[:batch*nb]
				want := make([]float64, len(z))
				for i := range z {
					t, row, j := i/(m*n), (i/n)%m, i%n
					var b float64
					if cm {
						b = bias[t*m+row]
					} else {
						b = bias[t*n+j]
					}
					want[i] = 0.7*z[i] + b
					if act {
						want[i] = math.Tanh(want[i])
					}
				}
				zb := up(t, d, z)
				if err := d.BiasAct(zb, batch, m, n, 0.7, up(t, d, bias), cm, act); err != nil {
					t.Fatal(err)
				}
				near(t, d.Name()+" biasact", down(t, d, zb), want, tol(d))
			}
		}
		x := rnd(r, 2*3*4)
		out := alloc(t, d, 2*4)
		if err := d.Sum(out, up(t, d, x), 2, 3, 4); err != nil {
			t.Fatal(err)
		}
		want := make([]float64, 8)
		for o := 0; o < 2; o++ {
			for i := 0; i < 4; i++ {
				want[o*4+i] = x[o*12+i] + x[o*12+4+i] + x[o*12+8+i]
			}
		}
		near(t, d.Name()+" sum", down(t, d, out), want, tol(d))
		rep := alloc(t, d, 2*3*4)
		if err := d.Repeat(rep, up(t, d, x[:8]), 2, 3, 4); err != nil {
			t.Fatal(err)
		}
		got := down(t, d, rep)
		for k := range got {
			o, i := k/12, k%4
			if got[k] != float64(float32(x[o*4+i])) && got[k] != x[o*4+i] {
				t.Fatalf("%s repeat[%d] = %v, want %v", d.Name(), k, got[k], x[o*4+i])
			}
		}
	}
}

// TestCPUIm2colConv checks im2col + GEMM against a direct convolution, and
// col2im as im2col's adjoint (<im2col x, y> = <x, col2im y>).
func TestCPUIm2colConv(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for _, d := range devices() {
		for _, c := range []Conv{
			{Trials: 2, Images: 3, C: 2, H: 9, W: 8, Size: 3, Stride: 2},
			{Trials: 2, Images: 2, C: 3, H: 7, W: 7, Size: 5, Stride: 1, CBHW: true},
			{Trials: 2, Images: 2, C: 2, H: 6, W: 5, Size: 3, Stride: 1, Pad: 1, CBHW: true},
			{Trials: 1, Images: 3, C: 2, H: 7, W: 6, Size: 3, Stride: 2, Pad: 2},
			{Trials: 2, Images: 2, C: 2, H: 19, W: 19, Size: 5, Stride: 2}, // stride-2 rows of 8
			{Trials: 1, Images: 2, C: 2, H: 13, W: 13, Size: 3, Stride: 2},
			{Trials: 2, Images: 9, C: 2, H: 9, W: 9, Size: 5, Stride: 2, CBHW: true}, // col2im: eight images at once, then one
		} {
			im := rnd(r, c.ImagesLen())
			cols := alloc(t, d, c.ColsLen())
			if err := d.Im2col(c, cols, up(t, d, im)); err != nil {
				t.Fatal(err)
			}
			cv := down(t, d, cols)
			oh, ow := c.Out()
			f, q := c.C*c.Size*c.Size, c.Images*oh*ow
			ker := rnd(r, f)
			pix := func(t, j, ch, y, x int) float64 {
				y, x = y-c.Pad, x-c.Pad // coordinates in the zero-padded image
				if y < 0 || y >= c.H || x < 0 || x >= c.W {
					return 0
				}
				if c.CBHW {
					return im[((t*c.C+ch)*c.Images+j)*c.H*c.W+y*c.W+x]
				}
				return im[(((t*c.Images+j)*c.C+ch)*c.H+y)*c.W+x]
			}
			for tr := 0; tr < c.Trials; tr++ {
				for j := 0; j < c.Images; j++ {
					for y := 0; y < oh; y++ {
						for x := 0; x < ow; x++ {
							direct, viaCols := 0.0, 0.0
							for ch := 0; ch < c.C; ch++ {
								for ky := 0; ky < c.Size; ky++ {
									for kx := 0; kx < c.Size; kx++ {
										fi := (ch*c.Size+ky)*c.Size + kx
										direct += ker[fi] * pix(tr, j, ch, y*c.Stride+ky, x*c.Stride+kx)
										viaCols += ker[fi] * cv[(tr*f+fi)*q+j*oh*ow+y*ow+x]
									}
								}
							}
							near(t, d.Name()+" conv", []float64{viaCols}, []float64{direct}, 10*tol(d))
						}
					}
				}
			}
			y := rnd(r, c.ColsLen())
			back := alloc(t, d, c.ImagesLen())
			if err := d.Col2im(c, back, up(t, d, y)); err != nil {
				t.Fatal(err)
			}
			bv := down(t, d, back)
			lhs, rhs := 0.0, 0.0
			for i := range cv {
				lhs += cv[i] * y[i]
			}
			for i := range bv {
				rhs += im[i] * bv[i]
			}
			near(t, d.Name()+" adjoint", []float64{lhs}, []float64{rhs}, 100*tol(d))
		}
	}
}

func TestCPUFlatten(t *testing.T) {
	for _, d := range devices() {
		const trials, c, images, p = 2, 3, 2, 4
		n := trials * c * images * p
		x := make([]float64, n)
		for i := range x {
			x[i] = float64(i)
		}
		rows, back := alloc(t, d, n), alloc(t, d, n)
		if err := d.Flatten(rows, up(t, d, x), trials, c, images, p, false); err != nil {
			t.Fatal(err)
		}
		rv := down(t, d, rows)
		// Row (t=1, image j=1, position i=2, channel 2) is map element
		// t·24 + (2·2 + 1)·4 + 2 = 46.
		if got := rv[24+(1*p+2)*c+2]; got != 46 {
			t.Fatalf("%s flatten: %v, want 46", d.Name(), got)
		}
		if err := d.Flatten(back, rows, trials, c, images, p, true); err != nil {
			t.Fatal(err)
		}
		near(t, d.Name()+" flatten inverse", down(t, d, back), x, 0)
	}
}

func TestCPUSoftmaxCrossEntropy(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for _, d := range devices() {
		const trials, rows, c = 2, 3, 5
		z := rnd(r, trials*rows*c)
		z[0] = 40 // a large logit must not overflow
		g := rnd(r, trials*rows*c)
		labels := []float64{4, 0, 2}
		ls, back := alloc(t, d, len(z)), alloc(t, d, len(z))
		if err := d.LogSoftmax(ls, up(t, d, z), trials*rows, c); err != nil {
			t.Fatal(err)
		}
		if err := d.LogSoftmaxBack(back, ls, up(t, d, g), trials*rows, c); err != nil {
			t.Fatal(err)
		}
		loss, corr := alloc(t, d, trials*rows), alloc(t, d, trials*rows)
		if err := d.CrossEntropy(loss, corr, up(t, d, z), up(t, d, labels), trials, rows, c); err != nil {
			t.Fatal(err)
		}
		wantLS, wantBack := make([]float64, len(z)), make([]float64, len(z))
		wantLoss, wantCorr := make([]float64, trials*rows), make([]float64, trials*rows)
		for i := 0; i < trials*rows; i++ {
			row := z[i*c : (i+1)*c]
			m := math.Inf(-1)
			arg := 0
			for j, v := range row {
				if v > m {
					m, arg = v, j
				}
			}
			s := 0.0
			for _, v := range row {
				s += math.Exp(v - m)
			}
			lse := m + math.Log(s)
			gs := 0.0
			for j := range row {
				gs += g[i*c+j]
			}
			for j, v := range row {
				wantLS[i*c+j] = v - lse
				// d/dz_j Σ_k g_k (z_k − lse) = g_j − softmax_j Σ g.
				wantBack[i*c+j] = g[i*c+j] - math.Exp(v-lse)*gs
			}
			lab := int(labels[i%rows])
			wantLoss[i] = lse - row[lab]
			if arg == lab {
				wantCorr[i] = 1
			}
		}
		near(t, d.Name()+" logsoftmax", down(t, d, ls), wantLS, 10*tol(d))
		near(t, d.Name()+" logsoftmaxback", down(t, d, back), wantBack, 10*tol(d))
		near(t, d.Name()+" cross-entropy", down(t, d, loss), wantLoss, 10*tol(d))
		near(t, d.Name()+" correct", down(t, d, corr), wantCorr, 0)
	}
}

func TestCPUGather(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for _, d := range devices() {
		const n, dim, classes = 6, 3, 4
		pool := rnd(r, n*dim)
		labels := []float64{0, 3, 1, 2, 3, 0}
		idx := []int32{5, 1, 1, 4}
		x, y := alloc(t, d, len(idx)*dim), alloc(t, d, len(idx)*classes)
		if err := d.Gather(x, y, up(t, d, pool), up(t, d, labels), idx, dim, classes); err != nil {
			t.Fatal(err)
		}
		wx, wy := make([]float64, len(idx)*dim), make([]float64, len(idx)*classes)
		for i, rI := range idx {
			copy(wx[i*dim:], pool[int(rI)*dim:(int(rI)+1)*dim])
			wy[i*classes+int(labels[rI])] = 1
		}
		near(t, d.Name()+" gather x", down(t, d, x), wx, tol(d))
		near(t, d.Name()+" gather y", down(t, d, y), wy, 0)
		if err := d.Gather(x, y, up(t, d, pool), up(t, d, labels), []int32{0, 1, 2, 6}, dim, classes); err == nil {
			t.Fatalf("%s: gather of row 6 of 6: no error", d.Name())
		}
	}
}

// TestCPUTanhJet checks the recurrence against closed forms: tanh(ε) =
// ε − ε³/3 + 2ε⁵/15 − 17ε⁷/315, and for z = a + bε the coefficients
// b^k tanh^(k)(a)/k! with T' = 1 − T², T” = −2T(1 − T²), T”' = (1 −
// T²)(6T² − 2).
func TestCPUTanhJet(t *testing.T) {
	for _, d := range devices() {
		const deg = 7
		a, b := 0.3, -1.7
		z := make([]float64, (deg+1)*2)
		z[0*2+0], z[1*2+0] = 0, 1 // element 0: ε
		z[0*2+1], z[1*2+1] = a, b // element 1: a + bε
		out := alloc(t, d, len(z))
		if err := d.TanhJet(out, up(t, d, z), deg, 2); err != nil {
			t.Fatal(err)
		}
		got := down(t, d, out)
		series := []float64{0, 1, 0, -1.0 / 3, 0, 2.0 / 15, 0, -17.0 / 315}
		T := math.Tanh(a)
		u := 1 - T*T
		closed := []float64{T, b * u, b * b * (-2 * T * u) / 2, b * b * b * u * (6*T*T - 2) / 6}
		for k := 0; k <= deg; k++ {
			near(t, d.Name()+" tanh(ε)", []float64{got[k*2]}, []float64{series[k]}, 10*tol(d))
			if k < len(closed) {
				near(t, d.Name()+" tanh(a+bε)", []float64{got[k*2+1]}, []float64{closed[k]}, 10*tol(d))
			}
		}
	}
}

// TestCPURound compares with nets/precision's float64 rounding (Round,
// which the bit-level Round32 the twin uses is tested against).
func TestCPURound(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	x := rnd(r, 200)
	for i := range x {
		x[i] *= math.Pow(2, float64(r.Intn(40)-30))
	}
	x = append(x, 65519, 65520, 1e-7, -3e-8, 0)
	d := NewCPU(F32)
	for _, f := range []struct {
		f Format
		p precision.Format
	}{{BF16, precision.BFloat16}, {FP16, precision.Float16}, {TF32, precision.TF32}} {
		b := up(t, d, x)
		if err := d.Round(b, f.f); err != nil {
			t.Fatal(err)
		}
		got := down(t, d, b)
		for i, v := range x {
			want := f.p.Round(float64(float32(v)))
			if got[i] != want {
				t.Fatalf("round %v of %v: %v, want %v", f.p, v, got[i], want)
			}
		}
	}
}
