package config

import (
	"fmt"
	"slices"
)

// TestLoss is the key trials.test: how a trial's test loss is measured.
//
//	test = "pool"                                  # default: exact, over the whole pool
//	test = "subset"                                # the subset estimate with DefaultSubset examples
//	test = { subset = 2000, control = "init" }     # the subset estimate, spelled out
//
// The subset estimate of trial t's pool loss L(θ_T) is
//
//	L̂ = L(θ₀) + (1/M) Σ_{x ∈ S_t} [l_x(θ_T) − l_x(θ₀)]          (control = "init")
//	L̂ = (1/M) Σ_{x ∈ S_t} l_x(θ_T)                                 (control = "none")
//
// where S_t is M pool examples drawn uniformly with replacement from the
// trial's own stream (trials.TestSubset), and L(θ₀) is the exact pool
// loss of the initialisation. Each l_x term has expectation L over the
// draw, so L̂ is unbiased for the trial's exact pool loss; the control
// variate removes from the subset noise the part shared with θ₀, whose
// mean is known exactly. The accuracy is estimated the same way.
type TestLoss struct {
	// Subset is M, the examples of a trial's subset (0 in the canonical
	// form of "pool").
	Subset int `toml:"subset" json:"subset"`
	// Control is "init" (the control variate at θ₀) or "none".
	Control string `toml:"control" json:"control"`

	pool bool // written as "pool": normalised to a nil *TestLoss
}

// DefaultSubset is M when trials.test = "subset" does not give it.
// Measured on the Fashion-MNIST panels (docs/statistics.md, "Subset
// estimates of the test loss"), the best M is about 900–1,400 for the
// convnet at the paper's learning rates and about 2,500 for the logistic
// model, and the effective speed-up is flat around it: 2,000 gives
// within about 10% of the best for both, while adding 15–32% (convnet)
// and 27% (logistic) to the trial-to-trial variance.
const DefaultSubset = 2000

// Controls are the known values of trials.test.control.
var Controls = []string{"init", "none"}

// UnmarshalTOML decodes "pool", "subset" or an inline table.
func (t *TestLoss) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		switch v {
		case "pool":
			*t = TestLoss{pool: true}
		case "subset":
			*t = TestLoss{Subset: DefaultSubset, Control: "init"}
		default:
			return fmt.Errorf("trials.test = %q is not known; use \"pool\", \"subset\" or { subset = %d, control = \"init\" }", v, DefaultSubset)
		}
		return nil
	case map[string]any:
		for k, x := range v {
			switch k {
			case "subset":
				n, ok := x.(int64)
				if !ok {
					return fmt.Errorf("trials.test.subset = %v is not a whole number; give the examples per trial, e.g. subset = %d", x, DefaultSubset)
				}
				t.Subset = int(n)
				if n != int64(t.Subset) || n < 1 {
					return fmt.Errorf("trials.test.subset = %d; give a positive number of examples per trial, e.g. subset = %d", n, DefaultSubset)
				}
			case "control":
				s, ok := x.(string)
				if !ok {
					return fmt.Errorf("trials.test.control = %v is not a string; use %s", x, quoted(Controls))
				}
				t.Control = s
			default:
				return fmt.Errorf("trials.test has no key %q; its keys are subset and control", k)
			}
		}
		if t.Subset == 0 {
			t.Subset = DefaultSubset
		}
		if t.Control == "" {
			t.Control = "init"
		}
		return nil
	}
	return fmt.Errorf("trials.test = %v (%T); use \"pool\", \"subset\" or { subset = %d, control = \"init\" }", v, v, DefaultSubset)
}

// normaliseTest checks trials.test and turns "pool" into nil, so that a
// config saying test = "pool" has the hash of one without the key.
func (c *Config) normaliseTest() error {
	t := c.Trials.Test
	if t == nil {
		return nil
	}
	if t.pool {
		c.Trials.Test = nil
		return nil
	}
	if !slices.Contains(Controls, t.Control) {
		return &Error{Key: "trials.test.control", Msg: fmt.Sprintf("%q is not known; use %s", t.Control, quoted(Controls))}
	}
	if t.Subset < 1 {
		return &Error{Key: "trials.test.subset", Msg: fmt.Sprintf("subset = %d; give a positive number of examples per trial, e.g. subset = %d", t.Subset, DefaultSubset)}
	}
	for i, m := range c.Models {
		if m.IsLandscape() {
			return &Error{Key: "trials.test", Msg: fmt.Sprintf("a subset estimate of the test loss needs an image model, but model[%d] %q is a landscape, whose test loss is exact and cheap; remove trials.test", i, m.Name)}
		}
	}
	return nil
}

// Estimator names the test-loss estimator in results: "pool", or
// "subset:M" ("subset:M:none" without the control variate).
func (t *TestLoss) Estimator() string {
	switch {
	case t == nil:
		return "pool"
	case t.Control == "none":
		return fmt.Sprintf("subset:%d:none", t.Subset)
	}
	return fmt.Sprintf("subset:%d", t.Subset)
}
