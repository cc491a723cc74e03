package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/analysis/stats"
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
	// The covariance matrix: Names square, its diagonal the squared
	// standard errors.
	j := slices.Index(stats.Names, stats.TrHC)
	if cov := f.Entries[0].Cov; len(cov) != len(stats.Names) || math.Abs(math.Sqrt(cov[j][j])-e.StdErr) > 1e-12*e.StdErr {
		t.Fatalf("cov %v, tr(HC) standard error %g", cov, e.StdErr)
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

func TestTaylorCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "land.toml", strings.Replace(landscapeCfg, "count = 20", "count = 200", 1))
	out := filepath.Join(dir, "run")
	if code, _, stderr := perturb(t, "stats", cfg, "--out", out, "--samples", "16384"); code != 0 {
		t.Fatalf("stats: %s", stderr)
	}
	code, js, stderr := perturb(t, "taylor", cfg, "--stats", out, "--json")
	var rows []taylorRow
	if code != 0 || json.Unmarshal([]byte(js), &rows) != nil || len(rows) != 2 {
		t.Fatalf("taylor exited %d: %s\n%s", code, js, stderr)
	}
	for _, r := range rows {
		// Gauss at h = 0: G = 0, so c1 = 0 and c2 = E²N/(2B²) tr(HC) with
		// tr(HC) = 1/4: 10/2/4 for SGD (B = E = 1), T²/(2N)/4 for GD.
		if r.Sets != 200 || r.Prop2 == nil || !(math.Abs(r.Mean[1]) < 1e-12) || !(math.Abs(r.Mean[2]-1.25) <= 4*r.SE[2]) ||
			!(math.Abs(r.Mean[2]-r.Prop2[2]) <= 4*math.Hypot(r.SE[2], r.Prop2[3])) {
			t.Errorf("%+v (Prop 2 %v)", r, *r.Prop2)
		}
	}
	bad := write(t, dir, "bad.toml", landscapeCfg+"[[optimizer]]\nname = \"igr\"\nsteps = 2\n")
	if code, _, stderr := perturb(t, "taylor", bad); code == 0 || !strings.Contains(stderr, "covers sgd and gd") {
		t.Errorf("igr: exit %d: %s", code, stderr)
	}
}
