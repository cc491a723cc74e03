package graph

import (
	"fmt"

	"github.com/perturb/perturb/nets"
)

// HVPBackend is a DeviceBackend (the walker on the CPU device) whose HVP
// is the hand-written HVPEvaluator (its Grad, Round and the rest are the
// DeviceBackend's). Its products agree with the graph's to rounding (see
// TestHVPEvaluatorMatchesGraph) and, unlike those of a BatchNet, depend
// on neither K nor the number of samples per call through anything but
// the evaluator's fixed chunk and segment sizes.
//
// An HVPBackend is not safe for concurrent use.
type HVPBackend struct {
	*DeviceBackend
	Eval *HVPEvaluator
	rows [][]int
}

// NewHVPBackend returns b with the hand-written HVP over d (the pool b's
// data was uploaded from), evaluated with opts (see HVPOptions). It fails
// for models the evaluator does not support (callers keep b then).
func NewHVPBackend(b *DeviceBackend, d *Data, opts HVPOptions) (*HVPBackend, error) {
	e, err := NewHVPEvaluator(b.Arch, d, opts)
	if err != nil {
		return nil, err
	}
	return &HVPBackend{DeviceBackend: b, Eval: e}, nil
}

// HVP sets out[k] = Σ_n ∇²l(theta[k]; pts[k][n]) · v[k] (see
// HVPEvaluator.HVP; a zero v[k] gives a zero out[k]).
func (h *HVPBackend) HVP(theta [][]float64, pts [][]nets.Sample, v, out [][]float64) error {
	k := len(theta)
	if len(pts) != k {
		return fmt.Errorf("%s: %d parameter vectors but %d sample lists", h.Arch.Name, k, len(pts))
	}
	if cap(h.rows) < k {
		h.rows = make([][]int, k)
	}
	rows := h.rows[:k]
	for i, p := range pts {
		rows[i] = rows[i][:0]
		for _, s := range p {
			rows[i] = append(rows[i], s.Row)
		}
	}
	if err := h.Eval.HVP(theta, rows, v, out); err != nil {
		return fmt.Errorf("hand-written Hessian-vector products: %w", err)
	}
	return nil
}
