package plots

import (
	"errors"
	"fmt"
	"math"
)

// Fit is a power law |y| = exp(Intercept) · x^Slope fitted by [FitPowerLaw]
// (natural logarithms: Intercept is ln of the prefactor). In a [Figure] it is
// drawn as a dashed line from XMin to XMax, labelled by [Fit.String].
type Fit struct {
	// Label names the fit in the legend ("SGD", "theory"); it may be empty.
	Label string
	// Slope is the fitted exponent and SlopeSE its standard error.
	Slope, SlopeSE float64
	// Intercept is the fitted ln|y| at x = 1 and InterceptSE its standard
	// error.
	Intercept, InterceptSE float64
	// N is the number of points the fit used.
	N int
	// XMin and XMax are the smallest and largest x the fit used; a figure
	// draws the fitted line over this range.
	XMin, XMax float64
}

// Eval returns the fitted exp(Intercept) · x^Slope.
func (f Fit) Eval(x float64) float64 {
	return math.Exp(f.Intercept + f.Slope*math.Log(x))
}

// String returns the legend label of the fit, such as
// "SGD: slope 2.03 ± 0.05": the slope and its standard error with the same
// number of decimals, at least two and enough to show the standard error's
// first significant digit (at most six).
func (f Fit) String() string {
	d := 2
	if se := f.SlopeSE; se > 0 && !math.IsInf(se, 0) {
		d = max(d, min(6, int(-math.Floor(math.Log10(se)))))
	}
	s := fmt.Sprintf("slope %.*f ± %.*f s.e.", d, f.Slope, d, f.SlopeSE)
	if f.Label != "" {
		s = f.Label + ": " + s
	}
	return s
}

// FitPowerLaw fits |y| = exp(Intercept) · x^Slope by weighted least squares
// of ln|y| on ln x.
//
// se, if not nil, holds the standard errors of the y values; the weight of a
// point is (|y|/se)², the inverse variance of ln|y| to first order. With se
// nil every point has weight one. The standard errors of the slope and the
// intercept come from the residuals (the weights fix only the relative
// precision of the points): Var(slope) = s²/Sxx with
// s² = Σ w r² / (N − 2) and Sxx = Σ w (ln x − mean)².
//
// A point is used when x > 0, y ≠ 0, both finite, and (with se) se is finite
// and positive; the others are skipped. FitPowerLaw returns an error when x,
// y and se differ in length, when fewer than 3 points are usable, or when
// the usable x are all equal.
func FitPowerLaw(x, y, se []float64) (Fit, error) {
	if len(x) != len(y) {
		return Fit{}, fmt.Errorf("plots: power-law fit: %d x values but %d y values", len(x), len(y))
	}
	if se != nil && len(se) != len(y) {
		return Fit{}, fmt.Errorf("plots: power-law fit: %d y values but %d standard errors", len(y), len(se))
	}
	var u, v, w []float64
	xmin, xmax := math.Inf(1), math.Inf(-1)
	for i := range x {
		xi, yi := x[i], y[i]
		if !finite(xi) || !finite(yi) || xi <= 0 || yi == 0 {
			continue
		}
		wi := 1.0
		if se != nil {
			s := se[i]
			if !finite(s) || s <= 0 {
				continue
			}
			wi = (yi / s) * (yi / s)
			if !finite(wi) || wi == 0 {
				continue
			}
		}
		u = append(u, math.Log(xi))
		v = append(v, math.Log(math.Abs(yi)))
		w = append(w, wi)
		xmin, xmax = math.Min(xmin, xi), math.Max(xmax, xi)
	}
	n := len(u)
	if n < 3 {
		return Fit{}, fmt.Errorf("plots: power-law fit needs at least 3 usable points (x > 0, y ≠ 0, finite, se > 0), got %d of %d", n, len(x))
	}
	if xmin == xmax {
		return Fit{}, fmt.Errorf("plots: power-law fit: all %d usable x equal %g, the slope is undetermined", n, xmin)
	}
	var sw, su, sv float64
	for i := range u {
		sw += w[i]
		su += w[i] * u[i]
		sv += w[i] * v[i]
	}
	ub, vb := su/sw, sv/sw
	var sxx, sxy float64
	for i := range u {
		du := u[i] - ub
		sxx += w[i] * du * du
		sxy += w[i] * du * (v[i] - vb)
	}
	if !(sxx > 0) {
		return Fit{}, errors.New("plots: power-law fit: the weighted spread of ln x is zero")
	}
	slope := sxy / sxx
	icept := vb - slope*ub
	var rss float64
	for i := range u {
		r := v[i] - icept - slope*u[i]
		rss += w[i] * r * r
	}
	s2 := rss / float64(n-2)
	return Fit{
		Slope:       slope,
		SlopeSE:     math.Sqrt(s2 / sxx),
		Intercept:   icept,
		InterceptSE: math.Sqrt(s2 * (1/sw + ub*ub/sxx)),
		N:           n,
		XMin:        xmin,
		XMax:        xmax,
	}, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
