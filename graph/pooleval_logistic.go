package graph

import (
	"fmt"

	"github.com/perturb/perturb/nets"
)

// peLogistic is the batched logistic model z = s·(x W) + b.
type peLogistic[T float] struct {
	x   []T
	y   []uint8
	dim int
	cls int
	s   T
	k   int
	tb  bool // w is stored transposed (see peTransB)
	w   []T  // dim × k·cls: trial j's W in columns j·cls ... j·cls+cls-1 (or the transpose)
	b   []T  // k × cls
	npW int  // size of W
}

func newPELogistic[T float](arch *nets.Arch, d *Data, x []T) (*peLogistic[T], error) {
	p := arch.Params
	if len(p) != 2 || len(p[0].Shape) != 2 || p[0].Shape[0] != arch.Dim() || p[0].Shape[1] != arch.Classes ||
		p[1].Size() != arch.Classes {
		return nil, fmt.Errorf("pool evaluator: unexpected logistic parameters %v", p)
	}
	return &peLogistic[T]{x: x, y: d.Y, dim: arch.Dim(), cls: arch.Classes, s: T(p[0].Scale),
		npW: p[0].Size()}, nil
}

func (m *peLogistic[T]) perExample(k int) int64 {
	return int64(m.dim+k*m.cls)*peSizeOf[T]() + int64(k)*peScoreBytes[T](m.cls)
}

// autoChunk: with one trial's 10 columns the product is fastest on short
// chunks, with more on long ones (measured with OpenBLAS).
func (m *peLogistic[T]) autoChunk(k int) int {
	if k*m.cls <= 16 {
		return 64
	}
	return 256
}

func (m *peLogistic[T]) fixedBytes(k int) int64 {
	return int64(k*(m.npW+m.cls)) * peSizeOf[T]()
}

func (m *peLogistic[T]) pack(theta [][]float64) {
	k, cls, ld := len(theta), m.cls, len(theta)*m.cls
	m.k = k
	if cap(m.w) < m.dim*ld {
		m.w = make([]T, m.dim*ld)
		m.b = make([]T, ld)
	}
	m.w, m.b = m.w[:m.dim*ld], m.b[:ld]
	m.tb = peTransB[T](ld, m.dim)
	for j, t := range theta {
		for i := 0; i < m.dim; i++ {
			for c, v := range t[i*cls : i*cls+cls] {
				if m.tb {
					m.w[(j*cls+c)*m.dim+i] = T(v)
				} else {
					m.w[i*ld+j*cls+c] = T(v)
				}
			}
		}
		for c, v := range t[m.npW : m.npW+cls] {
			m.b[j*cls+c] = T(v)
		}
	}
}

func (m *peLogistic[T]) newWorker() peWorker {
	return &peLogisticWorker[T]{m: m}
}

type peLogisticWorker[T float] struct {
	m    *peLogistic[T]
	slab peSlab[T]
	sc   peScorer[T]
}

func (w *peLogisticWorker[T]) run(from int, rows []int, n int, sums []float64, correct []int64) {
	m := w.m
	k, cls, dim := m.k, m.cls, m.dim
	ld := k * cls
	w.slab.reset(n * (dim + ld))
	var x []T
	if rows == nil {
		x = m.x[from*dim : (from+n)*dim]
	} else {
		x = w.slab.take(n * dim)
		for i, r := range rows {
			copy(x[i*dim:(i+1)*dim], m.x[r*dim:(r+1)*dim])
		}
	}
	z := w.slab.take(n * ld)
	if m.tb {
		peGemm(true, n, ld, dim, x, dim, m.w, dim, z, ld)
	} else {
		peGemm(false, n, ld, dim, x, dim, m.w, ld, z, ld)
	}
	clear(sums)
	clear(correct)
	w.sc.block(z, ld, n, k, cls, m.s, m.b, m.y, from, rows, sums, correct)
}
