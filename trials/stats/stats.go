// Package stats estimates the statistics of a loss landscape at one point
// θ that the perturbative theory's predictions are made of: contractions
// of G = E∇l_x, H = E∇²l_x, J = E∇³l_x, C = Cov ∇l_x and S (the third
// central moment of ∇l_x), computed from per-sample gradients,
// Hessian-vector products and third-order Taylor coefficients along
// directions, never from full tensors.
//
// # Estimators
//
// Products of expectations are estimated without bias by putting each
// factor on an independent block of samples (appendix C.6 of the paper,
// in its block-mean form). One group is four blocks of S samples each,
// B0..B3; ḡ_b is block b's mean gradient, H̄_b v its mean Hessian-vector
// product, J̄_b its mean third derivative, and d_i = g_i − ḡ_0 (i ∈ B0)
// the deviations in block 0. With Ĉ = Σ_i d_i d_iᵀ/(S−1) (unbiased for C)
// and the unbiased third cumulant K̂ = S/((S−1)(S−2)) Σ_i d_i⊗d_i⊗d_i:
//
//	|G|²         mean over the 6 block pairs a<b of ḡ_a·ḡ_b
//	tr C         mean over blocks of Σ_i |g_i − ḡ_b|²/(S−1)
//	G·H·G        ḡ_0 · H̄_1 ḡ_2
//	G·H·H·G      (H̄_1 ḡ_0) · (H̄_2 ḡ_3)
//	tr(H C)      Σ_i d_iᵀ H̄_1 d_i / (S−1)                 = tr(H̄_1 Ĉ)
//	tr(H H C)    Σ_i (H̄_1 d_i)·(H̄_2 d_i) / (S−1)          = tr(H̄_1 H̄_2 Ĉ)
//	G·∇tr C      2 ḡ_1 · Σ_i H_{x_i} d_i / (S−1)
//	J(G,G,G)     J̄_1(ḡ_0, ḡ_2, ḡ_3)
//	C:J·G        Σ_i J̄_1(d_i, d_i, ḡ_2) / (S−1)           = Σ_μν Ĉ_μν J_μνλ G_λ
//	S:J          S/((S−1)(S−2)) Σ_i J̄_1(d_i, d_i, d_i)   = Σ K̂_μνλ J_μνλ
//
// Every factor in a product comes from a different block, so each
// product's expectation is the product of expectations. The one exception
// needs a derivation: ∇tr C = ∇E|g_x − G|² = 2(E[H_x g_x] − H G), and
//
//	E Σ_{i∈B0} H_{x_i}(g_i − ḡ_0) = S·E[H_x g_x] − (E[H_x g_x] + (S−1) H G)
//	                              = (S−1)(E[H_x g_x] − H G),
//
// so Σ_i H_{x_i} d_i/(S−1) is unbiased for ∇tr C/2, and independent of
// ḡ_1. The third cumulant: E Σ_i (x_i − x̄)³ = (S−1)(S−2)/S · μ₃ for iid
// scalars, and the same holds for the symmetric tensor by multilinearity.
//
// Third-order contractions come from the Taylor coefficient
// c₃(v) = J(v,v,v)/6 of t ↦ l(θ + t v) by polarisation:
//
//	J(a,b,c) = c₃(a+b+c) − c₃(a+b) − c₃(a+c) − c₃(b+c) + c₃(a) + c₃(b) + c₃(c)
//	J(u,u,w) = c₃(u+w) − c₃(u−w) − 2 c₃(w)
//
// (expand J(a+b+c)³ etc. by multilinearity and symmetry: the first
// combination leaves 6 J(a,b,c), the second 6 J(u,u,w) + 2 J(w,w,w)).
//
// The standard error of each statistic is the standard deviation of its
// per-group values over the square root of the number of groups; groups
// use disjoint samples, so their values are independent.
package stats

