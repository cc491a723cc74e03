package config

import (
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary text to Parse: it must never panic, and every
// failure must be a positioned config error.
func FuzzParse(f *testing.F) {
	f.Add(good)
	f.Add("name = \"x\"\n[trials]\netas = [1e400]")
	f.Add("[[optimizer]]\nname = \"sgd\"\nbatch = -1\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse("f.toml", text)
		if err == nil {
			if c.NumTrials() < 1 {
				t.Fatalf("valid config with %d trials", c.NumTrials())
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.File != "f.toml" {
			t.Fatalf("error %v is not a config error naming the file", err)
		}
	})
}
