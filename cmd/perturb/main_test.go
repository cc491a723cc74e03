package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perturb/perturb/nets/data"
	"github.com/perturb/perturb/trials/results"
)

const tiny = `name = "tiny"
seed = 7
dtype = "float64"
[data]
set = "fashion-mnist"
[trials]
count = 3
n = 4
etas = [0.1]
[[model]]
name = "logistic"
inits = [0]
[[optimizer]]
name = "sgd"
batch = 2
[[optimizer]]
name = "gd"
steps = 2
`

func perturb(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func needFashion(t *testing.T) {
	if _, err := os.Stat(data.DefaultFashionDir); err != nil && os.Getenv(data.EnvFashionDir) == "" {
		t.Skipf("Fashion-MNIST not installed at %s (make data)", data.DefaultFashionDir)
	}
}

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunSummarizeResume runs a tiny sweep on the real Fashion-MNIST,
// summarises it in all three formats, re-runs it (nothing left to do, rows
// unchanged) and refuses to mix another config into the same directory.
func TestRunSummarizeResume(t *testing.T) {
	needFashion(t)
	dir := t.TempDir()
	cfg := write(t, dir, "tiny.toml", tiny)
	out := filepath.Join(dir, "run")
	if code, _, stderr := perturb(t, "run", cfg, "--out", out, "--workers", "2"); code != 0 {
		t.Fatalf("run exited %d: %s", code, stderr)
	}
	_, rows, err := results.ReadRows(filepath.Join(out, resultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 6", len(rows))
	}
	for _, r := range rows {
		// Zero init: initial test loss is exactly log 10.
		if r.Status != "ok" || !(r.TestLoss > 0 && r.TestLoss < r.InitTestLoss) || r.InitTestLoss < 2.302585 || r.InitTestLoss > 2.302586 {
			t.Errorf("implausible row %+v", r)
		}
	}
	code, table, _ := perturb(t, "summarize", out)
	if code != 0 || !strings.Contains(table, "logistic") || !strings.Contains(table, "paired differences") {
		t.Fatalf("summarize exited %d:\n%s", code, table)
	}
	code, js, _ := perturb(t, "summarize", out, "--format", "json")
	var parsed map[string]any
	if code != 0 || json.Unmarshal([]byte(js), &parsed) != nil || len(parsed["cells"].([]any)) != 2 {
		t.Fatalf("json summary (exit %d):\n%s", code, js)
	}
	if code, _, stderr := perturb(t, "summarize", filepath.Join(out, resultsFile), "--format", "csv"); code != 0 || !strings.Contains(stderr, "summary-pairs.csv") {
		t.Fatalf("csv summary (exit %d):\n%s", code, stderr)
	}

	// Resume: nothing to do, identical summary.
	code, _, stderr := perturb(t, "run", cfg, "--out", out)
	if code != 0 || !strings.Contains(stderr, "6 of 6 trials already stored") {
		t.Fatalf("resume exited %d: %s", code, stderr)
	}
	if _, again, _ := perturb(t, "summarize", out); again != table {
		t.Fatalf("summary changed after a no-op resume:\n%s\nvs\n%s", table, again)
	}

	// Another config into the same directory is refused.
	other := write(t, dir, "other.toml", strings.Replace(tiny, "seed = 7", "seed = 8", 1))
	code, _, stderr = perturb(t, "run", other, "--out", out)
	if code == 0 || !strings.Contains(stderr, "holds a run of another config") || !strings.Contains(stderr, "seed: 7 -> 8") {
		t.Fatalf("mixing configs: exit %d: %s", code, stderr)
	}
}

// TestBadInputWritesNothing checks that a bad config or a missing dataset
// fails before anything is written, with an error naming the problem.
func TestBadInputWritesNothing(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, config, want string
		args               []string
	}{
		{"typo", strings.Replace(tiny, "count = 3", "cuont = 3", 1), `(key "trials.cuont"): unknown key`, nil},
		{"bad eta", strings.Replace(tiny, "etas = [0.1]", "etas = [-1]", 1), "eta -1 (entry 1) must be positive", nil},
		{"missing data", tiny, "make data", []string{"--data", filepath.Join(dir, "nowhere")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := write(t, dir, "c.toml", tc.config)
			out := filepath.Join(dir, "out-"+strings.ReplaceAll(tc.name, " ", "-"))
			code, _, stderr := perturb(t, append([]string{"run", cfg, "--out", out}, tc.args...)...)
			if code == 0 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "c.toml") && tc.args == nil {
				t.Fatalf("exit %d, stderr %q; want an error containing %q", code, stderr, tc.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Fatalf("%s was created despite the error", out)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	if code, out, _ := perturb(t, "help"); code != 0 || !strings.Contains(out, "summarize") {
		t.Fatalf("help: %d %s", code, out)
	}
	if code, _, stderr := perturb(t, "run"); code != 2 || !strings.Contains(stderr, "want 1 argument") {
		t.Fatalf("run without config: %d %s", code, stderr)
	}
	if code, _, stderr := perturb(t, "frobnicate"); code != 2 || !strings.Contains(stderr, "unknown command") {
		t.Fatalf("unknown command: %d %s", code, stderr)
	}
	if code, _, stderr := perturb(t, "summarize", "x", "--format", "xml"); code != 1 || !strings.Contains(stderr, "use table, csv or json") {
		t.Fatalf("bad format: %d %s", code, stderr)
	}
}
