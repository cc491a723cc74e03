package nets

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The paper's convnet (appendix C.2): two convolutions with kernel 5,
// stride 2, no padding and 10 channels, then a dense layer of width 10, then
// a dense layer to the classes; tanh after every layer but the last.
//
// Each convolution is im2col followed by a matrix product: the patches of
// an image (c·5·5 values each, in gorgonia's im2col order) times a
// (c·5·5) × 10 weight matrix. Fashion-MNIST (1×28×28) gives 12×12 and then
// 4×4 feature maps and 4,490 parameters; CIFAR-10 (3×32×32) gives 14×14 and
// 5×5 and 5,890 parameters.
const (
	convKernel   = 5
	convStride   = 2
	convChannels = 10
	hiddenWidth  = 10
)

func convOut(n int) int { return (n-convKernel)/convStride + 1 }

func (a *Arch) convnetParams() error {
	if min(a.Height, a.Width) < 13 {
		return fmt.Errorf("convnet needs inputs of at least 13×13 pixels, got %d×%d", a.Height, a.Width)
	}
	h1, w1 := convOut(a.Height), convOut(a.Width)
	h2, w2 := convOut(h1), convOut(w1)
	k := convKernel * convKernel
	in1, in2, in3 := a.Channels*k, convChannels*k, convChannels*h2*w2
	a.Params = []Param{
		{Name: "conv1.w", Shape: []int{in1, convChannels}, Scale: xavier(in1, convChannels*k)},
		{Name: "conv1.b", Shape: []int{convChannels}, Scale: 1, Bias: true},
		{Name: "conv2.w", Shape: []int{in2, convChannels}, Scale: xavier(in2, convChannels*k)},
		{Name: "conv2.b", Shape: []int{convChannels}, Scale: 1, Bias: true},
		{Name: "dense1.w", Shape: []int{in3, hiddenWidth}, Scale: xavier(in3, hiddenWidth)},
		{Name: "dense1.b", Shape: []int{hiddenWidth}, Scale: 1, Bias: true},
		{Name: "dense2.w", Shape: []int{hiddenWidth, a.Classes}, Scale: xavier(hiddenWidth, a.Classes)},
		{Name: "dense2.b", Shape: []int{a.Classes}, Scale: 1, Bias: true},
	}
	return nil
}

// conv applies one tanh convolution layer to images (batch, c, h, w) and
// returns the feature maps as (batch, h', w', 10).
func conv(im, w, b *G.Node, s float64) (*G.Node, error) {
	batch := im.Shape()[0]
	cols, err := G.Im2Col(im, tensor.Shape{convKernel, convKernel}, tensor.Shape{0, 0},
		tensor.Shape{convStride, convStride}, tensor.Shape{1, 1})
	if err != nil {
		return nil, fmt.Errorf("im2col: %w", err)
	}
	cs := cols.Shape() // (batch, h', w', c·k·k)
	h, wd := cs[1], cs[2]
	flat, err := G.Reshape(cols, tensor.Shape{batch * h * wd, cs[3]})
	if err != nil {
		return nil, err
	}
	z, err := dense(flat, w, b, s)
	if err != nil {
		return nil, err
	}
	if z, err = G.Tanh(z); err != nil {
		return nil, err
	}
	return G.Reshape(z, tensor.Shape{batch, h, wd, convChannels})
}

func (a *Arch) convnet(x *G.Node, p []*G.Node) (*G.Node, error) {
	batch := x.Shape()[0]
	im, err := G.Reshape(x, tensor.Shape{batch, a.Channels, a.Height, a.Width})
	if err != nil {
		return nil, err
	}
	if im, err = conv(im, p[0], p[1], a.Params[0].Scale); err != nil {
		return nil, fmt.Errorf("conv1: %w", err)
	}
	// Back to channel-major (batch, 10, h', w') for the next im2col.
	if im, err = G.Transpose(im, 0, 3, 1, 2); err != nil {
		return nil, fmt.Errorf("conv1: %w", err)
	}
	if im, err = conv(im, p[2], p[3], a.Params[2].Scale); err != nil {
		return nil, fmt.Errorf("conv2: %w", err)
	}
	// The dense layer reads the maps in (y, x, channel) order.
	flat, err := G.Reshape(im, tensor.Shape{batch, a.Params[4].Shape[0]})
	if err != nil {
		return nil, err
	}
	h, err := dense(flat, p[4], p[5], a.Params[4].Scale)
	if err != nil {
		return nil, fmt.Errorf("dense1: %w", err)
	}
	if h, err = G.Tanh(h); err != nil {
		return nil, err
	}
	return dense(h, p[6], p[7], a.Params[6].Scale)
}
