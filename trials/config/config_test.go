package config

import (
	"errors"
	"strings"
	"testing"
)

const good = `name = "t"
seed = 3
dtype = "float64"

[data]
set = "fashion-mnist"

[trials]
count = 4
n = 10
etas = [0.01, 0.1]

[[model]]
name = "logistic"
inits = [0, 1]

[[optimizer]]
name = "sgd"
batch = 2
epochs = 2

[[optimizer]]
name = "gd"
steps = 10
`

func TestParseGood(t *testing.T) {
	c, err := Parse("good.toml", good)
	if err != nil {
		t.Fatal(err)
	}
	sgd, gd := c.Optimizers[0], c.Optimizers[1]
	if sgd.Label != "sgd" || sgd.Batch != 2 || sgd.Epochs != 2 || sgd.Steps != 10 {
		t.Errorf("sgd normalised to %+v", sgd)
	}
	if gd.Batch != 10 || gd.Steps != 10 || gd.Epochs != 10 {
		t.Errorf("gd normalised to %+v", gd)
	}
	if got := c.NumTrials(); got != 2*2*2*4 {
		t.Errorf("NumTrials = %d, want 32", got)
	}
	// The hash ignores comments, formatting and data.dir, but not values.
	c2, _ := Parse("x.toml", "# comment\n"+strings.Replace(good, `set = "fashion-mnist"`, "set = \"fashion-mnist\"\ndir = \"/tmp\"", 1))
	if c.Hash() != c2.Hash() {
		t.Error("hash changed with a comment or data.dir")
	}
	c3, _ := Parse("x.toml", strings.Replace(good, "seed = 3", "seed = 4", 1))
	if c.Hash() == c3.Hash() {
		t.Error("hash unchanged by a different seed")
	}
}

