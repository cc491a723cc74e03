// Package nets defines the models of perturb as gorgonia graphs.
//
// # Parameterisation
//
// Every weight matrix W of a layer is stored as a standard-normal variable
// at Xavier initialisation, and the layer multiplies by its Gaussian-Xavier
// scale in the forward pass:
//
//	z = s · (x W) + b,   s = sqrt(2 / (fan_in + fan_out)),
//
// so the Xavier draw W_eff = s·W ~ N(0, s²) is exactly a standard-normal
// draw of the stored W, and a learning rate eta moves the stored weights on
// a common distance scale (the paper's appendix C.2). Biases are stored
// unscaled and start at zero in every initialisation, as in Glorot and
// Bengio's scheme.
//
// # Initialisations
//
// An initialisation is an integer id: 0 is all zeros (allowed only where the
// model can learn from it: the logistic model, not the convnet, whose tanh
// layers would have zero gradients everywhere but the last bias), and k > 0
// is the k-th seeded Gaussian draw of the stored weights. The draw depends
// only on the architecture (name and shapes) and k, never on the run seed,
// the optimiser or the learning rate, so every optimiser and learning rate
// of every config starts from exactly the same weights.
package nets

import (
	"fmt"
	"math"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/nets/seed"
)

// Param describes one stored parameter tensor.
type Param struct {
	Name  string
	Shape []int
	// Scale multiplies the stored tensor in the forward pass (Xavier scale
	// for weights, 1 for biases).
	Scale float64
	// Bias parameters start at zero in every initialisation.
	Bias bool
}

// Size is the number of scalars in p.
func (p Param) Size() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// Forward builds the logits (batch × classes) from the input rows x
// (batch × channels·height·width, CHW order) and the stored parameters, in
// the order of Arch.Params.
type Forward func(x *G.Node, params []*G.Node) (*G.Node, error)

// Arch is a model architecture for one input shape.
type Arch struct {
	Name                    string
	Channels, Height, Width int
	Classes                 int
	Params                  []Param
	Forward                 Forward
	ZeroInitAllowed         bool
}

// Names lists the models New knows.
var Names = []string{"logistic", "convnet", "mlp"}

// New returns the architecture called name for inputs of the given shape.
func New(name string, channels, height, width, classes int) (*Arch, error) {
	a := &Arch{Name: name, Channels: channels, Height: height, Width: width, Classes: classes}
	switch name {
	case "logistic":
		d := channels * height * width
		a.Params = []Param{
			{Name: "w", Shape: []int{d, classes}, Scale: xavier(d, classes)},
			{Name: "b", Shape: []int{classes}, Scale: 1, Bias: true},
		}
		a.Forward = a.logistic
		a.ZeroInitAllowed = true
	case "convnet":
		if err := a.convnetParams(); err != nil {
			return nil, err
		}
		a.Forward = a.convnet
	case "mlp":
		return NewSized(name, channels, height, width, classes, Size{})
	default:
		return nil, fmt.Errorf("unknown model %q (known: %s)", name, strings.Join(Names, ", "))
	}
	return a, nil
}

// NumParams is the number of stored scalars.
func (a *Arch) NumParams() int {
	n := 0
	for _, p := range a.Params {
		n += p.Size()
	}
	return n
}

// Dim is the input dimension channels·height·width.
func (a *Arch) Dim() int { return a.Channels * a.Height * a.Width }

func xavier(fanIn, fanOut int) float64 { return math.Sqrt(2 / float64(fanIn+fanOut)) }

// Init returns the stored parameter values of initialisation id, one flat
// row-major slice per parameter, in float64 (a float32 run rounds them).
func (a *Arch) Init(id int) ([][]float64, error) {
	if id < 0 {
		return nil, fmt.Errorf("initialisation id %d is negative; use 0 (zeros) or k > 0 (k-th Gaussian draw)", id)
	}
	if id == 0 && !a.ZeroInitAllowed {
		return nil, fmt.Errorf("model %s cannot start from initialisation 0 (all zeros): its tanh layers would have zero gradients; use a Gaussian draw k > 0", a.Name)
	}
	out := make([][]float64, len(a.Params))
	r := seed.New(seed.Init, seed.StringID(a.signature()), uint64(id))
	for i, p := range a.Params {
		out[i] = make([]float64, p.Size())
		if id == 0 || p.Bias {
			continue
		}
		for j := range out[i] {
			out[i][j] = r.NormFloat64()
		}
	}
	return out, nil
}

// signature names the architecture and its shapes, so initialisation k of
// two different architectures are unrelated draws.
func (a *Arch) signature() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%dx%dx%d/%d", a.Name, a.Channels, a.Height, a.Width, a.Classes)
	for _, p := range a.Params {
		fmt.Fprintf(&b, "/%s%v", p.Name, p.Shape)
	}
	return b.String()
}

// dense returns s·(x W) + b.
func dense(x, w, b *G.Node, s float64) (*G.Node, error) {
	z, err := G.Mul(x, w)
	if err != nil {
		return nil, err
	}
	z, err = G.Mul(z, scalar(z, s))
	if err != nil {
		return nil, err
	}
	return G.BroadcastAdd(z, b, nil, []byte{0})
}

// scalar is a constant of x's dtype.
func scalar(x *G.Node, v float64) *G.Node {
	if x.Dtype() == tensor.Float32 {
		return G.NewConstant(float32(v))
	}
	return G.NewConstant(v)
}

func (a *Arch) logistic(x *G.Node, p []*G.Node) (*G.Node, error) {
	return dense(x, p[0], p[1], a.Params[0].Scale)
}
