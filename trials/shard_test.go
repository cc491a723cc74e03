package trials

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/results"
)

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Shard
		ok   bool
	}{
		{"1/1", Shard{1, 1}, true},
		{"3/8", Shard{3, 8}, true},
		{" 2 / 4 ", Shard{2, 4}, true},
		{"0/4", Shard{}, false},
		{"5/4", Shard{}, false},
		{"1/0", Shard{}, false},
		{"-1/4", Shard{}, false},
		{"3", Shard{}, false},
		{"a/b", Shard{}, false},
		{"", Shard{}, false},
	} {
		got, err := ParseShard(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "I/N") {
			t.Errorf("ParseShard(%q): error %q does not say the form", tc.in, err)
		}
		if tc.ok && got.String() != strings.ReplaceAll(tc.in, " ", "") {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}

// TestShardPlanPartitions: for several N the shards are disjoint, cover the
// plan, differ in size by less than N, and each holds every (model, init,
// optimiser) group.
func TestShardPlanPartitions(t *testing.T) {
	c := mustConfig(t, independenceConfig)
	plan := Plan(c)
	for _, n := range []int{1, 2, 3, 7, len(plan), len(plan) + 3} {
		seen := map[results.Key]int{}
		lo, hi := len(plan), 0
		for i := 1; i <= n; i++ {
			part := ShardPlan(c, Shard{i, n})
			lo, hi = min(lo, len(part)), max(hi, len(part))
			groups := map[string]bool{}
			for _, tr := range part {
				seen[Key(c, tr)]++
				groups[fmt.Sprint(tr.Model, tr.Init, tr.Opt.Label)] = true
			}
			if n <= 7 && len(groups) != 9 {
				t.Errorf("shard %d/%d holds %d of the 9 groups", i, n, len(groups))
			}
		}
		if len(seen) != len(plan) || hi-lo > max(n-1, 0) {
			t.Errorf("N=%d: %d distinct trials of %d, shard sizes %d..%d", n, len(seen), len(plan), lo, hi)
		}
		for k, m := range seen {
			if m != 1 {
				t.Errorf("N=%d: %v in %d shards", n, k, m)
			}
		}
	}
	if len(ShardPlan(c, Shard{})) != len(plan) {
		t.Error("the zero Shard does not hold the whole plan")
	}
}

// TestShardRowsEqualWholeRun: running the shards separately gives exactly
// the rows of the whole run.
func TestShardRowsEqualWholeRun(t *testing.T) {
	c := mustConfig(t, independenceConfig)
	whole := runAll(t, c, nil, Settings{Workers: 2})
	got := map[results.Key]results.Row{}
	for i := 1; i <= 3; i++ {
		r, err := NewRunner(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		var col collect
		if err := r.Run(context.Background(), &col, Settings{Shard: Shard{i, 3}, Workers: 1, K: 16}); err != nil {
			t.Fatal(err)
		}
		for k, row := range col.byKey() {
			if _, dup := got[k]; dup {
				t.Fatalf("%v run by two shards", k)
			}
			got[k] = row
		}
	}
	if len(got) != len(whole) {
		t.Fatalf("shards ran %d trials, the whole run %d", len(got), len(whole))
	}
	for k, want := range whole {
		if !sameRow(got[k], want) {
			t.Errorf("%v: shard %+v, whole %+v", k, got[k], want)
		}
	}
}

// withFault installs f as the batch fault injector for the test.
func withFault(t *testing.T, f func(b batch) error) {
	batchFault = f
	t.Cleanup(func() { batchFault = nil })
}

// TestFailedBatchesRetrySmaller: batches of more than 3 trials fail; the
// runner splits them until they run, logs the retries, and the rows equal
// an undisturbed run's.
func TestFailedBatchesRetrySmaller(t *testing.T) {
	c := mustConfig(t, independenceConfig)
	want := runAll(t, c, nil, Settings{K: 64, Workers: 1})
	var sizes []int
	withFault(t, func(b batch) error {
		sizes = append(sizes, len(b.trials))
		if len(b.trials) > 3 {
			return fmt.Errorf("%w: injected", ErrOutOfMemory)
		}
		return nil
	})
	var logs []string
	r, err := NewRunner(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	var col collect
	if err := r.Run(context.Background(), &col, Settings{K: 64, Workers: 1, Log: func(m string) { logs = append(logs, m) }}); err != nil {
		t.Fatal(err)
	}
	got := col.byKey()
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for k, w := range want {
		if !sameRow(got[k], w) {
			t.Errorf("%v: after retries %+v, want %+v", k, got[k], w)
		}
	}
	if len(logs) == 0 || !strings.Contains(logs[0], "retrying as batches of 32 and 32") || !strings.Contains(logs[0], "out of memory") {
		t.Errorf("retry log %q", logs)
	}
	failed := 0
	for _, s := range sizes {
		if s > 3 {
			failed++
		}
	}
	if failed != len(logs) {
		t.Errorf("%d batches failed, %d retries logged", failed, len(logs))
	}
}

// TestFailingTrialIsReported: a trial that fails even alone stops the run
// with an error naming it, after the other trials of its batch ran and
// were recorded.
func TestFailingTrialIsReported(t *testing.T) {
	c := mustConfig(t, independenceConfig)
	bad := ShardPlan(c, Shard{})[5]
	withFault(t, func(b batch) error {
		for _, tr := range b.trials {
			if tr == bad {
				return fmt.Errorf("trial %v: injected fault", tr)
			}
		}
		return nil
	})
	r, err := NewRunner(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	var col collect
	err = r.Run(context.Background(), &col, Settings{K: 8, Workers: 1})
	if err == nil || !strings.Contains(err.Error(), bad.String()) {
		t.Fatalf("error %v does not name %v", err, bad)
	}
	rows := col.byKey()
	if _, ok := rows[Key(c, bad)]; ok {
		t.Error("the failing trial was recorded")
	}
	// The batch of plan positions 0..7 of its group: the other 7 ran.
	if len(rows) < 7 {
		t.Errorf("%d rows recorded before the failure, want at least 7", len(rows))
	}
}

// TestMemoryCheckSplitsBatches: with little memory available, an image
// batch too large for it is split, and a single trial too large fails
// with ErrOutOfMemory.
func TestMemoryCheckSplitsBatches(t *testing.T) {
	pool := smallPool(t, 40)
	c := mustConfig(t, base)
	saved := availableMemory
	t.Cleanup(func() { availableMemory = saved })
	// One logistic SGD trial (B = 2) needs 2·64·784·8 bytes: let 2 fit.
	one := int64(2 * 64 * 784 * 8)
	availableMemory = func() int64 { return 2 * one }
	var logs []string
	r, err := NewRunner(c, pool)
	if err != nil {
		t.Fatal(err)
	}
	var col collect
	err = r.Run(context.Background(), &col, Settings{K: 8, Workers: 1, Log: func(m string) { logs = append(logs, m) }})
	// GD (B = N = 6) does not fit even alone.
	if !errors.Is(err, ErrOutOfMemory) || !strings.Contains(err.Error(), "gd") {
		t.Fatalf("error %v, want out of memory for gd", err)
	}
	if len(logs) == 0 || !strings.Contains(logs[0], "GiB are available") {
		t.Errorf("logs %q", logs)
	}
	sgd := 0
	for _, row := range col.rows {
		if row.Optimizer == "sgd" {
			sgd++
		}
	}
	if sgd == 0 {
		t.Error("no SGD trial ran in batches of two")
	}
}
