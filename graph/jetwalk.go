package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// The jets on a kernels.Device: the graphs that Jets builds for the
// TapeMachine are compiled by the walker (compileGraph) instead, so the
// same graph, not a second model, runs on the device. The jet ops map as
// follows:
//
//   - tanhJetKernel of order 0 is Device.Unary(Tanh); of order k ≥ 1, the
//     coefficients z_0..z_k are copied into a coefficient-major scratch
//     (zeros where the mask has none), Device.TanhJet computes t_0..t_k and
//     t_k is copied out;
//   - the reverse sweeps (tanhJetAdjKernel) and the log-sum-exp series
//     (lseJetKernel, lseJetAdjKernel, on the (K, B, C) logits only) run on
//     the host: their inputs are downloaded, the kernel runs in float64 and
//     its output is uploaded (hostStep). On the CPU device this is a copy;
//     on a GPU these steps cost transfers, and device kernels for them are
//     left to do.
//
// Everything else in a jet graph (affine layers and their adjoints,
// im2col, flattening, sums, products with the weights) is mapped as in a
// BatchNet's program.

// NewDeviceJets is NewJets with graphs compiled for dev by the walker
// (Program) instead of gorgonia's TapeMachine; dev's dtype must be dt's.
// The coefficients and covectors are those of NewJets up to rounding.
func NewDeviceJets(arch *nets.Arch, dt tensor.Dtype, d *Data, k, b int, dev kernels.Device) (*Jets, error) {
	want := kernels.F64
	if dt == tensor.Float32 {
		want = kernels.F32
	}
	if dev.DType() != want {
		return nil, fmt.Errorf("jets of %s: %v device (%s) for %v jets", arch.Name, dev.DType(), dev.Name(), dt)
	}
	j, err := NewJets(arch, dt, d, k, b)
	if err != nil {
		return nil, err
	}
	j.dev = dev
	return j, nil
}

// jetDevice is a jet graph's program and its host side: the inputs'
// tensors (the nodes' bound values, which load fills) and host copies of
// the outputs.
type jetDevice struct {
	prog   *Program
	inputs G.Nodes
	out    map[int64]*tensor.Dense
	tmp    []float64
}

// compileOn compiles jg's outputs for dev.
func (jg *jetGraph) compileOn(dev kernels.Device) error {
	j := jg.j
	what := fmt.Sprintf("jets of %s (%v, K=%d, B=%d, order %d)", j.Arch.Name, j.DType, j.K, j.B, jg.order)
	prog, err := compileGraph(jg.g, what, dev, jg.outs...)
	if err != nil {
		return err
	}
	dv := &jetDevice{prog: prog, inputs: jg.g.ExactSubgraphRoots(jg.outs...).Inputs(), out: map[int64]*tensor.Dense{}}
	for _, o := range jg.outs {
		dv.out[o.ID()] = tensor.New(tensor.Of(j.DType), tensor.WithShape(o.Shape().Clone()...))
	}
	jg.dv = dv
	return nil
}

// run uploads the inputs, runs the program and downloads the outputs.
func (dv *jetDevice) run() error {
	dev := dv.prog.dev
	for _, n := range dv.inputs {
		b, err := dv.prog.Buffer(n)
		if err != nil {
			return err
		}
		t, err := value(n)
		if err != nil {
			return err
		}
		switch x := t.Data().(type) {
		case []float64:
			err = dev.Upload(b, 0, x)
		case []float32:
			err = dev.Upload32(b, 0, x)
		}
		if err != nil {
			return fmt.Errorf("upload %s: %w", n.Name(), err)
		}
	}
	if err := dv.prog.Run(); err != nil {
		return err
	}
	for id, t := range dv.out {
		b, err := dv.prog.Buffer(dv.prog.g.Node(id).(*G.Node))
		if err != nil {
			return err
		}
		if x, ok := t.Data().([]float64); ok {
			err = dev.Download(x, b, 0)
		} else {
			dv.tmp = append(dv.tmp[:0], make([]float64, t.Shape().TotalSize())...)
			if err = dev.Download(dv.tmp, b, 0); err == nil {
				setVec(t, 0, dv.tmp)
			}
		}
		if err != nil {
			return fmt.Errorf("download: %w", err)
		}
	}
	return nil
}

