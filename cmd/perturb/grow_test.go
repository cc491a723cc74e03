package main

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/results"
)

// growBase is a landscape sweep of 3 trials; growMore adds an eta, raises
// the count to 5 and adds an optimiser: 20 trials.
const growBase = `name = "grow"
seed = 1
dtype = "float64"
[trials]
count = 3
n = 6
etas = [0.1]
[[model]]
name = "gauss"
inits = [0]
[[optimizer]]
name = "sgd"
batch = 2
`

var growMore = strings.Replace(strings.Replace(growBase, "count = 3", "count = 5", 1), "etas = [0.1]", "etas = [0.1, 0.2]", 1) +
	"[[optimizer]]\nname = \"gd\"\nsteps = 3\n"

// rawRows reads every column of every stored trial as the SQLite driver
// returns it (floats exactly), keyed by the trial's identity.
func rawRows(t *testing.T, dir string) map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, resultsFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.Query(`SELECT * FROM trials`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	cols, _ := rs.Columns()
	out := map[string]string{}
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprint(vals[1:7]...)] = fmt.Sprintf("%#v", vals)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGrowSweep runs a landscape sweep, grows it by an eta, more trials
// and an optimiser (only the new trials run, the stored rows stay byte
// for byte, the history holds both configs, the result equals a fresh
// run of the grown config), and refuses configs that change stored
// trials, naming the key.
func TestGrowSweep(t *testing.T) {
	dir := t.TempDir()
	base := write(t, dir, "base.toml", growBase)
	more := write(t, dir, "more.toml", growMore)
	out := filepath.Join(dir, "run")
	if code, _, stderr := perturb(t, "run", base, "--out", out, "--workers", "1"); code != 0 {
		t.Fatalf("run: %s", stderr)
	}
	before := rawRows(t, out)
	if len(before) != 3 {
		t.Fatalf("%d rows, want 3", len(before))
	}
	// --dry-run plans only the new trials and writes nothing.
	code, plan, stderr := perturb(t, "run", more, "--out", out, "--dry-run", "--workers", "1")
	if code != 0 || !strings.Contains(plan, "17 trials in 4 cells") || !strings.Contains(plan, "3 of 20 already stored") {
		t.Fatalf("dry run: exit %d %s\n%s", code, stderr, plan)
	}
	if h, err := results.ReadHistory(filepath.Join(out, resultsFile)); err != nil || len(h) != 1 {
		t.Fatalf("history after --dry-run: %+v, %v", h, err)
	}
	code, _, stderr = perturb(t, "run", more, "--out", out, "--workers", "1")
	if code != 0 {
		t.Fatalf("grow: %s", stderr)
	}
	for _, want := range []string{"growing " + out + ": " + more + " adds trials 3 to 4, eta 0.2, optimizer gd",
		"3 of 20 trials already stored", "running 17 trials", "done: 17 trials"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("grow: stderr lacks %q:\n%s", want, stderr)
		}
	}
	after := rawRows(t, out)
	if len(after) != 20 {
		t.Fatalf("%d rows after growing, want 20", len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("stored row %s changed:\n%s\n%s", k, v, after[k])
		}
	}
	h, err := results.ReadHistory(filepath.Join(out, resultsFile))
	if err != nil || len(h) != 2 || h[1].Added != "trials 3 to 4, eta 0.2, optimizer gd" || h[1].ConfigText != growMore || h[0].ConfigText != growBase {
		t.Fatalf("history %+v, %v", h, err)
	}
	meta, rows, err := results.ReadRows(filepath.Join(out, resultsFile))
	if err != nil || meta.ConfigHash != h[1].ConfigHash {
		t.Fatalf("meta %+v, %v", meta, err)
	}
	hashes := map[string]int{}
	for _, r := range rows {
		hashes[r.ConfigHash]++
	}
	if hashes[h[0].ConfigHash] != 3 || hashes[h[1].ConfigHash] != 17 {
		t.Errorf("row hashes %v", hashes)
	}
	// The same command again resumes the grown run: nothing to do.
	if code, _, stderr := perturb(t, "run", more, "--out", out); code != 0 || !strings.Contains(stderr, "20 of 20 trials already stored") {
		t.Fatalf("rerun: exit %d %s", code, stderr)
	}
	// The grown run equals a fresh run of the grown config.
	fresh := filepath.Join(dir, "fresh")
	if code, _, stderr := perturb(t, "run", more, "--out", fresh, "--workers", "1"); code != 0 {
		t.Fatalf("fresh run: %s", stderr)
	}
	if code, stdout, _ := perturb(t, "compare", out, fresh, "--tol", "0"); code != 0 {
		t.Fatalf("grown and fresh runs differ:\n%s", stdout)
	}
	// summarize covers every cell, from the run folder and the config.
	code, table, stderr := perturb(t, "summarize", out)
	if code != 0 || !strings.Contains(table, "gd") || !strings.Contains(table, "0.2") {
		t.Fatalf("summarize: exit %d %s\n%s", code, stderr, table)
	}
	if _, freshTable, _ := perturb(t, "summarize", fresh); strings.ReplaceAll(freshTable, fresh, out) != table {
		t.Errorf("summaries of the grown and the fresh run differ:\n%s\n%s", table, freshTable)
	}

	// Changes to stored trials are refused, naming the key; nothing changes.
	for _, tc := range []struct{ name, text, want string }{
		{"seed", strings.Replace(growMore, "seed = 1", "seed = 2", 1), "seed: 1 -> 2"},
		{"n", strings.Replace(growMore, "n = 6", "n = 8", 1), "trials.n: 6 -> 8"},
		{"batch", strings.Replace(growMore, "batch = 2", "batch = 3", 1), "optimizer[0] (sgd).batch: 2 -> 3"},
		{"fewer etas", strings.Replace(growMore, "etas = [0.1, 0.2]", "etas = [0.2]", 1), "(drops 0.1)"},
		{"the older config", growBase, "was run into it earlier, and the run has grown since"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := write(t, dir, tc.name+".toml", tc.text)
			code, _, stderr := perturb(t, "run", cfg, "--out", out)
			if code == 0 || !strings.Contains(stderr, "holds a run of another config") || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %s; want %q", code, stderr, tc.want)
			}
		})
	}
	if got := rawRows(t, out); len(got) != 20 {
		t.Errorf("%d rows after refusals", len(got))
	}
	if h2, _ := results.ReadHistory(filepath.Join(out, resultsFile)); len(h2) != 2 {
		t.Errorf("history after refusals: %d entries", len(h2))
	}
}

