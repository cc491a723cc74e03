package main

import (
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
	cfg := write(t, dir, "k.toml", strings.NewReplacer("count = 3", "count = 10", "etas = [0.1]", "etas = [0.1, 0.3]").Replace(tiny))
	ref := filepath.Join(dir, "ref")
	if out, err := perturbProcess("run", cfg, "--out", ref).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	killed := filepath.Join(dir, "killed")
	r := rand.New(rand.NewPCG(1, 2))
	kills, partial := 0, []int{}
	for ; kills < 5; kills++ {
		cmd := perturbProcess("run", cfg, "--out", killed)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			t.Fatalf("run finished (%v) before kill %d; the test needs a slower config", err, kills+1)
		case <-time.After(time.Duration(2500+r.IntN(2500)) * time.Millisecond):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
		}
		if _, rows, err := results.ReadRows(filepath.Join(killed, resultsFile)); err == nil {
			partial = append(partial, len(rows))
		}
	}
	if out, err := perturbProcess("run", cfg, "--out", killed).CombinedOutput(); err != nil {
		t.Fatalf("final resume: %v\n%s", err, out)
	}
	_, want, err := results.ReadRows(filepath.Join(ref, resultsFile))
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := results.ReadRows(filepath.Join(killed, resultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(partial) == 0 || partial[len(partial)-1] == 0 || partial[len(partial)-1] >= len(want) {
		t.Fatalf("rows stored after each kill %v: no kill landed mid-run with rows committed", partial)
	}
	if len(got) != len(want) {
		t.Fatalf("after %d kills: %d rows, uninterrupted run has %d", kills, len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("row %d differs after %d kills:\n%+v\n%+v", i, kills, got[i], want[i])
		}
	}
	t.Logf("%d SIGKILLs (rows stored after each: %v), %d rows identical to the uninterrupted run", kills, partial, len(got))
}
