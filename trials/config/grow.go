package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// GrowError is the refusal of a config that does not contain a stored
// one's plan: each of Changes is "key: old -> new" for a setting that
// would change trials already stored.
type GrowError struct {
	Old, New string // the configs' paths or names, for the message
	Changes  []string
}

func (e *GrowError) Error() string {
	return fmt.Sprintf("%s does not contain the plan of %s: it changes stored trials:\n  %s",
		e.New, e.Old, strings.Join(e.Changes, "\n  "))
}

// Grows decides whether new's plan contains old's, so that a store of
// old's trials can be grown into a store of new's by running only the
// trials old lacks. A trial's row is a pure function of the config
// settings that determine it and of its identity (model, init, optimiser,
// eta, trial index; see package trials), so new contains old when:
//
//   - seed, name and trials.n are the same (they determine every trial),
//     new's dtypes include old's (new may add a dtype: dtype = "float32"
//     grows into ["float32", "float64"]), and data.set too when old has image models (landscape
//     trials draw no data; data.dir is not part of the config hash);
//   - every model of old (by its key, the label or else the name) is in
//     new with the same settings (name, h, s, start, width, depth) and
//     with at least its inits;
//   - every optimiser of old (by its label) is in new with the same
//     settings (name, batch, epochs, steps, reshuffle, refine, eta_scale,
//     population);
//   - new's etas include old's, and new's trials.count is at least old's;
//   - the [sharpness] tables are the same (or both absent).
//
// new may add etas, inits, models and optimisers, raise trials.count
// (--scale 2 after --scale 4) and list entries in another order. When it
// contains old, Grows returns what it adds in words ("" when the plans
// are the same); otherwise a *GrowError naming each offending key with
// its old and new values.
func Grows(old, new *Config) (added string, err error) {
	var bad, add []string
	change := func(key string, a, b any) {
		bad = append(bad, fmt.Sprintf("%s: %s -> %s", key, showJSON(a), showJSON(b)))
	}
	if old.Seed != new.Seed {
		change("seed", old.Seed, new.Seed)
	}
	// A dtype's trials do not depend on the other dtypes listed (see
	// ForDType): new may add dtypes, in any order.
	var moreDTypes []string
	for _, d := range new.DTypeList() {
		if !slices.Contains(old.DTypeList(), d) {
			moreDTypes = append(moreDTypes, d)
		}
	}
	for _, d := range old.DTypeList() {
		if !slices.Contains(new.DTypeList(), d) {
			change("dtype", dtypeShow(old), dtypeShow(new))
			moreDTypes = nil
			break
		}
	}
	if old.Name != new.Name {
		change("name", old.Name, new.Name)
	}
	if old.Data.Set != new.Data.Set && old.NeedsData() {
		change("data.set", old.Data.Set, new.Data.Set)
	}
	if old.Trials.N != new.Trials.N {
		change("trials.n", old.Trials.N, new.Trials.N)
	}
	switch {
	case new.Trials.Count < old.Trials.Count:
		change("trials.count", old.Trials.Count, new.Trials.Count)
	case new.Trials.Count > old.Trials.Count:
		add = append(add, fmt.Sprintf("trials %d to %d", old.Trials.Count, new.Trials.Count-1))
	}
	var lostEtas, newEtas []float64
	for _, e := range old.Trials.Etas {
		if !slices.Contains(new.Trials.Etas, e) {
			lostEtas = append(lostEtas, e)
		}
	}
	for _, e := range new.Trials.Etas {
		if !slices.Contains(old.Trials.Etas, e) {
			newEtas = append(newEtas, e)
		}
	}
	if len(lostEtas) > 0 {
		bad = append(bad, fmt.Sprintf("trials.etas: %s -> %s (drops %s)", showJSON(old.Trials.Etas), showJSON(new.Trials.Etas), floats(lostEtas)))
	}
	if len(newEtas) > 0 {
		add = append(add, "eta "+floats(newEtas))
	}
	bad, add = growModels(old, new, bad, add)
	bad, add = growOptimizers(old, new, bad, add)
	if old.Trials.Test.Estimator() != new.Trials.Test.Estimator() {
		change("trials.test", old.Trials.Test.Estimator(), new.Trials.Test.Estimator())
	}
	if !reflect.DeepEqual(old.Sharpness, new.Sharpness) {
		change("sharpness", old.Sharpness, new.Sharpness)
	}
	if len(moreDTypes) > 0 {
		add = append(add, "dtype "+strings.Join(moreDTypes, ", "))
	}
	if len(bad) > 0 {
		return "", &GrowError{Old: label(old), New: label(new), Changes: bad}
	}
	return strings.Join(add, ", "), nil
}

