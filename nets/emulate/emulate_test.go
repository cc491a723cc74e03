package emulate

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/graph"
	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/fastmath"
	"github.com/perturb/perturb/nets/precision"
)

// testData is n random examples of c×h×w values with labels.
func testData(n, c, h, w int) ([]float64, []uint8) {
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float64, n*c*h*w)
	for i := range x {
		x[i] = r.NormFloat64()
	}
	y := make([]uint8, n)
	for i := range y {
		y[i] = uint8(r.IntN(10))
	}
	return x, y
}

func archs(t *testing.T) []*nets.Arch {
	var out []*nets.Arch
	for _, c := range []struct {
		name string
		s    nets.Size
	}{{"logistic", nets.Size{}}, {"convnet", nets.Size{}}, {"convnet", nets.Size{Width: 6, Depth: 3}}, {"mlp", nets.Size{Width: 16, Depth: 3}}} {
		a, err := nets.NewSized(c.name, 1, 28, 28, 10, c.s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func flatInit(t *testing.T, a *nets.Arch, id int) []float64 {
	v, err := a.Init(id)
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, p := range v {
		out = append(out, p...)
	}
	// Non-zero biases, so that their gradients are tested.
	r := rand.New(rand.NewPCG(uint64(id), 9))
	o := 0
	for _, p := range a.Params {
		if p.Bias {
			for j := 0; j < p.Size(); j++ {
				out[o+j] = 0.3 * r.NormFloat64()
			}
		}
		o += p.Size()
	}
	return out
}

// TestFloat64MatchesGorgonia compares the float64 losses and gradients of
// every model family with the gorgonia graph of nets.Arch.Forward (an
// independent implementation: its im2col, layouts and reverse mode), to
// 1e-12 relative.
func TestFloat64MatchesGorgonia(t *testing.T) {
	const n = 37
	x, y := testData(n, 1, 28, 28)
	d := &graph.Data{X64: x, Y: y, Dim: 784, Classes: 10}
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i
	}
	for _, a := range archs(t) {
		theta := flatInit(t, a, 1)
		theta2 := flatInit(t, a, 2)
		e, err := New(a, precision.Float64, x, y, Options{Chunk: 5, Workers: 3})
		if err != nil {
			t.Fatal(err)
		}
		net, err := graph.Compile(a, tensor.Float64, n, true)
		if err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
		var vals [][]float64
		o := 0
		for _, p := range a.Params {
			vals = append(vals, theta[o:o+p.Size()])
			o += p.Size()
		}
		wantLoss, gs, err := net.Grad(graph.NewParams(a, vals, tensor.Float64), d, rows)
		if err != nil {
			t.Fatal(err)
		}
		var want []float64
		for _, g := range gs {
			want = append(want, g.Data().([]float64)...)
		}
		// Losses: also with a second vector in the same call (group of 2).
		got := make([]float64, 2)
		if err := e.Losses([][]float64{theta, theta2}, got); err != nil {
			t.Fatal(err)
		}
		if math.Abs(got[0]-wantLoss) > 1e-12*wantLoss {
			t.Errorf("%s %d params: loss %.15g, gorgonia %.15g", a.Name, a.NumParams(), got[0], wantLoss)
		}
		alone := make([]float64, 1)
		e.Losses([][]float64{theta2}, alone)
		if alone[0] != got[1] {
			t.Errorf("%s: loss of vector 2 alone %.17g, beside vector 1 %.17g", a.Name, alone[0], got[1])
		}
		grad := make([]float64, len(theta))
		l, err := e.Grad(theta, grad)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(l-wantLoss) > 1e-12*wantLoss {
			t.Errorf("%s: Grad's loss %.15g, want %.15g", a.Name, l, wantLoss)
		}
		scale := 0.0
		for _, v := range want {
			scale = max(scale, math.Abs(v))
		}
		worst := 0.0
		for i := range want {
			worst = max(worst, math.Abs(grad[i]-want[i])/scale)
		}
		if worst > 1e-12 {
			t.Errorf("%s: gradient differs from gorgonia's by %.3g of its largest entry", a.Name, worst)
		}
		net.Close()
	}
}

// TestRoundedPassesMatchScalarReference checks the bf16 and fp16 forward
// pass of the MLP against a scalar reference that rounds every value by
// precision's generic float64 Round (products accumulated in float64
// instead of float32, which differs from the BLAS's float32 sums by far
// less than a bf16 ulp on these sizes): the logits must be the same
// numbers of the format, so the losses agree to float32 rounding of the
// per-example losses, and they differ from float64 by about the format's
// unit roundoff.
func TestRoundedPassesMatchScalarReference(t *testing.T) {
	const n = 11
	a, err := nets.NewSized("mlp", 1, 4, 4, 10, nets.Size{Width: 5, Depth: 2})
	if err != nil {
		t.Fatal(err)
	}
	x, y := testData(n, 1, 4, 4)
	theta := flatInit(t, a, 1)
	ref64 := scalarLoss(a, precision.Float64, theta, x, y)
	for _, f := range []precision.Format{precision.BFloat16, precision.Float16, precision.Float32} {
		e, err := New(a, f, x, y, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float64, 1)
		e.Losses([][]float64{theta}, got)
		want := scalarLoss(a, f, theta, x, y)
		if math.Abs(got[0]-want) > 1e-6*want {
			t.Errorf("%v: loss %.10g, scalar reference %.10g", f, got[0], want)
		}
		if d := math.Abs(got[0] - ref64); d == 0 || d > 50*f.UnitRoundoff()*ref64 {
			t.Errorf("%v: loss %.10g differs from float64 %.10g by %.3g (unit roundoff %.3g)", f, got[0], ref64, d, f.UnitRoundoff())
		}
	}
}

// scalarLoss is the mean loss of an MLP with every value rounded to f,
// computed one scalar at a time.
func scalarLoss(a *nets.Arch, f precision.Format, theta, x []float64, y []uint8) float64 {
	layers, _ := a.Layers()
	off := []int{0}
	for _, p := range a.Params {
		off = append(off, off[len(off)-1]+p.Size())
	}
	r := f.Round
	sum := 0.0
	for i := range y {
		h := make([]float64, a.Dim())
		for j := range h {
			h[j] = r(x[i*a.Dim()+j])
		}
		for _, l := range layers {
			z := make([]float64, l.Out)
			for o := range z {
				acc := 0.0
				for k := 0; k < l.In; k++ {
					acc += h[k] * r(theta[off[l.W]+k*l.Out+o])
				}
				z[o] = float64(float32(acc)) // the float32 accumulator's result
				if f == precision.Float64 {
					z[o] = acc
				}
				z[o] = r(z[o]*l.Scale + r(theta[off[l.B]+o]))
				if l.Tanh {
					z[o] = r(math.Tanh(z[o]))
				}
			}
			h = z
		}
		mx := h[0]
		for _, v := range h {
			mx = max(mx, v)
		}
		s := 0.0
		for _, v := range h {
			s += math.Exp(v - mx)
		}
		l := math.Log(s) - (h[y[i]] - mx)
		if f != precision.Float64 {
			l = float64(float32(l))
		}
		sum += l
	}
	return sum / float64(len(y))
}

// TestGradNoiseShrinksWithPrecision checks that the gradient computed in a
// format differs from float64's by about the format's unit roundoff
// (relative), more in fp16/bf16 than in float32, and that it does not
// depend on the number of workers.
func TestGradNoiseShrinksWithPrecision(t *testing.T) {
	const n = 64
	x, y := testData(n, 1, 28, 28)
	a, _ := nets.NewSized("convnet", 1, 28, 28, 10, nets.Size{})
	theta := flatInit(t, a, 1)
	ref, _ := New(a, precision.Float64, x, y, Options{})
	g64 := make([]float64, len(theta))
	ref.Grad(theta, g64)
	norm := 0.0
	for _, v := range g64 {
		norm += v * v
	}
	prev := 0.0
	for _, f := range []precision.Format{precision.Float32, precision.Float16, precision.BFloat16} {
		var gs [2][]float64
		for i, wk := range []int{1, 3} {
			e, _ := New(a, f, x, y, Options{Workers: wk})
			gs[i] = make([]float64, len(theta))
			e.Grad(theta, gs[i])
		}
		d := 0.0
		for i, v := range gs[0] {
			if v != gs[1][i] {
				t.Fatalf("%v: gradient %d depends on the workers: %v vs %v", f, i, v, gs[1][i])
			}
			d += (v - g64[i]) * (v - g64[i])
		}
		rel := math.Sqrt(d / norm)
		u := f.UnitRoundoff()
		t.Logf("%v: relative gradient error %.3g (unit roundoff %.3g)", f, rel, u)
		if rel < 0.1*u || rel > 100*u || rel <= prev {
			t.Errorf("%v: relative gradient error %.3g, want about the unit roundoff %.3g and above %.3g", f, rel, u, prev)
		}
		prev = rel
	}
}

// TestTanhTables checks the bf16 and fp16 tanh tables against the direct
// computation round(fastmath.Tanh(x)) for every number of both formats (both
// signs, subnormals, ±Inf and NaN), and a few hand-checked values.
func TestTanhTables(t *testing.T) {
	bt, ht := bf16TanhTable(), fp16TanhTable()
	for i := uint32(0); i < 1<<16; i++ {
		x := math.Float32frombits(i << 16) // every bf16 bit pattern
		want := precision.RoundBF16(float32(fastmath.Tanh(float64(x))))
		if got := tanhBF16(bt, x); math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("bf16 tanh(%g) = %g from the table, %g directly", x, got, want)
		}
	}
	n := 0
	for i := uint64(0); i < 1<<32; i += 1 << 13 {
		x := math.Float32frombits(uint32(i))
		if precision.RoundFP16(x) != x {
			continue // not an fp16 number
		}
		n++
		want := precision.RoundFP16(float32(fastmath.Tanh(float64(x))))
		if got := tanhFP16(ht, x); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fp16 tanh(%g) = %g from the table, %g directly", x, got, want)
		}
	}
	// fp16 subnormals (below 2^−14) are not multiples of 2^13 in float32
	// bits; check them one by one: tanh of a subnormal rounds back to it.
	for m := 1; m < 1024; m++ {
		x := float32(m) / (1 << 24)
		if got := tanhFP16(ht, x); got != x {
			t.Fatalf("fp16 tanh(%g subnormal) = %g", x, got)
		}
	}
	// 2 finite normal ranges × 30 binades × 1024 + zeros, Inf: at least
	// the 61440 normal fp16 numbers were checked.
	if n < 2*30*1024 {
		t.Errorf("checked %d fp16 numbers", n)
	}
	// By hand: tanh(1) = 0.76159…; bf16 numbers near it are spaced 2^−8,
	// 0.76159·256 = 194.97 → 195/256 = 0.76171875; fp16 spacing 2^−11:
	// 0.76159·2048 = 1559.74 → 1560/2048 = 0.76171875 too.
	if got := tanhBF16(bt, 1); got != 0.76171875 {
		t.Errorf("bf16 tanh(1) = %v, want 0.76171875", got)
	}
	if got := tanhFP16(ht, -1); got != -0.76171875 {
		t.Errorf("fp16 tanh(−1) = %v, want −0.76171875", got)
	}
	if got := tanhBF16(bt, float32(math.Inf(-1))); got != -1 {
		t.Errorf("bf16 tanh(−Inf) = %v", got)
	}
}

