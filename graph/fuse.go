package graph

import (
	"strings"

	G "gorgonia.org/gorgonia"

	"github.com/perturb/perturb/kernels"
)

// Fusion of a sum of two products. Gorgonia's Grad adds the adjoints of a
// value read twice: the reverse of a layer whose input carries a tangent
// (an HVP's second convolution) forms two products of the same shape and
// adds them, three passes over a matrix of patches that can be larger than
// the caches. The walker computes such a sum as one step: the first
// product into the sum's buffer, then the second accumulated into it
// (Gemm with Beta = 1), when each product is read by the sum alone. In
// exact arithmetic nothing changes; in floating point the second product's
// terms are added to the first's result as the BLAS accumulates them
// rather than after rounding the second product (a rounding device treats
// it as one accumulator, like a tensor core).

// planFusion marks, among the sorted nodes, the sums of two products
// that are read by nothing else (and are not outputs), so that add skips
// the products and maps the sum as one step.
func (p *Program) planFusion(sorted G.Nodes, outs []*G.Node) {
	readers := map[int64]int{}
	for _, nd := range sorted {
		for _, c := range p.children(nd) {
			readers[c.ID()]++
		}
	}
	for _, o := range outs {
		readers[o.ID()]++
	}
	p.fused, p.skip = map[int64][2]*G.Node{}, map[int64]bool{}
	for _, nd := range sorted {
		if nd.Op() == nil || !strings.HasPrefix(nd.Op().String(), "+ ") {
			continue
		}
		in := p.children(nd)
		if len(in) != 2 || in[0] == in[1] || !in[0].Shape().Eq(nd.Shape()) || !in[1].Shape().Eq(nd.Shape()) {
			continue
		}
		ok := true
		for _, c := range in {
			op, isCustom := c.Op().(*customOp)
			if !isCustom || readers[c.ID()] != 1 || p.skip[c.ID()] {
				ok = false
				break
			}
			if _, isBmm := op.k.(bmmKernel); !isBmm {
				ok = false
				break
			}
		}
		if ok {
			p.fused[nd.ID()] = [2]*G.Node{in[0], in[1]}
			p.skip[in[0].ID()], p.skip[in[1].ID()] = true, true
		}
	}
}

// fusedStep maps the sum nd of the products pair (planFusion).
func (p *Program) fusedStep(nd *G.Node, pair [2]*G.Node) error {
	var gs [2]kernels.Gemm
	var in []*G.Node
	for i, c := range pair {
		k := c.Op().(*customOp).k.(bmmKernel)
		ops := p.children(c)
		batch, m, inner, n, err := k.sizes(ops[0].Shape(), ops[1].Shape())
		if err != nil {
			return err
		}
		gs[i] = kernels.Gemm{Batch: batch, M: m, N: n, K: inner, TransA: k.transA, TransB: k.transB, Alpha: k.alpha}.Strided()
		in = append(in, ops...)
	}
	gs[1].Beta = 1
	return p.nStep(nd, in, "bmm+bmm", func(o kernels.Buffer, x []kernels.Buffer) error {
		if err := p.dev.Gemm(gs[0], o, x[0], x[1]); err != nil {
			return err
		}
		return p.dev.Gemm(gs[1], o, x[2], x[3])
	})
}
