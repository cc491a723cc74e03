// Package devtest holds the device parity suite that the GPU device's
// tests (kernels/cudev, tag gpu) and the CUDA emulator's
// (kernels/cudaemu) run against the CPU twin: the kernel cases, the
// rounding inputs and a runner.
package devtest

import (
	"fmt"
	"math"
	"math/rand"

	"github.com/perturb/perturb/kernels"
)

// Op is one case of the kernel parity suite: an operation run on a device
// from float64 inputs (see Run).
type Op struct {
	Name string
	In   []int // input lengths
	Out  []int // output lengths
	Run  func(d kernels.Device, out, in []kernels.Buffer) error
	// Tol is the scale of the tolerance against float64: the number of
	// terms of the longest sum (a product over K terms may differ from
	// float64 by about K float32 roundings of its terms; cuBLAS does).
	Tol float64
}

// Ops returns the kernel parity suite: every operation of kernels.Device
// but the rounding (RoundInputs) on small shapes.
func Ops() []Op {
	conv := kernels.Conv{Trials: 3, Images: 4, C: 2, H: 12, W: 12, Size: 5, Stride: 2}
	convM := kernels.Conv{Trials: 3, Images: 4, C: 10, H: 12, W: 12, Size: 5, Stride: 2, CBHW: true}
	convP := kernels.Conv{Trials: 3, Images: 4, C: 6, H: 5, W: 4, Size: 3, Stride: 1, Pad: 1, CBHW: true}
	g := kernels.Gemm{Batch: 5, M: 33, N: 17, K: 250, TransA: true, Alpha: 0.3}.Strided()
	g2 := kernels.Gemm{Batch: 5, M: 33, N: 17, K: 250, TransB: true, Alpha: 1, Beta: 1}.Strided()
	return []Op{
		{"gemm TN", []int{5 * 33 * 250, 5 * 250 * 17}, []int{5 * 33 * 17}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Gemm(g, o[0], i[0], i[1]) }, 250},
		{"gemm NT beta", []int{5 * 33 * 250, 5 * 250 * 17, 5 * 33 * 17}, []int{5 * 33 * 17}, func(d kernels.Device, o, i []kernels.Buffer) error {
			if err := d.Copy(o[0], 0, i[2], 0, 5*33*17); err != nil {
				return err
			}
			return d.Gemm(g2, o[0], i[0], i[1])
		}, 250},
		{"bias_act cm", []int{4 * 6 * 7, 4 * 6}, []int{4 * 6 * 7}, func(d kernels.Device, o, i []kernels.Buffer) error {
			if err := d.Copy(o[0], 0, i[0], 0, 4*6*7); err != nil {
				return err
			}
			return d.BiasAct(o[0], 4, 6, 7, 0.37, i[1], true, true)
		}, 1},
		{"bias_act rows", []int{4 * 6 * 7, 4 * 7}, []int{4 * 6 * 7}, func(d kernels.Device, o, i []kernels.Buffer) error {
			if err := d.Copy(o[0], 0, i[0], 0, 4*6*7); err != nil {
				return err
			}
			return d.BiasAct(o[0], 4, 6, 7, 0.37, i[1], false, false)
		}, 1},
		{"neg", []int{1000}, []int{1000}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Unary(kernels.Neg, o[0], i[0]) }, 1},
		{"view", []int{10}, []int{10}, func(d kernels.Device, o, i []kernels.Buffer) error {
			// out = (−in[0:4], in[4:10]) through views of both buffers.
			if err := d.Copy(o[0], 0, i[0], 0, 10); err != nil {
				return err
			}
			vo, err := d.View(o[0], 4)
			if err != nil {
				return err
			}
			vi, err := d.View(i[0], 4)
			if err != nil {
				return err
			}
			return d.Unary(kernels.Neg, vo, vi)
		}, 0},
		{"exp", []int{1000}, []int{1000}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Unary(kernels.Exp, o[0], i[0]) }, 1},
		{"tanh", []int{1000}, []int{1000}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Unary(kernels.Tanh, o[0], i[0]) }, 1},
		{"add", []int{999, 999}, []int{999}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Binary(kernels.Add, o[0], i[0], i[1]) }, 1},
		{"sub", []int{999, 999}, []int{999}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Binary(kernels.Sub, o[0], i[0], i[1]) }, 1},
		{"mul", []int{999, 999}, []int{999}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Binary(kernels.Mul, o[0], i[0], i[1]) }, 1},
		{"tanh_back", []int{500, 500}, []int{500}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.TanhBack(o[0], i[0], i[1]) }, 1},
		{"tanh_back2", []int{500, 500, 500}, []int{500}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.TanhBack2(o[0], i[0], i[1], i[2]) }, 1},
		{"sum mid", []int{7 * 40 * 3}, []int{7 * 3}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Sum(o[0], i[0], 7, 40, 3) }, 10},
		{"repeat", []int{7 * 3}, []int{7 * 5 * 3}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Repeat(o[0], i[0], 7, 5, 3) }, 0},
		{"im2col", []int{conv.ImagesLen()}, []int{conv.ColsLen()}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Im2col(conv, o[0], i[0]) }, 0},
		{"im2col cbhw", []int{convM.ImagesLen()}, []int{convM.ColsLen()}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Im2col(convM, o[0], i[0]) }, 0},
		{"col2im", []int{conv.ColsLen()}, []int{conv.ImagesLen()}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Col2im(conv, o[0], i[0]) }, 4},
		{"col2im cbhw", []int{convM.ColsLen()}, []int{convM.ImagesLen()}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Col2im(convM, o[0], i[0]) }, 4},
		{"im2col padded", []int{convP.ImagesLen()}, []int{convP.ColsLen()}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Im2col(convP, o[0], i[0]) }, 0},
		{"col2im padded", []int{convP.ColsLen()}, []int{convP.ImagesLen()}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Col2im(convP, o[0], i[0]) }, 4},
		{"flatten", []int{3 * 10 * 4 * 16}, []int{3 * 10 * 4 * 16}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Flatten(o[0], i[0], 3, 10, 4, 16, false) }, 0},
		{"flatten inverse", []int{3 * 10 * 4 * 16}, []int{3 * 10 * 4 * 16}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.Flatten(o[0], i[0], 3, 10, 4, 16, true) }, 0},
		{"log_softmax", []int{60 * 10}, []int{60 * 10}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.LogSoftmax(o[0], i[0], 60, 10) }, 4},
		{"log_softmax_back", []int{60 * 10, 60 * 10}, []int{60 * 10}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.LogSoftmaxBack(o[0], i[0], i[1], 60, 10) }, 4},
		{"tanh_jet", []int{4 * 100}, []int{4 * 100}, func(d kernels.Device, o, i []kernels.Buffer) error { return d.TanhJet(o[0], i[0], 3, 100) }, 10},
	}
}

