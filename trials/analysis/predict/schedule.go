package predict

import (
	"fmt"
	"math/rand/v2"
)

// Schedule is an optimiser's steps as weights on training slots: step t
// moves by −η Σ_n W[t][n] ∇l_n, where slot n holds the n-th training
// point (an independent draw from the pool). SGD with batch B puts 1/B on
// each slot of the step's batch; GD puts 1/N on every slot.
type Schedule struct {
	N int
	W [][]float64 // T × N
}

// Steps is the number of updates T.
func (s Schedule) Steps() int { return len(s.W) }

// SGD is the schedule of SGD with n points, batch b and e epochs, visiting
// the points in draw order in epoch 0 and in order(e) (a permutation of
// 0..n−1) in epoch e ≥ 1 when order is not nil.
func SGD(n, b, e int, order func(epoch int) []int) (Schedule, error) {
	if n < 1 || b < 1 || n%b != 0 || e < 1 {
		return Schedule{}, fmt.Errorf("predict: SGD needs n ≥ 1, a batch size dividing n and e ≥ 1 (n=%d, batch=%d, epochs=%d)", n, b, e)
	}
	s := Schedule{N: n}
	for ep := 0; ep < e; ep++ {
		var perm []int
		if ep > 0 && order != nil {
			perm = order(ep)
		}
		for j := 0; j < n/b; j++ {
			w := make([]float64, n)
			for i := 0; i < b; i++ {
				slot := j*b + i
				if perm != nil {
					slot = perm[slot]
				}
				w[slot] += 1 / float64(b)
			}
			s.W = append(s.W, w)
		}
	}
	return s, nil
}

// GD is the schedule of t full-batch steps on n points.
func GD(n, t int) (Schedule, error) {
	if n < 1 || t < 1 {
		return Schedule{}, fmt.Errorf("predict: GD needs n ≥ 1 and steps ≥ 1 (n=%d, steps=%d)", n, t)
	}
	s := Schedule{N: n}
	for range t {
		w := make([]float64, n)
		for i := range w {
			w[i] = 1 / float64(n)
		}
		s.W = append(s.W, w)
	}
	return s, nil
}

// Patterns splits a sum over slot triples (i, j, k) by which slots
// coincide: D all distinct, P12 only i = j, P13 only i = k, P23 only
// j = k, All i = j = k.
type Patterns struct{ D, P12, P13, P23, All float64 }

func patterns(tot, s12, s13, s23, s123 float64) Patterns {
	return Patterns{
		D:   tot - s12 - s13 - s23 + 2*s123,
		P12: s12 - s123, P13: s13 - s123, P23: s23 - s123,
		All: s123,
	}
}

func (p *Patterns) add(q Patterns, w float64) {
	p.D += w * q.D
	p.P12 += w * q.P12
	p.P13 += w * q.P13
	p.P23 += w * q.P23
	p.All += w * q.All
}

// Counts are the combinatorial weights of a schedule that the expected
// Taylor coefficients of the final test loss are made of. With a_n =
// Σ_t W[t][n] (the total weight of slot n), B_t = Σ_{r<t} W[r] and
//
//	P_mn  = Σ_{s<t} W[t][m] W[s][n]              (A₂ = Σ P_mn H_m g_n)
//	Q_mkn = Σ_{r<s<t} W[t][m] W[s][k] W[r][n]    (H̄_t H̄_s ḡ_r in A₃)
//	R_mkn = Σ_t W[t][m] B_t[k] B_t[n]            (J̄_t(b_t, b_t) in A₃)
//
// the fields are the sums of these arrays over the slot-coincidence
// patterns (see Coefficients for how they enter).
type Counts struct {
	T          float64 // Σ_n a_n: the number of steps
	SumA2      float64 // Σ_n a_n²
	PTot, PDia float64 // Σ P_mn, Σ_n P_nn
	Q, R       Patterns
	AP         Patterns // a_j P_mn over (j, m, n)
	AAA        Patterns // a_j a_k a_n
}

