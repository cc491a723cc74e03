package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestKnownKeysMatchDecoder checks that the known-key list (suggestions,
// --set, the reference) is exactly the set of keys the decoder fills: the
// toml tags of Config and its tables.
func TestKnownKeysMatchDecoder(t *testing.T) {
	var tags []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag := strings.Split(f.Tag.Get("toml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			// A value with its own decoder (trials.test) is one key.
			if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(reflect.TypeFor[toml.Unmarshaler]()) {
				walk(tag+".", ft)
				continue
			}
			tags = append(tags, prefix+tag)
		}
	}
	walk("", reflect.TypeOf(Config{}))
	slices.Sort(tags)
	if known := KnownKeys(); !slices.Equal(tags, known) {
		t.Errorf("decoder keys %v\nknown keys   %v", tags, known)
	}
}

// TestConfigReference checks docs/config.md against the parser: every
// known key is documented, and every documented key is known.
func TestConfigReference(t *testing.T) {
	b, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\|").FindAllStringSubmatch(string(b), -1) {
		documented = append(documented, m[1])
	}
	known := KnownKeys()
	for _, k := range known {
		if !slices.Contains(documented, k) {
			t.Errorf("key %q is not documented in docs/config.md", k)
		}
	}
	for _, k := range documented {
		if !slices.Contains(known, k) {
			t.Errorf("docs/config.md documents %q, which the parser does not know", k)
		}
	}
	if len(documented) != len(known) {
		t.Errorf("%d keys documented, %d known", len(documented), len(known))
	}
}
