package kernels

import (
	"math"
	"math/rand"
	"testing"

	"github.com/perturb/perturb/nets/precision"
)

// roundCase is one kernel of the Rounding test: run calls it on a device
// with input buffers in and outputs out; ref, when set, is the reference
// computation on the plain device (default run); rounded says whether the
// outputs are rounded to the format (else they must equal the plain
// device's bit for bit).
type roundCase struct {
	name    string
	in      func(r *rand.Rand) [][]float64
	outs    []int
	rounded bool
	run     func(d Device, in, out []Buffer) error
	ref     func(d Device, f Format, in, out []Buffer) error
}

func normals(r *rand.Rand, ns ...int) [][]float64 {
	var xs [][]float64
	for _, n := range ns {
		xs = append(xs, rnd(r, n))
	}
	return xs
}

func roundCases() []roundCase {
	g := Gemm{Batch: 2, M: 3, N: 4, K: 5, Alpha: 0.7}.Strided()
	gt := Gemm{Batch: 2, M: 3, N: 4, K: 5, Alpha: 1, TransA: true, TransB: true}.Strided()
	conv := Conv{Trials: 2, Images: 2, C: 2, H: 5, W: 5, Size: 3, Stride: 1}
	labels := func(r *rand.Rand, n, c int) []float64 {
		y := make([]float64, n)
		for i := range y {
			y[i] = float64(r.Intn(c))
		}
		return y
	}
	var cases []roundCase
	for _, gg := range []Gemm{g, gt} {
		cases = append(cases, roundCase{name: "gemm", in: func(r *rand.Rand) [][]float64 { return normals(r, 30, 40) }, outs: []int{24}, rounded: true,
			run: func(d Device, in, out []Buffer) error { return d.Gemm(gg, out[0], in[0], in[1]) }})
	}
	cases = append(cases, roundCase{name: "gemm beta=1 accumulates unrounded", in: func(r *rand.Rand) [][]float64 { return normals(r, 30, 40, 30, 40) }, outs: []int{24}, rounded: true,
		run: func(d Device, in, out []Buffer) error {
			if err := d.Gemm(g, out[0], in[0], in[1]); err != nil {
				return err
			}
			g1 := g
			g1.Beta = 1
			return d.Gemm(g1, out[0], in[2], in[3])
		}})
	for _, cm := range []bool{false, true} {
		for _, act := range []bool{false, true} {
			nb := 8
			if cm {
				nb = 6
			}
			// A fused layer: the product is not rounded before the
			// epilogue; the tanh reads the rounded s·z + b.
			cases = append(cases, roundCase{name: "gemm+biasact", in: func(r *rand.Rand) [][]float64 { return normals(r, 30, 40, nb) }, outs: []int{24}, rounded: true,
				run: func(d Device, in, out []Buffer) error {
					if err := d.Gemm(g, out[0], in[0], in[1]); err != nil {
						return err
					}
					return d.BiasAct(out[0], 2, 3, 4, 0.3, in[2], cm, act)
				},
				ref: func(d Device, f Format, in, out []Buffer) error {
					if err := d.Gemm(g, out[0], in[0], in[1]); err != nil {
						return err
					}
					if err := d.BiasAct(out[0], 2, 3, 4, 0.3, in[2], cm, false); err != nil {
						return err
					}
					if !act {
						return nil
					}
					if err := d.Round(out[0], f); err != nil {
						return err
					}
					return d.Unary(Tanh, out[0], out[0])
				}})
			cases = append(cases, roundCase{name: "biasact", in: func(r *rand.Rand) [][]float64 { return normals(r, 24, nb) }, outs: []int{24}, rounded: true,
				run: func(d Device, in, out []Buffer) error {
					if err := d.Copy(out[0], 0, in[0], 0, 24); err != nil {
						return err
					}
					return d.BiasAct(out[0], 2, 3, 4, 1.7, in[1], cm, act)
				},
				ref: func(d Device, f Format, in, out []Buffer) error {
					if err := d.Copy(out[0], 0, in[0], 0, 24); err != nil {
						return err
					}
					if err := d.BiasAct(out[0], 2, 3, 4, 1.7, in[1], cm, false); err != nil {
						return err
					}
					if !act {
						return nil
					}
					if err := d.Round(out[0], f); err != nil {
						return err
					}
					return d.Unary(Tanh, out[0], out[0])
				}})
		}
	}
	for _, u := range []Unary{Neg, Exp, Tanh} {
		cases = append(cases, roundCase{name: "unary", in: func(r *rand.Rand) [][]float64 { return normals(r, 50) }, outs: []int{50}, rounded: true,
			run: func(d Device, in, out []Buffer) error { return d.Unary(u, out[0], in[0]) }})
	}
	for _, b := range []Binary{Add, Sub, Mul} {
		cases = append(cases, roundCase{name: "binary", in: func(r *rand.Rand) [][]float64 { return normals(r, 50, 50) }, outs: []int{50}, rounded: true,
			run: func(d Device, in, out []Buffer) error { return d.Binary(b, out[0], in[0], in[1]) }})
	}
	cases = append(cases,
		roundCase{name: "tanhback", in: func(r *rand.Rand) [][]float64 { return normals(r, 50, 50) }, outs: []int{50}, rounded: true,
			run: func(d Device, in, out []Buffer) error { return d.TanhBack(out[0], in[0], in[1]) }},
		roundCase{name: "tanhback2", in: func(r *rand.Rand) [][]float64 { return normals(r, 50, 50, 50) }, outs: []int{50}, rounded: true,
			run: func(d Device, in, out []Buffer) error { return d.TanhBack2(out[0], in[0], in[1], in[2]) }},
		roundCase{name: "sum", in: func(r *rand.Rand) [][]float64 { return normals(r, 60) }, outs: []int{12}, rounded: true,
			run: func(d Device, in, out []Buffer) error { return d.Sum(out[0], in[0], 3, 5, 4) }},
		roundCase{name: "repeat", in: func(r *rand.Rand) [][]float64 { return normals(r, 12) }, outs: []int{60},
			run: func(d Device, in, out []Buffer) error { return d.Repeat(out[0], in[0], 3, 5, 4) }},
		roundCase{name: "im2col", in: func(r *rand.Rand) [][]float64 { return normals(r, conv.ImagesLen()) }, outs: []int{conv.ColsLen()},
			run: func(d Device, in, out []Buffer) error { return d.Im2col(conv, out[0], in[0]) }},
		roundCase{name: "col2im", in: func(r *rand.Rand) [][]float64 { return normals(r, conv.ColsLen()) }, outs: []int{conv.ImagesLen()}, rounded: true,
			run: func(d Device, in, out []Buffer) error { return d.Col2im(conv, out[0], in[0]) }},
		roundCase{name: "flatten", in: func(r *rand.Rand) [][]float64 { return normals(r, 2*3*4*5) }, outs: []int{120},
			run: func(d Device, in, out []Buffer) error { return d.Flatten(out[0], in[0], 2, 3, 4, 5, false) }},
		roundCase{name: "logsoftmax", in: func(r *rand.Rand) [][]float64 { return normals(r, 40) }, outs: []int{40}, rounded: true,
			run: func(d Device, in, out []Buffer) error { return d.LogSoftmax(out[0], in[0], 4, 10) }},
		roundCase{name: "logsoftmaxback", in: func(r *rand.Rand) [][]float64 { return normals(r, 40, 40) }, outs: []int{40}, rounded: true,
			run: func(d Device, in, out []Buffer) error { return d.LogSoftmaxBack(out[0], in[0], in[1], 4, 10) }},
		roundCase{name: "crossentropy (losses not rounded)", in: func(r *rand.Rand) [][]float64 { return [][]float64{rnd(r, 80), labels(r, 4, 10)} },
			outs: []int{8, 8},
			run:  func(d Device, in, out []Buffer) error { return d.CrossEntropy(out[0], out[1], in[0], in[1], 2, 4, 10) }},
		roundCase{name: "gather", in: func(r *rand.Rand) [][]float64 { return [][]float64{rnd(r, 30), labels(r, 5, 4)} }, outs: []int{18, 12},
			run: func(d Device, in, out []Buffer) error {
				return d.Gather(out[0], out[1], in[0], in[1], []int32{4, 0, 2}, 6, 4)
			}},
		roundCase{name: "tanhjet", in: func(r *rand.Rand) [][]float64 { return normals(r, 4*6) }, outs: []int{24}, rounded: true,
			run: func(d Device, in, out []Buffer) error { return d.TanhJet(out[0], in[0], 3, 6) }},
	)
	return cases
}

