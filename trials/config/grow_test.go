package config

import (
	"errors"
	"strings"
	"testing"
)

func TestGrows(t *testing.T) {
	base, err := Parse("old.toml", good)
	if err != nil {
		t.Fatal(err)
	}
	sharp := good + "\n[sharpness]\nevery = 2\n"
	tests := []struct {
		name  string
		text  string // good with edits
		added string // wanted description; "" with bad == nil: same plan
		bad   []string
	}{
		{name: "same", text: good},
		{name: "reordered", text: strings.Replace(good, "etas = [0.01, 0.1]", "etas = [0.1, 0.01]", 1)},
		{name: "eta", text: strings.Replace(good, "etas = [0.01, 0.1]", "etas = [0.01, 0.1, 0.3]", 1), added: "eta 0.3"},
		{name: "count", text: strings.Replace(good, "count = 4", "count = 6", 1), added: "trials 4 to 5"},
		{name: "init", text: strings.Replace(good, "inits = [0, 1]", "inits = [0, 1, 2]", 1), added: "logistic inits [2]"},
		{name: "optimizer", text: good + "\n[[optimizer]]\nname = \"gd\"\nlabel = \"gd100\"\nsteps = 100\n", added: "optimizer gd100"},
		{name: "model", text: good + "\n[[model]]\nname = \"mlp\"\ninits = [0]\n", added: "model mlp"},
		{name: "several", text: strings.Replace(strings.Replace(good, "count = 4", "count = 5", 1), "etas = [0.01, 0.1]", "etas = [0.01, 0.1, 1]", 1),
			added: "trials 4 to 4, eta 1"},
		{name: "eta_scale 1", text: strings.Replace(good, "epochs = 2", "epochs = 2\neta_scale = 1.0", 1)},
		{name: "eta_scale", text: strings.Replace(good, "epochs = 2", "epochs = 2\neta_scale = 0.5", 1), bad: []string{"optimizer[0] (sgd).eta_scale: 1 -> 0.5"}},
		{name: "seed", text: strings.Replace(good, "seed = 3", "seed = 4", 1), bad: []string{"seed: 3 -> 4"}},
		{name: "n", text: strings.Replace(good, "n = 10", "n = 20", 1), bad: []string{"trials.n: 10 -> 20", "optimizer[0] (sgd).steps: 10 -> 20", "optimizer[1] (gd).batch: 10 -> 20"}},
		{name: "dtype", text: strings.Replace(good, "float64", "float32", 1), bad: []string{`dtype: "float64" -> "float32"`}},
		{name: "name", text: strings.Replace(good, `name = "t"`, `name = "u"`, 1), bad: []string{`name: "t" -> "u"`}},
		{name: "fewer trials", text: strings.Replace(good, "count = 4", "count = 2", 1), bad: []string{"trials.count: 4 -> 2"}},
		{name: "dropped eta", text: strings.Replace(good, "etas = [0.01, 0.1]", "etas = [0.1, 0.2]", 1), bad: []string{"trials.etas: [0.01,0.1] -> [0.1,0.2] (drops 0.01)"}},
		{name: "dropped init", text: strings.Replace(good, "inits = [0, 1]", "inits = [1, 2]", 1), bad: []string{"model[0] (logistic).inits: [0,1] -> [1,2] (drops [0])"}},
		{name: "batch", text: strings.Replace(good, "batch = 2", "batch = 5", 1), bad: []string{"optimizer[0] (sgd).batch: 2 -> 5", "optimizer[0] (sgd).steps: 10 -> 4"}},
		{name: "reshuffle", text: strings.Replace(good, "epochs = 2", "epochs = 2\nreshuffle = true", 1), bad: []string{"optimizer[0] (sgd).reshuffle: false -> true"}},
		{name: "dropped optimizer", text: strings.Replace(good, "name = \"gd\"", "name = \"gd\"\nlabel = \"gd10\"", 1), bad: []string{`optimizer[1]: optimizer "gd" is dropped`}},
		{name: "model size", text: strings.Replace(good, `name = "logistic"`, `name = "mlp"`+"\nlabel = \"logistic\"", 1), bad: []string{`model[0] (logistic).name: "logistic" -> "mlp"`}},
		{name: "sharpness", text: sharp, bad: []string{"sharpness: (absent) -> "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("new.toml", tc.text)
			if err != nil {
				t.Fatal(err)
			}
			added, err := Grows(base, c)
			if tc.bad == nil {
				if err != nil || added != tc.added {
					t.Fatalf("Grows = %q, %v; want %q, nil", added, err, tc.added)
				}
				return
			}
			var ge *GrowError
			if !errors.As(err, &ge) {
				t.Fatalf("Grows = %q, %v; want a *GrowError", added, err)
			}
			if len(ge.Changes) != len(tc.bad) {
				t.Fatalf("changes %q, want %q", ge.Changes, tc.bad)
			}
			for i, want := range tc.bad {
				if !strings.HasPrefix(ge.Changes[i], want) {
					t.Errorf("change %d = %q, want %q", i, ge.Changes[i], want)
				}
			}
			if !strings.Contains(err.Error(), "new.toml does not contain the plan of old.toml") {
				t.Errorf("message %q names neither config", err)
			}
		})
	}
}

// TestGrowsData: a landscape sweep may gain an image model (and the data
// set with it); an image sweep may not change its data set.
func TestGrowsData(t *testing.T) {
	land := "name = \"t\"\nseed = 1\ndtype = \"float64\"\n[trials]\ncount = 2\nn = 4\netas = [0.1]\n[[model]]\nname = \"gauss\"\ninits = [0]\n[[optimizer]]\nname = \"gd\"\nsteps = 2\n"
	img := strings.Replace(land, "[trials]", "[data]\nset = \"fashion-mnist\"\n[trials]", 1) + "[[model]]\nname = \"logistic\"\ninits = [0]\n"
	a, err := Parse("land.toml", land)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("img.toml", img)
	if err != nil {
		t.Fatal(err)
	}
	if added, err := Grows(a, b); err != nil || added != "model logistic" {
		t.Fatalf("landscape -> image: %q, %v", added, err)
	}
	c, err := Parse("cifar.toml", strings.Replace(img, "fashion-mnist", "cifar-10", 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Grows(b, c); err == nil || !strings.Contains(err.Error(), `data.set: "fashion-mnist" -> "cifar-10"`) {
		t.Fatalf("fashion -> cifar: %v", err)
	}
}

// TestGrowsScale: --scale 2 after --scale 4 grows; the other way refuses.
func TestGrowsScale(t *testing.T) {
	c, err := Parse("c.toml", good)
	if err != nil {
		t.Fatal(err)
	}
	s4, err := c.Scaled(4)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := c.Scaled(2)
	if err != nil {
		t.Fatal(err)
	}
	if added, err := Grows(s4, s2); err != nil || added != "trials 1 to 1" {
		t.Fatalf("scale 4 -> 2: %q, %v", added, err)
	}
	if _, err := Grows(s2, s4); err == nil {
		t.Fatal("scale 2 -> 4 grows")
	}
}
