package graph

import "github.com/perturb/perturb/nets/fastmath"

// hvLogistic is the Hessian-vector product of the logistic model
// z = s·(x W) + b: with ż = s·(x V_W) + V_b and δ̇ the softmax Jacobian
// times ż (see HVPEvaluator), (H v)_W = s·xᵀ δ̇ and (H v)_b = Σ δ̇ (the
// inputs do not depend on the parameters, so the loss reverse δ does not
// enter).
type hvLogistic[T float] struct {
	m *peLogistic[T]
}

func (h *hvLogistic[T]) defaultChunk() int { return hvLogisticChunk }

// cacheBytes is 0: the logistic model keeps no primal values.
func (h *hvLogistic[T]) cacheBytes(n int) int64 { return 0 }

func (h *hvLogistic[T]) newCache(n int) *hvCache { return nil }

func (h *hvLogistic[T]) newWorker() hvWorker {
	m := h.m
	return &hvLogisticWorker[T]{m: m,
		w: make([]T, m.npW), vw: make([]T, m.npW), b: make([]T, m.cls), vb: make([]T, m.cls),
		g: make([]T, m.npW)}
}

type hvLogisticWorker[T float] struct {
	m            *peLogistic[T]
	w, vw, b, vb []T
	g            []T
	p            []float64
	slab         peSlab[T]
}

func (w *hvLogisticWorker[T]) load(theta, v []float64) {
	np := w.m.npW
	hvConvert(w.w, theta[:np])
	hvConvert(w.vw, v[:np])
	hvConvert(w.b, theta[np:])
	hvConvert(w.vb, v[np:])
}

func (w *hvLogisticWorker[T]) add(rows []int, acc []float64, _ *hvCache, _ int, _ bool) {
	m := w.m
	n, dim, cls := len(rows), m.dim, m.cls
	w.slab.reset(n * (dim + 2*cls))
	if cap(w.p) < n*cls {
		w.p = make([]float64, n*cls)
	}
	p := w.p[:n*cls]
	x := w.slab.take(n * dim)
	for i, r := range rows {
		copy(x[i*dim:(i+1)*dim], m.x[r*dim:(r+1)*dim])
	}
	z, zd := w.slab.take(n*cls), w.slab.take(n*cls)
	fastmath.Gemm(false, false, n, cls, dim, 1, x, dim, w.w, cls, 0, z, cls)
	fastmath.Gemm(false, false, n, cls, dim, 1, x, dim, w.vw, cls, 0, zd, cls)
	hvSoftmax(p, z, n, cls, m.s, w.b)
	hvJacobian(zd, p, n, cls, m.s, w.vb, acc[m.npW:])
	fastmath.Gemm(true, false, dim, cls, n, m.s, x, dim, zd, cls, 0, w.g, cls)
	hvWiden(acc[:m.npW], w.g)
}
