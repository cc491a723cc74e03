package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/nets"
)

// The model builder, the one that turns nets.Arch.Layers into graphs: a
// model is the list of steps of its layers (jetSteps), and every step
// maps a truncated power series to a series by the propagation rule of its
// kind (jetRules), in the style of JAX's jet: one table, linear maps in
// one line each, one Leibniz rule for the products and the tanh
// recurrence. The series of the model's input is (x, 0, 0, 0). Layouts:
// the input x is (K, B, dim), each image in CHW order; a dense layer reads
// and writes rows (K, B, values); a convolution reads the input images
// (the first layer: (K·B, c, h, w)) or the channel-major maps (K, c,
// B·h·w) of the convolution before it, takes their patches with im2col
// (patch rows in (c, ky, kx) order, zero padding) and writes channel-major
// maps (K, out, B·h'·w'); a dense layer after a convolution first flattens
// each image's maps in (y, x, channel) order (flattenKernel), as nets'
// stack forward does. The logits are (K, B, classes). The truncation
// order selects what
// the graph computes from the logits' series:
//
//   - order 0, the loss and its gradient (BatchNet of kind BatchGrad);
//   - order 1, the forward tangent, whose loss tangent g·v differentiated
//     once gives Hessian-vector products (BatchNet of kind BatchHVP, and
//     Jets' covectors of orders 0 and 1);
//   - orders 2 and 3, the Taylor-mode jets (Jets: coefficients and
//     covectors of orders 2 and 3).
//
// To order 1 a tanh layer is applied in the layer's product (affineKernel
// with its activation: y_0 = tanh z_0 without z_0) and its tangent is
// y_1 = (1 − y_0²) ⊙ z_1 (tanhBackKernel), the recurrence's first term
// with kernels whose derivatives gorgonia's Grad composes; from order 2
// on, the recurrence's custom op (tanhJet) takes z_0 … z_n.

// seriesGraph is a graph under construction by the rules: its
// truncation order, each parameter as a series (θ, V: V nil at order 0)
// and zero biases for the coefficients past the first.
type seriesGraph interface {
	maxOrder() int
	paramSeries(i int) series
	zeroBias(i int) *G.Node
}

// seriesInputs are the inputs of a series graph: the samples x
// (K, B, dim), the K stacked parameters θ (K, shape…) and, to order ≥ 1,
// the K stacked directions V, each with the tensor the TapeMachine reads
// (the walker gives them device buffers).
type seriesInputs struct {
	x            *G.Node
	xbuf         *tensor.Dense
	params, dirs []*G.Node
	pbuf, vbuf   []*tensor.Dense
}

// newSeriesInputs adds the inputs of a graph of K trials of B samples of
// a in dtype dt to g, with directions when dirs is set.
func newSeriesInputs(g *G.ExprGraph, a *nets.Arch, dt tensor.Dtype, k, b int, dirs bool) seriesInputs {
	var in seriesInputs
	in.xbuf = tensor.New(tensor.Of(dt), tensor.WithShape(k, b, a.Dim()))
	in.x = G.NewTensor(g, dt, 3, G.WithShape(k, b, a.Dim()), G.WithName("x"), G.WithValue(in.xbuf))
	for _, p := range a.Params {
		shape := append([]int{k}, p.Shape...)
		buf := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
		in.pbuf = append(in.pbuf, buf)
		in.params = append(in.params, G.NewTensor(g, dt, len(shape), G.WithShape(shape...), G.WithName(p.Name), G.WithValue(buf)))
		if dirs {
			vb := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
			in.vbuf = append(in.vbuf, vb)
			in.dirs = append(in.dirs, G.NewTensor(g, dt, len(shape), G.WithShape(shape...), G.WithName("v."+p.Name), G.WithValue(vb)))
		}
	}
	return in
}

// paramSeries is parameter i's series θ + t V (V nil without directions).
func (in *seriesInputs) paramSeries(i int) series {
	s := series{in.params[i]}
	if in.dirs != nil {
		s[1] = in.dirs[i]
	}
	return s
}

