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
//   - the reverse sweeps of tanh (tanhJetAdjKernel) are products of the
//     output adjoint with the coefficients of q = 1 − y² (tanhJetAdjStep:
//     TanhJet, TanhBack, TanhBack2 and elementwise products);
//   - the log-sum-exp series and its reverse sweeps (lseJetKernel,
//     lseJetAdjKernel, on the (K, B, C) logits only) run on the host: their
//     inputs are downloaded, the kernel runs in float64 and its output is
//     uploaded (hostStep). On the CPU device this is a copy; on a GPU these
//     steps cost small transfers (K·B·C values per coefficient), and a
//     device kernel for them is left to do.
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

// jetDevice is a jet graph's program and its host side. The inputs that
// change from call to call (the samples, θ, the directions, the weights)
// are uploaded straight from the caller's float64 values and the pool
// (run), skipping the graph's host tensors; the others (zero biases) once,
// at compilation. Outputs are downloaded into float64 host tensors.
type jetDevice struct {
	prog *Program
	out  map[int64]*tensor.Dense
}

// compileOn compiles jg's outputs for dev.
func (jg *jetGraph) compileOn(dev kernels.Device) error {
	j := jg.j
	what := fmt.Sprintf("jets of %s (%v, K=%d, B=%d, order %d)", j.Arch.Name, j.DType, j.K, j.B, jg.order)
	prog, err := compileGraph(jg.g, what, dev, jg.outs...)
	if err != nil {
		return err
	}
	dv := &jetDevice{prog: prog, out: map[int64]*tensor.Dense{}}
	for _, o := range jg.outs {
		dv.out[o.ID()] = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(o.Shape().Clone()...))
	}
	perCall := map[*G.Node]bool{jg.x: true, jg.w: true, jg.wy: true}
	for _, n := range append(append([]*G.Node{}, jg.params...), jg.dirs...) {
		perCall[n] = true
	}
	for _, n := range jg.g.ExactSubgraphRoots(jg.outs...).Inputs() {
		if !perCall[n] {
			if err := dv.uploadTensor(n); err != nil {
				prog.Close()
				return err
			}
		}
	}
	jg.dv = dv
	return nil
}

// uploadTensor uploads input n's bound host value.
func (dv *jetDevice) uploadTensor(n *G.Node) error {
	if n == nil {
		return nil
	}
	b, err := dv.prog.Buffer(n)
	if err != nil {
		return nil // not read by the compiled outputs
	}
	t, err := value(n)
	if err != nil {
		return err
	}
	switch x := t.Data().(type) {
	case []float64:
		err = dv.prog.dev.Upload(b, 0, x)
	case []float32:
		err = dv.prog.dev.Upload32(b, 0, x)
	}
	if err != nil {
		return fmt.Errorf("upload %s: %w", n.Name(), err)
	}
	return nil
}

// upload uploads the call's samples (rows of the pool), θ (converted once,
// then copied on the device to the other K−1 trials), the directions and
// the weights.
func (dv *jetDevice) upload(jg *jetGraph, theta []float64, dirs [][]float64) error {
	j, d, dev := jg.j, jg.j.Data, dv.prog.dev
	xb, err := dv.prog.Buffer(jg.x)
	if err != nil {
		return err
	}
	for i, r := range j.rows {
		if d.X32 != nil {
			err = dev.Upload32(xb, i*d.Dim, d.X32[r*d.Dim:(r+1)*d.Dim])
		} else {
			err = dev.Upload(xb, i*d.Dim, d.X64[r*d.Dim:(r+1)*d.Dim])
		}
		if err != nil {
			return fmt.Errorf("upload the samples: %w", err)
		}
	}
	for i, p := range j.Arch.Params {
		off, size := j.offsets[i], p.Size()
		pb, err := dv.prog.Buffer(jg.params[i])
		if err != nil {
			continue // a parameter the outputs do not read
		}
		if err := dev.Upload(pb, 0, theta[off:off+size]); err != nil {
			return fmt.Errorf("upload %s: %w", p.Name, err)
		}
		for k := 1; k < j.K; k++ {
			if err := dev.Copy(pb, k*size, pb, 0, size); err != nil {
				return fmt.Errorf("replicate %s: %w", p.Name, err)
			}
		}
		if jg.dirs == nil {
			continue
		}
		vb, err := dv.prog.Buffer(jg.dirs[i])
		if err != nil {
			continue
		}
		for k := range j.K {
			if err := dev.Upload(vb, k*size, dirs[k][off:off+size]); err != nil {
				return fmt.Errorf("upload the direction of %s: %w", p.Name, err)
			}
		}
	}
	if err := dv.uploadTensor(jg.w); err != nil {
		return err
	}
	return dv.uploadTensor(jg.wy)
}

