package config

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestModelSize checks the width and depth keys: accepted on mlp and
// convnet, refused elsewhere or out of range with the key named, and left
// out of the hash when unset (existing configs keep their hashes).
func TestModelSize(t *testing.T) {
	base := "name = \"s\"\nseed = 1\ndtype = \"float32\"\n[data]\nset = \"fashion-mnist\"\n[trials]\ncount = 1\nn = 2\netas = [0.1]\n[[optimizer]]\nname = \"sgd\"\n[[model]]\n"
	plain, err := Parse("c.toml", base+"name = \"convnet\"\ninits = [1]\n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mustJSON(plain)), "width") {
		t.Error("an unsized model puts width into the hashed JSON")
	}
	sized, err := Parse("c.toml", base+"name = \"mlp\"\ninits = [1]\nwidth = 32\ndepth = 3\n")
	if err != nil {
		t.Fatal(err)
	}
	if s := sized.Models[0].Size(); s.Width != 32 || s.Depth != 3 || sized.Hash() == plain.Hash() {
		t.Errorf("size %+v", s)
	}
	for _, c := range []struct{ model, want string }{
		{"name = \"logistic\"\ninits = [0]\nwidth = 8\n", `c.toml: line 15 (key "model[0].width"): width applies only to mlp and convnet; remove it`},
		{"name = \"convnet\"\ninits = [1]\ndepth = 1\n", `c.toml: line 15 (key "model[0].depth"): depth 1 out of range; use 2 to 64 (or leave it out for the default)`},
		{"name = \"mlp\"\ninits = [1]\nwidth = -3\n", `c.toml: line 15 (key "model[0].width"): width -3 out of range; use 1 to 4096 (or leave it out for the default)`},
		{"name = \"mlp\"\ninits = [1]\nwidht = 3\n", `c.toml: line 15 (key "model.widht"): unknown key; did you mean "width"?`},
	} {
		_, err := Parse("c.toml", base+c.model)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: %v\nwant %s", c.model, err, c.want)
		}
	}
}

func mustJSON(c *Config) []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return b
}