// TestRoundingKernels checks every kernel of the rounding device against
// the plain device's kernel on the same (format) inputs, its outputs
// rounded with nets/precision: bit for bit.
func TestRoundingKernels(t *testing.T) {
	for _, dt := range []DType{F32, F64} {
		for _, f := range []Format{BF16, FP16} {
			pf := precisionFormat(f)
			for ci, c := range roundCases() {
				r := rand.New(rand.NewSource(int64(ci)))
				plain, rd := NewCPU(dt), Rounding(NewCPU(dt), f)
				ins := c.in(r)
				for _, x := range ins {
					precision.RoundSlice(pf, x)
				}
				var inP, inR, outP, outR []Buffer
				for _, x := range ins {
					inP = append(inP, up(t, plain, x))
					inR = append(inR, up(t, rd, x))
				}
				for _, n := range c.outs {
					outP = append(outP, alloc(t, plain, n))
					outR = append(outR, alloc(t, rd, n))
				}
				ref := c.ref
				if ref == nil {
					ref = func(d Device, _ Format, in, out []Buffer) error { return c.run(d, in, out) }
				}
				if err := ref(plain, f, inP, outP); err != nil {
					t.Fatalf("%s %s %s reference: %v", dt, pf, c.name, err)
				}
				if err := c.run(rd, inR, outR); err != nil {
					t.Fatalf("%s %s %s: %v", dt, pf, c.name, err)
				}
				for o := range c.outs {
					want := down(t, plain, outP[o])
					if c.rounded {
						for i, v := range want {
							want[i] = float64(pf.Round32(float32(v)))
						}
					}
					got := down(t, rd, outR[o])
					for i := range got {
						if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
							t.Fatalf("%s %s %s (case %d) output %d[%d] = %v, want %v", dt, pf, c.name, ci, o, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestRoundingUploadFillView: uploads and fills are rounded on the host in
// one rounding from the source (only the destination range), and an
// operation into a view rounds exactly the view's elements.
func TestRoundingUploadFillView(t *testing.T) {
	for _, f := range []Format{BF16, FP16} {
		pf := precisionFormat(f)
		rd := Rounding(NewCPU(F64), f)
		b, err := rd.Alloc(10)
		if err != nil {
			t.Fatal(err)
		}
		// Not a format number: 1 + 2^-20 rounds to 1 in both formats.
		if err := rd.Fill(b, 1+math.Ldexp(1, -20)); err != nil {
			t.Fatal(err)
		}
		x := []float64{0.1, 1.0 / 3, -2.7e-6, 70000}
		if err := rd.Upload(b, 3, x); err != nil {
			t.Fatal(err)
		}
		got := down(t, rd, b)
		for i, v := range got {
			want := 1.0
			if i >= 3 && i < 7 {
				want = pf.Round(x[i-3])
			}
			if math.Float64bits(v) != math.Float64bits(want) {
				t.Fatalf("%s: element %d = %v, want %v", pf, i, v, want)
			}
		}
		// A view: the first 4 elements; Neg into it is rounded there only.
		src := up(t, NewCPU(F64), []float64{0.1, 0.2, 0.3, 0.4})
		v, err := rd.View(b, 4)
		if err != nil {
			t.Fatal(err)
		}
		if err := rd.Unary(Neg, v, src); err != nil {
			t.Fatal(err)
		}
		got = down(t, rd, b)
		for i, w := range []float64{-0.1, -0.2, -0.3, -0.4} {
			if got[i] != pf.Round(w) {
				t.Fatalf("%s: view element %d = %v, want %v", pf, i, got[i], pf.Round(w))
			}
		}
		if got[4] != pf.Round(1.0/3) || got[9] != 1 {
			t.Fatalf("%s: elements outside the view changed to %v, %v", pf, got[4], got[9])
		}
	}
}
