package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseSet(t *testing.T) {
	c, err := ParseSet("good.toml", good, []string{"trials.count=5", "optimizer[0].batch=5", "model[0].inits=[1,2]", "name=other", "seed=9"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Trials.Count != 5 || c.Optimizers[0].Batch != 5 || !slices.Equal(c.Models[0].Inits, []int{1, 2}) || c.Name != "other" || c.Seed != 9 {
		t.Fatalf("overrides not applied: %+v", c)
	}
	// Overrides round-trip: the stored text parses to the same config.
	again, err := Parse("stored", c.Text)
	if err != nil || again.Hash() != c.Hash() || !strings.HasPrefix(c.Text, "# good.toml with --set trials.count=5") {
		t.Fatalf("stored text %q: %v", c.Text, err)
	}
	// No index: every entry.
	if c, err = ParseSet("good.toml", good, []string{"model.inits=[3]"}); err != nil || !slices.Equal(c.Models[0].Inits, []int{3}) {
		t.Fatalf("inits on every model: %v", err)
	}
	// Scaling after overrides still finds the count line.
	if c, err = ParseSet("good.toml", good, []string{"trials.count=10"}); err != nil {
		t.Fatal(err)
	} else if s, err := c.Scaled(5); err != nil || s.Trials.Count != 2 {
		t.Fatalf("scaled: %v %+v", err, s)
	}
}

func TestParseSetErrors(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"trials.cuont=5", `--set trials.cuont=5: unknown key "trials.cuont"; did you mean "count"?`},
		{"trails.count=5", `--set trails.count=5: unknown key "trails.count"; did you mean "trials"?`},
		{"sed=5", `did you mean "seed"?`},
		{"trials.count", "want key=value"},
		{"optimizer[5].batch=2", "the config has 2 [[optimizer]] tables (optimizer[0] to optimizer[1])"},
		{"trials[0].count=2", "[trials] is a single table; write trials.count"},
		{"trials=2", `key "trials" is a table`},
		{"trials.etas=[-1]", `--set trials.etas=[-1] (key "trials.etas"): eta -1 (entry 1) must be positive`},
		{"optimizer[0].batch=3", `--set optimizer[0].batch=3 (key "optimizer[0].batch")`},
		{"trials.count=[1,", "not a TOML value"},
		{"optimizer.reshuffle=true", `--set optimizer.reshuffle=true (key "optimizer[1].reshuffle"): gd is full-batch`},
	} {
		_, err := ParseSet("good.toml", good, []string{tc.set})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("--set %s: got %v, want %q", tc.set, err, tc.want)
		}
	}
}

func TestKnownKeys(t *testing.T) {
	keys := KnownKeys()
	for _, k := range []string{"seed", "trials.count", "model.label", "optimizer.eta_scale", "sharpness.max_probes"} {
		if !slices.Contains(keys, k) {
			t.Errorf("%s missing from %v", k, keys)
		}
	}
}
