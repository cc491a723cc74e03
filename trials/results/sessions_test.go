package results

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestAppendSession: sessions accumulate in order; a leftover temporary
// file from a crash mid-write is ignored; a sessions.json that does not
// parse is never overwritten.
func TestAppendSession(t *testing.T) {
	dir := t.TempDir()
	if s, err := ReadSessions(dir); err != nil || s != nil {
		t.Fatalf("empty folder: %v, %v", s, err)
	}
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	a := Session{Start: t0, End: t0.Add(31 * time.Second), WallSeconds: 31, Trials: 960,
		Command: []string{"perturb", "run", "c.toml", "--scale", "1000"}, Cores: 2, Scale: 1000, Device: "cpu", Outcome: "done"}
	b := a
	b.Trials, b.Shard, b.Outcome = 5, "2/3", "interrupted"
	if err := AppendSession(dir, a); err != nil {
		t.Fatal(err)
	}
	// A crash between writing the temporary file and the rename leaves
	// the temporary file: it does not disturb the next append.
	if err := os.WriteFile(filepath.Join(dir, SessionsFile+".tmp123"), []byte("[{\"start\":"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := AppendSession(dir, b); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSessions(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []Session{a, b}) {
		t.Errorf("sessions %+v, want %+v", got, []Session{a, b})
	}
	matches, _ := filepath.Glob(filepath.Join(dir, SessionsFile+".tmp*"))
	if len(matches) != 1 {
		t.Errorf("temporary files %v, want only the crash's", matches)
	}

	bad := t.TempDir()
	path := filepath.Join(bad, SessionsFile)
	if err := os.WriteFile(path, []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = AppendSession(bad, a)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("append to a broken file: %v, want an error naming %s", err, path)
	}
	if data, _ := os.ReadFile(path); string(data) != "not json" {
		t.Errorf("broken file overwritten: %q", data)
	}
}

// TestFinishSession: a run's entry is written as running when it starts
// and replaced when it ends; a killed run's entry stays running.
func TestFinishSession(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	killed := Session{Start: t0, Command: []string{"perturb", "run", "c.toml"}, Cores: 2, Scale: 1, Outcome: Running}
	run := killed
	run.Start = t0.Add(time.Minute)
	for _, s := range []Session{killed, run} {
		if err := AppendSession(dir, s); err != nil {
			t.Fatal(err)
		}
	}
	done := run
	done.End, done.WallSeconds, done.Trials, done.Outcome = run.Start.Add(5*time.Second), 5, 40, "done"
	if err := FinishSession(dir, done); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSessions(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []Session{killed, done}) {
		t.Errorf("sessions %+v, want %+v", got, []Session{killed, done})
	}
}
