package graph

import (
	"fmt"
	"strconv"
	"strings"

	gonumgraph "gonum.org/v1/gonum/graph"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
)

// Program is a batched gorgonia graph (BatchNet) compiled for a
// kernels.Device by walking its sorted nodes and mapping each operation to
// device calls: the same graphs that gorgonia's TapeMachine runs on the
// CPU (the forward pass, the graph G.Grad produced, the tangent passes of
// BatchHVP) run on the device, without a second copy of any model. Every
// node gets a device buffer allocated once (a reshape shares its input's);
// scalar and constant-filled nodes that gorgonia's Grad builds (constants,
// SizeOf, products of constants, repeats of them) are folded at compile
// time.
//
// Mapped operations (see docs/gpu.md for the table): the custom kernels of
// batchops.go (affine, bmm, sum, tanhback, tanhback2, im2col, col2im,
// flatten, logsoftmax, logsoftmaxback) and gorgonia's Reshape, elementwise
// +, −, ⊙ of equal shapes, neg, exp, Σ along one axis, Repeat, SizeOf and
// scalar constants, and the jet ops of jetops.go (see jetwalk.go: the
// jets' graphs compile the same way, NewDeviceJets). Any other operation
// is an error naming it.
type Program struct {
	dev   kernels.Device
	g     *G.ExprGraph
	steps []func() error
	// slots maps node IDs to their storage (a reshape shares its input's).
	slots map[int64]*slot
	all   []*slot
	owned []kernels.Buffer
	// uniform holds folded nodes: every element is the value.
	uniform map[int64]float64
	ops     []string // the mapped operations, in execution order (tests, docs)
	// plan holds, per step, its output and input slots (liveness).
	plan []stepSlots
	// elements is the number of elements allocated.
	elements int64
	// scratch serves the tanh jet steps (jetwalk.go).
	scratch jetScratch
	// rerun lists, in order, the steps that depend on the inputs given
	// to CompileRerun (nil for a program compiled without).
	rerun []int
	// banked lists the slots a Bank holds, own their buffers of the
	// program (UseBank).
	banked []*slot
	own    []kernels.Buffer
	// fused maps a sum of two products to them, skip marks those
	// products (fuse.go).
	fused map[int64][2]*G.Node
	skip  map[int64]bool
}

// slot is the storage of one or more nodes (a node and its reshapes).
// Pinned slots (inputs, outputs, folded constants) get a buffer of their
// own; the others share buffers by liveness (see Compile).
type slot struct {
	n      int
	pinned bool
	last   int // the last step that reads it, -1 for none
	buf    kernels.Buffer
	phys   kernels.Buffer // the allocated buffer buf is (a view of)
}

type stepSlots struct {
	out *slot
	in  []*slot
	// patches marks an im2col step, which a rerun recomputes rather than
	// keeping its output (planRerun).
	patches bool
}

// Compile maps the subgraph of n that computes outs (nodes of n's graph)
// onto dev. Inputs (x, y, parameters, tangents), the outputs outs and
// materialised constants get buffers of their own; every other node's
// buffer is taken, when its step runs, from those of earlier nodes whose
// last reader has run (the smallest free one that is long enough, through
// a Device.View), so a program allocates about its live set rather than
// one buffer per node. Buffers are allocated here,
// once: running the program again allocates nothing.
func (n *BatchNet) Compile(dev kernels.Device, outs ...*G.Node) (*Program, error) {
	return compileGraph(n.g, fmt.Sprintf("%s (%s, K=%d, B=%d)", n.Arch.Name, n.Kind, n.K, n.B), dev, outs...)
}

// compileGraph is Compile for the subgraph of g that computes outs (any
// graph of batchops.go's and jetops.go's kernels and the gorgonia
// operations listed on Program); what names the graph in errors.
func compileGraph(g *G.ExprGraph, what string, dev kernels.Device, outs ...*G.Node) (*Program, error) {
	return compileProgram(g, what, dev, nil, outs)
}

