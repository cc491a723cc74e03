package kernels

import (
	"fmt"
	"math"

	"github.com/perturb/perturb/nets/fastmath"
)

// The CPU device's activations, elementwise functions and cross-entropy.
//
// In float32 tanh and exp are nets/fastmath's vector kernels (AVX2+FMA
// where the CPU has them): tanh within 5 ulp of math.Tanh rounded to
// float32 (1 ulp without AVX2), exp within 3 ulp of math.Exp (exact
// rounding without AVX2), see nets/fastmath/vec_test.go and this
// package's TestCPUFastMath. In float64 they are math.Tanh and math.Exp.
// Either way an element's result depends only on its own operands.

// tanhT is tanh in T (float32 through float64, the scalar reference).
func tanhT[T float](x T) T { return T(math.Tanh(float64(x))) }
func expT[T float](x T) T  { return T(math.Exp(float64(x))) }
func logT[T float](x T) T  { return T(math.Log(float64(x))) }

// is32 reports whether T is float32.
func is32[T float]() bool {
	var z T
	_, ok := any(z).(float32)
	return ok
}

// zeros8 is the zero bias tile of the float32 tanh.
var zeros8 = make([]float32, 8)

// tanhAffine sets x[i] = tanh(T(s·x[i]) + tile[i mod len(tile)]); for
// float32 tile has a length that is a multiple of 8 (fastmath.Tile32).
func tanhAffine[T float](x []T, s T, tile []T, fast bool) {
	if x32, ok := any(x).([]float32); ok && fast {
		fastmath.TanhScaleBias32(x32, float32(s), any(tile).([]float32))
		return
	}
	for i := 0; i < len(x); {
		for _, b := range tile {
			if i == len(x) {
				break
			}
			x[i] = tanhT(T(s*x[i]) + b)
			i++
		}
	}
}

// scaleBias sets x[i] = T(s·x[i]) + tile[i mod len(tile)]: through
// fastmath.ScaleBias32 for float32 and a tile of a multiple of 8 values
// (bitwise the loop's values).
func scaleBias[T float](x []T, s T, tile []T) {
	if x32, ok := any(x).([]float32); ok && len(tile)%8 == 0 {
		fastmath.ScaleBias32(x32, float32(s), any(tile).([]float32))
		return
	}
	for i := 0; i < len(x); {
		for _, b := range tile {
			if i == len(x) {
				break
			}
			x[i] = T(s*x[i]) + b
			i++
		}
	}
}

// tileOf returns the bias b as tanhAffine's tile.
func tileOf[T float](b []T, fast bool) []T {
	if b32, ok := any(b).([]float32); ok && fast {
		return any(fastmath.Tile32(b32)).([]T)
	}
	return b
}

// expInPlace sets x[i] = exp(x[i]).
func expInPlace[T float](x []T, fast bool) {
	if x32, ok := any(x).([]float32); ok && fast {
		fastmath.Exp32(x32)
		return
	}
	for i, v := range x {
		x[i] = expT(v)
	}
}

// BiasAct finishes a dense layer in place: z ← T(s·z) + bias, then tanh
// when act, the (trial, row) pairs spread over the workers.
func (d CPU[T]) BiasAct(z Buffer, batch, m, n int, s float64, bias Buffer, cm, act bool) error {
	bs, err := bufs[T](z, bias)
	if err != nil {
		return err
	}
	zs, bi := bs[0], bs[1]
	nb := n
	if cm {
		nb = m
	}
	if len(zs) != batch*m*n || len(bi) != batch*nb {
		return fmt.Errorf("cpu: bias of %d for %d×%d×%d outputs of %d", len(bi), batch, m, n, len(zs))
	}
	st := T(s)
	parallel(d.w(), batch*m, units(n), func(lo, hi int) {
		var t8 [8]T
		var tiled []T // the tanh kernel's tile of the trial tileFor
		tileFor := -1
		for u := lo; u < hi; u++ {
			t, r := u/m, u%m
			bt := bi[t*nb : (t+1)*nb]
			row := zs[u*n : (u+1)*n]
			// The row's bias as a tile: one value of a channel-major row
			// (eight copies for the float32 kernels), else the bias
			// vector (for the tanh kernel repeated to a multiple of 8,
			// once per trial).
			var tile []T
			switch {
			case cm && is32[T]():
				for i := range t8 {
					t8[i] = bt[r]
				}
				tile = t8[:]
			case cm:
				tile = bt[r : r+1]
			case act:
				if tileFor != t {
					tiled, tileFor = tileOf(bt, !d.exact), t
				}
				tile = tiled
			default:
				tile = bt
			}
			if act {
				tanhAffine(row, st, tile, !d.exact)
			} else {
				scaleBias(row, st, tile)
			}
		}
	})
	return nil
}

