package graph

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/nets"
)

// refConvnet is a direct, loop-by-loop float64 implementation of the
// convnet of package nets: convolution weights indexed by row
// (c·25 + ky·5 + kx) and output channel, feature maps flattened as
// (y, x, channel) before the first dense layer.
func refConvnet(a *nets.Arch, vals [][]float64, x []float64) []float64 {
	tanhConv := func(in []float64, c, h, w int, wt, b []float64, s float64) ([]float64, int, int) {
		oh, ow := (h-5)/2+1, (w-5)/2+1
		out := make([]float64, 10*oh*ow) // CHW
		for o := 0; o < 10; o++ {
			for y := 0; y < oh; y++ {
				for xx := 0; xx < ow; xx++ {
					z := 0.0
					for ci := 0; ci < c; ci++ {
						for ky := 0; ky < 5; ky++ {
							for kx := 0; kx < 5; kx++ {
								z += in[ci*h*w+(2*y+ky)*w+2*xx+kx] * wt[(ci*25+ky*5+kx)*10+o]
							}
						}
					}
					out[o*oh*ow+y*ow+xx] = math.Tanh(s*z + b[o])
				}
			}
		}
		return out, oh, ow
	}
	h1, oh, ow := tanhConv(x, a.Channels, a.Height, a.Width, vals[0], vals[1], a.Params[0].Scale)
	h2, oh, ow := tanhConv(h1, 10, oh, ow, vals[2], vals[3], a.Params[2].Scale)
	flat := make([]float64, 10*oh*ow) // (y, x, c) order
	for c := 0; c < 10; c++ {
		for i := 0; i < oh*ow; i++ {
			flat[i*10+c] = h2[c*oh*ow+i]
		}
	}
	dense := func(in, w, b []float64, s float64, out int, act bool) []float64 {
		z := make([]float64, out)
		for o := range z {
			for i, v := range in {
				z[o] += v * w[i*out+o]
			}
			z[o] = s*z[o] + b[o]
			if act {
				z[o] = math.Tanh(z[o])
			}
		}
		return z
	}
	h3 := dense(flat, vals[4], vals[5], a.Params[4].Scale, 10, true)
	return dense(h3, vals[6], vals[7], a.Params[6].Scale, a.Classes, false)
}

func logSumExp(z []float64) float64 {
	m := z[0]
	for _, v := range z {
		m = math.Max(m, v)
	}
	s := 0.0
	for _, v := range z {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}

// TestConvnetMatchesReference checks the gorgonia convnet against the
// direct convolution above, on Fashion-MNIST and CIFAR-10 shapes.
func TestConvnetMatchesReference(t *testing.T) {
	for _, shape := range [][3]int{{1, 28, 28}, {3, 32, 32}} {
		a, err := nets.New("convnet", shape[0], shape[1], shape[2], 10)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(9, uint64(shape[0])))
		d := randomData(a, 3, r)
		vals, _ := a.Init(2)
		for i := range vals {
			for j := range vals[i] {
				vals[i][j] += 0.1 * r.NormFloat64()
			}
		}
		n, err := Compile(a, tensor.Float64, 3, false)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := n.Eval(NewParams(a, vals, tensor.Float64), d, []int{0, 1, 2}, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := 0.0
		for i := 0; i < 3; i++ {
			z := refConvnet(a, vals, d.X64[i*a.Dim():(i+1)*a.Dim()])
			want += logSumExp(z) - z[d.Y[i]]
		}
		if math.Abs(got-want) > 1e-12*math.Abs(want) {
			t.Errorf("%v: summed loss %.15g, reference %.15g", shape, got, want)
		}
	}
}

// TestLogisticClosedForm checks the logistic model at initialisation 0:
// the loss is log 10 and the gradient of the stored weights is
// s·xᵀ(softmax − y)/B with softmax = 1/10 everywhere.
func TestLogisticClosedForm(t *testing.T) {
	a, _ := nets.New("logistic", 1, 28, 28, 10)
	r := rand.New(rand.NewPCG(11, 12))
	d := randomData(a, 4, r)
	vals, _ := a.Init(0)
	n, _ := Compile(a, tensor.Float64, 4, true)
	loss, g, err := n.Grad(NewParams(a, vals, tensor.Float64), d, []int{0, 1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(loss-math.Log(10)) > 1e-14 {
		t.Fatalf("loss %v, want log 10", loss)
	}
	s := a.Params[0].Scale
	gw := g[0].Data().([]float64)
	for _, ij := range [][2]int{{0, 0}, {100, 3}, {783, 9}} {
		i, k := ij[0], ij[1]
		want := 0.0
		for b := 0; b < 4; b++ {
			y := 0.0
			if int(d.Y[b]) == k {
				y = 1
			}
			want += s * d.X64[b*784+i] * (0.1 - y) / 4
		}
		if got := gw[i*10+k]; math.Abs(got-want) > 1e-15 {
			t.Errorf("dL/dw[%d,%d] = %v, want %v", i, k, got, want)
		}
	}
}