// Inputs returns random float32-valued inputs of o's lengths.
func Inputs(o Op, r *rand.Rand) [][]float64 {
	in := make([][]float64, len(o.In))
	for i, n := range o.In {
		in[i] = make([]float64, n)
		for j := range in[i] {
			in[i][j] = float64(float32(r.NormFloat64()))
		}
	}
	return in
}

// Run runs o on d with inputs in: it uploads them, poisons the outputs
// with NaN (every kernel must write every element), runs, syncs and
// returns the outputs; every buffer is freed.
func Run(d kernels.Device, o Op, in [][]float64) (_ [][]float64, err error) {
	var all []kernels.Buffer
	defer func() {
		for _, b := range all {
			if e := d.Free(b); e != nil && err == nil {
				err = fmt.Errorf("%s: free: %w", o.Name, e)
			}
		}
	}()
	ins, outs := make([]kernels.Buffer, len(in)), make([]kernels.Buffer, len(o.Out))
	for i, x := range in {
		b, err := d.Alloc(len(x))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Name, err)
		}
		all = append(all, b)
		if err := d.Upload(b, 0, x); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Name, err)
		}
		ins[i] = b
	}
	for i, n := range o.Out {
		b, err := d.Alloc(n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Name, err)
		}
		all = append(all, b)
		if err := d.Fill(b, math.NaN()); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Name, err)
		}
		outs[i] = b
	}
	if err := o.Run(d, outs, ins); err != nil {
		return nil, fmt.Errorf("%s on %s: %w", o.Name, d.Name(), err)
	}
	if err := d.Sync(); err != nil {
		return nil, fmt.Errorf("%s on %s: %w", o.Name, d.Name(), err)
	}
	res := make([][]float64, len(outs))
	for i, b := range outs {
		res[i] = make([]float64, b.Len())
		if err := d.Download(res[i], b, 0); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Name, err)
		}
	}
	return res, nil
}

// RoundInputs are the inputs of the rounding parity test: 4096 normals of
// magnitudes 2^-40..2^20 and the edge cases (fp16's overflow threshold,
// subnormals, zero, infinity, NaN).
func RoundInputs() []float64 {
	r := rand.New(rand.NewSource(2))
	x := make([]float64, 4096)
	for i := range x {
		x[i] = r.NormFloat64() * math.Pow(2, float64(r.Intn(60)-40))
	}
	return append(x, 65519, 65520, 1e-7, -3e-8, 0, math.Inf(1), math.NaN())
}

// Round rounds x to format f on d and returns the result.
func Round(d kernels.Device, x []float64, f kernels.Format) ([]float64, error) {
	b, err := d.Alloc(len(x))
	if err != nil {
		return nil, err
	}
	defer d.Free(b)
	if err := d.Upload(b, 0, x); err != nil {
		return nil, err
	}
	if err := d.Round(b, f); err != nil {
		return nil, fmt.Errorf("round to format %d on %s: %w", f, d.Name(), err)
	}
	out := make([]float64, len(x))
	if err := d.Download(out, b, 0); err != nil {
		return nil, err
	}
	return out, nil
}
