package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/analysis/stats"
)

// TestRunFolders runs a landscape config with --scale and checks that
// stats, taylor and report take its run folder (reading the stored config,
// so --scale cannot be mismatched), that the config path still works where
// no run exists (saying where it writes), and that a mismatch names the
// --scale fix rather than another --out.
func TestRunFolders(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cfg := write(t, dir, "land.toml", landscapeCfg)
	run := filepath.Join("runs", "land")
	if code, _, stderr := perturb(t, "run", cfg, "--scale", "4", "--workers", "1"); code != 0 {
		t.Fatalf("run: %s", stderr)
	}
	// stats RUN writes RUN/stats.json for the scaled config.
	code, _, stderr := perturb(t, "stats", run, "--samples", "256", "--block", "8", "--workers", "1")
	if code != 0 {
		t.Fatalf("stats RUN: %s", stderr)
	}
	f, err := stats.ReadFile(filepath.Join(run, stats.FileName))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := runConfig(run)
	if err != nil || f.ConfigHash != rc.Hash() || rc.Trials.Count != 5 {
		t.Fatalf("stats.json hash %.12s, run config %+v, %v", f.ConfigHash, rc, err)
	}
	// taylor RUN uses the stored count (5) and the stored statistics.
	if code, out, stderr := perturb(t, "taylor", run, "--json", "--workers", "1"); code != 0 || !strings.Contains(out, `"sets": 5`) || !strings.Contains(out, `"prop2"`) {
		t.Fatalf("taylor RUN: exit %d %s %s", code, out, stderr)
	}
	// report RUN reads them.
	if code, out, stderr := perturb(t, "report", run); code != 0 || !strings.Contains(out, "report.md") {
		t.Fatalf("report RUN: exit %d %s %s", code, out, stderr)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"config without --scale", []string{"stats", cfg}, "holds the run of " + cfg + " made with --scale 4, not --scale 1: pass the run folder (runs/land) instead of the config, or use --scale 4"},
		{"config at another scale", []string{"taylor", cfg, "--scale", "2"}, "made with --scale 4, not --scale 2"},
		{"run folder with --scale", []string{"stats", run, "--scale", "4"}, "is a run folder, whose stored config already has the trial count it was run with; omit --scale"},
		{"run folder with --set", []string{"stats", run, "--set", "seed=3"}, "omit --set"},
		{"run folder with --out", []string{"stats", run, "--out", "elsewhere"}, "--out elsewhere: the output for run folder runs/land goes into it"},
		{"other config", []string{"stats", cfg, "--set", "seed=3"}, "holds a run of another config (land)"},
		{"report of a config", []string{"report", cfg}, "is a config file; report takes the run folder perturb run made from it (e.g. runs/land)"},
		{"run at a smaller scale", []string{"run", cfg, "--scale", "8"}, "made with --scale 4, not --scale 8"},
		{"empty folder", []string{"stats", dir}, "is a folder without config.toml or results.sqlite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := perturb(t, tc.args...)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %q", code, stderr, tc.want)
			}
		})
	}
	// The config at the run's scale matches the run.
	if code, _, stderr := perturb(t, "stats", cfg, "--scale", "4", "--samples", "256", "--block", "8", "--workers", "1"); code != 0 {
		t.Fatalf("stats CONFIG --scale 4: %s", stderr)
	}
	// A config not yet run: one line says where stats.json goes.
	code, _, stderr = perturb(t, "stats", cfg, "--set", "name=fresh", "--samples", "256", "--block", "8", "--workers", "1")
	if code != 0 || !strings.Contains(stderr, "stats: no run of fresh in runs/fresh yet; writing stats.json there") {
		t.Fatalf("stats of a fresh config: exit %d %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join("runs", "fresh", stats.FileName)); err != nil {
		t.Fatal(err)
	}
}
