package nets

import (
	"fmt"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Size selects a member of a model family: the tanh MLP "mlp" and the
// convnet come in configurable widths and depths (for the width and depth
// sweeps of the floating-point noise study). The zero value is the
// family's default: the paper's convnet (width 10, depth 2) and an MLP of
// two hidden layers of width 64. The logistic model has no size.
//
//   - mlp, width w, depth d ≥ 1: d dense tanh layers of width w, then a
//     dense layer to the classes;
//   - convnet, width w, depth d ≥ 2: two 5×5 stride-2 tanh convolutions
//     with w channels (as in the paper), d−2 further 3×3 stride-1 tanh
//     convolutions with padding 1 and w channels (the maps keep their
//     size), a dense tanh layer of width w and a dense layer to the
//     classes. Width 10, depth 2 is exactly the paper's convnet (the same
//     parameters and initialisations).
//
// Every layer is z = s·(x W) + b in the standard-normal parameterisation
// with its Gaussian-Xavier scale s (a convolution's fan-out counts its
// kernel positions, as in the paper's convnet).
type Size struct {
	Width, Depth int
}

// Defaults of the sized families.
const (
	DefaultMLPWidth     = 64
	DefaultMLPDepth     = 2
	DefaultConvnetWidth = convChannels
	DefaultConvnetDepth = 2
	// MaxWidth and MaxDepth bound the sizes NewSized accepts.
	MaxWidth = 4096
	MaxDepth = 64
)

// Sized reports whether model name takes a Size.
func Sized(name string) bool { return name == "mlp" || name == "convnet" }

// NewSized is New for a member of a sized family (mlp, convnet); a zero
// Width or Depth takes the family's default. Other models accept only the
// zero Size.
func NewSized(name string, channels, height, width, classes int, s Size) (*Arch, error) {
	if !Sized(name) {
		if s != (Size{}) {
			return nil, fmt.Errorf("model %s has no width or depth (only mlp and convnet do); remove them", name)
		}
		return New(name, channels, height, width, classes)
	}
	if s.Width < 0 || s.Depth < 0 || s.Width > MaxWidth || s.Depth > MaxDepth {
		return nil, fmt.Errorf("model %s: width %d and depth %d must be positive (at most %d and %d)", name, s.Width, s.Depth, MaxWidth, MaxDepth)
	}
	a := &Arch{Name: name, Channels: channels, Height: height, Width: width, Classes: classes}
	switch name {
	case "mlp":
		w, d := or(s.Width, DefaultMLPWidth), or(s.Depth, DefaultMLPDepth)
		in := a.Dim()
		for i := 1; i <= d; i++ {
			a.Params = append(a.Params,
				Param{Name: fmt.Sprintf("dense%d.w", i), Shape: []int{in, w}, Scale: xavier(in, w)},
				Param{Name: fmt.Sprintf("dense%d.b", i), Shape: []int{w}, Scale: 1, Bias: true})
			in = w
		}
		a.Params = append(a.Params,
			Param{Name: fmt.Sprintf("dense%d.w", d+1), Shape: []int{in, classes}, Scale: xavier(in, classes)},
			Param{Name: fmt.Sprintf("dense%d.b", d+1), Shape: []int{classes}, Scale: 1, Bias: true})
	case "convnet":
		w, d := or(s.Width, DefaultConvnetWidth), or(s.Depth, DefaultConvnetDepth)
		if d < 2 {
			return nil, fmt.Errorf("convnet depth %d: the convnet has at least its two strided convolutions; use depth >= 2", d)
		}
		if w == DefaultConvnetWidth && d == DefaultConvnetDepth {
			return New(name, channels, height, width, classes)
		}
		if min(height, width) < 13 {
			return nil, fmt.Errorf("convnet needs inputs of at least 13×13 pixels, got %d×%d", height, width)
		}
		c, h, wd := channels, height, width
		for i := 1; i <= d; i++ {
			k := 3
			if i <= 2 {
				k = convKernel
				h, wd = convOut(h), convOut(wd)
			}
			in := c * k * k
			a.Params = append(a.Params,
				Param{Name: fmt.Sprintf("conv%d.w", i), Shape: []int{in, w}, Scale: xavier(in, w*k*k)},
				Param{Name: fmt.Sprintf("conv%d.b", i), Shape: []int{w}, Scale: 1, Bias: true})
			c = w
		}
		in := c * h * wd
		a.Params = append(a.Params,
			Param{Name: "dense1.w", Shape: []int{in, w}, Scale: xavier(in, w)},
			Param{Name: "dense1.b", Shape: []int{w}, Scale: 1, Bias: true},
			Param{Name: "dense2.w", Shape: []int{w, classes}, Scale: xavier(w, classes)},
			Param{Name: "dense2.b", Shape: []int{classes}, Scale: 1, Bias: true})
	}
	a.Forward = a.stack
	return a, nil
}

func or(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Layer is one affine layer z = s·(x W) + b of a model, followed by tanh
// or not. A dense layer reads its input as one row of In values; a
// convolution reads maps of InC channels of InH×InW pixels, stored per
// example in (y, x, channel) order, and applies its (InC·K·K) × Out kernel
// matrix at every output position (rows of the kernel matrix in (c, ky, kx)
// order, as gorgonia's im2col), writing maps of Out channels of OutH×OutW
// in (y, x, channel) order. Each example's input image is in CHW order.
type Layer struct {
	Conv                bool
	In, Out             int // input values (dense: In; conv: InC·K·K per patch) and outputs per position
	InC, InH, InW       int // conv input maps
	K, Stride, Pad      int // conv geometry
	OutH, OutW          int // conv output maps (1×1 for dense)
	Tanh                bool
	W, B                int     // indices of the weight and bias in Arch.Params
	Scale               float64 // the weight's Xavier scale
	FirstReadsCHW       bool    // a convolution reading the input image (CHW order)
	Positions, InValues int     // OutH·OutW output positions; input values per example
}

// Layers returns a's layers in order (logistic, convnet of any size, mlp).
func (a *Arch) Layers() ([]Layer, error) {
	var out []Layer
	c, h, w := a.Channels, a.Height, a.Width
	flat := false // the input is a flat row (after a dense layer)
	for i := 0; i+1 < len(a.Params); i += 2 {
		p := a.Params[i]
		if len(p.Shape) != 2 || a.Params[i+1].Size() != p.Shape[1] {
			return nil, fmt.Errorf("%s: unexpected parameters %v", a.Name, a.Params)
		}
		last := i+2 == len(a.Params)
		l := Layer{In: p.Shape[0], Out: p.Shape[1], W: i, B: i + 1, Scale: p.Scale, Tanh: !last, OutH: 1, OutW: 1}
		if strings.HasPrefix(p.Name, "conv") {
			var idx int
			if _, err := fmt.Sscanf(p.Name, "conv%d.w", &idx); err != nil || flat {
				return nil, fmt.Errorf("%s: unexpected parameter %s", a.Name, p.Name)
			}
			l.Conv, l.InC, l.InH, l.InW = true, c, h, w
			l.K, l.Stride, l.Pad = convKernel, convStride, 0
			if idx > 2 {
				l.K, l.Stride, l.Pad = 3, 1, 1
			}
			l.OutH, l.OutW = (h+2*l.Pad-l.K)/l.Stride+1, (w+2*l.Pad-l.K)/l.Stride+1
			l.FirstReadsCHW = i == 0
			if l.In != c*l.K*l.K || l.OutH < 1 || l.OutW < 1 {
				return nil, fmt.Errorf("%s: %s of shape %v on %d×%d×%d maps", a.Name, p.Name, p.Shape, c, h, w)
			}
			c, h, w = l.Out, l.OutH, l.OutW
			l.InValues = l.InC * l.InH * l.InW
		} else {
			if l.In != c*h*w {
				return nil, fmt.Errorf("%s: %s of shape %v on %d inputs", a.Name, p.Name, p.Shape, c*h*w)
			}
			l.InValues = l.In
			c, h, w, flat = l.Out, 1, 1, true
		}
		l.Positions = l.OutH * l.OutW
		out = append(out, l)
	}
	if len(out) == 0 || c*h*w != a.Classes {
		return nil, fmt.Errorf("%s: parameters %v do not end in %d classes", a.Name, a.Params, a.Classes)
	}
	return out, nil
}

// stack is the Forward of the sized models: their layers in order.
func (a *Arch) stack(x *G.Node, p []*G.Node) (*G.Node, error) {
	layers, err := a.Layers()
	if err != nil {
		return nil, err
	}
	batch := x.Shape()[0]
	h := x
	for i, l := range layers {
		name := a.Params[l.W].Name
		if l.Conv {
			// h is (batch, c, y, x) for the first layer, else (batch, y, x, c).
			im := h
			if i == 0 {
				im, err = G.Reshape(h, tensor.Shape{batch, l.InC, l.InH, l.InW})
			} else {
				im, err = G.Transpose(h, 0, 3, 1, 2)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			cols, err := G.Im2Col(im, tensor.Shape{l.K, l.K}, tensor.Shape{l.Pad, l.Pad},
				tensor.Shape{l.Stride, l.Stride}, tensor.Shape{1, 1})
			if err != nil {
				return nil, fmt.Errorf("%s: im2col: %w", name, err)
			}
			flat, err := G.Reshape(cols, tensor.Shape{batch * l.Positions, l.In})
			if err != nil {
				return nil, err
			}
			z, err := dense(flat, p[l.W], p[l.B], l.Scale)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if z, err = G.Tanh(z); err != nil {
				return nil, err
			}
			if h, err = G.Reshape(z, tensor.Shape{batch, l.OutH, l.OutW, l.Out}); err != nil {
				return nil, err
			}
			continue
		}
		if len(h.Shape()) != 2 {
			if h, err = G.Reshape(h, tensor.Shape{batch, l.In}); err != nil {
				return nil, err
			}
		}
		if h, err = dense(h, p[l.W], p[l.B], l.Scale); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if l.Tanh {
			if h, err = G.Tanh(h); err != nil {
				return nil, err
			}
		}
	}
	return h, nil
}
