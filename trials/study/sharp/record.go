package sharp

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Record is what a trial's row stores in its sharpness column (JSON): the
// measures at initialisation and at the end of training, each on the
// training loss and on the pool loss, as the config asked. A diverged
// trial has no End.
type Record struct {
	Init *Point `json:"init,omitempty"`
	End  *Point `json:"end,omitempty"`
}

// Point is the measures at one point of a trial.
type Point struct {
	// Train is on the trial's training loss (its N points, with
	// multiplicity).
	Train *Measures `json:"train,omitempty"`
	// Pool is on the loss over the evaluation subset of the pool (the
	// same subset for every trial of a run; fresh N(0,1) data for a
	// landscape).
	Pool *Measures `json:"pool,omitempty"`
}

// Num is a float64 that JSON-encodes a non-finite value as null and
// decodes null as NaN.
type Num float64

// MarshalJSON implements json.Marshaler.
func (x Num) MarshalJSON() ([]byte, error) {
	f := float64(x)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return []byte(strconv.FormatFloat(f, 'g', -1, 64)), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (x *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*x = Num(math.NaN())
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("sharpness number %s: %w", b, err)
	}
	*x = Num(f)
	return nil
}

// Measures are the sharpness measures of one loss at one point.
type Measures struct {
	// Samples is the number of samples M the loss averages.
	Samples int `json:"samples"`
	// Lambda are the largest Hessian eigenvalues, descending, present only
	// when Lanczos converged (LanczosConverged).
	Lambda []Num `json:"lambda,omitempty"`
	// Ritz and Bound are Lanczos's last Ritz values and their residual
	// bounds, kept also when it did not converge.
	Ritz  []Num `json:"ritz,omitempty"`
	Bound []Num `json:"bound,omitempty"`
	// LanczosIter is the number of Hessian-vector products Lanczos used.
	LanczosIter      int    `json:"lanczos_iter,omitempty"`
	LanczosConverged bool   `json:"lanczos_converged,omitempty"`
	LanczosError     string `json:"lanczos_error,omitempty"`
	// TrH is tr H (Hutchinson), TrC is tr Ĉ, TrHC is tr(H Ĉ).
	TrH  *Stat `json:"tr_h,omitempty"`
	TrC  *Stat `json:"tr_c,omitempty"`
	TrHC *Stat `json:"tr_hc,omitempty"`
}

// Stat is a stored estimate.
type Stat struct {
	Value  Num `json:"value"`
	StdErr Num `json:"stderr"`
	Probes int `json:"probes"`
	// Converged reports that the target relative standard error was met.
	Converged bool `json:"converged"`
}

func stat(e *Estimate) *Stat {
	if e == nil {
		return nil
	}
	return &Stat{Value: Num(e.Value), StdErr: Num(e.StdErr), Probes: e.Probes, Converged: e.Converged}
}

func nums(x []float64) []Num {
	out := make([]Num, len(x))
	for i, v := range x {
		out[i] = Num(v)
	}
	return out
}

// Stored converts a Result to its stored form.
func (r Result) Stored() *Measures {
	m := &Measures{Samples: r.Samples, TrH: stat(r.TrH), TrC: stat(r.TrC), TrHC: stat(r.TrHC)}
	if e := r.Eigen; e != nil {
		m.Ritz, m.Bound, m.LanczosIter, m.LanczosConverged = nums(e.Ritz), nums(e.Bounds), e.Iterations, e.Converged
		if e.Converged {
			m.Lambda = nums(e.Values)
		} else if e.Err != nil {
			m.LanczosError = e.Err.Error()
		}
	}
	return m
}

// Encode returns r as the JSON a row stores.
func (r *Record) Encode() ([]byte, error) {
	return json.Marshal(r)
}

// Decode parses a row's sharpness column; nil or empty input gives a nil
// Record (the trial was not measured).
func Decode(b []byte) (*Record, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("sharpness %.60q: %w", b, err)
	}
	return &r, nil
}

// Measure names of a Measures value, as the config's sharpness.measures
// lists them and Analyze reports them.
const (
	Lambda = "lambda" // the largest Hessian eigenvalue
	TrH    = "tr_h"
	TrC    = "tr_c"
	TrHC   = "tr_hc"
)

// MeasureNames lists the measures in report order.
var MeasureNames = []string{Lambda, TrH, TrC, TrHC}

// Value returns the named measure (NaN when absent, not converged for
// lambda, or non-finite).
func (m *Measures) Value(name string) float64 {
	if m == nil {
		return math.NaN()
	}
	var s *Stat
	switch name {
	case Lambda:
		if len(m.Lambda) == 0 {
			return math.NaN()
		}
		return float64(m.Lambda[0])
	case TrH:
		s = m.TrH
	case TrC:
		s = m.TrC
	case TrHC:
		s = m.TrHC
	}
	if s == nil {
		return math.NaN()
	}
	return float64(s.Value)
}