// TestParseErrors checks each error's text word for word: file, line, key,
// what is wrong and what to do.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, old, new, want string
	}{
		{"unknown top key", `seed = 3`, "seed = 3\nsede = 4",
			`c.toml: line 3 (key "sede"): unknown key; did you mean "seed"? known keys here: name, seed, dtype, [data], [trials], [[model]], [[optimizer]], [sharpness]`},
		{"typo in optimizer", "batch = 2", "bach = 2",
			`c.toml: line 19 (key "optimizer.bach"): unknown key; did you mean "batch"? known keys here: name, label, batch, epochs, steps, reshuffle, refine, eta_scale, population`},
		{"wrong type", "count = 4", `count = "4"`,
			`c.toml: line 9 (key "trials.count"): "4" is a string, but count takes a whole number; write e.g. count = 20`},
		{"syntax", "n = 10", "n = ",
			`c.toml: line 10 (key "trials.n"): expected value but found '\n' instead`},
		{"negative seed", "seed = 3", "seed = -3",
			`c.toml: line 2 (key "seed"): seed = -3 is negative; use a whole number from 0 to 18446744073709551615, e.g. seed = 1`},
		{"eta zero", "etas = [0.01, 0.1]", "etas = [0.01, 0]",
			`c.toml: line 11 (key "trials.etas"): eta 0 (entry 2) must be positive and finite`},
		{"eta negative", "etas = [0.01, 0.1]", "etas = [-0.01]",
			`c.toml: line 11 (key "trials.etas"): eta -0.01 (entry 1) must be positive and finite`},
		{"empty sweep", "etas = [0.01, 0.1]", "etas = []",
			`c.toml: line 11 (key "trials.etas"): empty learning-rate sweep; list at least one eta > 0`},
		{"duplicate eta", "etas = [0.01, 0.1]", "etas = [0.01, 0.1, 0.01]",
			`c.toml: line 11 (key "trials.etas"): eta 0.01 listed twice; remove the duplicate`},
		{"batch not dividing", "batch = 2", "batch = 3",
			`c.toml: line 19 (key "optimizer[0].batch"): batch size 3 does not divide trials.n = 10; choose a divisor of n: 1, 2, 5, 10`},
		{"bad dtype", `dtype = "float64"`, `dtype = "float16"`,
			`c.toml: line 3 (key "dtype"): "float16" is not a dtype; use one of float32, float64`},
		{"bad model", `name = "logistic"`, `name = "resnet"`,
			`c.toml: line 14 (key "model[0].name"): "resnet" is not a model; use one of logistic, convnet, mlp, gauss, archimedes, mean-estimation, mean-estimation-l2`},
		{"convnet zero init", `name = "logistic"`, `name = "convnet"`,
			`c.toml: line 15 (key "model[0].inits"): the convnet cannot start from 0 (all zeros: tanh layers get no gradient); use Gaussian draws k > 0`},
		{"gd steps missing", "steps = 10", "",
			`c.toml: line 22 (key "optimizer[1].steps"): missing; set the number of full-batch steps, e.g. steps = 10`},
		{"gd with batch", "steps = 10", "steps = 10\nbatch = 5",
			`c.toml: line 25 (key "optimizer[1].batch"): gd uses the full batch (n = 10); remove batch or use sgd`},
		{"unknown optimizer", `name = "gd"`, `name = "adam"`,
			`c.toml: line 23 (key "optimizer[1].name"): "adam" is not an optimizer; use one of sgd, gd, gdc, sde, igr, smith, stic`},
		{"steps not whole epochs", "epochs = 2", "steps = 7",
			`c.toml: line 20 (key "optimizer[0].steps"): 7 steps is not a whole number of epochs of 5 steps (n/batch); set epochs instead`},
		{"zero trials", "count = 4", "count = 0",
			`c.toml: line 9 (key "trials.count"): 0 trials; need at least 1`},
		{"missing data set", `set = "fashion-mnist"`, `set = "mnist"`,
			`c.toml: line 6 (key "data.set"): "mnist" is not a dataset; use one of fashion-mnist, cifar-10`},
		{"batch does not divide n", "n = 10", "n = 1",
			`c.toml: line 19 (key "optimizer[0].batch"): batch size 2 is larger than trials.n = 1; choose a divisor of n: 1`},
		{"refine outside sde", "epochs = 2", "epochs = 2\nrefine = 4",
			`c.toml: line 21 (key "optimizer[0].refine"): refine applies only to sde; remove it`},
		{"sde reshuffle", "name = \"sgd\"", "name = \"sde\"\nreshuffle = true",
			`c.toml: line 19 (key "optimizer[0].reshuffle"): sde draws Gaussian noise and visits no order; remove the key`},
		{"landscape key on image model", "inits = [0, 1]", "inits = [0, 1]\nh = 2.0",
			`c.toml: line 16 (key "model[0].h"): h applies only to the artificial landscapes (gauss, archimedes, mean-estimation, mean-estimation-l2); remove it`},
		{"wrong element type", "etas = [0.01, 0.1]", `etas = [0.01, "0.1"]`,
			`c.toml: line 11 (key "trials.etas"): [0.01, "0.1"] holds a string, but each element of etas must be a number; write e.g. etas = [0.01, 0.1]`},
		{"scalar for array", "etas = [0.01, 0.1]", "etas = 0.1",
			`c.toml: line 11 (key "trials.etas"): 0.1 is a float, but etas takes an array; write e.g. etas = [0.01, 0.1]`},
		{"table for array of tables", "[[model]]", "[model]",
			`c.toml: line 13 (key "model"): model is an array of tables: start each model with a [[model]] line (not [model] or [[model.…]])`},
		{"key twice", "count = 4", "count = 4\ncount = 5",
			`c.toml: line 10 (key "trials.count"): count is set twice; keep one of the two`},
		{"unterminated string", `dtype = "float64"`, `dtype = "float64`,
			`c.toml: line 3 (key "dtype"): unterminated string (strings cannot contain newlines); close it with " on the same line`},
		{"negative epochs", "epochs = 2", "epochs = -2",
			`c.toml: line 20 (key "optimizer[0].epochs"): epochs = -2 is negative; batch, epochs and steps must be positive (or left out for the defaults)`},
		{"model typo before data", `name = "logistic"`, `name = "logistik"`,
			`c.toml: line 14 (key "model[0].name"): "logistik" is not a model; use one of logistic, convnet, mlp, gauss, archimedes, mean-estimation, mean-estimation-l2`},
		{"key under an unknown table", "[trials]", "[trial.s]\n[trials]",
			`c.toml: line 8 (key "trial"): unknown key; did you mean "trials"? known keys here: name, seed, dtype, [data], [trials], [[model]], [[optimizer]], [sharpness]`},
		{"duplicate init", "inits = [0, 1]", "inits = [1, 1]",
			`c.toml: line 15 (key "model[0].inits"): initialisation 1 listed twice; remove the duplicate`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(good, tc.old, tc.new, 1)
			if text == good {
				t.Fatalf("replacement %q not applied", tc.old)
			}
			_, err := Parse("c.toml", text)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid")
			}
		})
	}
}

