// Package trials runs the trials a config describes and records one row
// per trial.
//
// # Identity and randomness
//
// A trial is identified by (model, initialisation id, optimiser label, eta,
// trial index) within a config. Its training set is N indices drawn with
// replacement from the pool by the stream seed.TrainSet keyed by (config
// seed, init id, trial index), so every optimiser and learning rate sees
// the same training sets (common random numbers), and its epoch orders
// (with reshuffle) come from seed.Shuffle keyed by (seed, init, trial,
// epoch). A trial's row is therefore a pure function of the config and the
// trial's identity: it does not depend on the number of workers, the order
// trials run in, or which other trials run in the same process.
//
// # Optimisers
//
// SGD with batch size B and E epochs takes T = E·N/B steps
//
//	θ ← θ − η · (1/B) Σ_{n ∈ batch_t} ∇l_n(θ),
//
// where epoch e visits the training set in draw order (e = 0, or every
// epoch without reshuffle) or in a fresh random permutation (e ≥ 1 with
// reshuffle), cut into N/B consecutive disjoint batches. GD is the same
// update with B = N for T steps.
//
// # Measurements
//
// Test loss and accuracy are exact means over the whole pool; train loss
// is the mean loss over the N training points (with multiplicity) at the
// final weights. A trial whose loss or weights become NaN or ±Inf stops and
// is recorded with status "diverged".
package trials

import (
	"fmt"

	"github.com/perturb/perturb/trials/config"
)

// Trial is one trial's identity.
type Trial struct {
	Model string
	Init  int
	Opt   config.Optimizer
	Eta   float64
	Index int
	// DType is the trial's dtype in the plan of a multi-dtype config
	// (config.Config.DTypes); "" in a single-dtype config's, whose dtype
	// is the config's.
	DType string
}

func (t Trial) String() string {
	return fmt.Sprintf("%s init %d %s eta %g trial %d", t.Model, t.Init, t.Opt.Label, t.Eta, t.Index)
}

// Plan lists the trials of c in a canonical order: model, init, trial
// index, optimiser, eta. Trials that share a training set are adjacent.
// A multi-dtype config's plan is the plan of each dtype in turn (in
// DTypes order), its trials marked with their DType.
func Plan(c *config.Config) []Trial {
	if len(c.DTypes) > 1 {
		var out []Trial
		for _, dt := range c.DTypes {
			for _, t := range Plan(c.ForDType(dt)) {
				t.DType = dt
				out = append(out, t)
			}
		}
		return out
	}
	var out []Trial
	for _, m := range c.Models {
		for _, init := range m.Inits {
			for i := 0; i < c.Trials.Count; i++ {
				for _, o := range c.Optimizers {
					for _, eta := range c.Trials.Etas {
						out = append(out, Trial{Model: m.Key(), Init: init, Opt: o, Eta: eta, Index: i})
					}
				}
			}
		}
	}
	return out
}
