package config

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/landscape"
)

func (c *Config) validate() error {
	bad := func(key, format string, a ...any) error {
		return &Error{Key: key, Msg: fmt.Sprintf(format, a...)}
	}
	if strings.TrimSpace(c.Name) == "" {
		return bad("name", "missing; give the run a name, e.g. name = \"quickstart\"")
	}
	if err := c.setDTypes(); err != nil {
		return err
	}
	// An unknown model name is reported below, not as a missing data set.
	if (c.Data.Set != "" || c.NeedsData()) && c.modelsKnown() && !slices.Contains(DataSets, c.Data.Set) {
		return bad("data.set", "%q is not a dataset; use one of %s", c.Data.Set, strings.Join(DataSets, ", "))
	}
	t := c.Trials
	if t.Count < 1 {
		return bad("trials.count", "%d trials; need at least 1", t.Count)
	}
	if t.N < 1 {
		return bad("trials.n", "training-set size %d; need at least 1", t.N)
	}
	if len(t.Etas) == 0 {
		return bad("trials.etas", "empty learning-rate sweep; list at least one eta > 0")
	}
	for i, eta := range t.Etas {
		if !(eta > 0) || math.IsInf(eta, 0) {
			return bad("trials.etas", "eta %v (entry %d) must be positive and finite", eta, i+1)
		}
		if slices.Contains(t.Etas[:i], eta) {
			return bad("trials.etas", "eta %v listed twice; remove the duplicate", eta)
		}
	}
	if len(c.Models) == 0 {
		return bad("model", "no [[model]]; add one, e.g. [[model]] name = \"logistic\" inits = [0]")
	}
	for i, m := range c.Models {
		key := fmt.Sprintf("model[%d]", i)
		if !slices.Contains(nets.Names, m.Name) && !m.IsLandscape() {
			return bad(key+".name", "%q is not a model; use one of %s", m.Name, strings.Join(append(slices.Clone(nets.Names), landscape.Names...), ", "))
		}
		if err := m.checkLandscape(key); err != nil {
			return err
		}
		if err := m.checkSize(key); err != nil {
			return err
		}
		for _, o := range c.Models[:i] {
			if o.Key() == m.Key() {
				if m.Label != "" {
					return bad(key+".label", "model label %q used twice; give each [[model]] a distinct label", m.Label)
				}
				return bad(key+".name", "model %q listed twice; merge the inits into one [[model]], or give each a distinct label", m.Name)
			}
		}
		if len(m.Inits) == 0 {
			return bad(key+".inits", "empty; list at least one initialisation id (0 = zeros, k > 0 = k-th Gaussian draw)")
		}
		for j, id := range m.Inits {
			if id < 0 {
				return bad(key+".inits", "initialisation id %d is negative; use 0 (zeros) or k > 0", id)
			}
			if id == 0 && m.Name == "convnet" && !m.IsLandscape() {
				return bad(key+".inits", "the convnet cannot start from 0 (all zeros: tanh layers get no gradient); use Gaussian draws k > 0")
			}
			if slices.Contains(m.Inits[:j], id) {
				return bad(key+".inits", "initialisation %d listed twice; remove the duplicate", id)
			}
		}
	}
	if len(c.Optimizers) == 0 {
		return bad("optimizer", "no [[optimizer]]; add one, e.g. [[optimizer]] name = \"sgd\" batch = 1 epochs = 1")
	}
	labels := map[string]bool{}
	for i := range c.Optimizers {
		o := &c.Optimizers[i]
		key := fmt.Sprintf("optimizer[%d]", i)
		if o.Label == "" {
			o.Label = o.Name
		}
		if err := o.normalise(key, t.N); err != nil {
			return err
		}
		if labels[o.Label] {
			return bad(key+".label", "optimizer label %q used twice; give each [[optimizer]] a distinct label", o.Label)
		}
		labels[o.Label] = true
		for _, m := range c.Models {
			switch {
			case o.Population && !m.IsLandscape():
				return bad(key+".population", "sde with population = true draws from the data distribution, which only the landscapes have; model %q is an image model: remove population or the model", m.Name)
			case o.Name == "stic" && m.Name != "mean-estimation-l2":
				return bad(key+".name", "stic tunes the l2 coefficient of mean-estimation-l2 and runs on no other model (here %q); use gd, or that model", m.Name)
			}
		}
	}
	if err := c.normaliseTest(); err != nil {
		return err
	}
	if c.Sharpness != nil {
		if err := c.Sharpness.normalise(t.N); err != nil {
			return err
		}
	}
	return nil
}