func TestDuplicateLabel(t *testing.T) {
	text := good + "\n[[optimizer]]\nname = \"sgd\"\n"
	_, err := Parse("c.toml", text)
	want := `c.toml: line 26 (key "optimizer[2].label"): optimizer label "sgd" used twice; give each [[optimizer]] a distinct label`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestDiff(t *testing.T) {
	a, _ := Parse("a.toml", good)
	text := strings.Replace(good, "seed = 3", "seed = 4", 1)
	text = strings.Replace(text, "etas = [0.01, 0.1]", "etas = [0.01, 0.2]", 1)
	text = strings.Replace(text, "steps = 10", "steps = 20", 1)
	b, err := Parse("b.toml", text)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Diff(a, b), "\n")
	want := strings.Join([]string{
		"optimizer[1].epochs: 10 -> 20",
		"optimizer[1].steps: 10 -> 20",
		"seed: 3 -> 4",
		"trials.etas: [0.01,0.1] -> [0.01,0.2]",
	}, "\n")
	if got != want {
		t.Errorf("Diff:\n%s\nwant:\n%s", got, want)
	}
	if d := Diff(a, a); len(d) != 0 {
		t.Errorf("Diff of a config with itself: %v", d)
	}
	c, _ := Parse("c.toml", good+"\n[[optimizer]]\nname = \"sgd\"\nlabel = \"sgd2\"\n")
	if d := Diff(a, c); len(d) != 1 || !strings.HasPrefix(d[0], "optimizer: ") {
		t.Errorf("Diff with an extra optimizer: %v", d)
	}
}

const landscapes = `name = "l"
seed = 1
dtype = "float64"

[trials]
count = 2
n = 4
etas = [0.1]

[[model]]
name = "mean-estimation"
inits = [0]
h = 0.5
s = 2.0
start = [10.0]

[[model]]
name = "archimedes"
inits = [0, 3]

[[optimizer]]
name = "gdc"
steps = 3

[[optimizer]]
name = "sde"
batch = 2

[[optimizer]]
name = "smith"
batch = 2
steps = 3

[[optimizer]]
name = "igr"
steps = 3
`

func TestParseLandscapes(t *testing.T) {
	c, err := Parse("l.toml", landscapes)
	if err != nil {
		t.Fatal(err)
	}
	if c.NeedsData() {
		t.Error("a landscape-only config needs no data")
	}
	sde := c.Optimizers[1]
	if sde.Refine != 16 || sde.Steps != 2 || sde.Epochs != 1 {
		t.Errorf("sde normalised to %+v", sde)
	}
	if sm := c.Optimizers[2]; sm.Batch != 2 || sm.Steps != 3 {
		t.Errorf("smith normalised to %+v", sm)
	}
	if gdc := c.Optimizers[0]; gdc.Batch != 4 || gdc.Steps != 3 {
		t.Errorf("gdc normalised to %+v", gdc)
	}
	bad := []struct{ old, new, want string }{
		{"h = 0.5", "h = -1.0", `l.toml: line 13 (key "model[0].h"): `},
		{"start = [10.0]", "start = [1.0, 2.0]", `l.toml: line 15 (key "model[0].start"): `},
		{"inits = [0, 3]", "inits = [0, 3]\nh = 1.0", `l.toml: line 20 (key "model[1].h"): h applies only to mean-estimation`},
		{"n = 4", "n = 1", `(key "optimizer[0].name"): gdc estimates the gradient covariance and needs trials.n >= 2`},
	}
	for _, tc := range bad {
		_, err := Parse("l.toml", strings.Replace(landscapes, tc.old, tc.new, 1))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: error %v, want it to contain %q", tc.old, tc.new, err, tc.want)
		}
	}
}

// TestUnknownModelWithoutData: a misspelt landscape in a config without
// [data] is reported as an unknown model, not as a missing data set.
func TestUnknownModelWithoutData(t *testing.T) {
	text := "name = \"x\"\nseed = 1\ndtype = \"float64\"\n[trials]\ncount = 4\nn = 6\netas = [0.1]\n" +
		"[[model]]\nname = \"gaus\"\ninits = [0]\n[[optimizer]]\nname = \"sgd\"\nbatch = 2\n"
	_, err := Parse("c.toml", text)
	want := `c.toml: line 9 (key "model[0].name"): "gaus" is not a model; use one of logistic, convnet, mlp, gauss, archimedes, mean-estimation, mean-estimation-l2`
	if err == nil || err.Error() != want {
		t.Fatalf("error\n got: %v\nwant: %s", err, want)
	}
}
