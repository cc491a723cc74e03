package kernels

import (
	"fmt"

	"github.com/perturb/perturb/nets/precision"
)

// Rounding returns dev (a float32 or float64 device) as a device that
// computes in the low-precision format f (BF16 or FP16) the way
// mixed-precision hardware does (and the way the retired hand-written
// nets/emulate evaluated the models): every value at rest in a buffer is
// a number of f, every operation computes in dev's dtype from such
// numbers and its result is
// rounded to f (to nearest, ties to even, subnormals kept, overflow to
// ±Inf; dev.Round). Use a float32 dev: it holds bf16 and fp16 numbers
// exactly and accumulates the products in float32, as tensor cores do
// (dev.Round of a float64 device rounds through
// float32, a double rounding that differs from direct rounding near
// ties).
//
// The rule, operation by operation:
//
//   - Upload and Upload32 round the source on the host with
//     nets/precision before copying it (one rounding from the float64 or
//     float32 value, as a framework casts parameters and inputs); only
//     the destination range is touched. Fill fills with the rounded value.
//   - Gemm then BiasAct is one fused layer, like a tensor core's epilogue:
//     a Gemm's output is left in dev's dtype until the next call. A Gemm
//     with Beta ≠ 0 into that same buffer, or a BiasAct on it, continues
//     the same accumulator; any other call first rounds it. BiasAct
//     computes s·z + bias in dev's dtype and rounds it; with the tanh it
//     then takes the tanh of that rounded value and rounds again (it runs
//     as BiasAct without the activation, Round, Unary Tanh, Round). This is
//     round(s·(xW) + b), then round(tanh(·)).
//   - Unary, Binary, TanhBack, TanhBack2, Sum, Col2im, LogSoftmax,
//     LogSoftmaxBack and TanhJet round their output buffers.
//   - Copy, Repeat, Im2col, Flatten and Gather only move numbers that are
//     already in f (and Gather's one-hot labels are 0 and 1), so their
//     outputs are not rounded again: it would change no bit.
//   - CrossEntropy's per-example losses are not rounded to f: the loss is
//     a reduction, computed in dev's dtype from the rounded logits (float32
//     for a float32 dev, as frameworks compute the loss in float32), and
//     graph.DeviceEval adds them in float64 on the host in example order.
//     Its hits (0 or 1) are exact.
//   - Download, Copy, Sync and every other call first round a pending
//     product, so nothing reads an unrounded value.
//
// A view of a buffer is a buffer like any other: rounding a view rounds
// its elements. A Rounding device is not safe for concurrent use (wrap it
// in Serial).
func Rounding(dev Device, f Format) Device {
	return &rounding{d: dev, f: f, pf: precisionFormat(f)}
}

// precisionFormat is f's nets/precision format.
func precisionFormat(f Format) precision.Format {
	switch f {
	case BF16:
		return precision.BFloat16
	case FP16:
		return precision.Float16
	case TF32:
		return precision.TF32
	}
	return precision.Format(-1)
}

type rounding struct {
	d       Device
	f       Format
	pf      precision.Format
	pending Buffer // a product's output not yet rounded (see Rounding)
	scratch []float64
	scr32   []float32
}

// flush rounds the pending product, if any.
func (r *rounding) flush() error {
	if r.pending == nil {
		return nil
	}
	b := r.pending
	r.pending = nil
	if err := r.d.Round(b, r.f); err != nil {
		return fmt.Errorf("round a product to %s: %w", r.pf, err)
	}
	return nil
}

// round rounds the outputs of an operation that has run.
func (r *rounding) round(name string, bs ...Buffer) error {
	for _, b := range bs {
		if err := r.d.Round(b, r.f); err != nil {
			return fmt.Errorf("round the output of %s to %s: %w", name, r.pf, err)
		}
	}
	return nil
}

func (r *rounding) Name() string { return r.d.Name() + " rounding to " + r.pf.String() }
func (r *rounding) DType() DType { return r.d.DType() }
func (r *rounding) Alloc(n int) (Buffer, error) {
	return r.d.Alloc(n)
}
func (r *rounding) Free(b Buffer) error {
	if b == r.pending {
		r.pending = nil
	}
	return r.d.Free(b)
}
func (r *rounding) View(b Buffer, n int) (Buffer, error) {
	if err := r.flush(); err != nil {
		return nil, err
	}
	return r.d.View(b, n)
}

func (r *rounding) Upload(dst Buffer, off int, src []float64) error {
	if err := r.flush(); err != nil {
		return err
	}
	if r.pf < 0 {
		return fmt.Errorf("rounding device: format %d", r.f)
	}
	s := append(r.scratch[:0], src...)
	r.scratch = s
	precision.RoundSlice(r.pf, s)
	return r.d.Upload(dst, off, s)
}

func (r *rounding) Upload32(dst Buffer, off int, src []float32) error {
	if err := r.flush(); err != nil {
		return err
	}
	if r.pf < 0 {
		return fmt.Errorf("rounding device: format %d", r.f)
	}
	s := append(r.scr32[:0], src...)
	r.scr32 = s
	precision.RoundSlice(r.pf, s)
	return r.d.Upload32(dst, off, s)
}

func (r *rounding) Download(dst []float64, src Buffer, off int) error {
	if err := r.flush(); err != nil {
		return err
	}
	return r.d.Download(dst, src, off)
}