// modelsKnown reports whether every model name of c is known.
func (c *Config) modelsKnown() bool {
	for _, m := range c.Models {
		if !slices.Contains(nets.Names, m.Name) && !m.IsLandscape() {
			return false
		}
	}
	return true
}

// NeedsData reports whether some model of c is an image model.
func (c *Config) NeedsData() bool {
	for _, m := range c.Models {
		if !m.IsLandscape() {
			return true
		}
	}
	return false
}

// checkLandscape validates the landscape keys h, s and start of m.
func (m Model) checkLandscape(key string) error {
	if !m.IsLandscape() {
		for k, set := range map[string]bool{"h": m.H != 0, "s": m.S != 0, "start": m.Start != nil} {
			if set {
				return &Error{Key: key + "." + k, Msg: fmt.Sprintf("%s applies only to the artificial landscapes (%s); remove it", k, strings.Join(landscape.Names, ", "))}
			}
		}
		return nil
	}
	if !strings.HasPrefix(m.Name, "mean-estimation") {
		for k, set := range map[string]bool{"h": m.H != 0, "s": m.S != 0} {
			if set {
				return &Error{Key: key + "." + k, Msg: fmt.Sprintf("%s applies only to mean-estimation and mean-estimation-l2; remove it", k)}
			}
		}
	}
	if _, err := landscape.New(m.Name, m.Options(), false); err != nil {
		k := key + ".start"
		switch {
		case strings.HasPrefix(m.Name, "mean-estimation") && !(m.H > 0) || math.IsInf(m.H, 0):
			k = key + ".h"
		case strings.HasPrefix(m.Name, "mean-estimation") && !(m.S > 0) || math.IsInf(m.S, 0):
			k = key + ".s"
		}
		return &Error{Key: k, Msg: err.Error()}
	}
	return nil
}

// Options are m's landscape options.
func (m Model) Options() landscape.Options {
	return landscape.Options{H: m.H, S: m.S, Start: m.Start}
}