import (
	"errors"
	"fmt"
	"math"

	"github.com/perturb/perturb/nets"
)

// Oracle evaluates derivatives of per-sample losses l_n at one fixed
// point θ. Its methods work on batches so that implementations can run
// them as one computation.
type Oracle interface {
	// NumParams is the number of weights.
	NumParams() int
	// Grads sets out[i] = ∇l(θ; samples[i]).
	Grads(samples []nets.Sample, out [][]float64) error
	// HVPs sets out[k] to the mean over sets[k] of H_n v[k].
	HVPs(v [][]float64, sets [][]nets.Sample, out [][]float64) error
	// Jets sets out[k] to the mean over sets[k] of the Taylor
	// coefficients c₀..c₃ of t ↦ l_n(θ + t v[k]).
	Jets(v [][]float64, sets [][]nets.Sample, out [][4]float64) error
}

// Names of the statistics, in the order Estimate returns them.
const (
	GG       = "|G|^2"
	TrC      = "tr C"
	GHG      = "G.H.G"
	GHHG     = "G.H.H.G"
	TrHC     = "tr(H C)"
	TrHHC    = "tr(H H C)"
	GGradTrC = "G.grad tr C"
	JGGG     = "J(G,G,G)"
	CJG      = "C:J.G"
	SJ       = "S:J"
)

// Names lists the statistics in the order Estimate returns them.
var Names = []string{GG, TrC, GHG, GHHG, TrHC, TrHHC, GGradTrC, JGGG, CJG, SJ}

// Estimate is one statistic's estimate.
type Estimate struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	StdErr float64 `json:"stderr"`
	Groups int     `json:"groups"` // independent groups averaged
}

// Blocks is the number of sample blocks in a group.
const Blocks = 4

