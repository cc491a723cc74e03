package config

import (
	"strings"
	"testing"
)

func TestTrialsTest(t *testing.T) {
	const base = `name = "t"
seed = 1
dtype = "float32"
[data]
set = "fashion-mnist"
[trials]
count = 2
n = 4
etas = [0.1]
%s
[[model]]
name = "logistic"
inits = [0]
[[optimizer]]
name = "sgd"
batch = 1
epochs = 1
`
	plain, err := Parse("plain.toml", strings.Replace(base, "%s", "", 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line, est, err string
		samePlainHash  bool
	}{
		{line: `test = "pool"`, est: "pool", samePlainHash: true},
		{line: `test = "subset"`, est: "subset:2000"},
		{line: `test = { subset = 500 }`, est: "subset:500"},
		{line: `test = { subset = 500, control = "init" }`, est: "subset:500"},
		{line: `test = { subset = 300, control = "none" }`, est: "subset:300:none"},
		{line: `test = "subsets"`, err: `"subsets" is not known; use "pool", "subset"`},
		{line: `test = { subset = 0 }`, err: "subset = 0; give a positive number"},
		{line: `test = { subset = 2.5 }`, err: "not a whole number"},
		{line: `test = { subset = 10, control = "end" }`, err: `"end" is not known; use "init", "none"`},
		{line: `test = { size = 10 }`, err: `trials.test has no key "size"`},
		{line: `test = 3`, err: `use "pool", "subset"`},
	} {
		c, err := Parse("c.toml", strings.Replace(base, "%s", tc.line, 1))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "c.toml") {
				t.Errorf("%s: error %v, want one naming c.toml with %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		if got := c.Trials.Test.Estimator(); got != tc.est {
			t.Errorf("%s: estimator %q, want %q", tc.line, got, tc.est)
		}
		if same := c.Hash() == plain.Hash(); same != tc.samePlainHash {
			t.Errorf("%s: same hash as without the key = %v, want %v", tc.line, same, tc.samePlainHash)
		}
	}
	// A landscape has an exact test loss: the subset is refused.
	land := strings.Replace(strings.Replace(base, "%s", `test = "subset"`, 1), `name = "logistic"`, `name = "gauss"`, 1)
	if _, err := Parse("l.toml", land); err == nil || !strings.Contains(err.Error(), "landscape") {
		t.Errorf("subset on a landscape: %v, want a refusal naming the landscape", err)
	}
	// Changing the estimator does not grow a sweep: stored rows would mix.
	sub, _ := Parse("s.toml", strings.Replace(base, "%s", `test = "subset"`, 1))
	if _, err := Grows(plain, sub); err == nil || !strings.Contains(err.Error(), "trials.test") {
		t.Errorf("Grows(pool, subset) = %v, want a refusal naming trials.test", err)
	}
}