// forwardSeries runs the samples' series (x, 0, 0, 0) through the steps
// of a's layers (jetSteps for K trials of B samples) by the rules: the
// logits' series (K, B, classes).
func forwardSeries(g seriesGraph, a *nets.Arch, x *G.Node, k, b int) (series, error) {
	steps, err := jetSteps(a, k, b)
	if err != nil {
		return series{}, err
	}
	h := series{x}
	for i, s := range steps {
		if h, err = jetRules[s.op](g, s, h); err != nil {
			return series{}, fmt.Errorf("step %d (%v, layer of %s): %w", i, s.op, s.what, err)
		}
	}
	return h, nil
}

func (jg *jetGraph) maxOrder() int          { return jg.order }
func (jg *jetGraph) zeroBias(i int) *G.Node { return jg.zero(i) }

// jetOp is the kind of a step: the key of jetRules.
type jetOp int

const (
	jetReshape jetOp = iota // a reshape (the input images)
	jetLinear               // a linear kernel: im2col, flattening
	jetAffine               // a layer's product and bias
	jetTanh                 // the activation
)

func (op jetOp) String() string {
	switch op {
	case jetReshape:
		return "reshape"
	case jetLinear:
		return "linear"
	case jetAffine:
		return "affine"
	case jetTanh:
		return "tanh"
	}
	return fmt.Sprintf("jetOp(%d)", int(op))
}

// jetStep is one step of a model's jets: its kind and what its rule needs.
type jetStep struct {
	op    jetOp
	shape tensor.Shape // jetReshape
	k     kernel       // jetLinear
	layer nets.Layer   // jetAffine
	cm    bool         // jetAffine: channel-major (convolutions)
	what  string       // the layer's weight, for errors
}

// jetRule maps the series x through step s of jg's model.
type jetRule func(g seriesGraph, s jetStep, x series) (series, error)

// jetRules are the propagation rules, by kind of step.
var jetRules = map[jetOp]jetRule{
	jetReshape: linearJetRule(func(s jetStep, x *G.Node) (*G.Node, error) { return G.Reshape(x, s.shape) }),
	jetLinear:  linearJetRule(func(s jetStep, x *G.Node) (*G.Node, error) { return apply(s.k, x) }),
	jetAffine:  affineJetRule,
	jetTanh:    tanhJetRule,
}

// linearJetRule is the rule of a linear map f: (f x)_n = f(x_n), and a zero
// coefficient stays zero.
func linearJetRule(f func(s jetStep, x *G.Node) (*G.Node, error)) jetRule {
	return func(_ seriesGraph, s jetStep, x series) (series, error) {
		var y series
		for n, c := range x {
			if c == nil {
				continue
			}
			var err error
			if y[n], err = f(s, c); err != nil {
				return y, err
			}
		}
		return y, nil
	}
}

// leibniz returns the products of coefficient n of the product of series
// a·b, (ab)_n = Σ_{i=0..n} a_i b_{n−i}, as the pairs a_i, b_{n−i} of its
// non-zero terms.
func leibniz(a, b series, n int) []*G.Node {
	var in []*G.Node
	for i := n; i >= 0; i-- {
		if a[i] != nil && b[n-i] != nil {
			in = append(in, a[i], b[n-i])
		}
	}
	return in
}