// normalise checks o against the training-set size n and fills in Batch,
// Epochs and Steps.
func (o *Optimizer) normalise(key string, n int) error {
	bad := func(k, format string, a ...any) error {
		return &Error{Key: key + "." + k, Msg: fmt.Sprintf(format, a...)}
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"batch", o.Batch}, {"epochs", o.Epochs}, {"steps", o.Steps}} {
		if f.v < 0 {
			return bad(f.key, "%s = %d is negative; batch, epochs and steps must be positive (or left out for the defaults)", f.key, f.v)
		}
	}
	if o.Refine != 0 && o.Name != "sde" {
		return bad("refine", "refine applies only to sde; remove it")
	}
	if o.Population && o.Name != "sde" {
		return bad("population", "population applies only to sde; remove it")
	}
	if o.EtaScale < 0 || math.IsNaN(o.EtaScale) || math.IsInf(o.EtaScale, 0) {
		return bad("eta_scale", "eta_scale = %v; use a positive factor (e.g. 0.5 for half the sweep's learning rates)", o.EtaScale)
	}
	switch o.Name {
	case "sgd", "sde":
		if o.Batch == 0 {
			o.Batch = 1
		}
		if n%o.Batch != 0 {
			return bad("batch", "batch size %d %s trials.n = %d; choose a divisor of n%s", o.Batch, notDividing(o.Batch, n), n, divisors(n))
		}
		perEpoch := n / o.Batch
		switch {
		case o.Epochs == 0 && o.Steps == 0:
			o.Epochs = 1
		case o.Steps != 0 && o.Steps%perEpoch != 0:
			return bad("steps", "%d steps is not a whole number of epochs of %d steps (n/batch); set epochs instead", o.Steps, perEpoch)
		case o.Steps != 0 && o.Epochs != 0 && o.Steps != o.Epochs*perEpoch:
			return bad("steps", "steps = %d contradicts epochs = %d (epochs·n/batch = %d); set only one", o.Steps, o.Epochs, o.Epochs*perEpoch)
		case o.Epochs == 0:
			o.Epochs = o.Steps / perEpoch
		}
		o.Steps = o.Epochs * perEpoch
		if o.Name == "sde" {
			if o.Reshuffle {
				return bad("reshuffle", "sde draws Gaussian noise and visits no order; remove the key")
			}
			if o.Refine < 0 {
				return bad("refine", "refine = %d; use a positive number of substeps per SGD step (the paper: 16)", o.Refine)
			}
			if o.Refine == 0 {
				o.Refine = 16
			}
			if n < 2 && !o.Population {
				return bad("name", "sde estimates the gradient covariance from the training points and needs trials.n >= 2 (n = %d), or population = true on a landscape", n)
			}
		}
	case "gd", "gdc", "igr", "smith", "stic":
		if o.Name == "smith" {
			if o.Batch == 0 {
				o.Batch = 1
			}
			if n%o.Batch != 0 {
				return bad("batch", "minibatch size %d of the modified loss %s trials.n = %d; choose a divisor of n%s", o.Batch, notDividing(o.Batch, n), n, divisors(n))
			}
		} else {
			if o.Batch != 0 && o.Batch != n {
				return bad("batch", "%s uses the full batch (n = %d); remove batch or use sgd", o.Name, n)
			}
			o.Batch = n
		}
		if o.Reshuffle {
			return bad("reshuffle", "%s is full-batch and has no order to reshuffle; remove the key", o.Name)
		}
		switch {
		case o.Steps == 0 && o.Epochs == 0:
			return bad("steps", "missing; set the number of full-batch steps, e.g. steps = 10")
		case o.Steps != 0 && o.Epochs != 0 && o.Steps != o.Epochs:
			return bad("steps", "for %s a step is an epoch; steps = %d contradicts epochs = %d", o.Name, o.Steps, o.Epochs)
		case o.Steps == 0:
			o.Steps = o.Epochs
		}
		o.Epochs = o.Steps
		if (o.Name == "gdc" || o.Name == "stic") && n < 2 {
			return bad("name", "%s estimates the gradient covariance and needs trials.n >= 2 training points (n = %d); use gd", o.Name, n)
		}
	default:
		return bad("name", "%q is not an optimizer; use one of %s", o.Name, strings.Join(Optimisers, ", "))
	}
	if err := o.Spec().Check(n); err != nil {
		return bad("name", "%v", err)
	}
	return nil
}

// notDividing says how batch fails to divide n.
func notDividing(batch, n int) string {
	if batch > n {
		return "is larger than"
	}
	return "does not divide"
}

// divisors lists the divisors of n for messages (": 1, 2, 5, 10"), or ""
// when there are too many to list.
func divisors(n int) string {
	var d []string
	for k := 1; k <= n && len(d) <= 12; k++ {
		if n%k == 0 {
			d = append(d, strconv.Itoa(k))
		}
		if k > 1<<20 {
			return ""
		}
	}
	if len(d) > 12 {
		return ""
	}
	return ": " + strings.Join(d, ", ")
}

// setDTypes checks the key dtype (a known dtype, or an array of distinct
// known dtypes) and sets DType and DTypes from it.
func (c *Config) setDTypes() error {
	bad := func(format string, a ...any) error {
		return &Error{Key: "dtype", Msg: fmt.Sprintf(format, a...)}
	}
	v := c.DTypeValue
	if len(v) == 0 && c.DType != "" {
		v = DTypeValue{c.DType} // a Config built in code
	}
	if len(v) == 0 {
		return bad("missing or empty; use one of %s, or an array of them, e.g. dtype = [\"float32\", \"float64\"]", strings.Join(DTypes, ", "))
	}
	for i, d := range v {
		if !slices.Contains(DTypes, d) {
			return bad("%q is not a dtype; use one of %s", d, strings.Join(DTypes, ", "))
		}
		if slices.Contains(v[:i], d) {
			return bad("%q listed twice; list each dtype once", d)
		}
	}
	c.DType, c.DTypes = v[0], nil
	if len(v) > 1 {
		c.DTypes = slices.Clone([]string(v))
	}
	return nil
}
