package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perturb/perturb/trials/results"
)

// landscapeCfg runs in well under a second and needs no dataset.
const landscapeCfg = `name = "land"
seed = 11
dtype = "float64"
[trials]
count = 20
n = 10
etas = [0.05, 0.1]
[[model]]
name = "gauss"
inits = [0]
[[optimizer]]
name = "sgd"
batch = 1
[[optimizer]]
name = "gd"
steps = 10
`

// TestShardMergeCompare runs a config whole and as three shards, merges
// the shards and requires the merge to equal the whole run (compare and
// summarize); it also checks the refusals around shards.
func TestShardMergeCompare(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "land.toml", landscapeCfg)
	at := func(name string) string { return filepath.Join(dir, name) }
	mustRun := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := perturb(t, args...)
		if code != 0 {
			t.Fatalf("perturb %v exited %d:\n%s%s", args, code, stdout, stderr)
		}
		return stdout + stderr
	}
	mustRun("run", cfg, "--out", at("whole"))
	for _, s := range []string{"1", "2", "3"} {
		out := mustRun("run", cfg, "--shard", s+"/3", "--out", at("s"+s))
		if !strings.Contains(out, "of shard "+s+"/3") {
			t.Errorf("shard %s output: %s", s, out)
		}
	}

	// A missing shard: refused, nothing written, the fix named.
	code, _, stderr := perturb(t, "merge", at("m"), at("s1"), at("s3"))
	if code == 0 || !strings.Contains(stderr, "shard 2/3: 27 trials, no run of it given") || !strings.Contains(stderr, "--shard 2/3") {
		t.Fatalf("merge without shard 2: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(at("m")); !os.IsNotExist(err) {
		t.Fatal("a refused merge wrote its output folder")
	}

	out := mustRun("merge", at("m"), at("s1"), at("s2"), at("s3"))
	if !strings.Contains(out, "merged 80 of 80 trials from 3 runs") {
		t.Errorf("merge output: %s", out)
	}
	if out := mustRun("compare", at("whole"), at("m"), "--tol", "0"); !strings.Contains(out, "the runs agree") {
		t.Errorf("compare: %s", out)
	}
	if a, b := mustRun("summarize", at("whole")), mustRun("summarize", at("m")); a != b {
		t.Errorf("summaries differ:\n%s\nvs\n%s", a, b)
	}
	// A merged run is a whole run: resuming it has nothing to do.
	if out := mustRun("run", filepath.Join(at("m"), configFile), "--out", at("m")); !strings.Contains(out, "80 of 80 trials already stored") {
		t.Errorf("resume of the merge: %s", out)
	}

	// --partial writes what there is; resuming the merge completes it.
	mustRun("merge", at("p"), at("s1"), at("s2"), "--partial")
	mustRun("run", filepath.Join(at("p"), configFile), "--out", at("p"))
	mustRun("compare", at("p"), at("whole"))

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad shard", []string{"run", cfg, "--shard", "4/3", "--out", at("x")}, "want I/N with 1 <= I <= N"},
		{"wrong shard", []string{"run", cfg, "--shard", "2/3", "--out", at("s1")}, "holds shard 1/3 of config land, not shard 2/3; use --shard 1/3"},
		{"shard into whole", []string{"run", cfg, "--shard", "1/3", "--out", at("whole")}, "holds the whole run"},
		{"merge into a run", []string{"merge", at("whole"), at("s1")}, "already holds a run"},
		{"merge one arg", []string{"merge", at("y")}, "want OUT and at least one RUN"},
		{"compare differs", []string{"compare", at("s1"), at("whole")}, "differ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := perturb(t, tc.args...)
			if code == 0 || !strings.Contains(stdout+stderr, tc.want) {
				t.Fatalf("exit %d, output %s%s; want %q", code, stdout, stderr, tc.want)
			}
		})
	}
	if _, err := os.Stat(at("x")); !os.IsNotExist(err) {
		t.Error("a bad --shard created its output folder")
	}
}

// TestGracefulStop sends SIGTERM to a running sweep: it must exit with
// status 130 after storing the trials in progress, print how to resume,
// and the resumed run must equal an uninterrupted one.
func TestGracefulStop(t *testing.T) {
	needFashion(t)
	dir := t.TempDir()
	cfg := write(t, dir, "g.toml", strings.NewReplacer("count = 3", "count = 40", "etas = [0.1]", "etas = [0.1, 0.3]").Replace(tiny))
	ref, stopped := filepath.Join(dir, "ref"), filepath.Join(dir, "stopped")
	if out, err := perturbProcess("run", cfg, "--out", ref, "--k", "2", "--workers", "2").CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	var stderr strings.Builder
	cmd := perturbProcess("run", cfg, "--out", stopped, "--k", "2", "--workers", "1")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, rows, err := results.ReadRows(filepath.Join(stopped, resultsFile)); err == nil && len(rows) >= 4 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no rows stored within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(stderr.String(), "resume with: perturb run "+cfg+" --out "+stopped) {
		t.Fatalf("after SIGTERM: %v\n%s", err, stderr.String())
	}
	_, rows, err := results.ReadRows(filepath.Join(stopped, resultsFile))
	if err != nil || len(rows) == 0 || len(rows) == 160 {
		t.Fatalf("%d rows stored at the stop (%v)", len(rows), err)
	}
	t.Logf("stopped with %d of 160 trials stored", len(rows))
	if out, err := perturbProcess("run", cfg, "--out", stopped).CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if code, out, _ := perturb(t, "compare", ref, stopped, "--tol", "1e-12"); code != 0 {
		t.Fatalf("resumed run differs from the uninterrupted one:\n%s", out)
	}
}
