package landscape

import (
	"fmt"
	"math"

	"github.com/perturb/perturb/nets"
)

// Taylor-mode jets of the landscapes, in closed form: for weights θ, a
// direction v and a datum x, the coefficients of
//
//	l_x(θ + t v) = c_0 + c_1 t + c_2 t² + c_3 t³ + O(t⁴),
//	c_0 = l_x(θ),  c_1 = ∇l·v,  c_2 = vᵀ∇²l v/2,  c_3 = ∇³l(v, v, v)/6,
//
// and their covectors ∇_θ c_m (v held fixed): ∇c_0 = ∇l, ∇c_1 = ∇²l v,
// ∇c_2 = ∇³l(v, v, ·)/2, ∇c_3 = ∇⁴l(v, v, v, ·)/6, with v·∇c_m =
// (m+1) c_{m+1}. They mirror graph.Jets (same meaning, same batched
// layout) for the artificial landscapes. Write v = (a) or (a, b, c) by
// landscape.
//
// # Gauss (v = a)
//
// l(h + ta) = (h + ta + x² e^{−h} e^{−ta})/2, so with E = x² e^{−h}/2
//
//	c_0 = l,  c_1 = a/2 − E a,  c_n = E (−a)^n/n!  (n ≥ 2),
//	∂c_0/∂h = 1/2 − E,  ∂c_n/∂h = −E (−a)^n/n!  (n ≥ 1),
//	∇³l(a, b, c) = −E·abc.
//
// # Archimedes (v = (a, b, c) along (u, v, z))
//
// With R_n(φ; w_1, w_2) = cos(φ + nπ/2) w_1 + sin(φ + nπ/2) w_2 (so
// ∂R_n/∂φ = R_{n+1}, R_{n+2} = −R_n) and the Taylor series of cos and sin,
// p(t) = cos(z + tc)(u + ta) + sin(z + tc)(v + tb) has the coefficients
//
//	p_n = cⁿ/n! R_n(z; u, v) + c^{n−1}/(n−1)! R_{n−1}(z; a, b)   (second term n ≥ 1),
//
// and Sq(t) the same with φ = z − π/4, s_n. Then Hq_n = Q_n + Σ_{i=0..n}
// p_i p_{n−i} with Q = (u+ta)² + (v+tb)² (Q_0 = u² + v², Q_1 = 2(ua + vb),
// Q_2 = a² + b², Q_3 = 0), and c_n = Hq_n/2 + x s_n. The covectors
// differentiate these with respect to (u, v, z): ∂p_n/∂u = cⁿ/n! cos(z +
// nπ/2), ∂p_n/∂v = cⁿ/n! sin(z + nπ/2), ∂p_n/∂z = cⁿ/n! R_{n+1}(z; u, v) +
// c^{n−1}/(n−1)! R_n(z; a, b), ∂Hq_n = ∂Q_n + 2 Σ_i p_{n−i} ∂p_i.
//
// The third derivatives, differentiating the Hessian of landscape.go
// (s = sin z, co = cos z, p, q, r as there; all others zero):
//
//	∂³l/∂u²∂z = −2 s co          ∂³l/∂u∂v∂z = cos 2z          ∂³l/∂v²∂z = 2 s co
//	∂³l/∂u∂z² = −2p co − 2q s − x cos(z − π/4)
//	∂³l/∂v∂z² = 2q co − 2p s − x sin(z − π/4)
//	∂³l/∂z³   = −4pq − x r
//
// # Mean Estimation (v = a)
//
//	c_0 = l,  c_1 = (Hθ + xS) a,  c_2 = H a²/2,  c_3 = 0;
//	∇c_0 = Hθ + xS,  ∇c_1 = H a,  ∇c_2 = ∇c_3 = 0.
//
// # Mean Estimation with l2 (v = (a, b) along (θ, λ))
//
// l = (H + λ + tb)(θ + ta)²/2 + xS(θ + ta) gives
//
//	c_1 = (H+λ)θa + bθ²/2 + xSa,  c_2 = (H+λ)a²/2 + bθa,  c_3 = ba²/2,
//	∇c_0 = ((H+λ)θ + xS, θ²/2),  ∇c_1 = ((H+λ)a + bθ, θa),
//	∇c_2 = (ba, a²/2),  ∇c_3 = 0,
//	∇³l(a, b, c) = a_θ b_θ c_λ + a_θ b_λ c_θ + a_λ b_θ c_θ.