func (r *rounding) Fill(b Buffer, v float64) error {
	if err := r.flush(); err != nil {
		return err
	}
	if r.pf < 0 {
		return fmt.Errorf("rounding device: format %d", r.f)
	}
	return r.d.Fill(b, r.pf.Round(v))
}

func (r *rounding) Copy(dst Buffer, dstOff int, src Buffer, srcOff, n int) error {
	if err := r.flush(); err != nil {
		return err
	}
	return r.d.Copy(dst, dstOff, src, srcOff, n)
}

func (r *rounding) Gemm(g Gemm, c, a, b Buffer) error {
	if !(g.Beta != 0 && c == r.pending) {
		if err := r.flush(); err != nil {
			return err
		}
	}
	if err := r.d.Gemm(g, c, a, b); err != nil {
		return err
	}
	r.pending = c
	return nil
}

func (r *rounding) BiasAct(z Buffer, batch, m, n int, s float64, bias Buffer, cm, act bool) error {
	if z != r.pending {
		if err := r.flush(); err != nil {
			return err
		}
	}
	r.pending = nil
	if err := r.d.BiasAct(z, batch, m, n, s, bias, cm, false); err != nil {
		return err
	}
	if err := r.round("biasact", z); err != nil {
		return err
	}
	if !act {
		return nil
	}
	if err := r.d.Unary(Tanh, z, z); err != nil {
		return fmt.Errorf("biasact's tanh: %w", err)
	}
	return r.round("biasact's tanh", z)
}

func (r *rounding) Unary(f Unary, out, in Buffer) error {
	if err := r.flush(); err != nil {
		return err
	}
	if err := r.d.Unary(f, out, in); err != nil {
		return err
	}
	return r.round("unary", out)
}

func (r *rounding) Binary(f Binary, out, a, b Buffer) error {
	if err := r.flush(); err != nil {
		return err
	}
	if err := r.d.Binary(f, out, a, b); err != nil {
		return err
	}
	return r.round("binary", out)
}

func (r *rounding) TanhBack(out, t, g Buffer) error {
	if err := r.flush(); err != nil {
		return err
	}
	if err := r.d.TanhBack(out, t, g); err != nil {
		return err
	}
	return r.round("tanhback", out)
}

func (r *rounding) TanhBack2(out, t, g, h Buffer) error {
	if err := r.flush(); err != nil {
		return err
	}
	if err := r.d.TanhBack2(out, t, g, h); err != nil {
		return err
	}
	return r.round("tanhback2", out)
}

func (r *rounding) Sum(out, in Buffer, outer, mid, inner int) error {
	if err := r.flush(); err != nil {
		return err
	}
	if err := r.d.Sum(out, in, outer, mid, inner); err != nil {
		return err
	}
	return r.round("sum", out)
}

func (r *rounding) Repeat(out, in Buffer, outer, reps, inner int) error {
	if err := r.flush(); err != nil {
		return err
	}
	return r.d.Repeat(out, in, outer, reps, inner)
}

func (r *rounding) Im2col(c Conv, cols, images Buffer) error {
	if err := r.flush(); err != nil {
		return err
	}
	return r.d.Im2col(c, cols, images)
}

func (r *rounding) Col2im(c Conv, images, cols Buffer) error {
	if err := r.flush(); err != nil {
		return err
	}
	if err := r.d.Col2im(c, images, cols); err != nil {
		return err
	}
	return r.round("col2im", images)
}

func (r *rounding) Flatten(out, in Buffer, trials, c, images, p int, inverse bool) error {
	if err := r.flush(); err != nil {
		return err
	}
	return r.d.Flatten(out, in, trials, c, images, p, inverse)
}

func (r *rounding) LogSoftmax(out, in Buffer, rows, c int) error {
	if err := r.flush(); err != nil {
		return err
	}
	if err := r.d.LogSoftmax(out, in, rows, c); err != nil {
		return err
	}
	return r.round("logsoftmax", out)
}

func (r *rounding) LogSoftmaxBack(out, y, g Buffer, rows, c int) error {
	if err := r.flush(); err != nil {
		return err
	}
	if err := r.d.LogSoftmaxBack(out, y, g, rows, c); err != nil {
		return err
	}
	return r.round("logsoftmaxback", out)
}

func (r *rounding) CrossEntropy(loss, correct, logits, labels Buffer, trials, rows, c int) error {
	if err := r.flush(); err != nil {
		return err
	}
	return r.d.CrossEntropy(loss, correct, logits, labels, trials, rows, c)
}

func (r *rounding) Gather(x, y, pool, labels Buffer, idx []int32, dim, classes int) error {
	if err := r.flush(); err != nil {
		return err
	}
	return r.d.Gather(x, y, pool, labels, idx, dim, classes)
}

func (r *rounding) TanhJet(t, z Buffer, d, n int) error {
	if err := r.flush(); err != nil {
		return err
	}
	if err := r.d.TanhJet(t, z, d, n); err != nil {
		return err
	}
	return r.round("tanhjet", t)
}

func (r *rounding) Round(b Buffer, f Format) error {
	if err := r.flush(); err != nil {
		return err
	}
	return r.d.Round(b, f)
}

func (r *rounding) SetTF32(on bool) (bool, error) { return r.d.SetTF32(on) }

func (r *rounding) Sync() error {
	if err := r.flush(); err != nil {
		return err
	}
	return r.d.Sync()
}

func (r *rounding) Close() error {
	r.pending = nil
	return r.d.Close()
}
