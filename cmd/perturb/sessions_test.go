package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/results"
)

// TestRunSessions: each perturb run appends its cost and command line to
// RUN/sessions.json, a resume included; report writes report.json.
func TestRunSessions(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "land.toml", landscapeCfg)
	run := filepath.Join(dir, "run")
	for i := range 2 {
		if code, _, stderr := perturb(t, "run", cfg, "--scale", "4", "--workers", "1", "--out", run); code != 0 {
			t.Fatalf("run %d: %s", i, stderr)
		}
	}
	ss, err := results.ReadSessions(run)
	if err != nil || len(ss) != 2 {
		t.Fatalf("sessions %+v, %v; want 2", ss, err)
	}
	// 5 trials per cell (20 / 4) × 2 η × 2 optimisers; the resume runs none.
	if s := ss[0]; s.Trials != 20 || s.Scale != 4 || s.Outcome != "done" || s.Cores < 1 || s.Shard != "" ||
		strings.Join(s.Command, " ") != "perturb run "+cfg+" --scale 4 --workers 1 --out "+run ||
		!(s.WallSeconds > 0) || s.End.Before(s.Start) {
		t.Errorf("first session %+v", s)
	}
	if ss[1].Trials != 0 || ss[1].Outcome != "done" {
		t.Errorf("resume session %+v, want 0 trials", ss[1])
	}
	if code, _, stderr := perturb(t, "report", run); code != 0 {
		t.Fatalf("report: %s", stderr)
	}
	if _, err := os.Stat(filepath.Join(run, "report", "report.json")); err != nil {
		t.Error(err)
	}
}
