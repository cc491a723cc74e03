package graph

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/nets"
)

// randomData makes n examples with standard-normal pixels and uniform labels.
func randomData(a *nets.Arch, n int, r *rand.Rand) *Data {
	d := &Data{Dim: a.Dim(), Classes: a.Classes, X64: make([]float64, n*a.Dim()), Y: make([]uint8, n)}
	for i := range d.X64 {
		d.X64[i] = r.NormFloat64()
	}
	for i := range d.Y {
		d.Y[i] = uint8(r.IntN(a.Classes))
	}
	return d
}

func to32(d *Data) *Data {
	e := *d
	e.X32 = make([]float32, len(d.X64))
	for i, v := range d.X64 {
		e.X32[i] = float32(v)
	}
	e.X64 = nil
	return &e
}

// refLoss is the mean loss of rows at p in float64, through a fresh Net.
func refLoss(t *testing.T, n *Net, p Params, d *Data, rows []int) float64 {
	t.Helper()
	s, _, err := n.Eval(p, d, rows, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s / float64(len(rows))
}

// TestGradientFiniteDifferences checks the reverse-mode gradient of both
// models (float64) against central finite differences with step 1e-5 on a
// random sample of coordinates of every parameter tensor. The truncation
// error of a central difference is O(h²·|l”'|) ≈ 1e-10 and the rounding
// error O(1e-16/h) ≈ 1e-11, so 1e-7 relative to the gradient scale is a
// strict bound that a wrong layer (a missing scale, a transposed patch
// order) violates by orders of magnitude.
func TestGradientFiniteDifferences(t *testing.T) {
	cases := []struct {
		model          string
		c, h, w, batch int
		init           int
	}{
		{"logistic", 1, 28, 28, 4, 1},
		{"logistic", 1, 28, 28, 3, 0},
		{"convnet", 1, 28, 28, 3, 1},
		{"convnet", 3, 32, 32, 2, 2},
	}
	for _, tc := range cases {
		t.Run(tc.model, func(t *testing.T) {
			a, err := nets.New(tc.model, tc.c, tc.h, tc.w, 10)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, uint64(tc.batch)))
			d := randomData(a, tc.batch, r)
			vals, err := a.Init(tc.init)
			if err != nil {
				t.Fatal(err)
			}
			// Move off the initialisation so biases and zero weights get non-trivial gradients.
			for _, v := range vals {
				for j := range v {
					v[j] += 0.3 * r.NormFloat64()
				}
			}
			p := NewParams(a, vals, tensor.Float64)
			net, err := Compile(a, tensor.Float64, tc.batch, true)
			if err != nil {
				t.Fatal(err)
			}
			rows := make([]int, tc.batch)
			for i := range rows {
				rows[i] = i
			}
			loss, g, err := net.Grad(p, d, rows)
			if err != nil {
				t.Fatal(err)
			}
			if want := refLoss(t, net, p, d, rows); math.Abs(loss-want) > 1e-12 {
				t.Fatalf("Grad's loss %v differs from Eval's %v", loss, want)
			}
			const h = 1e-5
			for pi, spec := range a.Params {
				data := p[pi].Data().([]float64)
				gd := g[pi].Data().([]float64)
				scale := 0.0
				for _, v := range gd {
					scale = math.Max(scale, math.Abs(v))
				}
				for k := 0; k < 8; k++ {
					j := r.IntN(len(data))
					old := data[j]
					data[j] = old + h
					lp := refLoss(t, net, p, d, rows)
					data[j] = old - h
					lm := refLoss(t, net, p, d, rows)
					data[j] = old
					fd := (lp - lm) / (2 * h)
					if math.Abs(fd-gd[j]) > 1e-7*math.Max(scale, 1e-3) {
						t.Errorf("%s[%d]: gradient %.12g, finite difference %.12g", spec.Name, j, gd[j], fd)
					}
				}
			}
		})
	}
}

