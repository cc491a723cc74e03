package results

import (
	"bufio"
	"database/sql"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func testMeta() Meta {
	return Meta{
		ConfigHash: "abc123",
		ConfigText: "name = \"t\"\n[run]\nn = 8\n",
		ConfigName: "t",
		Created:    time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
	}
}

func mkRow(opt string, eta float64, init, trial int) Row {
	return Row{
		ConfigHash: "abc123", Model: "logistic", Optimizer: opt, Eta: eta, Init: init, Trial: trial, DType: "float64",
		N: 8, Batch: 2, Epochs: 3, Steps: 12, Status: StatusOK, PoolTestLoss: math.NaN(),
		InitTestLoss: 0.693147, InitTestAcc: 0.5, TestLoss: 0.25 + float64(trial)/1000, TestAcc: 0.9, TrainLoss: 0.2,
		DivergedStep: -1,
	}
}

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run.sqlite")
	s, err := Create(path, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// sameRow compares rows treating NaN as equal to NaN.
func sameRow(a, b Row) bool {
	fa := []*float64{&a.InitTestLoss, &a.InitTestAcc, &a.TestLoss, &a.TestAcc, &a.TrainLoss, &a.PoolTestLoss}
	fb := []*float64{&b.InitTestLoss, &b.InitTestAcc, &b.TestLoss, &b.TestAcc, &b.TrainLoss, &b.PoolTestLoss}
	for i := range fa {
		if math.IsNaN(*fa[i]) != math.IsNaN(*fb[i]) {
			return false
		}
		if math.IsNaN(*fa[i]) {
			*fa[i], *fb[i] = 0, 0
		}
	}
	return reflect.DeepEqual(a, b)
}

func TestRoundTrip(t *testing.T) {
	s, path := newStore(t)
	div := mkRow("gd", 10, 1, 0)
	div.Status = StatusDiverged
	div.TestLoss = math.NaN()
	div.TrainLoss = math.Inf(1)
	div.TestAcc = math.NaN()
	div.DivergedStep = 3
	odd := mkRow("sgd", 0.1, 0, 1)
	odd.Weights = []float64{1.5, -2.25e-300, 7}
	odd.TestLoss = 1.0000000000000002 // exact float64 round-trip
	odd.DType = "float32"
	in := []Row{mkRow("sgd", 0.1, 0, 0), div, odd, mkRow("gd", 0.1, 0, 0), mkRow("sgd", 0.01, 0, 0)}
	if err := s.Insert(in); err != nil {
		t.Fatal(err)
	}
	// Expected order: model, optimizer, eta, init, trial, dtype.
	// Non-finite values (the +Inf train loss too) come back as NaN.
	divBack := div
	divBack.TrainLoss = math.NaN()
	want := []Row{in[3], divBack, in[4], in[0], in[2]}
	check := func(name string, got []Row) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: got %d rows, want %d", name, len(got), len(want))
		}
		for i := range want {
			if !sameRow(got[i], want[i]) {
				t.Errorf("%s: row %d:\n got  %+v\n want %+v", name, i, got[i], want[i])
			}
		}
	}
	got, err := s.Rows()
	if err != nil {
		t.Fatal(err)
	}
	check("Rows", got)
	if !math.IsNaN(got[1].TestLoss) || !math.IsNaN(got[1].TrainLoss) || got[1].Status != StatusDiverged {
		t.Errorf("diverged row read back as %+v", got[1])
	}
	// NULL in the file.
	var nulls int
	if err := s.db.QueryRow(`SELECT count(*) FROM trials WHERE test_loss IS NULL AND train_loss IS NULL`).Scan(&nulls); err != nil {
		t.Fatal(err)
	}
	if nulls != 1 {
		t.Errorf("rows with NULL test_loss and train_loss = %d, want 1", nulls)
	}
	keys, err := s.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(in) {
		t.Errorf("Keys: %d keys, want %d", len(keys), len(in))
	}
	for _, r := range in {
		if !keys[r.Key()] {
			t.Errorf("Keys lacks %v", r.Key())
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	wantMeta := testMeta()
	wantMeta.SchemaVersion = SchemaVersion
	if !reflect.DeepEqual(m, wantMeta) || !m.Created.Equal(testMeta().Created) {
		t.Errorf("Open meta = %+v, want %+v", m, testMeta())
	}
	got, err = s2.Rows()
	if err != nil {
		t.Fatal(err)
	}
	check("Open+Rows", got)
	m, got, err = ReadRows(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.ConfigHash != "abc123" || m.ConfigText != testMeta().ConfigText {
		t.Errorf("ReadRows meta = %+v", m)
	}
	check("ReadRows", got)
}

func count(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM trials`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDuplicateRollsBack(t *testing.T) {
	s, _ := newStore(t)
	if err := s.Insert([]Row{mkRow("sgd", 0.1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		rows []Row
	}{
		{"duplicate of stored row", []Row{mkRow("sgd", 0.1, 0, 1), mkRow("sgd", 0.1, 0, 2), mkRow("sgd", 0.1, 0, 0)}},
		{"duplicate within batch", []Row{mkRow("gd", 0.1, 0, 5), mkRow("gd", 0.1, 0, 6), mkRow("gd", 0.1, 0, 5)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Insert(tc.rows)
			if err == nil {
				t.Fatal("Insert accepted a duplicate key")
			}
			dup := tc.rows[len(tc.rows)-1].Key()
			if !strings.Contains(err.Error(), "duplicate") || !strings.Contains(err.Error(), dup.String()) {
				t.Errorf("error %q does not name the duplicate key %v", err, dup)
			}
			if n := count(t, s); n != 1 {
				t.Errorf("after failed Insert the store holds %d rows, want 1 (partial transaction)", n)
			}
		})
	}
	// The store is still usable.
	if err := s.Insert([]Row{mkRow("sgd", 0.1, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s); n != 2 {
		t.Errorf("rows = %d, want 2", n)
	}
}

func TestInsertValidates(t *testing.T) {
	s, _ := newStore(t)
	bad := []func(*Row){
		func(r *Row) { r.Status = "" },
		func(r *Row) { r.Status = "failed" },
		func(r *Row) { r.Eta = math.NaN() },
		func(r *Row) { r.Model = "" },
	}
	for i, f := range bad {
		r := mkRow("sgd", 0.1, 0, i)
		f(&r)
		if err := s.Insert([]Row{mkRow("gd", 0.1, 0, i), r}); err == nil {
			t.Errorf("case %d: Insert accepted %+v", i, r)
		}
	}
	if n := count(t, s); n != 0 {
		t.Errorf("rows = %d, want 0", n)
	}
}

func TestCreateExisting(t *testing.T) {
	_, path := newStore(t)
	if _, err := Create(path, testMeta()); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("Create on existing store: err = %v, want 'exists' error", err)
	}
	other := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(other, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(other, testMeta()); err == nil {
		t.Fatal("Create on existing plain file succeeded")
	}
	if b, _ := os.ReadFile(other); string(b) != "x" {
		t.Fatalf("Create clobbered an existing file: %q", b)
	}
}

func TestOpenNewerSchema(t *testing.T) {
	s, path := newStore(t)
	if _, err := s.db.Exec(`UPDATE meta SET value='99' WHERE key='schema_version'`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, _, err := Open(path)
	if err == nil {
		t.Fatal("Open accepted schema_version 99")
	}
	msg := err.Error()
	for _, want := range []string{path, "schema_version 99", "schema_version 5", "newer perturb"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if _, _, err := ReadRows(path); err == nil || !strings.Contains(err.Error(), "99") {
		t.Errorf("ReadRows on schema_version 99: err = %v", err)
	}
}

func TestOpenNotAStore(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat("this is not a database\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	otherDB := filepath.Join(dir, "other.sqlite")
	db, err := sql.Open("sqlite", otherDB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE x(a)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	missing := filepath.Join(dir, "missing.sqlite")

	tests := []struct {
		name, path, want string
	}{
		{"text file", text, "not a perturb results store"},
		{"foreign sqlite", otherDB, "not a perturb results store"},
		{"missing", missing, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _, err := Open(tc.path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("Open error %q lacks %q or the path", err, tc.want)
			}
			if _, _, err := ReadRows(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadRows error %v lacks %q", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("Open created %s", missing)
	}
}

func TestWriter(t *testing.T) {
	s, _ := newStore(t)
	w := NewWriter(s, time.Hour, 10)
	var wg sync.WaitGroup
	errs := make(chan error, 4*25)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				errs <- w.Add(mkRow("sgd", 0.1, g, i))
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, s); n != 100 {
		t.Errorf("after 100 Adds with maxRows 10: %d rows committed, want 100", n)
	}
	if err := w.Add(mkRow("gd", 0.1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s); n != 100 || w.Pending() != 1 {
		t.Errorf("row committed early: count %d, pending %d", n, w.Pending())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s); n != 101 {
		t.Errorf("after Flush: %d rows, want 101", n)
	}

	// Time-based commit.
	w2 := NewWriter(s, time.Millisecond, 1000)
	time.Sleep(5 * time.Millisecond)
	if err := w2.Add(mkRow("gd", 0.1, 0, 1)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s); n != 102 {
		t.Errorf("time-based commit: %d rows, want 102", n)
	}
}

const (
	helperEnv = "PERTURB_RESULTS_HELPER_DB"
	helperTx  = 7
)

// TestHelperWriter is the child process of TestKillMidRun: it appends rows
// in transactions of helperTx rows until killed.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process for TestKillMidRun")
	}
	s, _, err := Open(path)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	w := NewWriter(s, 0, helperTx)
	for i := 0; ; i++ {
		if err := w.Add(mkRow("sgd", 0.1, i/1000, i%1000)); err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		if i == helperTx-1 {
			fmt.Println("ready")
		}
		if i > 10_000_000 {
			os.Exit(3) // never reached in practice; don't loop forever
		}
	}
}

func TestKillMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "killed.sqlite")
	s, err := Create(path, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l := sc.Text(); l == "ready" || strings.HasPrefix(l, "error:") {
				ready <- l
				break
			}
		}
		close(ready)
		for sc.Scan() {
		}
	}()
	select {
	case l := <-ready:
		if l != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper: %q", l)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("helper did not start writing within 60s")
	}
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
		t.Fatal(err)
	}
	cmd.Wait()

	// Read-only first, while the WAL left by the killed process is still hot.
	_, rr, err := ReadRows(path)
	if err != nil {
		t.Fatalf("ReadRows after kill: %v", err)
	}
	s, _, err = Open(path)
	if err != nil {
		t.Fatalf("store unreadable after kill: %v", err)
	}
	defer s.Close()
	var ic string
	if err := s.db.QueryRow(`PRAGMA integrity_check`).Scan(&ic); err != nil || ic != "ok" {
		t.Fatalf("integrity_check = %q, %v", ic, err)
	}
	rows, err := s.Rows()
	if err != nil {
		t.Fatal(err)
	}
	n := len(rows)
	t.Logf("%d rows survived the kill", n)
	if n == 0 {
		t.Fatal("no committed rows survived")
	}
	if n%helperTx != 0 {
		t.Fatalf("%d rows is not a multiple of the transaction size %d: partial transaction", n, helperTx)
	}
	if len(rr) != n {
		t.Fatalf("ReadRows after kill: %d rows, Open+Rows: %d", len(rr), n)
	}
}

// TestUpgradeV1 reads a version 1 store (no diverged_step, no weights) as
// is, upgrades it on Open, and accepts version 2 rows afterwards.
func TestUpgradeV1(t *testing.T) {
	s, path := newStore(t)
	old := mkRow("sgd", 0.1, 0, 0)
	if err := s.Insert([]Row{old}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`ALTER TABLE trials DROP COLUMN test_estimator`, `ALTER TABLE trials DROP COLUMN test_se`, `ALTER TABLE trials DROP COLUMN pool_test_loss`,
		`ALTER TABLE trials DROP COLUMN seconds`, `ALTER TABLE trials DROP COLUMN test_seconds`, `ALTER TABLE trials DROP COLUMN pool_seconds`,
		`ALTER TABLE trials DROP COLUMN sharpness`,
		`ALTER TABLE trials DROP COLUMN weights`,
		`ALTER TABLE trials DROP COLUMN diverged_step`,
		`UPDATE meta SET value = '1' WHERE key = 'schema_version'`,
	} {
		if _, err := s.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	m, rows, err := ReadRows(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != 1 || len(rows) != 1 || !sameRow(rows[0], old) {
		t.Fatalf("v1 store read as version %d, rows %+v", m.SchemaVersion, rows)
	}
	s2, m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if m.SchemaVersion != SchemaVersion {
		t.Errorf("Open left schema_version %d", m.SchemaVersion)
	}
	nw := mkRow("sgd", 0.1, 0, 1)
	nw.Weights = []float64{0.5}
	if err := s2.Insert([]Row{nw}); err != nil {
		t.Fatal(err)
	}
	got, err := s2.Rows()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !sameRow(got[0], old) || !sameRow(got[1], nw) {
		t.Errorf("after upgrade: %+v", got)
	}
}