// compileProgram is compileGraph; with changed (inputs of g), it also
// prepares Rerun for new values of those inputs (see CompileRerun).
func compileProgram(g *G.ExprGraph, what string, dev kernels.Device, changed []*G.Node, outs []*G.Node) (*Program, error) {
	p := &Program{dev: dev, g: g, slots: map[int64]*slot{}, uniform: map[int64]float64{}}
	sorted, err := G.Sort(g.ExactSubgraphRoots(outs...))
	if err != nil {
		return nil, fmt.Errorf("device program of %s: %w", what, err)
	}
	p.planFusion(sorted, outs)
	for i := len(sorted) - 1; i >= 0; i-- {
		if err := p.add(sorted[i]); err != nil {
			p.Close()
			return nil, fmt.Errorf("device program of %s on %s: node %d (%v): %w",
				what, dev.Name(), sorted[i].ID(), sorted[i].Op(), err)
		}
	}
	for _, o := range outs {
		if _, err := p.buffer(o); err != nil {
			p.Close()
			return nil, err
		}
		p.slots[o.ID()].pinned = true
	}
	if changed != nil {
		if err := p.planRerun(changed); err != nil {
			p.Close()
			return nil, fmt.Errorf("device program of %s on %s: %w", what, dev.Name(), err)
		}
	}
	if err := p.assign(); err != nil {
		p.Close()
		return nil, fmt.Errorf("device program of %s on %s: %w", what, dev.Name(), err)
	}
	return p, nil
}

// assign gives every slot a buffer: pinned slots their own, the others,
// in step order, a view of the smallest free buffer that is long enough
// (released by a slot whose last reader ran before), else a new one.
func (p *Program) assign() error {
	for _, s := range p.all {
		s.last = -1
	}
	for i, st := range p.plan {
		for _, s := range st.in {
			s.last = i
		}
	}
	for _, s := range p.all {
		if s.pinned && s.buf == nil {
			if err := p.allocSlot(s); err != nil {
				return err
			}
		}
	}
	var free []kernels.Buffer // whole buffers whose slots are done
	release := func(s *slot) {
		if !s.pinned && s.phys != nil {
			free = append(free, s.phys)
		}
	}
	for i, st := range p.plan {
		if o := st.out; o.buf == nil {
			best := -1
			for j, b := range free {
				if b.Len() >= o.n && (best < 0 || b.Len() < free[best].Len()) {
					best = j
				}
			}
			if best < 0 {
				if err := p.allocSlot(o); err != nil {
					return err
				}
			} else {
				o.phys = free[best]
				free = append(free[:best], free[best+1:]...)
				o.buf = o.phys
				if o.phys.Len() != o.n {
					v, err := p.dev.View(o.phys, o.n)
					if err != nil {
						return fmt.Errorf("view of %d elements: %w", o.n, err)
					}
					o.buf = v
				}
			}
			if o.last < i { // never read: its buffer is free again at once
				release(o)
			}
		}
		seen := map[*slot]bool{}
		for _, s := range st.in {
			if s.last == i && !seen[s] {
				seen[s] = true
				release(s)
			}
		}
	}
	return nil
}

func (p *Program) allocSlot(s *slot) error {
	b, err := p.dev.Alloc(s.n)
	if err != nil {
		return fmt.Errorf("alloc %d elements: %w", s.n, err)
	}
	p.owned = append(p.owned, b)
	p.elements += int64(s.n)
	s.buf, s.phys = b, b
	return nil
}

// Elements is the number of elements the program allocated on its device.
func (p *Program) Elements() int64 { return p.elements }

// Ops lists the operations the program runs, in order.
func (p *Program) Ops() []string { return p.ops }

// Buffer returns the device buffer of an input, an output or a folded
// constant of the program; other nodes share buffers and have none of
// their own.
func (p *Program) Buffer(nd *G.Node) (kernels.Buffer, error) {
	s, ok := p.slots[nd.ID()]
	if !ok {
		return nil, fmt.Errorf("node %d (%v) has no buffer", nd.ID(), nd.Op())
	}
	if !s.pinned || s.buf == nil {
		return nil, fmt.Errorf("node %d (%v) is an intermediate of the program: its buffer is shared (compile it as an output)", nd.ID(), nd.Op())
	}
	return s.buf, nil
}