// growModels checks new's models against old's by key.
func growModels(old, new *Config, bad, add []string) ([]string, []string) {
	for i, om := range old.Models {
		j := slices.IndexFunc(new.Models, func(m Model) bool { return m.Key() == om.Key() })
		if j < 0 {
			bad = append(bad, fmt.Sprintf("model[%d]: model %q is dropped", i, om.Key()))
			continue
		}
		nm := new.Models[j]
		a, b := om, nm
		a.Inits, b.Inits = nil, nil
		a.Label, b.Label = a.Key(), b.Key() // label "" is the name
		if len(a.Start) == 0 && len(b.Start) == 0 {
			a.Start, b.Start = nil, nil // no start: the origin
		}
		key := fmt.Sprintf("model[%d] (%s)", j, om.Key())
		if !reflect.DeepEqual(a, b) {
			bad = append(bad, diffFields(key, a, b)...)
		}
		var lost, more []int
		for _, id := range om.Inits {
			if !slices.Contains(nm.Inits, id) {
				lost = append(lost, id)
			}
		}
		for _, id := range nm.Inits {
			if !slices.Contains(om.Inits, id) {
				more = append(more, id)
			}
		}
		if len(lost) > 0 {
			bad = append(bad, fmt.Sprintf("%s.inits: %s -> %s (drops %s)", key, showJSON(om.Inits), showJSON(nm.Inits), showJSON(lost)))
		}
		if len(more) > 0 {
			add = append(add, fmt.Sprintf("%s inits %s", om.Key(), showJSON(more)))
		}
	}
	for _, nm := range new.Models {
		if !slices.ContainsFunc(old.Models, func(m Model) bool { return m.Key() == nm.Key() }) {
			add = append(add, "model "+nm.Key())
		}
	}
	return bad, add
}

// growOptimizers checks new's optimisers against old's by label.
func growOptimizers(old, new *Config, bad, add []string) ([]string, []string) {
	for i, oo := range old.Optimizers {
		j := slices.IndexFunc(new.Optimizers, func(o Optimizer) bool { return o.Label == oo.Label })
		if j < 0 {
			bad = append(bad, fmt.Sprintf("optimizer[%d]: optimizer %q is dropped", i, oo.Label))
			continue
		}
		no := new.Optimizers[j]
		a, b := oo, no
		a.EtaScale, b.EtaScale = a.Scale(), b.Scale() // eta_scale 0 is 1
		if !reflect.DeepEqual(a, b) {
			bad = append(bad, diffFields(fmt.Sprintf("optimizer[%d] (%s)", j, oo.Label), a, b)...)
		}
	}
	for _, no := range new.Optimizers {
		if !slices.ContainsFunc(old.Optimizers, func(o Optimizer) bool { return o.Label == no.Label }) {
			add = append(add, "optimizer "+no.Label)
		}
	}
	return bad, add
}

// diffFields lists the fields in which tables a and b differ, as
// "key.field: a -> b", by their canonical JSON form.
func diffFields(key string, a, b any) []string {
	var out []string
	diffValue(&out, key, canonicalOf(a), canonicalOf(b))
	slices.Sort(out)
	return out
}

func canonicalOf(x any) any {
	raw, err := json.Marshal(x)
	if err != nil {
		panic(err) // plain structs always marshal
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		panic(err)
	}
	return v
}

func showJSON(v any) string {
	if reflect.ValueOf(v).Kind() == reflect.Pointer && reflect.ValueOf(v).IsNil() {
		return "(absent)"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func floats(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'g', -1, 64)
	}
	return strings.Join(s, ", ")
}

func label(c *Config) string {
	if c.Path != "" {
		return c.Path
	}
	return "config " + c.Name
}

// dtypeShow is c's dtype as written: a string, or an array for several.
func dtypeShow(c *Config) any {
	if len(c.DTypes) > 0 {
		return c.DTypes
	}
	return c.DType
}
