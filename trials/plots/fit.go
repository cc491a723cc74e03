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
	u, v, w, xmin, xmax := logPoints(x, y, se)
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

// logPoints returns the usable points of a power-law fit (see
// FitPowerLaw): u = ln x, v = ln|y|, their weights, and the range of x.
func logPoints(x, y, se []float64) (u, v, w []float64, xmin, xmax float64) {
	xmin, xmax = math.Inf(1), math.Inf(-1)
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
	return u, v, w, xmin, xmax
}

// LeadingFit is the leading exponent of y = a·x^Slope + b·x^(Slope+1),
// fitted by [FitLeadingPowerLaw].
type LeadingFit struct {
	// Slope is the fitted leading exponent; [Lo, Hi] is its 95% profile
	// interval and SlopeSE = (Hi − Lo)/3.92, its width as a standard error.
	Slope, Lo, Hi, SlopeSE float64
	// A and B are the fitted coefficients at Slope.
	A, B float64
	// Scale is the factor applied to the χ² threshold: χ²min/(N − 3) when
	// the model fits worse than the standard errors allow, else 1; without
	// standard errors always χ²min/(N − 3).
	Scale float64
	// N is the number of points the fit used.
	N int
}

// Covers reports whether p lies in the fit's 95% interval.
func (f LeadingFit) Covers(p float64) bool { return p >= f.Lo && p <= f.Hi }

