package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Diff lists the settings in which a and b differ, as "key: A -> B" lines
// over their canonical forms (the fields that make up Hash), e.g.
// `seed: 7 -> 8` or `optimizer[1].steps: 10 -> 20`. It is empty exactly
// when a.Hash() == b.Hash().
func Diff(a, b *Config) []string {
	var out []string
	diffValue(&out, "", canonical(a), canonical(b))
	sort.Strings(out)
	return out
}

func canonical(c *Config) any {
	raw, err := json.Marshal(c)
	if err != nil {
		panic(err) // plain structs always marshal
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		panic(err)
	}
	return v
}

func diffValue(out *[]string, key string, a, b any) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		for k := range keys {
			sub := k
			if key != "" {
				sub = key + "." + k
			}
			diffValue(out, sub, am[k], bm[k])
		}
		return
	}
	as, aok := a.([]any)
	bs, bok := b.([]any)
	// Arrays of tables are compared element by element; arrays of values whole.
	if aok && bok && len(as) == len(bs) && len(as) > 0 {
		if _, isTable := as[0].(map[string]any); isTable {
			for i := range as {
				diffValue(out, fmt.Sprintf("%s[%d]", key, i), as[i], bs[i])
			}
			return
		}
	}
	if !reflect.DeepEqual(a, b) {
		*out = append(*out, fmt.Sprintf("%s: %s -> %s", key, show(a), show(b)))
	}
}

func show(v any) string {
	if v == nil {
		return "(absent)"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// DescribeDiff lists how b differs from a as "\ndifferences (label):"
// followed by one "key: a -> b" line each, or "" when they agree; it is
// meant to be appended to an error message.
func DescribeDiff(a, b *Config, label string) string {
	d := Diff(a, b)
	if len(d) == 0 {
		return ""
	}
	return "\ndifferences (" + label + "):\n  " + strings.Join(d, "\n  ")
}
