// Package emulate evaluates perturb's image models (logistic, convnet of
// any width and depth, tanh MLP) in a chosen floating-point precision: the
// mean cross-entropy over a fixed set of examples for many parameter
// vectors at once, and its gradient. It is a hand-written forward and
// backward pass over gonum's BLAS (OpenBLAS with the openblas build tag),
// independent of gorgonia, with a rounding hook after every layer.
//
// # What a precision means here
//
// float64 and float32 are native: every product, activation and sum of
// the passes runs in that type (the BLAS accumulates in it), as perturb's
// pool evaluator does. bf16 and fp16 are emulated the way mixed-precision
// hardware computes (tensor cores with float32 accumulators): the inputs
// and parameters are rounded to the format; each layer's product
// s·(x W) + b is accumulated in float32 and its result rounded to the
// format; the tanh of every hidden layer is computed from that rounded
// value and rounded to the format; the logits are the last layer's rounded
// output. Rounding is to nearest even with subnormals and overflow to Inf
// (package precision). In every precision, each example's loss
// log Σ_c exp(l_c) − l_y is computed in float64 from the logits and rounded
// to the computing type (float32 for bf16 and fp16, as frameworks compute
// the loss in float32), and the mean over the examples is accumulated in
// float64 in a fixed order.
//
// The backward pass (Grad) rounds the same way: the logits' gradient
// p − e_y (softmax minus one-hot, per example; the summed loss, so nothing
// underflows in fp16), each layer's input gradient s·(dz Wᵀ) (convolutions
// then add the patches' gradients back onto the maps, col2im), and the
// pre-activation gradient dh·(1 − a²) are rounded to the format; each
// parameter gradient s·(xᵀ dz) and Σ dz is accumulated in the computing
// type over the examples of a part (16 fixed contiguous parts of the
// examples), the parts added in order, divided by the number of examples
// and rounded to the format.
//
// # Layout
//
// Hidden maps are stored per example in (y, x, channel) order, so the
// patches of a later convolution are gathered in (ky, kx, channel) order
// and its stored (channel, ky, kx) kernel rows are permuted when packed.
// The first layer's input matrix (the examples, or their im2col patches
// for a convolution) is built once per chunk of examples and multiplied by
// the first-layer weights of up to 8 parameter vectors side by side.
//
// An Evaluator is not safe for concurrent use.
package emulate

import (
	"fmt"
	"runtime"

	// Registers OpenBLAS for gonum's blas32 and blas64 in builds with the
	// openblas tag.
	"github.com/perturb/perturb/nets"
	_ "github.com/perturb/perturb/nets/blas"
	"github.com/perturb/perturb/nets/precision"
)

// Options configures an Evaluator; zero values select the defaults.
type Options struct {
	// Workers is the number of goroutines; default runtime.NumCPU().
	Workers int
	// Chunk is the number of examples evaluated at a time (default: about
	// 512 KiB of first-layer buffers per worker, at most 256).
	Chunk int
}

// Evaluator computes losses and gradients of one model in one precision
// over a fixed set of examples.
type Evaluator struct {
	Arch   *nets.Arch
	Format precision.Format
	Layers []nets.Layer
	n      int
	opts   Options
	impl   evaluator
}

type evaluator interface {
	losses(thetas [][]float64, dst []float64)
	grad(theta, dst []float64) float64
}

// New returns an evaluator of arch in format f over the examples x (rows
// of arch.Dim() normalised values, CHW order) with labels y. The examples
// are copied and rounded to f. TF32 is not emulated (it rounds the inputs
// of products, not their results; it is for the GPU build).
func New(arch *nets.Arch, f precision.Format, x []float64, y []uint8, opts Options) (*Evaluator, error) {
	layers, err := arch.Layers()
	if err != nil {
		return nil, err
	}
	if f == precision.TF32 {
		return nil, fmt.Errorf("emulate: tf32 rounds the inputs of tensor-core products, which this CPU emulation does not model; use float64, float32, bf16 or fp16")
	}
	n := len(y)
	if n == 0 || len(x) != n*arch.Dim() {
		return nil, fmt.Errorf("emulate %s: %d values for %d examples of %d; pass one row of %d values per label", arch.Name, len(x), n, arch.Dim(), arch.Dim())
	}
	for i, c := range y {
		if int(c) >= arch.Classes {
			return nil, fmt.Errorf("emulate %s: label %d of example %d is not below %d classes", arch.Name, c, i, arch.Classes)
		}
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.Chunk < 0 {
		return nil, fmt.Errorf("emulate %s: negative chunk %d", arch.Name, opts.Chunk)
	}
	e := &Evaluator{Arch: arch, Format: f, Layers: layers, n: n, opts: opts}
	if f == precision.Float64 {
		e.impl = newModel[float64](e, x, y)
	} else {
		e.impl = newModel[float32](e, x, y)
	}
	return e, nil
}

// Len is the number of examples.
func (e *Evaluator) Len() int { return e.n }

// Losses sets dst[k] to the mean loss of thetas[k] (flat parameters in the
// order of Arch.Params, rounded to the format when packed) over the
// examples. A trial's value does not depend on the other trials, on K or
// on the number of workers.
func (e *Evaluator) Losses(thetas [][]float64, dst []float64) error {
	if len(dst) < len(thetas) {
		return fmt.Errorf("emulate %s: %d losses for %d parameter vectors", e.Arch.Name, len(dst), len(thetas))
	}
	np := e.Arch.NumParams()
	for i, t := range thetas {
		if len(t) != np {
			return fmt.Errorf("emulate %s: parameter vector %d has %d values, want %d", e.Arch.Name, i, len(t), np)
		}
	}
	if len(thetas) > 0 {
		e.impl.losses(thetas, dst)
	}
	return nil
}

// Grad sets grad to the gradient of the mean loss at theta over the
// examples, computed in the format (see the package documentation), and
// returns the mean loss.
func (e *Evaluator) Grad(theta, grad []float64) (float64, error) {
	np := e.Arch.NumParams()
	if len(theta) != np || len(grad) != np {
		return 0, fmt.Errorf("emulate %s: %d parameters and %d gradient values, want %d", e.Arch.Name, len(theta), len(grad), np)
	}
	return e.impl.grad(theta, grad), nil
}
