package main

import (
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perturb/perturb/trials/results"
)

// TestMain lets the test binary act as the perturb command when
// PERTURB_TEST_MAIN is set, so tests can run (and kill) real processes.
func TestMain(m *testing.M) {
	if os.Getenv("PERTURB_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func perturbProcess(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "PERTURB_TEST_MAIN=1")
	return cmd
}

// TestKillAndResume kills a run with SIGKILL at random moments several
// times, resumes it each time, and checks that the final store equals an
// uninterrupted run's row by row: no trial lost, none run twice.
func TestKillAndResume(t *testing.T) {
	needFashion(t)
	if testing.Short() {
		t.Skip("slow: runs about 60 logistic trials twice")
	}
	dir := t.TempDir()
	cfg := write(t, dir, "k.toml", strings.NewReplacer("count = 3", "count = 40", "etas = [0.1]", "etas = [0.1, 0.3]").Replace(tiny))
	// Small batches (K = 2) so kills land between commits; the reference
	// uses two workers, the killed runs one. (Different K may change the
	// last bits of a loss, through the order of the batched products'
	// sums; trials.TestImageResultsIndependentOfK bounds that.)
	ref := filepath.Join(dir, "ref")
	if out, err := perturbProcess("run", cfg, "--out", ref, "--k", "2", "--workers", "2").CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}

	killed := filepath.Join(dir, "killed")
	r := rand.New(rand.NewPCG(1, 2))
	kills, partial, stored := 0, []int{}, 0
	for ; kills < 5; kills++ {
		cmd := perturbProcess("run", cfg, "--out", killed, "--k", "2", "--workers", "1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Kill once a few more rows are committed, plus a random delay, so
		// the kill lands mid-run at a random point of a batch.
		target := stored + 1 + r.IntN(8)
		killedIt := false
	wait:
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run %d failed: %v", kills+1, err)
				}
				t.Logf("run %d finished before its kill", kills+1)
				break wait
			case <-time.After(50 * time.Millisecond):
				if _, rows, err := results.ReadRows(filepath.Join(killed, resultsFile)); err == nil && len(rows) >= target {
					time.Sleep(time.Duration(r.IntN(400)) * time.Millisecond)
					cmd.Process.Signal(syscall.SIGKILL)
					<-done
					killedIt = true
					break wait
				}
			}
		}
		if !killedIt {
			break
		}
		if _, rows, err := results.ReadRows(filepath.Join(killed, resultsFile)); err == nil {
			partial = append(partial, len(rows))
			stored = len(rows)
		}
	}
	if out, err := perturbProcess("run", cfg, "--out", killed).CombinedOutput(); err != nil {
		t.Fatalf("final resume: %v\n%s", err, out)
	}
	// Every killed run left its sessions.json entry running, and the file
	// parses.
	ss, err := results.ReadSessions(killed)
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	for _, s := range ss {
		if s.Outcome == results.Running {
			running++
		}
	}
	// A kill that lands before the run has written its entry (as when
	// the row count the kill waits for was read stale, under load) leaves
	// none, so at most one per kill.
	if running < 1 || running > kills || ss[len(ss)-1].Outcome != "done" {
		t.Errorf("after %d kills sessions.json has %d running entries (want 1 to %d) and ends %q", kills, running, kills, ss[len(ss)-1].Outcome)
	}
	_, want, err := results.ReadRows(filepath.Join(ref, resultsFile))
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := results.ReadRows(filepath.Join(killed, resultsFile))
	if err != nil {
		t.Fatal(err)
	}
	midRun := 0
	for _, n := range partial {
		if n > 0 && n < len(want) {
			midRun++
		}
	}
	if midRun < 2 {
		t.Fatalf("rows stored after each kill %v: no kill landed mid-run with rows committed", partial)
	}
	if len(got) != len(want) {
		t.Fatalf("after %d kills: %d rows, uninterrupted run has %d", kills, len(got), len(want))
	}
	// Identities, settings, statuses and initial losses must be identical;
	// the final losses to float64 rounding (a resumed run batches the
	// remaining trials differently, and a batched product's rounding may
	// depend on a trial's neighbours).
	worst := 0.0
	for i := range want {
		g, w := got[i], want[i]
		for _, p := range [][2]*float64{{&g.TestLoss, &w.TestLoss}, {&g.TrainLoss, &w.TrainLoss}, {&g.TestAcc, &w.TestAcc}} {
			rel := math.Abs(*p[0]-*p[1]) / math.Abs(*p[1])
			if !(rel <= 1e-12) {
				t.Fatalf("row %d differs after %d kills:\n%+v\n%+v", i, kills, got[i], want[i])
			}
			worst = max(worst, rel)
			*p[0] = *p[1]
		}
		if !reflect.DeepEqual(g.Results(), w.Results()) {
			t.Fatalf("row %d differs after %d kills:\n%+v\n%+v", i, kills, got[i], want[i])
		}
	}
	t.Logf("%d SIGKILLs (rows stored after each: %v), %d rows equal to the uninterrupted run (largest relative loss difference %.1g), none lost, none duplicated",
		kills, partial, len(got), worst)
}
