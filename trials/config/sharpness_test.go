package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const sharpBase = `name = "s"
seed = 1
dtype = "float64"
[data]
set = "fashion-mnist"
[trials]
count = 4
n = 10
etas = [0.1]
[[model]]
name = "logistic"
inits = [0]
[[optimizer]]
name = "gd"
steps = 3
`

// TestHashWithoutSharpness checks that a config without [sharpness] keeps
// the hash it had before the table existed (configs/quickstart.toml's
// hash as computed by the parent commit, and as stored in its runs).
func TestHashWithoutSharpness(t *testing.T) {
	c, err := Load("../../configs/quickstart.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Hash(), "846f5efd872e40591a041729f7bd856b2483243712508ba4fa0f3d7e9fdde240"; got != want {
		t.Errorf("quickstart hash %s, want %s", got, want)
	}
}

// TestSharpnessDefaults checks the defaults of an empty [sharpness] table,
// that list order does not change the hash, that the table changes it,
// and Selected.
func TestSharpnessDefaults(t *testing.T) {
	plain, err := Parse("a.toml", sharpBase)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("a.toml", sharpBase+"[sharpness]\n")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Sharpness
	want := Sharpness{Measures: SharpnessMeasures, At: SharpnessPoints, On: SharpnessLosses, Every: 1, Subset: 1000,
		Eigenvalues: 1, Tol: 1e-3, MaxIter: 100, TraceSE: 0.05, MinProbes: 10, MaxProbes: 100}
	if !slices.Equal(s.Measures, want.Measures) || !slices.Equal(s.At, want.At) || !slices.Equal(s.On, want.On) ||
		s.Every != 1 || s.Subset != 1000 || s.Eigenvalues != 1 || s.Tol != 1e-3 || s.MaxIter != 100 || s.TraceSE != 0.05 ||
		s.MinProbes != 10 || s.MaxProbes != 100 {
		t.Errorf("defaults %+v, want %+v", *s, want)
	}
	if c.Hash() == plain.Hash() {
		t.Error("[sharpness] does not change the hash")
	}
	a, err := Parse("a.toml", sharpBase+"[sharpness]\nmeasures = [\"tr_c\", \"lambda\"]\nevery = 3\n")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("b.toml", sharpBase+"[sharpness]\nmeasures = [\"lambda\", \"tr_c\"]\nevery = 3\n")
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash() != b.Hash() {
		t.Error("the order of sharpness.measures changes the hash")
	}
	if !a.Sharpness.Selected(0) || a.Sharpness.Selected(1) || !a.Sharpness.Selected(6) {
		t.Error("every = 3 should select trials 0 and 6 but not 1")
	}
}

// TestSharpnessErrors checks the messages for bad [sharpness] values: the
// file, line, key, what is wrong and the fix.
func TestSharpnessErrors(t *testing.T) {
	for _, c := range []struct{ table, want string }{
		{`measures = ["lamda"]`, `s.toml: line 17 (key "sharpness.measures"): "lamda" is not known here; use some of "lambda", "tr_h", "tr_c", "tr_hc"`},
		{`at = ["end", "end"]`, `s.toml: line 17 (key "sharpness.at"): "end" listed twice; remove the duplicate`},
		{`on = []`, `s.toml: line 17 (key "sharpness.on"): empty; list at least one of "train", "pool" (or remove the key for all)`},
		{`every = -2`, `s.toml: line 17 (key "sharpness.every"): every = -2 is negative; use a positive whole number (or remove the key for the default 1)`},
		{`tol = 1.5`, `s.toml: line 17 (key "sharpness.tol"): tol = 1.5 must be in (0, 1), a relative accuracy, e.g. tol = 0.001`},
		{`subset = 1`, `s.toml: line 17 (key "sharpness.subset"): subset = 1; the gradient covariance needs at least 2 examples (e.g. subset = 1000)`},
		{"min_probes = 20\nmax_probes = 5", `s.toml: line 18 (key "sharpness.max_probes"): max_probes = 5 is below min_probes = 20; raise it or lower min_probes`},
		{`probes = 3`, `s.toml: line 17 (key "sharpness.probes"): unknown key; known keys here: measures, at, on, every, subset, eigenvalues, tol, max_iter, trace_se, min_probes, max_probes`},
		{`evry = 3`, `s.toml: line 17 (key "sharpness.evry"): unknown key; did you mean "every"? known keys here`},
		{`every = "3"`, `(key "sharpness.every"): "3" is a string, but every takes a whole number; write e.g. every = 10`},
	} {
		_, err := Parse("s.toml", sharpBase+"[sharpness]\n"+c.table+"\n")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %s", c.table, err, c.want)
		}
	}
	_, err := Parse("s.toml", strings.Replace(sharpBase, "n = 10", "n = 1", 1)+"[sharpness]\n")
	if err == nil || !strings.Contains(err.Error(), `(key "sharpness.on"): tr_c and tr_hc on the training loss need trials.n >= 2 (n = 1)`) {
		t.Errorf("n = 1: %v", err)
	}
}

// TestSharpnessConfigs checks that every config of configs/sharpness
// loads and asks for sharpness.
func TestSharpnessConfigs(t *testing.T) {
	paths, err := filepath.Glob("../../configs/sharpness/*.toml")
	if err != nil || len(paths) < 3 {
		t.Fatalf("configs/sharpness: %v, %v", paths, err)
	}
	for _, p := range paths {
		c, err := Load(p)
		if err != nil {
			t.Error(err)
			continue
		}
		if c.Sharpness == nil {
			t.Errorf("%s has no [sharpness]", p)
		}
	}
}