// jetOrder is the truncation order of the jets: coefficients 0..3.
const jetOrder = 3

// factorial[n] = n!.
var factorial = [...]float64{1, 1, 2, 6, 24}

// rot returns R_n(φ; w1, w2) = cos(φ + nπ/2) w1 + sin(φ + nπ/2) w2 and the
// pair (cos, sin)(φ + nπ/2), for n ≥ 0.
func rot(n int, s, c, w1, w2 float64) (r, cn, sn float64) {
	switch n % 4 {
	case 0:
		cn, sn = c, s
	case 1:
		cn, sn = -s, c
	case 2:
		cn, sn = -c, -s
	default:
		cn, sn = s, -c
	}
	return cn*w1 + sn*w2, cn, sn
}

// trigSeries returns the coefficients f_n (n ≤ 3) of f(t) = cos(φ + tc)
// (u + ta) + sin(φ + tc)(v + tb) and their gradients with respect to
// (u, v, φ) (a, b, c fixed), for s, co = sin φ, cos φ.
func trigSeries(s, co, u, v, a, b, c float64) (f [jetOrder + 1]float64, df [jetOrder + 1][3]float64) {
	for n := 0; n <= jetOrder; n++ {
		cn := math.Pow(c, float64(n)) / factorial[n]
		r, cs, sn := rot(n, s, co, u, v)
		r1, _, _ := rot(n+1, s, co, u, v)
		f[n] = cn * r
		df[n] = [3]float64{cn * cs, cn * sn, cn * r1}
		if n >= 1 {
			cm := math.Pow(c, float64(n-1)) / factorial[n-1]
			ra, _, _ := rot(n-1, s, co, a, b)
			rb, _, _ := rot(n, s, co, a, b)
			f[n] += cm * ra
			df[n][2] += cm * rb
		}
	}
	return f, df
}

// jet returns the coefficients c_0..c_3 of t ↦ l_x(θ + t v) and, if cov
// is not nil, sets cov[m] to ∇_θ c_m for m ≤ 3 (each of NumParams values).
func (l *Landscape) jet(theta, v []float64, x float64, cov *[jetOrder + 1][3]float64) (c [jetOrder + 1]float64) {
	if cov != nil {
		*cov = [jetOrder + 1][3]float64{}
	}
	switch l.name {
	case "gauss":
		h, a := theta[0], v[0]
		e := x * x * math.Exp(-h) / 2
		c[0] = h/2 + e
		c[1] = a/2 - e*a
		for n := 2; n <= jetOrder; n++ {
			c[n] = e * math.Pow(-a, float64(n)) / factorial[n]
		}
		if cov != nil {
			cov[0][0] = 0.5 - e
			for n := 1; n <= jetOrder; n++ {
				cov[n][0] = -e * math.Pow(-a, float64(n)) / factorial[n]
			}
		}
	case "archimedes":
		u, w, z := theta[0], theta[1], theta[2]
		a, b, cz := v[0], v[1], v[2]
		s, co := math.Sincos(z)
		s4, c4 := math.Sincos(z - math.Pi/4)
		p, dp := trigSeries(s, co, u, w, a, b, cz)
		sq, dsq := trigSeries(s4, c4, u, w, a, b, cz)
		q := [jetOrder + 1]float64{u*u + w*w, 2 * (u*a + w*b), a*a + b*b, 0}
		dq := [jetOrder + 1][3]float64{{2 * u, 2 * w, 0}, {2 * a, 2 * b, 0}}
		for n := 0; n <= jetOrder; n++ {
			hq := q[n]
			for i := 0; i <= n; i++ {
				hq += p[i] * p[n-i]
			}
			c[n] = hq/2 + x*sq[n]
			if cov != nil {
				for k := range 3 {
					d := dq[n][k]
					for i := 0; i <= n; i++ {
						d += 2 * p[n-i] * dp[i][k]
					}
					cov[n][k] = d/2 + x*dsq[n][k]
				}
			}
		}
	case "mean-estimation":
		th, a := theta[0], v[0]
		c[0] = l.Loss(theta, x)
		c[1] = (l.h*th + x*l.s) * a
		c[2] = l.h * a * a / 2
		if cov != nil {
			cov[0][0] = l.h*th + x*l.s
			cov[1][0] = l.h * a
		}
	default: // mean-estimation-l2
		th, lam, a, b := theta[0], theta[1], v[0], v[1]
		k := l.h + lam
		c[0] = l.Loss(theta, x)
		c[1] = k*th*a + b*th*th/2 + x*l.s*a
		c[2] = k*a*a/2 + b*th*a
		c[3] = b * a * a / 2
		if cov != nil {
			cov[0] = [3]float64{k*th + x*l.s, th * th / 2}
			cov[1] = [3]float64{k*a + b*th, th * a}
			cov[2] = [3]float64{b * a, a * a / 2}
		}
	}
	return c
}

