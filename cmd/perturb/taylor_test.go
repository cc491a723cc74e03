package main

import (
	"encoding/json"
	"flag"
	"io"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/config"
)

// TestTaylorSubsetDefault: --test-subset when given (0 included), else
// the config's trials.test subset, else the whole pool.
func TestTaylorSubsetDefault(t *testing.T) {
	cfg := func(test string) *config.Config {
		c, err := config.Parse("t.toml", `name = "t"
seed = 1
dtype = "float64"
[data]
set = "fashion-mnist"
[trials]
count = 2
n = 4
etas = [0.1]
`+test+`
[[model]]
name = "logistic"
inits = [1]
[[optimizer]]
name = "gd"
steps = 2
`)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name, test string
		args       []string
		want       int
	}{
		{"no key, no flag", "", nil, 0},
		{"pool, no flag", `test = "pool"`, nil, 0},
		{"subset, no flag", `test = "subset"`, nil, config.DefaultSubset},
		{"subset 300, no flag", `test = { subset = 300 }`, nil, 300},
		{"subset 300 without control, no flag", `test = { subset = 300, control = "none" }`, nil, 300},
		{"no key, flag 700", "", []string{"--test-subset", "700"}, 700},
		{"subset 300, flag 700", `test = { subset = 300 }`, []string{"--test-subset", "700"}, 700},
		{"subset 300, flag 0", `test = { subset = 300 }`, []string{"--test-subset=0"}, 0},
	} {
		fs := flag.NewFlagSet("taylor", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		v := fs.Int("test-subset", 0, "")
		fs.Int("sets", 0, "")
		if err := fs.Parse(append([]string{"--sets", "3"}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		if got := taylorSubset(fs, *v, cfg(tc.test)); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestTaylorSubsetCommand runs perturb taylor on the real Fashion-MNIST
// logistic model with the config's subset (test = { subset = 50 }) and
// with --test-subset 80: the rows record M and the part of the standard
// error from the subsets' draws; c0 is the pool loss at θ₀ whichever M
// (TestTaylorSubsetExact checks it against the pool's jets). A landscape
// refuses --test-subset 5.
func TestTaylorSubsetCommand(t *testing.T) {
	needFashion(t)
	dir := t.TempDir()
	cfg := write(t, dir, "logistic.toml", `name = "tsub"
seed = 1
dtype = "float64"
[data]
set = "fashion-mnist"
[trials]
count = 2
n = 4
etas = [0.1]
test = { subset = 50 }
[[model]]
name = "logistic"
inits = [1]
[[optimizer]]
name = "gd"
steps = 2
[[optimizer]]
name = "sgd"
batch = 1
`)
	var c0 []float64
	for _, tc := range []struct {
		args []string
		want int
	}{{nil, 50}, {[]string{"--test-subset", "80"}, 80}} {
		code, js, stderr := perturb(t, append([]string{"taylor", cfg, "--json", "--workers", "2", "--stats", filepath.Join(dir, "run")}, tc.args...)...)
		var rows []taylorRow
		if code != 0 || json.Unmarshal([]byte(js), &rows) != nil || len(rows) != 2 {
			t.Fatalf("%v: exit %d: %s\n%s", tc.args, code, js, stderr)
		}
		r := rows[0]
		if r.TestSubset != tc.want || r.Sets != 2 || (tc.want > 0) != strings.Contains(stderr, "own") {
			t.Errorf("%v: test_subset %d, sets %d (want %d); stderr %s", tc.args, r.TestSubset, r.Sets, tc.want, stderr)
		}
		if sub := r.SubsetSE[2]; (tc.want > 0) != (sub > 0 && sub <= r.SE[2]) || (tc.want > 0) != strings.Contains(stderr, "share of the subsets") {
			t.Errorf("%v: subset part of the standard error of c2 %g (of %g)", tc.args, sub, r.SE[2])
		}
		c0 = append(c0, r.Mean[0])
		// SGD − GD on the same sets: its mean is the difference of the
		// means; its error is smaller than the unpaired one (the sets'
		// noise is shared).
		p := rows[1]
		if p.PairedAgainst != "gd" || p.PairedMean == nil || rows[0].PairedMean != nil {
			t.Fatalf("%v: paired %+v", tc.args, p)
		}
		for k := 1; k < 4; k++ {
			if d := p.Mean[k] - r.Mean[k]; math.Abs(p.PairedMean[k]-d) > 1e-9*(1+math.Abs(d)) || !(p.PairedSE[k] < math.Hypot(p.SE[k], r.SE[k])) {
				t.Errorf("%v: c%d paired %g ± %g, unpaired %g ± %g", tc.args, k, p.PairedMean[k], p.PairedSE[k], d, math.Hypot(p.SE[k], r.SE[k]))
			}
		}
	}
	for _, v := range c0[1:] {
		if math.Abs(v-c0[0]) > 1e-10*c0[0] {
			t.Errorf("c0 %v: not the same pool loss at θ₀", c0)
		}
	}
	land := write(t, dir, "land.toml", landscapeCfg)
	if code, _, stderr := perturb(t, "taylor", land, "--test-subset", "5"); code == 0 || !strings.Contains(stderr, "has no pool") {
		t.Errorf("landscape --test-subset 5: exit %d: %s", code, stderr)
	}
}
