package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/nets"
)

// The convolution geometry of the paper's convnet (kernel 5, stride 2, no
// padding), which nets does not export; the batched graphs take every
// layer's geometry from nets.Arch.Layers, the jets use these.
const (
	convSize   = 5
	convStride = 2
)

// forward builds the logits of every trial from the layers of
// nets.Arch.Layers, the only description of the model it uses: for each
// layer z = s·(x W) + b, then tanh where the layer has it.
//
// Layouts: the input x is (K, B, dim), each image in CHW order. A dense
// layer reads and writes rows (K, B, values). A convolution reads the
// input images (the first layer: (K·B, c, h, w)) or the channel-major maps
// (K, c, B·h·w) of the convolution before it, takes their patches with
// im2col (patch rows in (c, ky, kx) order, zero padding) and writes
// channel-major maps (K, out, B·h'·w'): per image and channel, the map in
// (y, x) order. A dense layer after a convolution first flattens each
// image's maps in (y, x, channel) order (flattenKernel), as nets' stack
// forward does; internally channel-major maps change no arithmetic. The
// logits are (K, B, classes).
//
// For BatchHVP every value carries its tangent along V (see dual).
func (n *BatchNet) forward() (dual, error) {
	layers, err := n.Arch.Layers()
	if err != nil {
		return dual{}, err
	}
	h := dual{v: n.x}
	maps := false  // h holds channel-major maps (K, mc, B·mp)
	var mc, mp int // their channels and positions per image
	flatten := func() error {
		f := flattenKernel{c: mc, images: n.B, p: mp}
		var err error
		h, err = linear(h, func(x *G.Node) (*G.Node, error) { return apply(f, x) })
		maps = false
		return err
	}
	for i, l := range layers {
		name := n.Arch.Params[l.W].Name
		if !l.Conv {
			if maps {
				if err := flatten(); err != nil {
					return dual{}, fmt.Errorf("%s: flatten the maps: %w", name, err)
				}
			}
			if h, err = n.dense(h, l, false); err != nil {
				return dual{}, fmt.Errorf("%s: %w", name, err)
			}
			continue
		}
		switch {
		case i == 0:
			if h.v, err = G.Reshape(n.x, tensor.Shape{n.K * n.B, l.InC, l.InH, l.InW}); err != nil {
				return dual{}, fmt.Errorf("%s: images of %d×%d×%d: %w", name, l.InC, l.InH, l.InW, err)
			}
		case !maps || mc != l.InC || mp != l.InH*l.InW:
			return dual{}, fmt.Errorf("%s: a convolution of %d×%d×%d maps after a layer that does not write them", name, l.InC, l.InH, l.InW)
		}
		if h, err = n.conv(h, l, i > 0); err != nil {
			return dual{}, fmt.Errorf("%s: %w", name, err)
		}
		maps, mc, mp = true, l.Out, l.Positions
	}
	if maps {
		if err := flatten(); err != nil {
			return dual{}, fmt.Errorf("flatten the last maps: %w", err)
		}
	}
	return h, nil
}

// dense applies layer l (weights params[l.W], bias params[l.B]) to x: z =
// s·(x W) + b per trial as nets' dense, then tanh when l.Tanh; x is (K, m,
// in) or, channel-major (cm), (K, in, m) (see affineKernel). The tangent
// is ż = s·(ẋ W + x V_W) + V_b, then ṫ = (1 − t²) ⊙ ż.
func (n *BatchNet) dense(x dual, l nets.Layer, cm bool) (dual, error) {
	s, act := l.Scale, l.Tanh
	w, b := n.params[l.W], n.params[l.B]
	var z dual
	var err error
	if z.v, err = affine(s, act, cm, x.v, w, b); err != nil {
		return dual{}, err
	}
	if n.tangents == nil {
		return z, nil
	}
	vw, vb := n.tangents[l.W], n.tangents[l.B]
	if x.d == nil {
		z.d, err = affine(s, false, cm, x.v, vw, vb)
	} else {
		z.d, err = affine(s, false, cm, x.d, w, x.v, vw, vb)
	}
	if err != nil || !act {
		return z, err
	}
	z.d, err = tanhBack(z.v, z.d)
	return z, err
}

// linear applies the linear map f to the primal and the tangent.
func linear(x dual, f func(*G.Node) (*G.Node, error)) (dual, error) {
	var y dual
	var err error
	if y.v, err = f(x.v); err != nil {
		return dual{}, err
	}
	if x.d != nil {
		if y.d, err = f(x.d); err != nil {
			return dual{}, err
		}
	}
	return y, nil
}

// conv is convolution layer l on the B images of each of K trials: im is
// (K·B, c, h, w), or with cbhw the previous layer's maps (K, c, B·h·w).
// im2col makes each trial's (c·k², B·h'·w') patch matrix (zero padding
// l.Pad, stride l.Stride), and the channel-major dense layer multiplies it
// by the trial's kernel matrix (transposed): the maps (K, out, B·h'·w'),
// as nets' convolution computes them up to the layout.
func (n *BatchNet) conv(im dual, l nets.Layer, cbhw bool) (dual, error) {
	k := im2colKernel{trials: n.K, images: n.B, c: l.InC, h: l.InH, w: l.InW,
		size: l.K, stride: l.Stride, pad: l.Pad, cbhw: cbhw}
	if f := n.Arch.Params[l.W].Shape[0]; f != l.InC*l.K*l.K {
		return dual{}, fmt.Errorf("patches of %d values for weights %v", l.InC*l.K*l.K, n.Arch.Params[l.W].Shape)
	}
	if oh, ow := k.out(); oh != l.OutH || ow != l.OutW {
		return dual{}, fmt.Errorf("maps of %d×%d, the layer says %d×%d", oh, ow, l.OutH, l.OutW)
	}
	cols, err := linear(im, func(x *G.Node) (*G.Node, error) { return apply(k, x) })
	if err != nil {
		return dual{}, fmt.Errorf("im2col: %w", err)
	}
	return n.dense(cols, l, true)
}