// Jet returns the Taylor coefficients (c_0, c_1, c_2, c_3) of
// t ↦ l_x(theta + t·v); theta and v have NumParams values.
func (l *Landscape) Jet(theta, v []float64, x float64) [4]float64 {
	return l.jet(theta, v, x, nil)
}

// JetCovector sets dst (NumParams values) to ∇_θ c_order(theta; v, x),
// the gradient of the Taylor coefficient of order 0 ≤ order ≤ 3 with the
// direction held fixed: ∇l_x, ∇²l_x v, ∇³l_x(v, v, ·)/2 or
// ∇⁴l_x(v, v, v, ·)/6. For order 0, v may be nil.
func (l *Landscape) JetCovector(order int, theta, v []float64, x float64, dst []float64) {
	if order < 0 || order > jetOrder {
		panic(fmt.Sprintf("landscape: covector of order %d, want 0..%d", order, jetOrder))
	}
	if v == nil {
		v = make([]float64, l.NumParams())
	}
	var cov [jetOrder + 1][3]float64
	l.jet(theta, v, x, &cov)
	copy(dst, cov[order][:l.NumParams()])
}

// Third returns the third derivative ∇³l_x(theta) contracted with a, b
// and c, from the closed-form third derivatives (see the comment at the
// top of jet.go).
func (l *Landscape) Third(theta []float64, x float64, a, b, c []float64) float64 {
	switch l.name {
	case "gauss":
		return -x * x * math.Exp(-theta[0]) / 2 * a[0] * b[0] * c[0]
	case "archimedes":
		u, v := theta[0], theta[1]
		s, co := math.Sincos(theta[2])
		s4, c4 := math.Sincos(theta[2] - math.Pi/4)
		p, q, r := co*u+s*v, -s*u+co*v, -s4*u+c4*v
		// T[i][j][k] for the non-zero classes, symmetrised below.
		var T [3][3][3]float64
		set := func(i, j, k int, val float64) {
			for _, o := range [][3]int{{i, j, k}, {i, k, j}, {j, i, k}, {j, k, i}, {k, i, j}, {k, j, i}} {
				T[o[0]][o[1]][o[2]] = val
			}
		}
		set(0, 0, 2, -2*s*co)
		set(0, 1, 2, math.Cos(2*theta[2]))
		set(1, 1, 2, 2*s*co)
		set(0, 2, 2, -2*p*co-2*q*s-x*c4)
		set(1, 2, 2, 2*q*co-2*p*s-x*s4)
		set(2, 2, 2, -4*p*q-x*r)
		sum := 0.0
		for i := range 3 {
			for j := range 3 {
				for k := range 3 {
					sum += T[i][j][k] * a[i] * b[j] * c[k]
				}
			}
		}
		return sum
	case "mean-estimation":
		return 0
	default:
		return a[0]*b[0]*c[1] + a[0]*b[1]*c[0] + a[1]*b[0]*c[0]
	}
}

