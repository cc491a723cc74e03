package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/perturb/perturb/trials/results"
)

// TestSetOverrides runs a landscape config with --set overrides and checks
// the stored rows and config; bad overrides are refused on run, stats,
// taylor and noise with the flag, the key and the fix, writing nothing.
func TestSetOverrides(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "land.toml", landscapeCfg)
	out := filepath.Join(dir, "run")
	code, _, stderr := perturb(t, "run", cfg, "--out", out, "--set", "trials.count=3", "--set", "optimizer[1].steps=4", "--set", "trials.etas=[0.2]", "--workers", "1")
	if code != 0 {
		t.Fatalf("run --set: %s", stderr)
	}
	_, rows, err := results.ReadRows(filepath.Join(out, resultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 3 trials × 2 optimizers × 1 eta", len(rows))
	}
	for _, r := range rows {
		if r.Eta != 0.2 || r.Optimizer == "gd" && r.Steps != 4 {
			t.Errorf("override not applied: %+v", r)
		}
	}
	stored, _ := os.ReadFile(filepath.Join(out, configFile))
	if !strings.Contains(string(stored), "with --set trials.count=3 --set optimizer[1].steps=4") {
		t.Errorf("stored config lacks the overrides:\n%s", stored)
	}
	// The same overrides resume the run; the run folder carries them.
	if code, _, stderr := perturb(t, "run", cfg, "--out", out, "--set", "trials.count=3", "--set", "optimizer[1].steps=4", "--set", "trials.etas=[0.2]"); code != 0 || !strings.Contains(stderr, "6 of 6 trials already stored") {
		t.Fatalf("resume with --set: exit %d %s", code, stderr)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"run typo", []string{"run", cfg, "--set", "trials.cuont=5"}, `--set trials.cuont=5: unknown key "trials.cuont"; did you mean "count"?`},
		{"run bad value", []string{"run", cfg, "--set", "trials.count=0"}, `--set trials.count=0 (key "trials.count"): `},
		{"run index", []string{"run", cfg, "--set", "optimizer[2].batch=2"}, "the config has 2 [[optimizer]] tables (optimizer[0] to optimizer[1])"},
		{"run no value", []string{"run", cfg, "--set", "seed"}, "want key=value"},
		{"stats", []string{"stats", cfg, "--set", "modle[0].inits=[1]"}, `did you mean "model"?`},
		{"taylor", []string{"taylor", cfg, "--set", "optimizer[0].bach=2"}, `--set optimizer[0].bach=2: unknown key "optimizer[0].bach"; did you mean "batch"?`},
		{"noise", []string{"noise", cfg, "--set", "dtyp=float32"}, `--set dtyp=float32: unknown key "dtyp"; did you mean "dtype"?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := filepath.Join(dir, "out-"+strings.ReplaceAll(tc.name, " ", "-"))
			args := tc.args
			if args[0] != "taylor" {
				args = append(args, "--out", o)
			}
			code, _, stderr := perturb(t, args...)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %q", code, stderr, tc.want)
			}
			if _, err := os.Stat(o); !os.IsNotExist(err) {
				t.Errorf("%s was created despite the error", o)
			}
		})
	}
}

// TestDryRun checks that --dry-run prints the trials per cell and an
// estimate and writes nothing, and that a larger run prints its estimate
// before it starts.
func TestDryRun(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "land.toml", landscapeCfg)
	out := filepath.Join(dir, "run")
	code, stdout, stderr := perturb(t, "run", cfg, "--out", out, "--dry-run", "--set", "model[0].inits=[0,1]")
	if code != 0 {
		t.Fatalf("dry run: %s", stderr)
	}
	for _, want := range []string{
		"dry run of land (float64): 160 trials in 8 cells (model, init, optimizer, eta) into " + out,
		"gauss  1     gd         0.1   20",
		"estimated wall time",
		"nothing written (dry run)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, stdout)
		}
	}
	if !regexp.MustCompile(`gauss +sgd +80 +2 +\d+ `).MatchString(stdout) {
		t.Errorf("no calibration line for gauss sgd:\n%s", stdout)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("dry run created %s", out)
	}
	// A run of more than estimateAbove trials says how long it should take.
	code, _, stderr = perturb(t, "run", cfg, "--out", out, "--set", "trials.count=150", "--workers", "1")
	if code != 0 || !strings.Contains(stderr, "estimated wall time") || strings.Contains(stderr, "over an hour") {
		t.Fatalf("run of 600 trials: exit %d %s", code, stderr)
	}
	// After it, a dry run has nothing left to do.
	if code, stdout, _ = perturb(t, "run", cfg, "--out", out, "--set", "trials.count=150", "--dry-run"); code != 0 || !strings.Contains(stdout, "0 trials in 0 cells") || !strings.Contains(stdout, "600 of 600 already stored") {
		t.Errorf("dry run of a complete run: %s", stdout)
	}
	if longNote(59*time.Minute) != "" || !strings.Contains(longNote(2*time.Hour), "this run is estimated to take over an hour (about 2h0m0s)") {
		t.Errorf("long-run note: %q", longNote(2*time.Hour))
	}
}

// TestFlagTypos gives every command one of its flags misspelt and wants
// a "did you mean" naming the flag.
func TestFlagTypos(t *testing.T) {
	flagRe := regexp.MustCompile(`(?m)^  -([a-z][a-z-]+)`)
	for name := range commands {
		_, _, help := perturb(t, name, "--help")
		m := flagRe.FindStringSubmatch(help)
		if m == nil {
			t.Errorf("%s: no flags in its help:\n%s", name, help)
			continue
		}
		flag := m[1]
		typo := flag[:len(flag)-2] + flag[len(flag)-1:] + flag[len(flag)-2:len(flag)-1]
		if typo == flag {
			continue
		}
		code, _, stderr := perturb(t, name, "--"+typo)
		if code != 2 || !strings.Contains(stderr, "unknown flag --"+typo+"; did you mean --"+flag+"?") {
			t.Errorf("%s --%s: exit %d, %s", name, typo, code, stderr)
		}
	}
	if code, _, stderr := perturb(t, "run", "--scael", "4"); code != 2 || !strings.Contains(stderr, "unknown flag --scael; did you mean --scale?") {
		t.Errorf("run --scael: exit %d %s", code, stderr)
	}
	if code, _, stderr := perturb(t, "sumarize", "x"); code != 2 || !strings.Contains(stderr, `unknown command "sumarize"; did you mean summarize?`) {
		t.Errorf("sumarize: exit %d %s", code, stderr)
	}
}