// TestLossIndependentOfBatch evaluates parameter vectors in a batch with
// exact duplicates and shared first layers (which Losses evaluates once)
// and alone: the values must be bit-identical, in every format, for the
// convnet, the logistic model and an MLP.
func TestLossIndependentOfBatch(t *testing.T) {
	const n = 40
	x, y := testData(n, 1, 28, 28)
	for _, a := range archs(t) {
		theta := flatInit(t, a, 1)
		layers, _ := a.Layers()
		off := 0
		for _, p := range a.Params[:layers[0].B+1] {
			off += p.Size()
		}
		vec := func(first, rest float64) []float64 {
			v := append([]float64(nil), theta...)
			for i := range v {
				if i < off {
					v[i] += first * math.Sin(float64(i))
				} else {
					v[i] += rest * math.Cos(float64(i))
				}
			}
			return v
		}
		// θ, copies, changes after the first layer only, changes of the
		// first layer, and tiny changes (identical after rounding in bf16
		// and fp16, not in float64).
		batch := [][]float64{theta, vec(0, 1e-3), theta, vec(1e-3, 0), vec(0, 1e-3), vec(1e-9, 1e-9), vec(1e-3, 1e-3)}
		for i := 0; i < 11; i++ {
			batch = append(batch, vec(float64(i)*1e-4, 0))
		}
		for _, f := range []precision.Format{precision.Float64, precision.Float32, precision.BFloat16, precision.Float16} {
			e, err := New(a, f, x, y, Options{Workers: 2, Chunk: 7})
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float64, len(batch))
			if err := e.Losses(batch, got); err != nil {
				t.Fatal(err)
			}
			for i, v := range batch {
				one := make([]float64, 1)
				e.Losses([][]float64{v}, one)
				if one[0] != got[i] {
					t.Errorf("%s %v: vector %d: %.17g in the batch, %.17g alone", a.Name, f, i, got[i], one[0])
				}
			}
			if got[0] != got[2] || (a.Name != "logistic" && got[0] == got[1]) || got[0] == got[3] {
				t.Errorf("%s %v: losses %v", a.Name, f, got[:4])
			}
		}
	}
}