// Group computes one group's value of every statistic (in Names order)
// from its four blocks of samples, all of the same size S ≥ 3.
func Group(o Oracle, blocks [Blocks][]nets.Sample) ([]float64, error) {
	s := len(blocks[0])
	for _, b := range blocks {
		if len(b) != s {
			return nil, errors.New("stats: blocks of different sizes")
		}
	}
	if s < 3 {
		return nil, fmt.Errorf("stats: blocks of %d samples; the third cumulant needs at least 3", s)
	}
	p := o.NumParams()
	fs := float64(s)
	var g [Blocks][][]float64
	var mean [Blocks][]float64
	for b := range blocks {
		g[b] = matrix(s, p)
		if err := o.Grads(blocks[b], g[b]); err != nil {
			return nil, fmt.Errorf("stats: gradients: %w", err)
		}
		mean[b] = make([]float64, p)
		for _, gi := range g[b] {
			axpy(1/fs, gi, mean[b])
		}
	}
	out := make([]float64, len(Names))
	set := func(name string, v float64) {
		for i, n := range Names {
			if n == name {
				out[i] = v
			}
		}
	}
	// |G|² and tr C.
	var gg, trc float64
	for a := 0; a < Blocks; a++ {
		for b := a + 1; b < Blocks; b++ {
			gg += dot(mean[a], mean[b]) / 6
		}
		for _, gi := range g[a] {
			trc += dist2(gi, mean[a]) / (fs - 1) / Blocks
		}
	}
	set(GG, gg)
	set(TrC, trc)

	d := matrix(s, p)
	for i := range d {
		copy(d[i], g[0][i])
		axpy(-1, mean[0], d[i])
	}
	// Hessian-vector products: H̄1 ḡ0, H̄2 ḡ3, H̄1 d_i, H̄2 d_i, H_{x_i} d_i.
	var vs [][]float64
	var sets [][]nets.Sample
	vs = append(vs, mean[0], mean[3])
	sets = append(sets, blocks[1], blocks[2])
	for i := range d {
		vs = append(vs, d[i], d[i], d[i])
		sets = append(sets, blocks[1], blocks[2], blocks[0][i:i+1])
	}
	hv := matrix(len(vs), p)
	if err := o.HVPs(vs, sets, hv); err != nil {
		return nil, fmt.Errorf("stats: Hessian-vector products: %w", err)
	}
	set(GHG, dot(mean[2], hv[0]))
	set(GHHG, dot(hv[0], hv[1]))
	var trhc, trhhc float64
	grad := make([]float64, p) // Σ_i H_{x_i} d_i / (S−1)
	for i := range d {
		h1, h2, hx := hv[2+3*i], hv[3+3*i], hv[4+3*i]
		trhc += dot(d[i], h1) / (fs - 1)
		trhhc += dot(h1, h2) / (fs - 1)
		axpy(1/(fs-1), hx, grad)
	}
	set(TrHC, trhc)
	set(TrHHC, trhhc)
	set(GGradTrC, 2*dot(mean[1], grad))

	// Third order, all on block 1: the 7 polarisation directions of
	// J(ḡ0, ḡ2, ḡ3), then per i: d_i + ḡ2, d_i − ḡ2, d_i; then ḡ2 alone
	// (already among the 7).
	a, b, c := mean[0], mean[2], mean[3]
	dirs := [][]float64{add(a, b, c), add(a, b), add(a, c), add(b, c), a, b, c}
	for i := range d {
		dirs = append(dirs, add(d[i], b), sub(d[i], b), d[i])
	}
	jsets := make([][]nets.Sample, len(dirs))
	for k := range jsets {
		jsets[k] = blocks[1]
	}
	jets := make([][4]float64, len(dirs))
	if err := o.Jets(dirs, jsets, jets); err != nil {
		return nil, fmt.Errorf("stats: Taylor coefficients: %w", err)
	}
	c3 := func(k int) float64 { return jets[k][3] }
	set(JGGG, c3(0)-c3(1)-c3(2)-c3(3)+c3(4)+c3(5)+c3(6))
	var cjg, sj float64
	for i := range d {
		cjg += (c3(7+3*i) - c3(8+3*i) - 2*c3(5)) / (fs - 1)
		sj += 6 * c3(9+3*i) * fs / ((fs - 1) * (fs - 2))
	}
	set(CJG, cjg)
	set(SJ, sj)
	return out, nil
}

// Summarize turns per-group values (each in Names order) into estimates
// with standard errors.
func Summarize(groups [][]float64) []Estimate {
	out := make([]Estimate, len(Names))
	for j, name := range Names {
		m, se := MeanSE(len(groups), func(i int) float64 { return groups[i][j] })
		out[j] = Estimate{Name: name, Value: m, StdErr: se, Groups: len(groups)}
	}
	return out
}

// MeanSE returns the mean of x(0), ..., x(n−1) and its standard error
// (the sample standard deviation over √n; NaN when n < 2).
func MeanSE(n int, x func(i int) float64) (mean, se float64) {
	fn := float64(n)
	for i := 0; i < n; i++ {
		mean += x(i) / fn
	}
	if n < 2 {
		return mean, math.NaN()
	}
	var ss float64
	for i := 0; i < n; i++ {
		ss += (x(i) - mean) * (x(i) - mean)
	}
	return mean, math.Sqrt(ss / (fn - 1) / fn)
}

func matrix(r, c int) [][]float64 {
	m := make([][]float64, r)
	for i := range m {
		m[i] = make([]float64, c)
	}
	return m
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func dist2(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += (a[i] - b[i]) * (a[i] - b[i])
	}
	return s
}

func axpy(alpha float64, x, y []float64) {
	for i := range x {
		y[i] += alpha * x[i]
	}
}

func add(vs ...[]float64) []float64 {
	out := make([]float64, len(vs[0]))
	for _, v := range vs {
		axpy(1, v, out)
	}
	return out
}

func sub(a, b []float64) []float64 {
	out := append([]float64(nil), a...)
	axpy(-1, b, out)
	return out
}
