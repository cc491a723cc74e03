package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/stats"
)

func TestStatsCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "land.toml", landscapeCfg)
	out := filepath.Join(dir, "run")
	code, stdout, stderr := perturb(t, "stats", cfg, "--out", out, "--samples", "16384", "--block", "16")
	if code != 0 || !strings.Contains(stdout, "S:J") || !strings.Contains(stdout, "tr(H C)") {
		t.Fatalf("stats exited %d:\n%s%s", code, stdout, stderr)
	}
	f, err := stats.ReadFile(filepath.Join(out, stats.FileName))
	if err != nil {
		t.Fatal(err)
	}
	// Gauss at h = 0: G = 0, H = 1/2, C = 1/2.
	e, ok := f.Get("gauss", 0, stats.TrHC)
	if !ok || len(f.Entries) != 1 || f.Entries[0].Samples != 16384 || !(e.Value > 0.25-4*e.StdErr && e.Value < 0.25+4*e.StdErr) {
		t.Fatalf("tr(HC) %+v (want 0.25), file %+v", e, f)
	}
	code, js, _ := perturb(t, "stats", cfg, "--out", out, "--samples", "256", "--block", "8", "--json")
	var parsed stats.File
	if code != 0 || json.Unmarshal([]byte(js), &parsed) != nil || len(parsed.Entries[0].Estimates) != len(stats.Names) {
		t.Fatalf("--json exited %d:\n%s", code, js)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--samples", "100", "--block", "8"}, "use a multiple of 4·block = 32"},
		{[]string{"--block", "2"}, "at least 3 samples per block"},
	} {
		code, _, stderr := perturb(t, append([]string{"stats", cfg, "--out", filepath.Join(dir, "x")}, tc.args...)...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %s", tc.args, code, stderr)
		}
	}
}
