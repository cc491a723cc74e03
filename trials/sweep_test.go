package trials

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/results"
)

// TestSweepDTypes runs a landscape sweep over both dtypes: every trial
// runs once per dtype; each dtype's rows equal those of the single-dtype
// config (same training sets, initialisations and orders) but for the
// config hash, which is the sweep's; float32 and float64 agree to float32
// rounding; shards of the sweep split each dtype as its single-dtype
// config does; a skip set resumes per dtype.
func TestSweepDTypes(t *testing.T) {
	base := strings.Replace(meanEstConfig, "count = 40", "count = 6", 1)
	sweep := mustConfig(t, strings.Replace(base, `dtype = "float64"`, `dtype = ["float32", "float64"]`, 1))
	if _, err := NewRunner(sweep, nil); err == nil {
		t.Error("NewRunner accepted a multi-dtype config")
	}
	r, err := NewSweepRunner(sweep, nil)
	if err != nil {
		t.Fatal(err)
	}
	var col collect
	var last [2]int
	if err := r.Run(context.Background(), &col, Settings{Workers: 2, Progress: func(d, n int) { last = [2]int{d, n} }}); err != nil {
		t.Fatal(err)
	}
	plan := Plan(sweep)
	if len(col.rows) != len(plan) || len(plan) != 2*sweep.NumTrials() || last != [2]int{len(plan), len(plan)} {
		t.Fatalf("%d rows, plan %d, NumTrials %d, last progress %v", len(col.rows), len(plan), sweep.NumTrials(), last)
	}
	got := map[results.Key]results.Row{}
	for _, row := range col.rows {
		if row.ConfigHash != sweep.Hash() {
			t.Fatalf("row %v has hash %s, want the sweep's", row.Key(), row.ConfigHash)
		}
		got[row.Key()] = row
	}
	for _, dt := range []string{"float32", "float64"} {
		single := mustConfig(t, strings.Replace(base, `dtype = "float64"`, `dtype = "`+dt+`"`, 1))
		want := runAll(t, single, nil, Settings{Workers: 1})
		for k, w := range want {
			g, ok := got[k]
			if !ok {
				t.Fatalf("%s: no sweep row %v", dt, k)
			}
			g.ConfigHash = w.ConfigHash
			if show(g) != show(w) {
				t.Errorf("%s: sweep row %+v\nsingle-dtype row %+v", dt, g, w)
			}
		}
	}
	for k, r64 := range got {
		if k.DType != "float64" {
			continue
		}
		k32 := k
		k32.DType = "float32"
		r32 := got[k32]
		if d := math.Abs(r32.TestLoss - r64.TestLoss); !(d <= 1e-4*math.Max(1, math.Abs(r64.TestLoss))) {
			t.Errorf("%v: float32 test loss %v, float64 %v", k, r32.TestLoss, r64.TestLoss)
		}
	}
	// Shards: the sweep's shard is the union of the single-dtype shards.
	for i := 1; i <= 3; i++ {
		sh := Shard{I: i, N: 3}
		want := map[results.Key]bool{}
		for _, dt := range sweep.DTypes {
			one := sweep.ForDType(dt)
			for _, tr := range ShardPlan(one, sh) {
				want[Key(one, tr)] = true
			}
		}
		gotKeys := map[results.Key]bool{}
		for _, tr := range ShardPlan(sweep, sh) {
			gotKeys[Key(sweep, tr)] = true
		}
		if !reflect.DeepEqual(gotKeys, want) {
			t.Errorf("shard %s: %d keys, want %d", sh, len(gotKeys), len(want))
		}
	}
	// Resume: skipping every float32 row runs only the float64 trials.
	skip := map[results.Key]bool{}
	for k := range got {
		if k.DType == "float32" {
			skip[k] = true
		}
	}
	var rest collect
	if err := r.Run(context.Background(), &rest, Settings{Workers: 2, Skip: skip}); err != nil {
		t.Fatal(err)
	}
	if len(rest.rows) != len(plan)/2 {
		t.Fatalf("resume ran %d trials, want %d", len(rest.rows), len(plan)/2)
	}
	for _, row := range rest.rows {
		if row.DType != "float64" {
			t.Fatalf("resume ran %v", row.Key())
		}
	}
	// RunOne dispatches on the trial's dtype.
	one, err := r.RunOne(plan[len(plan)-1])
	if err != nil || show(one) != show(got[one.Key()]) || one.DType != "float64" {
		t.Errorf("RunOne: %+v, %v\nwant %+v", one, err, got[one.Key()])
	}
}

// show prints a row for comparison (NaN equal to NaN).
// show formats a row's results (its costs left out) for comparison.
func show(r results.Row) string { return fmt.Sprintf("%+v", r.Results()) }
