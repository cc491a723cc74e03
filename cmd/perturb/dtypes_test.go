package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/trials/results"
)

// TestRunDTypeSweep runs a landscape config with dtype = ["float32",
// "float64"]: rows of both dtypes, float32 rows equal to those of the
// float32-only config, --dry-run counts both, a re-run resumes with
// nothing to do.
func TestRunDTypeSweep(t *testing.T) {
	dir := t.TempDir()
	both := write(t, dir, "both.toml", strings.Replace(landscapeCfg, `dtype = "float64"`, `dtype = ["float32", "float64"]`, 1))
	only := write(t, dir, "only.toml", strings.Replace(landscapeCfg, `dtype = "float64"`, `dtype = "float32"`, 1))
	out, out32 := filepath.Join(dir, "both"), filepath.Join(dir, "only")
	if code, stdout, stderr := perturb(t, "run", both, "--out", out, "--dry-run"); code != 0 || !strings.Contains(stdout, "float32 and float64): 160 trials") {
		t.Fatalf("dry run: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, a := range [][]string{{both, out}, {only, out32}} {
		if code, _, stderr := perturb(t, "run", a[0], "--out", a[1], "--workers", "2"); code != 0 {
			t.Fatalf("run %s: exit %d\n%s", a[0], code, stderr)
		}
	}
	_, rows, err := results.ReadRows(filepath.Join(out, resultsFile))
	if err != nil {
		t.Fatal(err)
	}
	_, rows32, err := results.ReadRows(filepath.Join(out32, resultsFile))
	if err != nil {
		t.Fatal(err)
	}
	by := map[results.Key]results.Row{}
	n := map[string]int{}
	for _, r := range rows {
		by[r.Key()] = r
		n[r.DType]++
	}
	if n["float32"] != 80 || n["float64"] != 80 || len(rows32) != 80 {
		t.Fatalf("rows per dtype %v, float32-only rows %d; want 80 each", n, len(rows32))
	}
	for _, r := range rows32 {
		g := by[r.Key()]
		g.ConfigHash = r.ConfigHash
		if show(g) != show(r) {
			t.Errorf("sweep row %+v\nfloat32-only row %+v", g, r)
		}
	}
	if code, _, stderr := perturb(t, "run", both, "--out", out); code != 0 || !strings.Contains(stderr, "160 of 160 trials already stored") {
		t.Errorf("re-run: exit %d\n%s", code, stderr)
	}
	// summarize: the paired dtype differences, one per cell.
	code, stdout, stderr := perturb(t, "summarize", out)
	if code != 0 || !strings.Contains(stdout, "paired dtype differences") {
		t.Fatalf("summarize: exit %d\n%s%s", code, stdout, stderr)
	}
	_, sect, _ := strings.Cut(stdout, "paired dtype differences")
	if n := strings.Count(sect, "float64  float32  20"); n != 4 {
		t.Errorf("summarize: %d dtype pairs of 20 trials, want 4 (2 optimizers × 2 etas):\n%s", n, sect)
	}
	if code, _, stderr := perturb(t, "summarize", out, "--format", "csv"); code != 0 || !strings.Contains(stderr, "summary-dtypes.csv") {
		t.Errorf("summarize csv: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := perturb(t, "summarize", out32, "--format", "csv"); code != 0 || strings.Contains(stderr, "dtypes.csv") {
		t.Errorf("summarize csv of one dtype: exit %d\n%s", code, stderr)
	}
	// report: a table of the paired dtype differences; the other sections
	// see one dtype (as in the float32-only run's report).
	for _, run := range []string{out, out32} {
		if code, stdout, stderr := perturb(t, "report", run, "--out", filepath.Join(run, "report")); code != 0 {
			t.Fatalf("report %s: exit %d\n%s%s", run, code, stdout, stderr)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "report", "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	md32, err := os.ReadFile(filepath.Join(out32, "report", "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	head, dt, ok := strings.Cut(string(md), "## Dtypes: float32 against float64")
	if !ok || strings.Count(dt, "| float64 | float32 | 20 |") != 4 {
		t.Errorf("report lacks the dtype table of 4 cells:\n%s", md)
	}
	if strings.Contains(string(md32), "## Dtypes") || len(head) != len(md32) {
		t.Errorf("report of the sweep before its dtype section (%d bytes) differs from the float32-only report (%d bytes)", len(head), len(md32))
	}
	// A float32 run grows into the sweep: only the float64 trials run.
	grown := filepath.Join(dir, "grown")
	for i, cfg := range []string{only, both} {
		code, _, stderr := perturb(t, "run", cfg, "--out", grown, "--workers", "2")
		if code != 0 || (i == 1 && !strings.Contains(stderr, "adds dtype float64")) || (i == 1 && !strings.Contains(stderr, "running 80 trials")) {
			t.Fatalf("run %s into %s: exit %d\n%s", cfg, grown, code, stderr)
		}
	}
	if code, stdout, stderr := perturb(t, "compare", grown, out, "--tol", "0"); code != 0 || !strings.Contains(stdout, "in both: 160,") {
		t.Errorf("compare grown with the sweep: exit %d\n%s%s", code, stdout, stderr)
	}
	// stats computes in one dtype: a sweep is refused with the fix.
	if code, _, stderr := perturb(t, "stats", both, "--out", filepath.Join(dir, "stats")); code == 0 || !strings.Contains(stderr, "--set dtype=float64") {
		t.Errorf("stats of a sweep: exit %d\n%s", code, stderr)
	}
	// Shards of the sweep merge into the whole run.
	for _, sh := range []string{"1/2", "2/2"} {
		if code, _, stderr := perturb(t, "run", both, "--shard", sh, "--out", filepath.Join(dir, "shard-"+sh[:1]), "--workers", "1"); code != 0 {
			t.Fatalf("run --shard %s: exit %d\n%s", sh, code, stderr)
		}
	}
	merged := filepath.Join(dir, "merged")
	if code, stdout, stderr := perturb(t, "merge", merged, filepath.Join(dir, "shard-1"), filepath.Join(dir, "shard-2")); code != 0 {
		t.Fatalf("merge: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := perturb(t, "compare", merged, out, "--tol", "0"); code != 0 || !strings.Contains(stdout, "in both: 160,") {
		t.Errorf("compare merged shards with the whole: exit %d\n%s%s", code, stdout, stderr)
	}
	// compare --dtypes: within the sweep, and across the sweep and the
	// float32-only run.
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"within one run", []string{out, "--dtypes", "float64,float32"}, 0, "in both: 80, only in the first: 0, only in the second: 0, differing: 0"},
		{"within, judged", []string{out, "--dtypes", "float64,float32", "--tol", "1e-12"}, 1, "in both: 80"},
		{"within, loose", []string{out, "--dtypes", "float64,float32", "--tol", "1e-3"}, 0, "the runs agree"},
		{"across runs, same dtype", []string{out, out32, "--dtypes", "float32,float32", "--tol", "0"}, 0, "largest relative difference: 0\n"},
		{"across runs", []string{out, out32, "--dtypes", "float64,float32"}, 0, "in both: 80"},
		{"no such dtype", []string{out32, "--dtypes", "float64,float32"}, 2, ""},
		{"bad dtype", []string{out, "--dtypes", "float16,float32"}, 2, ""},
		{"one run without --dtypes", []string{out}, 2, ""},
	}
	for _, tc := range tests {
		code, stdout, stderr := perturb(t, append([]string{"compare"}, tc.args...)...)
		if (code == 0) != (tc.code == 0) || (tc.code == 1 && code != 1) || !strings.Contains(stdout, tc.want) {
			t.Errorf("%s: exit %d, want %d\n%s%s", tc.name, code, tc.code, stdout, stderr)
		}
	}
}

// show prints a row for comparison (NaN equal to NaN).
// show formats a row's results (its costs left out) for comparison.
func show(r results.Row) string { return fmt.Sprintf("%+v", r.Results()) }

// TestRunDTypeSweepDevice runs a float32+float64 sweep with --device gpu
// against a fake GPU (the float32 CPU twin): the float32 trials run on it,
// the float64 ones on the CPU, and the rows equal those of --device cpu to
// float32 rounding.
func TestRunDTypeSweepDevice(t *testing.T) {
	needFashion(t)
	dir := t.TempDir()
	cfg := write(t, dir, "tiny.toml", strings.Replace(tiny, `dtype = "float64"`, `dtype = ["float64", "float32"]`, 1))
	cpuOut, gpuOut := filepath.Join(dir, "cpu"), filepath.Join(dir, "gpu")
	fakeGPU(t, nil)
	if code, _, stderr := perturb(t, "run", cfg, "--out", cpuOut, "--k", "1", "--device", "cpu"); code != 0 {
		t.Fatalf("--device cpu exited %d: %s", code, stderr)
	}
	fakeGPU(t, kernels.CPU[float32]{})
	code, _, stderr := perturb(t, "run", cfg, "--out", gpuOut, "--k", "1", "--device", "gpu")
	if code != 0 || !strings.Contains(stderr, "device: GPU cpu float32 (--device gpu): image-model trials in float32 (the other dtypes on the CPU)") {
		t.Fatalf("--device gpu exited %d: %s", code, stderr)
	}
	compareRunDirs(t, cpuOut, gpuOut, 1e-5)
}