// affineJetRule is the rule of layer z = s·x W + b at θ + t v: with the
// series W(t) = W + t V_W and b(t) = b + t V_b, Leibniz's rule gives
//
//	z_0 = s·x_0 W + b,  z_1 = s·(x_1 W + x_0 V_W) + V_b,  z_n = s·(x_n W + x_{n−1} V_W)  (n ≥ 2),
//
// one affineKernel per coefficient (in the row or channel-major layout).
// To order 1 a tanh layer's activation is applied here (see above).
func affineJetRule(g seriesGraph, s jetStep, x series) (series, error) {
	l := s.layer
	w, b := g.paramSeries(l.W), g.paramSeries(l.B)
	fused := l.Tanh && g.maxOrder() <= 1
	var z series
	for n := 0; n <= g.maxOrder(); n++ {
		in := leibniz(x, w, n)
		if len(in) == 0 {
			if b[n] != nil {
				return z, fmt.Errorf("coefficient %d: a bias term without a product", n)
			}
			continue
		}
		bias := b[n]
		if bias == nil {
			bias = g.zeroBias(l.B)
		}
		var err error
		if z[n], err = affine(l.Scale, fused && n == 0, s.cm, append(in, bias)...); err != nil {
			return z, fmt.Errorf("coefficient %d: %w", n, err)
		}
	}
	if fused && z[1] != nil {
		var err error
		if z[1], err = tanhBack(z[0], z[1]); err != nil {
			return z, fmt.Errorf("tanh tangent: %w", err)
		}
	}
	return z, nil
}

// tanhJetRule is the rule of y = tanh z: y_0 = tanh z_0 and the recurrence
// of tanhSeries for y_n (tanhJetKernel); a zero z_1..z_n gives y_n = 0.
// To order 1 the layer's affine step has applied it.
func tanhJetRule(g seriesGraph, _ jetStep, z series) (series, error) {
	if g.maxOrder() <= 1 {
		return z, nil
	}
	var y series
	for n := 0; n <= g.maxOrder(); n++ {
		if _, m := maskOf(z[:n+1]); n > 0 && m == 0 {
			continue
		}
		var err error
		if y[n], err = tanhJet(n, z[:]); err != nil {
			return y, fmt.Errorf("tanh coefficient %d: %w", n, err)
		}
	}
	return y, nil
}

// jetSteps returns the steps of a's jets for K trials of B samples, from
// its layers: a convolution is im2col of the images (reshaped to
// (K·B, c, h, w)) or of the previous convolution's maps, a channel-major
// affine step and tanh; a dense layer after a convolution first flattens
// the maps to rows in (y, x, channel) order.
func jetSteps(a *nets.Arch, k, b int) ([]jetStep, error) {
	layers, err := a.Layers()
	if err != nil {
		return nil, err
	}
	var steps []jetStep
	for i, l := range layers {
		name := a.Params[l.W].Name
		first := len(steps)
		if l.Conv {
			im, err := im2colOf(l, k, b)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if l.FirstReadsCHW {
				steps = append(steps, jetStep{op: jetReshape, shape: tensor.Shape{k * b, l.InC, l.InH, l.InW}})
			}
			steps = append(steps, jetStep{op: jetLinear, k: im}, jetStep{op: jetAffine, layer: l, cm: true})
		} else {
			if i > 0 && layers[i-1].Conv {
				p := layers[i-1]
				steps = append(steps, jetStep{op: jetLinear, k: flattenKernel{c: p.Out, images: b, p: p.Positions}})
			}
			steps = append(steps, jetStep{op: jetAffine, layer: l})
		}
		if l.Tanh {
			steps = append(steps, jetStep{op: jetTanh})
		}
		for s := first; s < len(steps); s++ {
			steps[s].what = name
		}
	}
	if n := len(layers); n > 0 && layers[n-1].Conv {
		p := layers[n-1]
		steps = append(steps, jetStep{op: jetLinear, k: flattenKernel{c: p.Out, images: b, p: p.Positions}, what: "flatten the last maps"})
	}
	return steps, nil
}

// im2colOf is the patch extraction of convolution layer l for K trials of
// B images: of the input images (CHW) for the first layer, else of the
// previous layer's channel-major maps.
//
// Padded layers (the 3×3 stride-1 layers of convnets deeper than 2) need
// im2colKernel's padding, which this branch does not have yet: at merge
// with it, set its pad to l.Pad here and drop the check.
func im2colOf(l nets.Layer, k, b int) (im2colKernel, error) {
	return im2colKernel{trials: k, images: b, c: l.InC, h: l.InH, w: l.InW, size: l.K, stride: l.Stride, pad: l.Pad, cbhw: !l.FirstReadsCHW}, nil
}