// checkJets checks theta, dirs and pts of Coeffs and Covector and returns
// the number of (direction, sample) pairs.
func (l *Landscape) checkJets(theta []float64, dirs [][]float64, pts [][]nets.Sample, needDirs bool) (int, error) {
	n := l.NumParams()
	if len(theta) != n {
		return 0, fmt.Errorf("landscape %s: theta has %d values, want %d", l.name, len(theta), n)
	}
	if needDirs || dirs != nil {
		if len(dirs) != len(pts) {
			return 0, fmt.Errorf("landscape %s: %d directions for %d sample lists", l.name, len(dirs), len(pts))
		}
		for k, v := range dirs {
			if len(v) != n {
				return 0, fmt.Errorf("landscape %s: direction %d has %d values, want %d", l.name, k, len(v), n)
			}
		}
	}
	pairs := 0
	for _, p := range pts {
		pairs += len(p)
	}
	return pairs, nil
}

// Coeffs sets out[i] to the coefficients (c_0, c_1, c_2, c_3) of
// t ↦ l_x(theta + t·dirs[k]) for the i-th (direction, sample) pair, in the
// order of k and then of pts[k] (i = k·B + n when every pts[k] has B
// samples), as graph.Jets.Coeffs.
func (l *Landscape) Coeffs(theta []float64, dirs [][]float64, pts [][]nets.Sample, out [][4]float64) error {
	pairs, err := l.checkJets(theta, dirs, pts, true)
	if err != nil {
		return err
	}
	if len(out) != pairs {
		return fmt.Errorf("landscape %s: %d outputs for %d (direction, sample) pairs", l.name, len(out), pairs)
	}
	i := 0
	for k, p := range pts {
		for _, s := range p {
			out[i] = l.Jet(theta, dirs[k], s.X)
			i++
		}
	}
	return nil
}

// Covector sets out[k] = Σ_n w_i ∇_θ c_order(theta; dirs[k], pts[k][n])
// for every direction k, with w_i the weight of the i-th (direction,
// sample) pair in the order of Coeffs (w nil: all 1), as
// graph.Jets.Covector. For order 0, dirs may be nil.
func (l *Landscape) Covector(order int, theta []float64, dirs [][]float64, pts [][]nets.Sample, w []float64, out [][]float64) error {
	if order < 0 || order > jetOrder {
		return fmt.Errorf("landscape %s: covector of order %d, want 0..%d", l.name, order, jetOrder)
	}
	pairs, err := l.checkJets(theta, dirs, pts, order > 0)
	if err != nil {
		return err
	}
	if w != nil && len(w) != pairs {
		return fmt.Errorf("landscape %s: %d weights for %d (direction, sample) pairs", l.name, len(w), pairs)
	}
	if len(out) != len(pts) {
		return fmt.Errorf("landscape %s: %d outputs for %d directions", l.name, len(out), len(pts))
	}
	n := l.NumParams()
	g := make([]float64, n)
	i := 0
	for k, p := range pts {
		if len(out[k]) != n {
			return fmt.Errorf("landscape %s: output %d has %d values, want %d", l.name, k, len(out[k]), n)
		}
		clear(out[k])
		var v []float64
		if dirs != nil {
			v = dirs[k]
		}
		for _, s := range p {
			l.JetCovector(order, theta, v, s.X, g)
			wi := 1.0
			if w != nil {
				wi = w[i]
			}
			for j := range g {
				out[k][j] += wi * g[j]
			}
			i++
		}
	}
	return nil
}
