package config

import (
	"slices"
	"strings"
	"testing"
)

// TestDTypeArray checks dtype as a string or an array: the dtypes, the
// unchanged hash of single-dtype configs, ForDType, and the errors.
func TestDTypeArray(t *testing.T) {
	single, err := Parse("c.toml", good)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, value string
		want        []string // nil: an error
		err         string
	}{
		{"string", `"float64"`, []string{"float64"}, ""},
		{"one-element array", `["float64"]`, []string{"float64"}, ""},
		{"both", `["float32", "float64"]`, []string{"float32", "float64"}, ""},
		{"both reversed", `["float64", "float32"]`, []string{"float64", "float32"}, ""},
		{"unknown in array", `["float32", "float16"]`, nil, `c.toml: line 3 (key "dtype"): "float16" is not a dtype; use one of float32, float64`},
		{"twice", `["float32", "float32"]`, nil, `c.toml: line 3 (key "dtype"): "float32" listed twice; list each dtype once`},
		{"empty array", `[]`, nil, `c.toml: line 3 (key "dtype"): missing or empty`},
		{"number in array", `["float32", 3]`, nil, `c.toml: line 3 (key "dtype")`},
		{"number", `3`, nil, `c.toml: line 3 (key "dtype")`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("c.toml", strings.Replace(good, `dtype = "float64"`, "dtype = "+tc.value, 1))
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.DTypeList(); !slices.Equal(got, tc.want) {
				t.Errorf("DTypeList = %v, want %v", got, tc.want)
			}
			if c.DType != tc.want[0] {
				t.Errorf("DType = %q, want %q", c.DType, tc.want[0])
			}
			if len(tc.want) == 1 && c.Hash() != single.Hash() {
				t.Error("a single dtype changed the hash")
			}
			if len(tc.want) > 1 && c.Hash() == single.Hash() {
				t.Error("two dtypes kept the single-dtype hash")
			}
			for _, dt := range tc.want {
				one, err := Parse("c.toml", strings.Replace(good, `dtype = "float64"`, `dtype = "`+dt+`"`, 1))
				if err != nil {
					t.Fatal(err)
				}
				if f := c.ForDType(dt); f.Hash() != one.Hash() || !slices.Equal(f.DTypeList(), []string{dt}) {
					t.Errorf("ForDType(%s) hash %s, want the single-dtype config's %s", dt, f.Hash(), one.Hash())
				}
			}
		})
	}
}

// TestDTypeSetAndGrow checks --set dtype=[...] and that a run may grow
// by a dtype but not drop one.
func TestDTypeSetAndGrow(t *testing.T) {
	c, err := ParseSet("c.toml", good, []string{`dtype=["float32","float64"]`})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.DTypeList(); !slices.Equal(got, []string{"float32", "float64"}) {
		t.Fatalf("DTypeList = %v", got)
	}
	old, _ := Parse("c.toml", good)
	if added, err := Grows(old, c); err != nil || added != "dtype float32" {
		t.Errorf("Grows(float64, both) = %q, %v; want dtype float32", added, err)
	}
	if _, err := Grows(c, old); err == nil || !strings.Contains(err.Error(), `dtype: ["float32","float64"] -> "float64"`) {
		t.Errorf("Grows(both, float64) error %v", err)
	}
	if added, err := Grows(c, c); err != nil || added != "" {
		t.Errorf("Grows(c, c): %q, %v", added, err)
	}
}
