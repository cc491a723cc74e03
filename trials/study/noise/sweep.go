package noise

import (
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/precision"
	"github.com/perturb/perturb/trials/plots"
)

// Sweep is the noise floor of one model family against its width (at a
// fixed depth) or its depth (at a fixed width), with a fitted power law
// floor ∝ x^Exponent per precision.
type Sweep struct {
	Model string `json:"model"`
	// Axis is "width" or "depth"; Fixed is the other dimension's value.
	Axis  string `json:"axis"`
	Fixed int    `json:"fixed"`
	X     []int  `json:"x"`
	// Params[i] is the number of parameters at X[i].
	Params []int         `json:"params"`
	Scans  []*Scan       `json:"scans"`
	Fits   []ExponentFit `json:"fits"`
}

// ExponentFit is a fitted power law floor = exp(Intercept)·x^Exponent with
// the exponent's standard error and 95% t-interval (N − 2 degrees of
// freedom), by plots.FitPowerLaw weighted by the floors' standard errors
// (relative standard error 1/sqrt(2n) for an rms of n errors).
type ExponentFit struct {
	Format    precision.Format `json:"format"`
	Exponent  float64          `json:"exponent"`
	SE        float64          `json:"se"`
	Lo        float64          `json:"lo"`
	Hi        float64          `json:"hi"`
	Intercept float64          `json:"intercept"`
	N         int              `json:"n"`
}

// RunSweep scans name at every size (width or depth axis) at
// initialisation init.
func RunSweep(name, axis string, fixed int, xs []int, dims [3]int, classes, init int, ex Examples, s Settings, log func(string)) (*Sweep, error) {
	sw := &Sweep{Model: name, Axis: axis, Fixed: fixed, X: xs}
	for _, x := range xs {
		size := nets.Size{Width: fixed, Depth: x}
		if axis == "width" {
			size = nets.Size{Width: x, Depth: fixed}
		}
		a, err := nets.NewSized(name, dims[0], dims[1], dims[2], classes, size)
		if err != nil {
			return nil, fmt.Errorf("%s sweep: %w", axis, err)
		}
		theta, err := initVector(a, init)
		if err != nil {
			return nil, err
		}
		sc, err := Run(a, init, theta, ex, s, nil)
		if err != nil {
			return nil, fmt.Errorf("%s %s %d: %w", name, axis, x, err)
		}
		sc.Width, sc.Depth = size.Width, size.Depth
		if log != nil {
			log(fmt.Sprintf("%s %s %d (%d parameters): %s in %.1f s", name, axis, x, a.NumParams(), floors(sc), sc.Seconds))
		}
		sw.Params = append(sw.Params, a.NumParams())
		sw.Scans = append(sw.Scans, sc)
	}
	for pi, r := range sw.Scans[0].Precisions {
		var x, y, se []float64
		for i, sc := range sw.Scans {
			f := sc.Precisions[pi].Floor
			x = append(x, float64(xs[i]))
			y = append(y, f)
			se = append(se, f/math.Sqrt(2*float64(max(sc.Precisions[pi].Dist.N, 1))))
		}
		fit, err := plots.FitPowerLaw(x, y, se)
		if err != nil {
			continue // fewer than three sizes or no floor: no fit
		}
		t := 1.96
		if fit.N > 2 {
			t = distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(fit.N - 2)}.Quantile(0.975)
		}
		sw.Fits = append(sw.Fits, ExponentFit{Format: r.Format, Exponent: fit.Slope, SE: fit.SlopeSE,
			Lo: fit.Slope - t*fit.SlopeSE, Hi: fit.Slope + t*fit.SlopeSE, Intercept: fit.Intercept, N: fit.N})
	}
	return sw, nil
}

func floors(sc *Scan) string {
	s := ""
	for i, r := range sc.Precisions {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%v floor %.3g", r.Format, r.Floor)
	}
	return s
}

// initVector is initialisation id of a as one flat vector.
func initVector(a *nets.Arch, id int) ([]float64, error) {
	v, err := a.Init(id)
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, p := range v {
		out = append(out, p...)
	}
	return out, nil
}

// LayerGrad is the gradient error of one layer (weight and bias together)
// in each precision: |g_P − g_64| / |g_64| over the layer's parameters.
type LayerGrad struct {
	Layer  string    `json:"layer"`
	Index  int       `json:"index"` // 1 = first layer (nearest the input)
	Params int       `json:"params"`
	Norm64 float64   `json:"norm64"`
	RelErr []float64 `json:"rel_err"` // per precision of Grads.Formats
}

// Grads is the per-layer gradient error of one model at one
// initialisation.
type Grads struct {
	Model    string             `json:"model"`
	Width    int                `json:"width,omitempty"`
	Depth    int                `json:"depth,omitempty"`
	Init     int                `json:"init"`
	Examples int                `json:"examples"`
	Formats  []precision.Format `json:"formats"`
	Layers   []LayerGrad        `json:"layers"`
	Seconds  float64            `json:"seconds"`
}

// RunGrads computes the gradient of the mean loss over the examples in
// float64 and in each precision and compares them layer by layer.
func RunGrads(a *nets.Arch, init int, theta []float64, ex Examples, formats []precision.Format, workers int, engine Engine) (*Grads, error) {
	layers, err := a.Layers()
	if err != nil {
		return nil, err
	}
	grad := func(f precision.Format) ([]float64, error) {
		e, _, err := NewEvaluator(engine, a, f, ex.X, ex.Y, workers)
		if err != nil {
			return nil, err
		}
		g := make([]float64, len(theta))
		_, err = e.Grad(theta, g)
		if cerr := e.Close(); err == nil {
			err = cerr
		}
		return g, err
	}
	g64, err := grad(precision.Float64)
	if err != nil {
		return nil, err
	}
	out := &Grads{Model: a.Name, Init: init, Examples: len(ex.Y)}
	off := []int{0}
	for _, p := range a.Params {
		off = append(off, off[len(off)-1]+p.Size())
	}
	for i, l := range layers {
		lo, hi := off[l.W], off[l.B+1]
		n := 0.0
		for _, v := range g64[lo:hi] {
			n += v * v
		}
		out.Layers = append(out.Layers, LayerGrad{Layer: strings.TrimSuffix(a.Params[l.W].Name, ".w"), Index: i + 1, Params: hi - lo, Norm64: math.Sqrt(n)})
	}
	for _, f := range formats {
		if f == precision.Float64 {
			continue
		}
		g, err := grad(f)
		if err != nil {
			return nil, err
		}
		out.Formats = append(out.Formats, f)
		for i, l := range layers {
			d := 0.0
			for j := off[l.W]; j < off[l.B+1]; j++ {
				d += (g[j] - g64[j]) * (g[j] - g64[j])
			}
			out.Layers[i].RelErr = append(out.Layers[i].RelErr, math.Sqrt(d)/out.Layers[i].Norm64)
		}
	}
	return out, nil
}