// TestGrowScale: --scale 2 after --scale 4 grows the run (--scale 8
// after it is refused as another scale).
func TestGrowScale(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "c.toml", strings.Replace(growBase, "count = 3", "count = 8", 1))
	out := filepath.Join(dir, "run")
	if code, _, stderr := perturb(t, "run", cfg, "--out", out, "--scale", "4", "--workers", "1"); code != 0 {
		t.Fatalf("--scale 4: %s", stderr)
	}
	code, _, stderr := perturb(t, "run", cfg, "--out", out, "--scale", "2", "--workers", "1")
	if code != 0 || !strings.Contains(stderr, "adds trials 2 to 3") || !strings.Contains(stderr, "running 2 trials") {
		t.Fatalf("--scale 2: exit %d %s", code, stderr)
	}
	if n := len(rawRows(t, out)); n != 4 {
		t.Fatalf("%d rows, want 4", n)
	}
	if code, _, stderr := perturb(t, "run", cfg, "--out", out, "--scale", "8"); code == 0 || !strings.Contains(stderr, "made with --scale 2, not --scale 8") {
		t.Fatalf("--scale 8: exit %d %s", code, stderr)
	}
}

// TestGrowShards grows both shards of a sweep: each runs only its new
// trials, and their merge equals a whole run of the grown config.
func TestGrowShards(t *testing.T) {
	dir := t.TempDir()
	base := write(t, dir, "base.toml", growBase)
	more := write(t, dir, "more.toml", growMore)
	whole := filepath.Join(dir, "whole")
	if code, _, stderr := perturb(t, "run", more, "--out", whole, "--workers", "1"); code != 0 {
		t.Fatal(stderr)
	}
	var dirs []string
	for _, sh := range []string{"1/2", "2/2"} {
		out := filepath.Join(dir, "s"+sh[:1])
		dirs = append(dirs, out)
		if code, _, stderr := perturb(t, "run", base, "--out", out, "--shard", sh, "--workers", "1"); code != 0 {
			t.Fatal(stderr)
		}
		before := rawRows(t, out)
		code, _, stderr := perturb(t, "run", more, "--out", out, "--shard", sh, "--workers", "1")
		if code != 0 || !strings.Contains(stderr, "growing "+out) || !strings.Contains(stderr, "deals trials to shards anew") {
			t.Fatalf("grow shard %s: exit %d %s", sh, code, stderr)
		}
		after := rawRows(t, out)
		for k, v := range before {
			if after[k] != v {
				t.Errorf("shard %s: stored row %s changed", sh, k)
			}
		}
		// Resuming says the shard is complete.
		if code, _, stderr := perturb(t, "run", more, "--out", out, "--shard", sh); code != 0 || !strings.Contains(stderr, "running 0 trials") {
			t.Fatalf("resume shard %s: exit %d %s", sh, code, stderr)
		}
	}
	merged := filepath.Join(dir, "merged")
	if code, _, stderr := perturb(t, "merge", merged, dirs[0], dirs[1]); code != 0 || !strings.Contains(stderr, "merged 20 of 20 trials") {
		t.Fatalf("merge: exit %d %s", code, stderr)
	}
	if code, stdout, _ := perturb(t, "compare", merged, whole, "--tol", "0"); code != 0 {
		t.Fatalf("merged grown shards differ from a whole run:\n%s", stdout)
	}
}

