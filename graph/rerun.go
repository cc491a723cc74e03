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
// assign gives out buffers.
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
	for i, st := range p.plan {
		for _, s := range st.in {
			if dirty[s] {
				dirty[st.out] = true
				p.rerun = append(p.rerun, i)
				break
			}
		}
	}
	for _, i := range p.rerun {
		for _, s := range p.plan[i].in {
			if !dirty[s] {
				s.pinned = true // written by a step that does not rerun
			}
		}
	}
	return nil
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
		b, err := d.Prog.Buffer(d.tangents[i])
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