// Unary applies f, ranges spread over the workers.
func (d CPU[T]) Unary(f Unary, out, in Buffer) error {
	bs, err := bufs[T](out, in)
	if err != nil {
		return err
	}
	o, x := bs[0], bs[1]
	if err := same("unary", len(o), x); err != nil {
		return err
	}
	if f != Neg && f != Exp && f != Tanh {
		return fmt.Errorf("cpu: unary function %d", f)
	}
	parallel(d.w(), len(o), grain, func(lo, hi int) {
		o, x := o[lo:hi], x[lo:hi]
		switch f {
		case Neg:
			for i, v := range x {
				o[i] = -v
			}
		case Exp:
			copy(o, x)
			expInPlace(o, !d.exact)
		case Tanh:
			copy(o, x)
			if is32[T]() {
				tanhAffine(o, 1, any(zeros8).([]T), !d.exact)
			} else {
				for i, v := range o {
					o[i] = tanhT(v)
				}
			}
		}
	})
	return nil
}

// CrossEntropy sets each row's loss and correctness, rows spread over the
// workers; the exponentials of a block of rows go through the vector exp.
func (d CPU[T]) CrossEntropy(loss, correct, logits, labels Buffer, trials, rows, c int) error {
	bs, err := bufs[T](loss, correct, logits, labels)
	if err != nil {
		return err
	}
	ls, cs, zs, ys := bs[0], bs[1], bs[2], bs[3]
	if len(ls) != trials*rows || len(cs) != trials*rows || len(zs) != trials*rows*c || len(ys) != rows {
		return fmt.Errorf("cpu: cross-entropy of %d logits, %d labels into %d, %d for %d×%d×%d", len(zs), len(ys), len(ls), len(cs), trials, rows, c)
	}
	const block = 256 // rows per exp batch
	parallel(d.w(), trials*rows, units(c), func(lo, hi int) {
		e := make([]T, block*c)
		ms := make([]int, 0, block)
		for b0 := lo; b0 < hi; b0 += block {
			b1 := min(b0+block, hi)
			ms = ms[:0]
			for i := b0; i < b1; i++ {
				z := zs[i*c : (i+1)*c]
				m, arg := z[0], 0
				for j, v := range z[1:] {
					if v > m {
						m, arg = v, j+1
					}
				}
				ms = append(ms, arg)
				ei := e[(i-b0)*c : (i-b0+1)*c]
				for j, v := range z {
					ei[j] = v - m
				}
			}
			expInPlace(e[:(b1-b0)*c], !d.exact)
			for i := b0; i < b1; i++ {
				z := zs[i*c : (i+1)*c]
				arg := ms[i-b0]
				var s T
				for _, v := range e[(i-b0)*c : (i-b0+1)*c] {
					s += v
				}
				lab := int(ys[i%rows])
				if lab < 0 || lab >= c {
					ls[i], cs[i] = T(math.NaN()), 0
					continue
				}
				ls[i] = z[arg] + logT(s) - z[lab]
				cs[i] = 0
				if arg == lab {
					cs[i] = 1
				}
			}
		}
	})
	return nil
}

// TanhJet propagates Taylor coefficients through tanh: t_0 through the
// (vector) tanh, then the recurrence element by element, ranges spread
// over the workers.
func (dev CPU[T]) TanhJet(t, z Buffer, d, n int) error {
	bs, err := bufs[T](t, z)
	if err != nil {
		return err
	}
	if err := same("tanhjet", (d+1)*n, bs[0], bs[1]); err != nil {
		return err
	}
	ts, zs := bs[0], bs[1]
	parallel(dev.w(), n, units(d+1)/8+1, func(lo, hi int) {
		copy(ts[lo:hi], zs[lo:hi])
		if is32[T]() {
			tanhAffine(ts[lo:hi], 1, any(zeros8).([]T), !dev.exact)
		} else {
			for e := lo; e < hi; e++ {
				ts[e] = tanhT(zs[e])
			}
		}
		u := make([]T, d+1)
		for e := lo; e < hi; e++ {
			tanhJet(ts, zs, u, d, n, e)
		}
	})
	return nil
}

// tanhJet is the recurrence for element e, given t_0 = ts[e] (u is
// scratch of d+1).
func tanhJet[T float](ts, zs, u []T, d, n, e int) {
	u[0] = 1 - ts[e]*ts[e]
	for k := 1; k <= d; k++ {
		var s T
		for j := 1; j <= k; j++ {
			s += T(j) * zs[j*n+e] * u[k-j]
		}
		ts[k*n+e] = s / T(k)
		var q T
		for i := 0; i <= k; i++ {
			q += ts[i*n+e] * ts[(k-i)*n+e]
		}
		u[k] = -q
	}
}