// run uploads the inputs, runs the program and downloads the outputs.
func (dv *jetDevice) run(jg *jetGraph, theta []float64, dirs [][]float64) error {
	if err := dv.upload(jg, theta, dirs); err != nil {
		return err
	}
	if err := dv.prog.Run(); err != nil {
		return err
	}
	for id, t := range dv.out {
		b, err := dv.prog.Buffer(dv.prog.g.Node(id).(*G.Node))
		if err != nil {
			return err
		}
		if err := dv.prog.dev.Download(t.Data().([]float64), b, 0); err != nil {
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

// coefficients returns the coefficient of each input of k: z_0, then the
// non-zero z_n of its mask.
func (k tanhJetKernel) coefficients() []int {
	coef := []int{0}
	for i := 1; i <= k.k; i++ {
		if k.mask.has(i) {
			coef = append(coef, i)
		}
	}
	return coef
}

// tanhJetStep maps a tanhJetKernel to Device.Unary(Tanh) (order 0) or
// Device.TanhJet on the program's coefficient-major scratch.
func (p *Program) tanhJetStep(nd *G.Node, k tanhJetKernel, in []*G.Node) error {
	if k.k == 0 {
		return p.unaryStep(nd, in, k.name(), func(o, x kernels.Buffer) error { return p.dev.Unary(kernels.Tanh, o, x) })
	}
	n := nd.Shape().TotalSize()
	coef := k.coefficients()
	if len(coef) != len(in) {
		return fmt.Errorf("%s: %d inputs", k.name(), len(in))
	}
	p.scratch.need(k.k, n)
	return p.nStep(nd, in, k.name(), func(o kernels.Buffer, x []kernels.Buffer) error {
		t, err := p.scratch.series(p, k.k, n, coef, x)
		if err != nil {
			return err
		}
		return p.dev.Copy(o, 0, t, k.k*n, n)
	})
}

// tanhJetAdjStep maps a tanhJetAdjKernel to device kernels. Since
// ∂y(t)/∂z_i = tanh'(z(t))·t^i = q(t)·t^i with q = 1 − y², the adjoint of
// input z_i of the output adjoint g = ȳ_k is g·q_{k−i}, where
//
//	q_0 = 1 − y_0²,  q_1 = −2 y_0 y_1,  q_2 = −2 y_0 y_2 − y_1²,  q_3 = −2 (y_0 y_3 + y_1 y_2),
//
// so that, with y_0..y_{k−i} from Device.TanhJet (only z_0..z_{k−i}
// matter), TanhBack (g·q_0) and TanhBack2 (−2 a ⊙ b ⊙ g) give every case.
func (p *Program) tanhJetAdjStep(nd *G.Node, k tanhJetAdjKernel, in []*G.Node) error {
	n := nd.Shape().TotalSize()
	coef := k.coefficients()
	if len(coef)+1 != len(in) || k.wrt >= len(coef) {
		return fmt.Errorf("%s: %d inputs", k.name(), len(in))
	}
	m := k.k - coef[k.wrt]
	p.scratch.need(m, n)
	d := p.dev
	return p.nStep(nd, in, k.name(), func(o kernels.Buffer, x []kernels.Buffer) error {
		g := x[len(x)-1]
		var zs []kernels.Buffer
		var cs []int
		for i, c := range coef {
			if c <= m {
				zs, cs = append(zs, x[i]), append(cs, c)
			}
		}
		y, tmp, err := p.scratch.coeffs(p, m, n, cs, zs)
		if err != nil {
			return err
		}
		switch m {
		case 0:
			return d.TanhBack(o, y[0], g)
		case 1:
			return d.TanhBack2(o, y[0], y[1], g)
		case 2: // −2 y_0 y_2 g − y_1² g
			if err := d.TanhBack2(tmp[0], y[0], y[2], g); err != nil {
				return err
			}
			if err := d.Binary(kernels.Mul, tmp[1], y[1], y[1]); err != nil {
				return err
			}
			if err := d.Binary(kernels.Mul, y[1], tmp[1], g); err != nil {
				return err
			}
			return d.Binary(kernels.Sub, o, tmp[0], y[1])
		}
		if err := d.TanhBack2(tmp[0], y[0], y[3], g); err != nil {
			return err
		}
		if err := d.TanhBack2(tmp[1], y[1], y[2], g); err != nil {
			return err
		}
		return d.Binary(kernels.Add, o, tmp[0], tmp[1])
	})
}

// jetScratch is the scratch of a program's tanh jet steps (steps run one
// at a time, so one set serves all), allocated on first use: the
// coefficient-major series z and t of (order+1)·elements, and jetOrder+3
// buffers of one coefficient's elements (y_0..y_3 and two temporaries).
type jetScratch struct {
	n, e int // the largest series and coefficient
	z, t kernels.Buffer
	c    [jetOrder + 3]kernels.Buffer
}

// need records a step's series of order k of e elements per coefficient.
func (s *jetScratch) need(k, e int) {
	s.n, s.e = max(s.n, (k+1)*e), max(s.e, e)
}

func (s *jetScratch) alloc(p *Program) error {
	if s.z != nil {
		return nil
	}
	bufs := []*kernels.Buffer{&s.z, &s.t}
	for i := range s.c {
		bufs = append(bufs, &s.c[i])
	}
	for i, b := range bufs {
		size := s.e
		if i < 2 {
			size = s.n
		}
		var err error
		if *b, err = p.dev.Alloc(size); err != nil {
			return fmt.Errorf("alloc %d elements: %w", size, err)
		}
		p.owned = append(p.owned, *b)
		p.elements += int64(size)
	}
	return nil
}

// series sets the scratch z to the coefficient-major series of order k of
// e elements per coefficient, from the buffers x of coefficients coef
// (zeros for the others), runs Device.TanhJet on it and returns t (a view
// of (k+1)·e elements).
func (s *jetScratch) series(p *Program, k, e int, coef []int, x []kernels.Buffer) (kernels.Buffer, error) {
	if err := s.alloc(p); err != nil {
		return nil, err
	}
	z, err := p.dev.View(s.z, (k+1)*e)
	if err != nil {
		return nil, err
	}
	t, err := p.dev.View(s.t, (k+1)*e)
	if err != nil {
		return nil, err
	}
	if err := p.dev.Fill(z, 0); err != nil {
		return nil, err
	}
	for i, b := range x {
		if err := p.dev.Copy(z, coef[i]*e, b, 0, e); err != nil {
			return nil, err
		}
	}
	return t, p.dev.TanhJet(t, z, k, e)
}

// coeffs returns y_0..y_k of tanh(z(t)) (series) as separate buffers of e
// elements, and two temporaries of e elements.
func (s *jetScratch) coeffs(p *Program, k, e int, coef []int, x []kernels.Buffer) (y []kernels.Buffer, tmp [2]kernels.Buffer, err error) {
	t, err := s.series(p, k, e, coef, x)
	if err != nil {
		return nil, tmp, err
	}
	views := make([]kernels.Buffer, len(s.c))
	for i, b := range s.c {
		if views[i], err = p.dev.View(b, e); err != nil {
			return nil, tmp, err
		}
	}
	for j := 0; j <= k; j++ {
		if err := p.dev.Copy(views[j], 0, t, j*e, e); err != nil {
			return nil, tmp, err
		}
	}
	return views[:jetOrder+1], [2]kernels.Buffer{views[jetOrder+1], views[jetOrder+2]}, nil
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