// TestFloat32MatchesFloat64 checks that the float32 graph computes the same
// loss and gradient as the float64 one to float32 accuracy.
func TestFloat32MatchesFloat64(t *testing.T) {
	for _, model := range nets.Names {
		a, _ := nets.New(model, 1, 28, 28, 10)
		r := rand.New(rand.NewPCG(2, 3))
		d := randomData(a, 5, r)
		vals, _ := a.Init(1)
		rows := []int{0, 1, 2, 3, 4}
		n64, err := Compile(a, tensor.Float64, 5, true)
		if err != nil {
			t.Fatal(err)
		}
		n32, err := Compile(a, tensor.Float32, 5, true)
		if err != nil {
			t.Fatal(err)
		}
		l64, g64, err := n64.Grad(NewParams(a, vals, tensor.Float64), d, rows)
		if err != nil {
			t.Fatal(err)
		}
		l32, g32, err := n32.Grad(NewParams(a, vals, tensor.Float32), to32(d), rows)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(l64-l32) > 1e-5*math.Abs(l64) {
			t.Errorf("%s: float32 loss %v, float64 %v", model, l32, l64)
		}
		for i := range g64 {
			a64, a32 := g64[i].Data().([]float64), g32[i].Data().([]float32)
			for j := range a64 {
				if math.Abs(a64[j]-float64(a32[j])) > 1e-4*(1+math.Abs(a64[j])) {
					t.Fatalf("%s param %d[%d]: float32 gradient %v, float64 %v", model, i, j, a32[j], a64[j])
				}
			}
		}
	}
}

// TestEvaluatorChunking checks that the chunked mean over a pool equals the
// mean of per-example losses, whatever the chunk size (including a
// remainder chunk), and that a row list gives the same as a contiguous block.
func TestEvaluatorChunking(t *testing.T) {
	a, _ := nets.New("convnet", 1, 28, 28, 10)
	r := rand.New(rand.NewPCG(4, 5))
	d := randomData(a, 23, r)
	vals, _ := a.Init(3)
	p := NewParams(a, vals, tensor.Float64)
	one := NewEvaluator(a, tensor.Float64, 1)
	want, wantAcc, err := one.Mean(p, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{5, 23, 100} {
		e := NewEvaluator(a, tensor.Float64, chunk)
		got, acc, err := e.Mean(p, d, nil)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-want) > 1e-12 || acc != wantAcc {
			t.Errorf("chunk %d: loss %v acc %v, want %v %v", chunk, got, acc, want, wantAcc)
		}
	}
	rows := []int{3, 3, 7}
	e := NewEvaluator(a, tensor.Float64, 2)
	got, _, err := e.Mean(p, d, rows)
	if err != nil {
		t.Fatal(err)
	}
	l3, _, _ := one.Mean(p, d, []int{3})
	l7, _, _ := one.Mean(p, d, []int{7})
	if w := (2*l3 + l7) / 3; math.Abs(got-w) > 1e-12 {
		t.Errorf("rows %v: loss %v, want %v", rows, got, w)
	}
}

// TestCrossEntropyRowsIndependent: an extreme logit in the first example
// must not change the loss of the others (G.LogSoftMax in tensor v0.9.24
// shifts every row by the matrix's first element and fails this).
func TestCrossEntropyRowsIndependent(t *testing.T) {
	g := G.NewGraph()
	z := G.NewMatrix(g, tensor.Float64, G.WithShape(3, 2), G.WithName("z"),
		G.WithValue(tensor.New(tensor.WithShape(3, 2), tensor.WithBacking([]float64{1000, 0, 1, 2, -3, 0.5}))))
	y := G.NewMatrix(g, tensor.Float64, G.WithShape(3, 2), G.WithName("y"),
		G.WithValue(tensor.New(tensor.WithShape(3, 2), tensor.WithBacking([]float64{1, 0, 0, 1, 1, 0}))))
	ce, err := CrossEntropy(z, y)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	got := ce.Value().Data().([]float64)
	want := []float64{0, math.Log(1 + math.Exp(-1)), 3.5 + math.Log(1+math.Exp(-3.5))}
	for i := range want {
		if !(math.Abs(got[i]-want[i]) <= 1e-12) {
			t.Errorf("example %d: loss %.15g, want %.15g", i, got[i], want[i])
		}
	}
}