// FitLeadingPowerLaw fits y = a·x^p + b·x^(p+1) by weighted least squares
// (weights 1/se², or 1 with se nil) and returns the exponent p with its 95%
// profile interval.
//
// A series y = a·x^p·(1 + c·x + …) has, on a log-log plot, the local slope
// p + c·x/(1 + c·x): the plain slope of [FitPowerLaw] mixes the next order
// into p, and once the points are precise enough its interval excludes the
// leading exponent even when the series is exactly of order x^p. Fitting
// the first correction as well estimates p itself. The correction is held
// below the leading term over the fitted range, |b|·max x ≤ |a| (else
// a·x^p + b·x^(p+1) with a = 0 would fit any x^(p+1) as well). For fixed p
// the model is linear in (a, b), so χ²(p) is minimised over (a, b) in
// closed form (on the bound when the free minimum breaks it) and
// over p by a grid on [0.25, 6] refined by golden-section search; the
// interval is {p : χ²(p) − χ²min ≤ 3.84·Scale} (profile likelihood, one
// parameter), with Scale = max(1, χ²min/(N − 3)) so that a misfit widens
// it (without standard errors, Scale = χ²min/(N − 3)). Points are used when x > 0 and x, y (and se, positive) are finite. It
// needs at least 4 and returns an error otherwise or when the interval
// reaches the end of the search range.
func FitLeadingPowerLaw(x, y, se []float64) (LeadingFit, error) {
	if len(x) != len(y) || (se != nil && len(se) != len(y)) {
		return LeadingFit{}, fmt.Errorf("plots: leading power-law fit: %d x, %d y and %d standard errors", len(x), len(y), len(se))
	}
	var xs, ys, ws []float64
	for i := range x {
		wi := 1.0
		if se != nil {
			if !finite(se[i]) || se[i] <= 0 {
				continue
			}
			wi = 1 / (se[i] * se[i])
		}
		if !finite(x[i]) || !finite(y[i]) || x[i] <= 0 {
			continue
		}
		xs, ys, ws = append(xs, x[i]), append(ys, y[i]), append(ws, wi)
	}
	n := len(xs)
	if n < 4 {
		return LeadingFit{}, fmt.Errorf("plots: leading power-law fit needs at least 4 usable points (x > 0, finite, se > 0), got %d of %d", n, len(x))
	}
	xmax := 0.0
	for _, xi := range xs {
		xmax = max(xmax, xi)
	}
	// resid returns the weighted residual sum of squares of a·x^p + b·x^(p+1).
	resid := func(p, a, b float64) float64 {
		var c float64
		for i, xi := range xs {
			r := ys[i] - a*math.Pow(xi, p) - b*math.Pow(xi, p+1)
			c += ws[i] * r * r
		}
		return c
	}
	// chi2 returns χ²(p) and the coefficients minimising it subject to
	// |b|·max x ≤ |a| (the correction below the leading term over the
	// fitted range, which makes p the leading exponent: without it,
	// 3x^2.5 fits as 0·x^1.5 + 3·x^2.5 too). Unconstrained first; when
	// that breaks the bound, the optimum lies on b = ±a/max x, a
	// one-parameter fit each.
	chi2 := func(p float64) (c, a, b float64) {
		var s11, s12, s22, t1, t2 float64
		for i, xi := range xs {
			f1 := math.Pow(xi, p)
			f2 := f1 * xi
			s11 += ws[i] * f1 * f1
			s12 += ws[i] * f1 * f2
			s22 += ws[i] * f2 * f2
			t1 += ws[i] * f1 * ys[i]
			t2 += ws[i] * f2 * ys[i]
		}
		det := s11*s22 - s12*s12
		if det > 0 {
			a, b = (t1*s22-t2*s12)/det, (s11*t2-s12*t1)/det
			if math.Abs(b)*xmax <= math.Abs(a) {
				return resid(p, a, b), a, b
			}
		}
		c = math.Inf(1)
		for _, sign := range []float64{1, -1} {
			k := sign / xmax // b = k·a: y ≈ a·(x^p + k·x^(p+1))
			var sff, sfy float64
			for i, xi := range xs {
				f := math.Pow(xi, p) * (1 + k*xi)
				sff += ws[i] * f * f
				sfy += ws[i] * f * ys[i]
			}
			if !(sff > 0) {
				continue
			}
			ai := sfy / sff
			if ci := resid(p, ai, k*ai); ci < c {
				c, a, b = ci, ai, k*ai
			}
		}
		return c, a, b
	}
	const lo, hi, step = 0.25, 6.0, 0.01
	best, bestC := lo, math.Inf(1)
	for p := lo; p <= hi; p += step {
		if c, _, _ := chi2(p); c < bestC {
			best, bestC = p, c
		}
	}
	// Golden-section refinement within one grid step of the best point.
	g := (math.Sqrt(5) - 1) / 2
	l, r := best-step, best+step
	for range 60 {
		m1, m2 := r-g*(r-l), l+g*(r-l)
		c1, _, _ := chi2(m1)
		c2, _, _ := chi2(m2)
		if c1 < c2 {
			r = m2
		} else {
			l = m1
		}
	}
	pHat := (l + r) / 2
	cMin, a, b := chi2(pHat)
	if !finite(cMin) {
		return LeadingFit{}, errors.New("plots: leading power-law fit: the design is singular")
	}
	scale := max(1, cMin/float64(n-3))
	if se == nil { // unit weights: the residuals alone set the scale
		scale = cMin / float64(n-3)
	}
	thr := cMin + 3.84*scale
	// edge finds where χ² crosses thr between the inside point in and the
	// outside point out, by bisection.
	edge := func(in, out float64) float64 {
		for range 60 {
			m := (in + out) / 2
			if c, _, _ := chi2(m); c <= thr {
				in = m
			} else {
				out = m
			}
		}
		return (in + out) / 2
	}
	pl, ph := pHat, pHat
	for pl > lo {
		pl -= step
		if c, _, _ := chi2(pl); c > thr {
			break
		}
	}
	for ph < hi {
		ph += step
		if c, _, _ := chi2(ph); c > thr {
			break
		}
	}
	if pl <= lo || ph >= hi {
		return LeadingFit{}, fmt.Errorf("plots: leading power-law fit: the 95%% interval of the exponent reaches the search range [%g, %g]; the points do not determine it", lo, hi)
	}
	cl, ch := edge(pHat, pl), edge(pHat, ph)
	return LeadingFit{Slope: pHat, Lo: cl, Hi: ch, SlopeSE: (ch - cl) / 3.92, A: a, B: b, Scale: scale, N: n}, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