// Run executes the program on the device buffers as they are.
func (p *Program) Run() error {
	for _, s := range p.steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// Close frees the device buffers.
func (p *Program) Close() error {
	var first error
	for _, b := range p.owned {
		if err := p.dev.Free(b); err != nil && first == nil {
			first = err
		}
	}
	p.owned = nil
	return first
}

// children returns the inputs of nd in order.
func (p *Program) children(nd *G.Node) []*G.Node {
	var out []*G.Node
	it := p.g.From(nd.ID())
	for it.Next() {
		out = append(out, it.Node().(*G.Node))
	}
	return out
}

var _ gonumgraph.Node = (*G.Node)(nil)

// alloc gives nd a new slot; its buffer is assigned after the walk.
func (p *Program) alloc(nd *G.Node) *slot {
	s := &slot{n: max(nd.Shape().TotalSize(), 1)}
	p.all = append(p.all, s)
	p.slots[nd.ID()] = s
	return s
}

// buffer returns nd's slot, materialising a folded node (a pinned buffer
// filled once).
func (p *Program) buffer(nd *G.Node) (*slot, error) {
	if s, ok := p.slots[nd.ID()]; ok {
		return s, nil
	}
	v, ok := p.uniform[nd.ID()]
	if !ok {
		return nil, fmt.Errorf("node %d (%v) has no buffer", nd.ID(), nd.Op())
	}
	s := p.alloc(nd)
	s.pinned = true
	if err := p.allocSlot(s); err != nil {
		return nil, err
	}
	if err := p.dev.Fill(s.buf, v); err != nil {
		return nil, fmt.Errorf("fill %v with %g: %w", nd.Shape(), v, err)
	}
	return s, nil
}

func (p *Program) step(name string, f func() error) {
	p.ops = append(p.ops, name)
	p.steps = append(p.steps, func() error {
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// add maps one node.
func (p *Program) add(nd *G.Node) error {
	op := nd.Op()
	in := p.children(nd)
	if op == nil { // an input: x, y, parameters, tangents
		p.alloc(nd).pinned = true
		return nil
	}
	if p.skip[nd.ID()] { // a product computed by its sum's step
		return nil
	}
	if pair, ok := p.fused[nd.ID()]; ok {
		return p.fusedStep(nd, pair)
	}
	name := op.String()
	// Folding of scalars and constant fills.
	allUniform := len(in) > 0
	for _, c := range in {
		if _, ok := p.uniform[c.ID()]; !ok {
			allUniform = false
		}
	}
	switch {
	case strings.HasPrefix(name, "const "):
		v, err := strconv.ParseFloat(strings.TrimPrefix(name, "const "), 64)
		if err != nil {
			return fmt.Errorf("constant %q: %w", name, err)
		}
		p.uniform[nd.ID()] = v
		return nil
	case strings.HasPrefix(name, "SizeOf="):
		v, err := strconv.Atoi(strings.TrimPrefix(name, "SizeOf="))
		if err != nil {
			return fmt.Errorf("size %q: %w", name, err)
		}
		p.uniform[nd.ID()] = float64(v)
		return nil
	}
	if c, ok := op.(*customOp); ok {
		return p.custom(nd, c.k, in)
	}
	switch {
	case strings.HasPrefix(name, "Reshape"):
		if v, ok := p.uniform[in[0].ID()]; ok {
			p.uniform[nd.ID()] = v
			return nil
		}
		s, err := p.buffer(in[0])
		if err != nil {
			return err
		}
		if s.n != max(nd.Shape().TotalSize(), 1) {
			return fmt.Errorf("reshape of %d elements to %v", s.n, nd.Shape())
		}
		p.slots[nd.ID()] = s
		return nil
	case strings.HasPrefix(name, "Repeat"):
		if v, ok := p.uniform[in[0].ID()]; ok {
			p.uniform[nd.ID()] = v
			return nil
		}
		axis, err := strconv.Atoi(strings.TrimPrefix(name, "Repeat"))
		if err != nil {
			return fmt.Errorf("repeat %q: %w", name, err)
		}
		s := nd.Shape()
		outer, inner := s[:axis].TotalSize(), s[axis+1:].TotalSize()
		if len(s[:axis]) == 0 {
			outer = 1
		}
		if len(s[axis+1:]) == 0 {
			inner = 1
		}
		if in[0].Shape().TotalSize() != outer*inner {
			return fmt.Errorf("repeat of %v to %v along %d", in[0].Shape(), s, axis)
		}
		return p.unaryStep(nd, in, "repeat", func(o, x kernels.Buffer) error { return p.dev.Repeat(o, x, outer, s[axis], inner) })
	case name == "neg" || name == "exp":
		if allUniform {
			v := p.uniform[in[0].ID()]
			if name == "neg" {
				p.uniform[nd.ID()] = -v
			} else {
				return fmt.Errorf("exp of a constant is not folded")
			}
			return nil
		}
		f := kernels.Neg
		if name == "exp" {
			f = kernels.Exp
		}
		return p.unaryStep(nd, in, name, func(o, x kernels.Buffer) error { return p.dev.Unary(f, o, x) })
	case strings.HasPrefix(name, "+ ") || strings.HasPrefix(name, "- ") || strings.HasPrefix(name, "⊙ "):
		sym := name[:strings.IndexByte(name, ' ')]
		if allUniform {
			a, b := p.uniform[in[0].ID()], p.uniform[in[1].ID()]
			p.uniform[nd.ID()] = map[string]float64{"+": a + b, "-": a - b, "⊙": a * b}[sym]
			return nil
		}
		if !in[0].Shape().Eq(in[1].Shape()) || !in[0].Shape().Eq(nd.Shape()) {
			return fmt.Errorf("elementwise %s of shapes %v and %v (broadcasting is not mapped)", sym, in[0].Shape(), in[1].Shape())
		}
		f := map[string]kernels.Binary{"+": kernels.Add, "-": kernels.Sub, "⊙": kernels.Mul}[sym]
		return p.nStep(nd, in, sym, func(o kernels.Buffer, x []kernels.Buffer) error { return p.dev.Binary(f, o, x[0], x[1]) })
	case strings.HasPrefix(name, "Σ["):
		ax, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "Σ["), "]"))
		if err != nil {
			return fmt.Errorf("sum %q (one axis is mapped): %w", name, err)
		}
		s := in[0].Shape()
		outer, inner := 1, 1
		for _, d := range s[:ax] {
			outer *= d
		}
		for _, d := range s[ax+1:] {
			inner *= d
		}
		return p.unaryStep(nd, in, "sum", func(o, x kernels.Buffer) error { return p.dev.Sum(o, x, outer, s[ax], inner) })
	}
	return fmt.Errorf("operation %q (%T) has no device mapping", name, op)
}

func (p *Program) unaryStep(nd *G.Node, in []*G.Node, name string, f func(o, x kernels.Buffer) error) error {
	return p.nStep(nd, in[:1], name, func(o kernels.Buffer, x []kernels.Buffer) error { return f(o, x[0]) })
}

// nStep gives nd a slot and adds a step computing it from in.
func (p *Program) nStep(nd *G.Node, in []*G.Node, name string, f func(o kernels.Buffer, x []kernels.Buffer) error) error {
	ins := make([]*slot, len(in))
	for i, c := range in {
		s, err := p.buffer(c)
		if err != nil {
			return err
		}
		ins[i] = s
	}
	o := p.alloc(nd)
	p.plan = append(p.plan, stepSlots{out: o, in: ins})
	xs := make([]kernels.Buffer, len(ins))
	p.step(name, func() error {
		for i, s := range ins {
			xs[i] = s.buf
		}
		return f(o.buf, xs)
	})
	return nil
}

// custom maps a kernel of batchops.go.
func (p *Program) custom(nd *G.Node, k kernel, in []*G.Node) error {
	d := p.dev
	shape := func(i int) tensor.Shape { return in[i].Shape() }
	switch k := k.(type) {
	case bmmKernel:
		batch, m, inner, n, err := k.sizes(shape(0), shape(1))
		if err != nil {
			return err
		}
		g := kernels.Gemm{Batch: batch, M: m, N: n, K: inner, TransA: k.transA, TransB: k.transB, Alpha: k.alpha}.Strided()
		return p.nStep(nd, in, k.name(), func(o kernels.Buffer, x []kernels.Buffer) error { return d.Gemm(g, o, x[0], x[1]) })
	case affineKernel:
		out := nd.Shape()
		batch, m, n := out[0], out[1], out[2]
		var gs []kernels.Gemm
		for i := 0; i < k.pairs; i++ {
			l := shape(2*i + 1)[1]
			g := kernels.Gemm{Batch: batch, M: m, N: n, K: l, Alpha: 1}
			if k.cm {
				g.TransA = true // Wᵀ x: W (in, out) is the left operand
			}
			if i > 0 {
				g.Beta = 1
			}
			gs = append(gs, g.Strided())
		}
		return p.nStep(nd, in, k.name(), func(o kernels.Buffer, x []kernels.Buffer) error {
			for i, g := range gs {
				a, b := x[2*i], x[2*i+1]
				if k.cm {
					a, b = b, a
				}
				if err := d.Gemm(g, o, a, b); err != nil {
					return err
				}
			}
			return d.BiasAct(o, batch, m, n, k.s, x[2*k.pairs], k.cm, k.act)
		})
	case sumKernel:
		s := shape(0)
		outer, mid, inner := s[0], s[1], s[2]
		if k.axis == 2 {
			outer, mid, inner = s[0]*s[1], s[2], 1
		}
		return p.unaryStep(nd, in, k.name(), func(o, x kernels.Buffer) error { return d.Sum(o, x, outer, mid, inner) })
	case tanhBackKernel:
		return p.nStep(nd, in, k.name(), func(o kernels.Buffer, x []kernels.Buffer) error { return d.TanhBack(o, x[0], x[1]) })
	case tanhBack2Kernel:
		return p.nStep(nd, in, k.name(), func(o kernels.Buffer, x []kernels.Buffer) error { return d.TanhBack2(o, x[0], x[1], x[2]) })
	case im2colKernel:
		c := convOf(k)
		if err := p.unaryStep(nd, in, k.name(), func(o, x kernels.Buffer) error { return d.Im2col(c, o, x) }); err != nil {
			return err
		}
		p.plan[len(p.plan)-1].patches = true
		return nil
	case col2imKernel:
		c := convOf(k.im2col)
		return p.unaryStep(nd, in, k.name(), func(o, x kernels.Buffer) error { return d.Col2im(c, o, x) })
	case flattenKernel:
		trials := shape(0)[0]
		return p.unaryStep(nd, in, k.name(), func(o, x kernels.Buffer) error {
			return d.Flatten(o, x, trials, k.c, k.images, k.p, k.inverse)
		})
	case logSoftmaxKernel:
		s := shape(0)
		return p.unaryStep(nd, in, k.name(), func(o, x kernels.Buffer) error { return d.LogSoftmax(o, x, s[0], s[1]) })
	case tanhJetKernel:
		return p.tanhJetStep(nd, k, in)
	case tanhJetAdjKernel:
		return p.tanhJetAdjStep(nd, k, in)
	case lseJetKernel, lseJetAdjKernel:
		return p.hostStep(nd, k, in)
	case logSoftmaxBackKernel:
		s := shape(0)
		return p.nStep(nd, in, k.name(), func(o kernels.Buffer, x []kernels.Buffer) error { return d.LogSoftmaxBack(o, x[0], x[1], s[0], s[1]) })
	}
	return fmt.Errorf("custom kernel %s has no device mapping", k.name())
}

func convOf(k im2colKernel) kernels.Conv {
	return kernels.Conv{Trials: k.trials, Images: k.images, C: k.c, H: k.h, W: k.w, Size: k.size, Stride: k.stride, Pad: k.pad, CBHW: k.cbhw}
}
