package graph

import (
	"fmt"
	"math"
	"slices"

	G "gorgonia.org/gorgonia"

	"github.com/perturb/perturb/kernels"
)

// Partial re-execution. A Hessian-vector product is repeated at the same
// parameters and samples with new directions (Lanczos, power iteration,
// Hutchinson): only the steps downstream of the tangent inputs need to
// run again, the primal values (the forward pass, the loss reverse and
// the adjoints of the tangents, none of which depends on the direction)
// being those of the previous run. CompileRerun marks those steps and
// keeps every value they read from the other steps in a buffer of its own,
// so that no step of a run overwrites it; Rerun runs the marked steps
// alone. The marked steps are the same calls on the same values as in a
// full run, so a rerun's results are bitwise those of a full run.

// CompileRerun is Compile for a program that can also be rerun (Rerun)
// after new values of the inputs changed only (nodes of n's graph: the
// tangents of a BatchHVP net). The values that the steps depending on
// changed read from the other steps get buffers of their own, so the
// program allocates more than Compile's.
func (n *BatchNet) CompileRerun(dev kernels.Device, changed []*G.Node, outs ...*G.Node) (*Program, error) {
	if len(changed) == 0 {
		return nil, fmt.Errorf("device program of %s (%s, K=%d, B=%d): no changed inputs to rerun for", n.Arch.Name, n.Kind, n.K, n.B)
	}
	return compileProgram(n.g, fmt.Sprintf("%s (%s, K=%d, B=%d)", n.Arch.Name, n.Kind, n.K, n.B), dev, changed, outs)
}

// planRerun marks the steps that depend on the inputs changed (p.rerun)
// and pins the slots that those steps read but other steps write, before
// assign gives out buffers. The patch matrices (im2col) that the marked
// steps read are recomputed by the rerun from the maps or images they
// are taken from, which it keeps instead: those are several times
// smaller, and the patches of a chunk stay in the caches between the
// im2col and the products that read them.
func (p *Program) planRerun(changed []*G.Node) error {
	dirty := map[*slot]bool{}
	for _, c := range changed {
		s, ok := p.slots[c.ID()]
		if !ok || c.Op() != nil {
			return fmt.Errorf("rerun: node %d (%v) is not an input of the program", c.ID(), c.Op())
		}
		dirty[s] = true
	}
	p.rerun = []int{}
	read := map[*slot]bool{} // read by a marked step
	for i, st := range p.plan {
		for _, s := range st.in {
			if dirty[s] {
				dirty[st.out] = true
				p.rerun = append(p.rerun, i)
				for _, s := range st.in {
					read[s] = true
				}
				break
			}
		}
	}
	for i, st := range p.plan {
		if st.patches && !dirty[st.out] && read[st.out] {
			dirty[st.out] = true
			p.rerun = append(p.rerun, i)
		}
	}
	slices.Sort(p.rerun)
	kept := map[*slot]bool{}
	for _, i := range p.rerun {
		for _, s := range p.plan[i].in {
			if !dirty[s] {
				s.pinned = true               // written by a step that does not rerun, or an input
				if s.buf == nil && !kept[s] { // not a constant filled at compile time
					kept[s] = true
					p.banked = append(p.banked, s)
				}
			}
		}
	}
	return nil
}

// A Bank holds the values of a program that a rerun reads from the full
// run before it: the inputs other than the changed ones (parameters,
// samples) and the kept values (Program.planRerun). One program serves
// several points (a trial's chunks of samples, say) with a bank each:
// UseBank points the program at a bank, after which a Run fills it and a
// Rerun reads it; the other buffers are the program's, shared by the
// banks.
type Bank struct {
	dev  kernels.Device
	bufs []kernels.Buffer
}

// BankElements is the number of elements of a bank of p.
func (p *Program) BankElements() int64 {
	var n int64
	for _, s := range p.banked {
		n += int64(s.n)
	}
	return n
}

// NewBank allocates a bank for p on p's device.
func (p *Program) NewBank() (*Bank, error) {
	if p.rerun == nil {
		return nil, fmt.Errorf("bank of a program compiled without changed inputs")
	}
	b := &Bank{dev: p.dev}
	for _, s := range p.banked {
		buf, err := p.dev.Alloc(s.n)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("bank of %d elements: %w", p.BankElements(), err)
		}
		b.bufs = append(b.bufs, buf)
	}
	return b, nil
}

// UseBank points p's banked values at b, or back at p's own buffers for
// b nil.
func (p *Program) UseBank(b *Bank) {
	if p.own == nil {
		for _, s := range p.banked {
			p.own = append(p.own, s.buf)
		}
	}
	if b != nil && len(b.bufs) != len(p.banked) {
		panic(fmt.Sprintf("graph: a bank of %d buffers for a program of %d", len(b.bufs), len(p.banked)))
	}
	for i, s := range p.banked {
		s.buf = p.own[i]
		if b != nil {
			s.buf = b.bufs[i]
		}
		s.phys = s.buf
	}
}

// Close frees the bank's buffers.
func (b *Bank) Close() error {
	var first error
	for _, buf := range b.bufs {
		if err := b.dev.Free(buf); err != nil && first == nil {
			first = err
		}
	}
	b.bufs = nil
	return first
}

// Rerun executes the steps that depend on the changed inputs given to
// CompileRerun, on the device buffers as they are: after a Run (or
// Rerun) whose other inputs held the values they hold now, it computes
// what Run would, bitwise.
func (p *Program) Rerun() error {
	if p.rerun == nil {
		return fmt.Errorf("rerun of a program compiled without changed inputs")
	}
	for _, i := range p.rerun {
		if err := p.steps[i](); err != nil {
			return err
		}
	}
	return nil
}

// Reruns is the number of steps Rerun executes (of len(Ops()) in all).
func (p *Program) Reruns() int { return len(p.rerun) }

// uploadTangents uploads the stacked directions v into the tangent
// inputs (the samples and parameters staying as they are).
func (d *DeviceNet) uploadTangents(v [][]float64) error {
	for i, p := range d.Arch.Params {
		b, err := d.Prog.Buffer(d.dirs[i])
		if err != nil {
			return err
		}
		off, size := d.offsets[i], p.Size()
		for k, x := range v {
			if err := d.data.Dev.Upload(b, k*size, x[off:off+size]); err != nil {
				return fmt.Errorf("upload direction of %s: %w", p.Name, err)
			}
		}
	}
	return nil
}

// keep records theta and rows as the point of the primal values in the
// program's buffers.
func (d *DeviceNet) keep(theta [][]float64, rows [][]int) {
	if len(d.theta) != len(theta) {
		d.theta, d.rows = make([][]float64, len(theta)), make([][]int, len(rows))
	}
	for k := range theta {
		d.theta[k] = append(d.theta[k][:0], theta[k]...)
		d.rows[k] = append(d.rows[k][:0], rows[k]...)
	}
	d.primal = true
}

// sameVecs reports whether a and b hold bitwise the same values (a NaN
// equals the same NaN, 0 and −0 differ).
func sameVecs(a, b [][]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if len(a[k]) != len(b[k]) {
			return false
		}
		for i, x := range a[k] {
			if math.Float64bits(x) != math.Float64bits(b[k][i]) {
				return false
			}
		}
	}
	return true
}

// sameRows reports whether a and b are the same rows.
func sameRows(a, b [][]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !slices.Equal(a[k], b[k]) {
			return false
		}
	}
	return true
}