// Count computes the counts of one schedule in O(T·N) time.
func Count(s Schedule) Counts {
	n := s.N
	a := make([]float64, n)
	for _, w := range s.W {
		for i, x := range w {
			a[i] += x
		}
	}
	var c Counts
	var sumA, sumA3 float64
	for _, x := range a {
		sumA += x
		c.SumA2 += x * x
		sumA3 += x * x * x
	}
	c.T = sumA
	c.AAA = patterns(sumA*sumA*sumA, c.SumA2*sumA, c.SumA2*sumA, c.SumA2*sumA, sumA3)

	b := make([]float64, n) // B_t = Σ_{r<t} W[r]
	// U_t = Σ_{s<t} W[s] ⊗ B_s, kept as its row sums, column sums,
	// diagonal and total.
	uRow, uCol, uDia := make([]float64, n), make([]float64, n), make([]float64, n)
	var uTot float64
	var q, r, ap [5]float64 // tot, s12, s13, s23, s123
	for _, w := range s.W {
		var sw, sb, wb, wbb, aw, awb, bb, ab float64
		for i := range n {
			sw += w[i]
			sb += b[i]
			wb += w[i] * b[i]
			wbb += w[i] * b[i] * b[i]
			aw += a[i] * w[i]
			awb += a[i] * w[i] * b[i]
			bb += b[i] * b[i]
			ab += a[i] * b[i]
		}
		// Q: Σ_m w[m] U[k][n] patterns (m, k, n).
		var wRow, wCol, wDia, dia float64
		for i := range n {
			wRow += w[i] * uRow[i]
			wCol += w[i] * uCol[i]
			wDia += w[i] * uDia[i]
			dia += uDia[i]
		}
		q[0] += sw * uTot
		q[1] += wRow
		q[2] += wCol
		q[3] += sw * dia
		q[4] += wDia
		// R: w[m] b[k] b[n].
		r[0] += sw * sb * sb
		r[1] += wb * sb
		r[2] += wb * sb
		r[3] += sw * bb
		r[4] += wbb
		// P and a ⊗ P: w[m] b[n] (P) with a[j].
		c.PTot += sw * sb
		c.PDia += wb
		ap[0] += sumA * sw * sb
		ap[1] += aw * sb
		ap[2] += sw * ab
		ap[3] += sumA * wb
		ap[4] += awb
		// U += w ⊗ b, then b += w.
		for i := range n {
			uRow[i] += w[i] * sb
			uCol[i] += sw * b[i]
			uDia[i] += w[i] * b[i]
		}
		uTot += sw * sb
		for i := range n {
			b[i] += w[i]
		}
	}
	c.Q = patterns(q[0], q[1], q[2], q[3], q[4])
	c.R = patterns(r[0], r[1], r[2], r[3], r[4])
	c.AP = patterns(ap[0], ap[1], ap[2], ap[3], ap[4])
	return c
}

// ExpectedCounts averages the counts of SGD with n points, batch b and e
// epochs over its epoch orders: exact (one schedule) without reshuffling;
// with reshuffling, the mean over draws uniformly random permutations per
// epoch from a stream keyed by seed (the counts of order 1 and 2 do not
// depend on the orders; those of order 3 do, slightly, through the gaps
// between a point's uses).
func ExpectedCounts(n, b, e int, reshuffle bool, draws int, seed uint64) (Counts, error) {
	if !reshuffle || e == 1 {
		s, err := SGD(n, b, e, nil)
		if err != nil {
			return Counts{}, err
		}
		return Count(s), nil
	}
	if draws < 1 {
		return Counts{}, fmt.Errorf("predict: %d permutation draws; need at least 1", draws)
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	var sum Counts
	for range draws {
		s, err := SGD(n, b, e, func(int) []int { return rng.Perm(n) })
		if err != nil {
			return Counts{}, err
		}
		c := Count(s)
		sum.T += c.T / float64(draws)
		sum.SumA2 += c.SumA2 / float64(draws)
		sum.PTot += c.PTot / float64(draws)
		sum.PDia += c.PDia / float64(draws)
		sum.Q.add(c.Q, 1/float64(draws))
		sum.R.add(c.R, 1/float64(draws))
		sum.AP.add(c.AP, 1/float64(draws))
		sum.AAA.add(c.AAA, 1/float64(draws))
	}
	return sum, nil
}