// value is the value of output n of jg after a run.
func (jg *jetGraph) value(n *G.Node) (*tensor.Dense, error) {
	if jg.dv == nil {
		return value(n)
	}
	t, ok := jg.dv.out[n.ID()]
	if !ok {
		return nil, fmt.Errorf("node %v is not an output of the jet program", n)
	}
	return t, nil
}

// tanhJetStep maps a tanhJetKernel to Device.Unary(Tanh) (order 0) or
// Device.TanhJet on a coefficient-major scratch (the program's jetScratch).
func (p *Program) tanhJetStep(nd *G.Node, k tanhJetKernel, in []*G.Node) error {
	if k.k == 0 {
		return p.unaryStep(nd, in, k.name(), func(o, x kernels.Buffer) error { return p.dev.Unary(kernels.Tanh, o, x) })
	}
	n := nd.Shape().TotalSize()
	coef := []int{0} // the coefficient of each input
	for i := 1; i <= k.k; i++ {
		if k.mask.has(i) {
			coef = append(coef, i)
		}
	}
	if len(coef) != len(in) {
		return fmt.Errorf("%s: %d inputs", k.name(), len(in))
	}
	size := (k.k + 1) * n
	p.scratch.n = max(p.scratch.n, size)
	return p.nStep(nd, in, k.name(), func(o kernels.Buffer, x []kernels.Buffer) error {
		z, t, err := p.scratch.views(p, size)
		if err != nil {
			return err
		}
		if err := p.dev.Fill(z, 0); err != nil {
			return err
		}
		for i, b := range x {
			if err := p.dev.Copy(z, coef[i]*n, b, 0, n); err != nil {
				return err
			}
		}
		if err := p.dev.TanhJet(t, z, k.k, n); err != nil {
			return err
		}
		return p.dev.Copy(o, 0, t, k.k*n, n)
	})
}

// jetScratch is the two coefficient-major buffers of a program's tanh jet
// steps (steps run one at a time, so one pair serves all), of n elements
// each, allocated on first use.
type jetScratch struct {
	n    int
	z, t kernels.Buffer
}

// views returns views of size elements of the scratch buffers.
func (s *jetScratch) views(p *Program, size int) (z, t kernels.Buffer, err error) {
	if s.z == nil {
		for _, b := range []*kernels.Buffer{&s.z, &s.t} {
			if *b, err = p.dev.Alloc(s.n); err != nil {
				return nil, nil, fmt.Errorf("alloc %d elements: %w", s.n, err)
			}
			p.owned = append(p.owned, *b)
			p.elements += int64(s.n)
		}
	}
	if z, err = p.dev.View(s.z, size); err != nil {
		return nil, nil, err
	}
	t, err = p.dev.View(s.t, size)
	return z, t, err
}

// hostStep runs kernel k on the host: its inputs are downloaded, it runs
// in float64, and its output is uploaded (converted to the device's
// dtype).
func (p *Program) hostStep(nd *G.Node, k kernel, in []*G.Node) error {
	ins := make([]*tensor.Dense, len(in))
	for i, c := range in {
		ins[i] = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(c.Shape().Clone()...))
	}
	out := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(nd.Shape().Clone()...))
	return p.nStep(nd, in, "host "+k.name(), func(o kernels.Buffer, x []kernels.Buffer) error {
		for i, b := range x {
			if err := p.dev.Download(ins[i].Data().([]float64), b, 0); err != nil {
				return err
			}
		}
		if err := k.run(out, ins); err != nil {
			return err
		}
		return p.dev.Upload(o, 0, out.Data().([]float64))
	})
}