// TestMergeGrown merges a grown run with a shard of its older config and
// with shards of the grown config, records both configs in the merged
// history, and refuses conflicting configs naming the key.
func TestMergeGrown(t *testing.T) {
	dir := t.TempDir()
	base := write(t, dir, "base.toml", growBase)
	more := write(t, dir, "more.toml", growMore)
	grown, old, shard := filepath.Join(dir, "grown"), filepath.Join(dir, "old"), filepath.Join(dir, "shard")
	for _, args := range [][]string{
		{"run", base, "--out", grown, "--workers", "1"},
		{"run", more, "--out", grown, "--workers", "1"},
		{"run", base, "--out", old, "--workers", "1"},
		{"run", more, "--out", shard, "--shard", "1/2", "--workers", "1"},
	} {
		if code, _, stderr := perturb(t, args...); code != 0 {
			t.Fatalf("%v: %s", args, stderr)
		}
	}
	// A grown run and a shard of its older config's run.
	m1 := filepath.Join(dir, "m1")
	code, _, stderr := perturb(t, "merge", m1, grown, old)
	if code != 0 || !strings.Contains(stderr, "merged 20 of 20 trials") {
		t.Fatalf("merge grown+old: exit %d %s", code, stderr)
	}
	if code, stdout, _ := perturb(t, "compare", m1, grown, "--tol", "0"); code != 0 {
		t.Fatalf("merge differs from the grown run:\n%s", stdout)
	}
	h, err := results.ReadHistory(filepath.Join(m1, resultsFile))
	if err != nil || len(h) != 2 || h[0].ConfigText != growBase || h[1].ConfigText != growMore {
		t.Fatalf("merged history %+v, %v", h, err)
	}
	// The older run and a shard of the grown config: the rest is missing.
	m2 := filepath.Join(dir, "m2")
	code, _, stderr = perturb(t, "merge", m2, old, shard, "--partial")
	if code != 0 || !strings.Contains(stderr, "trials are missing") {
		t.Fatalf("merge old+shard: exit %d %s", code, stderr)
	}
	if code, _, stderr := perturb(t, "run", filepath.Join(m2, configFile), "--out", m2, "--workers", "1"); code != 0 || !strings.Contains(stderr, "20 trials") {
		t.Fatalf("completing the merge: %s", stderr)
	}
	if code, stdout, _ := perturb(t, "compare", m2, grown, "--tol", "0"); code != 0 {
		t.Fatalf("completed merge differs from the grown run:\n%s", stdout)
	}
	// Conflicting configs are refused naming the key.
	other := filepath.Join(dir, "other")
	if code, _, stderr := perturb(t, "run", write(t, dir, "seed.toml", strings.Replace(growBase, "seed = 1", "seed = 2", 1)), "--out", other, "--workers", "1"); code != 0 {
		t.Fatal(stderr)
	}
	code, _, stderr = perturb(t, "merge", filepath.Join(dir, "m3"), grown, other)
	if code == 0 || !strings.Contains(stderr, "conflicting configs") || !strings.Contains(stderr, "seed: 1 -> 2") {
		t.Fatalf("merge of conflicting configs: exit %d %s", code, stderr)
	}
	// --config names a union none of the runs holds.
	union := write(t, dir, "union.toml", strings.Replace(growMore, "etas = [0.1, 0.2]", "etas = [0.1, 0.2, 0.3]", 1))
	m4 := filepath.Join(dir, "m4")
	code, _, stderr = perturb(t, "merge", m4, grown, old, "--config", union, "--partial")
	if code != 0 || !strings.Contains(stderr, "merged 20 of 30 trials") {
		t.Fatalf("merge --config: exit %d %s", code, stderr)
	}
	if h, err := results.ReadHistory(filepath.Join(m4, resultsFile)); err != nil || len(h) != 3 || h[2].Added != "merge" {
		t.Fatalf("history of merge --config %+v, %v", h, err)
	}
}
