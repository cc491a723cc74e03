package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// SessionsFile is the run folder's log of "perturb run" invocations.
const SessionsFile = "sessions.json"

// Session is one invocation of "perturb run" on a run folder: what it
// cost and how it was made.
type Session struct {
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	WallSeconds float64   `json:"wall_seconds"`
	// Trials is the number of trials this invocation stored.
	Trials int `json:"trials"`
	// Command is the command line, e.g. ["perturb", "run", "c.toml", "--scale", "10"].
	Command []string `json:"command"`
	Cores   int      `json:"host_cores"`
	Workers int      `json:"workers,omitempty"`
	Scale   int      `json:"scale"`
	// Shard is "I/N", or "" for the whole run.
	Shard string `json:"shard,omitempty"`
	// Device is "cpu" or "gpu".
	Device string `json:"device,omitempty"`
	// Outcome is "done", "interrupted" or "error"; "running" while the
	// invocation runs, and after it if it was killed (End and Trials are
	// then unknown, zero).
	Outcome string `json:"outcome"`
}

// Running is the outcome of a session not finished: running, or killed.
const Running = "running"

// ReadSessions reads dir's sessions.json; a folder without one has none.
func ReadSessions(dir string) ([]Session, error) {
	path := filepath.Join(dir, SessionsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s []Session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// AppendSession adds s to dir's sessions.json. The file is rewritten
// through a temporary file in dir, synced and renamed over it, so a crash
// leaves either the old or the new file, never a part of one. A
// sessions.json that does not parse is left as it is, and the error says
// so.
func AppendSession(dir string, s Session) error {
	all, err := ReadSessions(dir)
	if err != nil {
		return fmt.Errorf("not appending the session: %w", err)
	}
	return writeSessions(dir, append(all, s))
}

// FinishSession replaces the running entry of dir's sessions.json that
// has s's start and command line by s (appending s if there is none), the
// same way as AppendSession.
func FinishSession(dir string, s Session) error {
	all, err := ReadSessions(dir)
	if err != nil {
		return fmt.Errorf("not recording the session: %w", err)
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Outcome == Running && all[i].Start.Equal(s.Start) && slices.Equal(all[i].Command, s.Command) {
			all[i] = s
			return writeSessions(dir, all)
		}
	}
	return writeSessions(dir, append(all, s))
}

// writeSessions replaces dir's sessions.json by all, atomically.
func writeSessions(dir string, all []Session) error {
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, SessionsFile+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing to remove
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, SessionsFile))
}
