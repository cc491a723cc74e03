package graph

import (
	"fmt"
	"math"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Custom ops of the Taylor-mode jets (Jets, jet.go): the non-linear
// propagation rules, applied element by element (tanh) or row by row (the
// log-sum-exp of the cross-entropy). Each rule is a short scalar
// recurrence on truncated power series, written once in float64
// (tanhSeries, lseSeries) with its reverse sweep (tanhSeriesAdjoint,
// lseSeriesAdjoint), so that a covector graph can differentiate through
// it with one G.Grad; the forward tanh op runs the recurrence unrolled
// (tanhCoeff), which is cheaper. float32 graphs run the same float64
// arithmetic on their float32 inputs and round the result. TestJetRules
// checks every rule and reverse sweep against a slow reference.
//
// A series is stored one node per coefficient, and a nil node is the zero
// coefficient (the jets of the data, and for example the second and third
// coefficients of the logistic model's logits, are zero): the kernels take
// only the non-zero coefficients as inputs and a mask says which they are.

// jetOrder is the truncation order of the jets: coefficients 0..3.
const jetOrder = 3

// tanhSeries sets y[1..k] and q[0..k−1] for y(t) = tanh(z(t)), given
// y[0] = tanh(z_0) and the coefficients z[1..k] (z[0] is not used): with
// q = 1 − y², y' = q·z' gives, coefficient by coefficient,
//
//	q_0 = 1 − y_0²,
//	y_n = (1/n) Σ_{i=1..n} i·z_i·q_{n−i},
//	q_n = −Σ_{i=0..n} y_i·y_{n−i}          (n ≥ 1).
//
// So y_1 = q_0 z_1, y_2 = q_0 z_2 − y_0 q_0 z_1² and
// y_3 = q_0 z_3 − 2 y_0 q_0 z_1 z_2 + q_0 (2 y_0² − q_0) z_1³/3, which are
// tanh's derivatives q, −2yq and q(4y² − 2q) composed with z(t).
func tanhSeries(y, q, z *[jetOrder + 1]float64, k int) {
	q[0] = 1 - y[0]*y[0]
	for n := 1; n <= k; n++ {
		s := 0.0
		for i := 1; i <= n; i++ {
			s += float64(i) * z[i] * q[n-i]
		}
		y[n] = s / float64(n)
		if n < k {
			s = 0
			for i := 0; i <= n; i++ {
				s += y[i] * y[n-i]
			}
			q[n] = -s
		}
	}
}

// tanhSeriesAdjoint is the reverse sweep of tanhSeries (after it ran with
// the same k): for the adjoint g of y_k it adds the adjoints of z_1..z_k to
// dz[1..k] and returns the adjoint of y_0.
func tanhSeriesAdjoint(y, q, z *[jetOrder + 1]float64, k int, g float64, dz *[jetOrder + 1]float64) float64 {
	var dy, dq [jetOrder + 1]float64
	dy[k] = g
	for n := k; n >= 1; n-- {
		if n < k { // q_n = −Σ_i y_i y_{n−i}: ∂q_n/∂y_i = −2 y_{n−i}
			for i := 0; i <= n; i++ {
				dy[i] -= 2 * dq[n] * y[n-i]
			}
		}
		for i := 1; i <= n; i++ { // y_n = Σ_i i z_i q_{n−i} / n
			f := float64(i) / float64(n) * dy[n]
			dz[i] += f * q[n-i]
			dq[n-i] += f * z[i]
		}
	}
	return dy[0] - 2*y[0]*dq[0]
}

// lseScratch holds one row's intermediate series of lseSeries for c
// classes.
type lseScratch struct {
	p  []float64               // softmax(z_0)
	a  [jetOrder + 1][]float64 // series of exp(z_c(t) − z_0c), a_0 = 1
	s  [jetOrder + 1]float64   // S_n = Σ_c p_c a_nc
	l  [jetOrder + 1]float64   // Λ_n, the series of log S(t)
	da [jetOrder + 1][]float64 // adjoints of a (lseSeriesAdjoint)
	z  [jetOrder + 1][]float64 // the row's coefficients
	dz [jetOrder + 1][]float64 // their adjoints
	zs [jetOrder + 1]bool      // which z are non-zero (z_0 always)
}

func newLSEScratch(c int) *lseScratch {
	w := &lseScratch{p: make([]float64, c)}
	for n := range w.a {
		w.a[n] = make([]float64, c)
		w.da[n] = make([]float64, c)
		w.z[n] = make([]float64, c)
		w.dz[n] = make([]float64, c)
	}
	return w
}

// lseSeries computes the series of L(t) = log Σ_c exp(z_c(t)) to order k
// for one row, from the coefficients w.z[n] (n ≤ k, skipped unless
// w.zs[n]), and returns L_0. With the maximum m of z_0 as the shift,
//
//	p = softmax(z_0) = exp(z_0 − m) / Σ exp(z_0 − m),  L_0 = m + log Σ exp(z_0 − m),
//
// and exp(z(t)) = exp(z_0)·a(t) with a(t) = exp(z(t) − z_0), so that
// L(t) = L_0 + log S(t), S(t) = Σ_c p_c a_c(t), S_0 = 1. The exponential
// recurrence (a' = a·(z − z_0)')
//
//	a_0 = 1,   a_n = (1/n) Σ_{i=1..n} i·z_i·a_{n−i},
//
// gives S_n = Σ_c p_c a_nc, and the logarithm's recurrence (S·Λ' = S')
//
//	Λ_n = S_n − (1/n) Σ_{i=1..n−1} i·Λ_i·S_{n−i}
//
// gives L_n = Λ_n for n ≥ 1 (in w.l). Equivalently L_1 = E_p z_1,
// L_2 = E_p z_2 + Var_p(z_1)/2 and L_3 = E_p z_3 + Cov_p(z_1, z_2) +
// E_p[(z_1 − E_p z_1)³]/6: the cumulants of the tilt.
func lseSeries(w *lseScratch, k int) float64 {
	z0 := w.z[0]
	m := z0[0]
	for _, v := range z0[1:] {
		if v > m {
			m = v
		}
	}
	sum := 0.0
	for c, v := range z0 {
		w.p[c] = math.Exp(v - m)
		sum += w.p[c]
	}
	for c := range w.p {
		w.p[c] /= sum
	}
	for n := 1; n <= k; n++ {
		a := w.a[n]
		clear(a)
		for i := 1; i <= n; i++ {
			if !w.zs[i] {
				continue
			}
			f := float64(i) / float64(n)
			zi := w.z[i]
			if n == i {
				for c := range a {
					a[c] += f * zi[c]
				}
				continue
			}
			prev := w.a[n-i]
			for c := range a {
				a[c] += f * zi[c] * prev[c]
			}
		}
		s := 0.0
		for c, v := range a {
			s += w.p[c] * v
		}
		w.s[n] = s
		l := s
		for i := 1; i < n; i++ {
			l -= float64(i) / float64(n) * w.l[i] * w.s[n-i]
		}
		w.l[n] = l
	}
	return m + math.Log(sum)
}

// lseSeriesAdjoint is the reverse sweep of lseSeries (after it ran with
// the same k): for the adjoint g of L_k it sets w.dz[n] (n ≤ k) to the
// adjoints of the coefficients z_n (zero where !w.zs[n]). The softmax's
// adjoint is dz_0 = p ⊙ (dp − Σ_c p_c dp_c) (and dz_0 = g·p for k = 0).
func lseSeriesAdjoint(w *lseScratch, k int, g float64) {
	for n := 0; n <= k; n++ {
		clear(w.dz[n])
	}
	if k == 0 {
		for c, p := range w.p {
			w.dz[0][c] = g * p
		}
		return
	}
	var dl, ds [jetOrder + 1]float64
	dl[k] = g
	for n := k; n >= 1; n-- {
		ds[n] += dl[n]
		for i := 1; i < n; i++ {
			f := float64(i) / float64(n) * dl[n]
			dl[i] -= f * w.s[n-i]
			ds[n-i] -= f * w.l[i]
		}
	}
	dp := w.dz[0] // dp accumulates here, turned into dz_0 at the end
	for n := 1; n <= k; n++ {
		for c, p := range w.p {
			dp[c] += ds[n] * w.a[n][c]
			w.da[n][c] = ds[n] * p
		}
	}
	for n := k; n >= 1; n-- {
		da := w.da[n]
		for i := 1; i <= n; i++ {
			if !w.zs[i] {
				continue
			}
			f := float64(i) / float64(n)
			zi, dzi := w.z[i], w.dz[i]
			if n == i { // a_0 = 1
				for c := range da {
					dzi[c] += f * da[c]
				}
				continue
			}
			prev, dprev := w.a[n-i], w.da[n-i]
			for c := range da {
				dzi[c] += f * da[c] * prev[c]
				dprev[c] += f * da[c] * zi[c]
			}
		}
	}
	dot := 0.0
	for c, p := range w.p {
		dot += p * dp[c]
	}
	for c, p := range w.p {
		dp[c] = p * (dp[c] - dot)
	}
}

// jetMask says which coefficients 1..k of a series are non-zero (bit n for
// coefficient n); coefficient 0 is always present.
type jetMask uint8

// inputs returns the coefficients n ≥ 1 of s that are non-nil and their
// mask.
func maskOf(s []*G.Node) ([]*G.Node, jetMask) {
	var in []*G.Node
	var m jetMask
	for n, x := range s {
		if n > 0 && x != nil {
			in = append(in, x)
			m |= 1 << n
		}
	}
	return in, m
}

func (m jetMask) has(n int) bool { return m&(1<<n) != 0 }

func (m jetMask) String() string {
	var b strings.Builder
	for n := 1; n <= jetOrder; n++ {
		if m.has(n) {
			fmt.Fprint(&b, n)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// tanhJetKernel computes coefficient k ≥ 0 of y(t) = tanh(z(t))
// element-wise from z_0 and the non-zero coefficients z_n, 1 ≤ n ≤ k, of
// mask (inputs z_0, then the z_n in increasing n; all of one shape, 3-D):
// y_0 = tanh(z_0) and, for k ≥ 1, tanhCoeff of y_0 (tanhSeries unrolled),
// which is t_k of kernels.Device.TanhJet.
type tanhJetKernel struct {
	k    int
	mask jetMask
}

// tanhJet returns the node of coefficient k of tanh(z(t)) for the series
// z (nil entries are zero).
func tanhJet(k int, z []*G.Node) (*G.Node, error) {
	in, m := maskOf(z[:k+1])
	return apply(tanhJetKernel{k: k, mask: m}, append([]*G.Node{z[0]}, in...)...)
}

func (k tanhJetKernel) name() string { return fmt.Sprintf("tanhjet(%d,%v)", k.k, k.mask) }

func (k tanhJetKernel) arity() int {
	n := 1
	for i := 1; i <= k.k; i++ {
		if k.mask.has(i) {
			n++
		}
	}
	return n
}

func (k tanhJetKernel) dims() ([]int, int) { return sameDims(k.arity(), 3), 3 }

func sameDims(n, d int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func (k tanhJetKernel) shape(in []tensor.Shape) (tensor.Shape, error) {
	if err := sameShapes(k.name(), in); err != nil {
		return nil, err
	}
	return in[0].Clone(), nil
}

func (k tanhJetKernel) run(out *tensor.Dense, in []*tensor.Dense) error {
	return dispatch(out, in,
		func(o []float64, in [][]float64) { tanhJetRun(k, -1, o, in) },
		func(o []float32, in [][]float32) { tanhJetRun(k, -1, o, in) })
}

// tanhCoeff is coefficient k ≥ 1 of tanh(z(t)) for y = tanh(z_0), in
// closed form (tanhSeries unrolled; q = 1 − y²):
//
//	y_1 = q z_1,  y_2 = q (z_2 − y z_1²),  y_3 = q (z_3 − 2y z_1 z_2 + (2y² − q) z_1³/3).
func tanhCoeff(k int, y, z1, z2, z3 float64) float64 {
	q := 1 - y*y
	switch k {
	case 1:
		return q * z1
	case 2:
		return q * (z2 - y*z1*z1)
	}
	return q * (z3 - 2*y*z1*z2 + (2*y*y-q)*z1*z1*z1/3)
}

// tanhJetRun sets out to coefficient k.k of the tanh series (wrt < 0) or,
// with the output adjoint as the last input, to the adjoint of input wrt.
func tanhJetRun[T float](k tanhJetKernel, wrt int, out []T, in [][]T) {
	// zs[n] is the input of z_n, nil where it is zero.
	var zs [jetOrder + 1][]T
	j := 1
	for n := 1; n <= k.k; n++ {
		if k.mask.has(n) {
			zs[n] = in[j]
			j++
		}
	}
	at := func(n, e int) float64 {
		if zs[n] == nil {
			return 0
		}
		return float64(zs[n][e])
	}
	if wrt < 0 {
		for e := range out {
			y := math.Tanh(float64(in[0][e]))
			if k.k > 0 {
				y = tanhCoeff(k.k, y, at(1, e), at(2, e), at(3, e))
			}
			out[e] = T(y)
		}
		return
	}
	// The coefficient whose adjoint is wanted: input wrt is z_0 (wrt 0,
	// through y_0 = tanh z_0: dz_0 = (1 − y_0²)·dy_0) or the wrt-th
	// non-zero z_n.
	target, i := 0, 0
	for n := 1; n <= k.k; n++ {
		if zs[n] != nil {
			if i++; i == wrt {
				target = n
			}
		}
	}
	g := in[j]
	var y, q, z, dz [jetOrder + 1]float64
	for e := range out {
		y[0] = math.Tanh(float64(in[0][e]))
		for n := 1; n <= k.k; n++ {
			z[n] = at(n, e)
		}
		tanhSeries(&y, &q, &z, k.k)
		dz = [jetOrder + 1]float64{}
		dy0 := tanhSeriesAdjoint(&y, &q, &z, k.k, float64(g[e]), &dz)
		if target == 0 {
			out[e] = T(dy0 * q[0])
		} else {
			out[e] = T(dz[target])
		}
	}
}

// diff returns the adjoint of every input: tanhJetAdjKernel of each.
func (k tanhJetKernel) diff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	args := append(append(G.Nodes{}, in...), grad)
	res := make(G.Nodes, len(in))
	for i := range in {
		d, err := apply(tanhJetAdjKernel{k, i}, args...)
		if err != nil {
			return nil, err
		}
		res[i] = d
	}
	return res, nil
}

// tanhJetAdjKernel is the adjoint of input wrt of a tanhJetKernel: inputs
// are the kernel's inputs and the output adjoint.
type tanhJetAdjKernel struct {
	tanhJetKernel
	wrt int
}

func (k tanhJetAdjKernel) name() string {
	return fmt.Sprintf("tanhjetadj(%d,%v,%d)", k.k, k.mask, k.wrt)
}

func (k tanhJetAdjKernel) dims() ([]int, int) { return sameDims(k.arity()+1, 3), 3 }

func (k tanhJetAdjKernel) shape(in []tensor.Shape) (tensor.Shape, error) {
	if err := sameShapes(k.name(), in); err != nil {
		return nil, err
	}
	return in[0].Clone(), nil
}

func (k tanhJetAdjKernel) run(out *tensor.Dense, in []*tensor.Dense) error {
	return dispatch(out, in,
		func(o []float64, in [][]float64) { tanhJetRun(k.tanhJetKernel, k.wrt, o, in) },
		func(o []float32, in [][]float32) { tanhJetRun(k.tanhJetKernel, k.wrt, o, in) })
}

// lseJetKernel computes, for every row of the last axis of (K, B, C)
// logits series, coefficient k of L(t) = log Σ_c exp(z_c(t)) (lseSeries):
// L_0 = logsumexp(z_0) for k = 0, Λ_k for k ≥ 1. Inputs are z_0 and the
// non-zero z_n, 1 ≤ n ≤ k, of mask; the output is (K, B).
type lseJetKernel struct {
	k    int
	mask jetMask
}

// lseJet returns the node of coefficient k of the log-sum-exp of the
// series z (nil entries are zero).
func lseJet(k int, z []*G.Node) (*G.Node, error) {
	in, m := maskOf(z[:k+1])
	return apply(lseJetKernel{k: k, mask: m}, append([]*G.Node{z[0]}, in...)...)
}

func (k lseJetKernel) name() string { return fmt.Sprintf("lsejet(%d,%v)", k.k, k.mask) }

func (k lseJetKernel) arity() int { return tanhJetKernel(k).arity() }

func (k lseJetKernel) dims() ([]int, int) { return sameDims(k.arity(), 3), 2 }

func (k lseJetKernel) shape(in []tensor.Shape) (tensor.Shape, error) {
	if err := sameShapes(k.name(), in); err != nil {
		return nil, err
	}
	if err := want3(in[0], k.name()+" input"); err != nil {
		return nil, err
	}
	return tensor.Shape{in[0][0], in[0][1]}, nil
}

func (k lseJetKernel) run(out *tensor.Dense, in []*tensor.Dense) error {
	c := in[0].Shape()[2]
	return dispatch(out, in,
		func(o []float64, in [][]float64) { lseJetRun(k, -1, c, o, in) },
		func(o []float32, in [][]float32) { lseJetRun(k, -1, c, o, in) })
}

// lseJetRun sets out (K·B) to coefficient k.k of every row's log-sum-exp
// series (wrt < 0) or, with the output adjoint (K·B) as the last input,
// out (K·B·C) to the adjoint of input wrt.
func lseJetRun[T float](k lseJetKernel, wrt, c int, out []T, in [][]T) {
	w := newLSEScratch(c)
	rows := len(in[0]) / c
	// src[n] is the input of coefficient n (−1: zero).
	var src [jetOrder + 1]int
	j := 1
	for n := 1; n <= k.k; n++ {
		src[n] = -1
		if k.mask.has(n) {
			src[n] = j
			j++
		}
		w.zs[n] = src[n] >= 0
	}
	w.zs[0] = true
	target := 0 // the coefficient whose adjoint is wanted (input wrt)
	for n := 1; n <= k.k; n++ {
		if wrt > 0 && src[n] == wrt {
			target = n
		}
	}
	for r := 0; r < rows; r++ {
		for n := 0; n <= k.k; n++ {
			if w.zs[n] {
				widen(w.z[n], in[src[n]][r*c:(r+1)*c])
			}
		}
		l0 := lseSeries(w, k.k)
		if wrt < 0 {
			if k.k == 0 {
				out[r] = T(l0)
			} else {
				out[r] = T(w.l[k.k])
			}
			continue
		}
		lseSeriesAdjoint(w, k.k, float64(in[j][r]))
		convert(out[r*c:(r+1)*c], w.dz[target])
	}
}

// diff returns the adjoint of every input: lseJetAdjKernel of each.
func (k lseJetKernel) diff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	args := append(append(G.Nodes{}, in...), grad)
	res := make(G.Nodes, len(in))
	for i := range in {
		d, err := apply(lseJetAdjKernel{k, i}, args...)
		if err != nil {
			return nil, err
		}
		res[i] = d
	}
	return res, nil
}

// lseJetAdjKernel is the adjoint of input wrt of an lseJetKernel: inputs
// are the kernel's inputs (K, B, C) and the output adjoint (K, B).
type lseJetAdjKernel struct {
	lseJetKernel
	wrt int
}

func (k lseJetAdjKernel) name() string {
	return fmt.Sprintf("lsejetadj(%d,%v,%d)", k.k, k.mask, k.wrt)
}

func (k lseJetAdjKernel) dims() ([]int, int) {
	return append(sameDims(k.arity(), 3), 2), 3
}

func (k lseJetAdjKernel) shape(in []tensor.Shape) (tensor.Shape, error) {
	n := len(in) - 1
	s, err := k.lseJetKernel.shape(in[:n])
	if err != nil {
		return nil, err
	}
	if !in[n].Eq(s) {
		return nil, fmt.Errorf("%s: adjoint of shape %v, want %v", k.name(), in[n], s)
	}
	return in[0].Clone(), nil
}

func (k lseJetAdjKernel) run(out *tensor.Dense, in []*tensor.Dense) error {
	c := in[0].Shape()[2]
	return dispatch(out, in,
		func(o []float64, in [][]float64) { lseJetRun(k.lseJetKernel, k.wrt, c, o, in) },
		func(o []float32, in [][]float32) { lseJetRun(k.lseJetKernel, k.wrt, c, o, in) })
}
