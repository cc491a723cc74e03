package results

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// checkExplained checks that Explain(path, err) is an explained error of
// the given kind that keeps err's chain, names want, and returns it.
func checkExplained(t *testing.T, path string, err, kind error, want ...string) error {
	t.Helper()
	if err == nil {
		t.Fatalf("no error to explain (want %v)", kind)
	}
	e := Explain(path, err)
	var se *StorageError
	if !errors.As(e, &se) || !errors.Is(e, kind) {
		t.Fatalf("Explain(%q, %v) = %v, not a %v StorageError", path, err, e, kind)
	}
	if !errors.Is(e, err) {
		t.Errorf("Explain lost the original error: errors.Is(%v, %v) is false", e, err)
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		var got *sqlite.Error
		if !errors.As(e, &got) || got.Code() != lite.Code() {
			t.Errorf("errors.As(*sqlite.Error) no longer finds code %d in %v", lite.Code(), e)
		}
	}
	msg := e.Error()
	if !strings.HasPrefix(msg, err.Error()) {
		t.Errorf("message %q does not start with the original error %q", msg, err)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q lacks %q", msg, w)
		}
	}
	if again := Explain(path, e); again != e {
		t.Errorf("Explain is not idempotent: %v", again)
	}
	return e
}

func TestExplainUnrecognised(t *testing.T) {
	if Explain("x", nil) != nil {
		t.Error("Explain(nil) != nil")
	}
	boom := errors.New("boom")
	if got := Explain("x", boom); got != boom {
		t.Errorf("Explain changed an unrecognised error: %v", got)
	}
	_, _, err := Open(filepath.Join(t.TempDir(), "missing.sqlite"))
	if got := Explain("missing.sqlite", err); got != err {
		t.Errorf("Explain changed a missing-file error: %v", got)
	}
}

func TestExplainDamaged(t *testing.T) {
	dir := t.TempDir()
	// Not a database at all: SQLITE_NOTADB.
	junk := filepath.Join(dir, "junk.sqlite")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a database\n", 500)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := Open(junk)
	var lite *sqlite.Error
	if !errors.As(err, &lite) || lite.Code()&0xff != sqlite3.SQLITE_NOTADB {
		t.Fatalf("Open of junk: %v, want SQLITE_NOTADB", err)
	}
	checkExplained(t, junk, err, ErrDamaged, junk, "restore it from a backup", "choose another --out")

	// A store whose table pages are overwritten: SQLITE_CORRUPT.
	path := filepath.Join(dir, "damaged.sqlite")
	s, err := Create(path, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	var rows []Row
	for i := range 2000 {
		rows = append(rows, mkRow("sgd", 0.1, i/100, i%100))
	}
	if err := s.Insert(rows); err != nil {
		t.Fatal(err)
	}
	s.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	// Keep page 1 (the header and schema) and the meta table; damage the rest.
	junkPages := []byte(strings.Repeat("\xff\x00\x13", int(fi.Size()-3*4096)/3))
	if _, err := f.WriteAt(junkPages, 3*4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, _, err = ReadRows(path)
	if !errors.As(err, &lite) || lite.Code()&0xff != sqlite3.SQLITE_CORRUPT {
		t.Fatalf("ReadRows of a damaged store: %v, want SQLITE_CORRUPT", err)
	}
	checkExplained(t, path, err, ErrDamaged, path, "damaged", "restore it from a backup")
}

func TestExplainReadOnlyConnection(t *testing.T) {
	// A store opened read-only: writing fails with SQLITE_READONLY although
	// the folder and the file are writable.
	_, path := newStore(t)
	db, err := openDB(path, roQuery)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.Exec(`INSERT INTO meta(key, value) VALUES ('x', 'y')`)
	var lite *sqlite.Error
	if !errors.As(err, &lite) || lite.Code()&0xff != sqlite3.SQLITE_READONLY {
		t.Fatalf("insert through a read-only connection: %v, want SQLITE_READONLY", err)
	}
	checkExplained(t, path, err, ErrReadOnly, path, "not writable", "choose another --out")
}

func TestExplainPermission(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores permission bits; TestExplainReadOnlyMount covers a read-only folder")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	_, err := Create(filepath.Join(dir, "r.sqlite"), testMeta())
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("Create in a 0555 folder: %v, want a permission error", err)
	}
	checkExplained(t, filepath.Join(dir, "r.sqlite"), err, ErrReadOnly, "the folder "+dir, "permission denied", "make it writable")
}

func TestExplainFileSizeLimit(t *testing.T) {
	if os.Getenv(explainEnv) != "" {
		t.Skip("parent test")
	}
	dir := t.TempDir()
	// sh ignores SIGXFSZ so that exceeding ulimit -f gives EFBIG.
	cmd := exec.Command("sh", "-c", `trap '' XFSZ && ulimit -f 64 && exec "$0" -test.run='^TestHelperExplain$' -test.count=1 -test.v`, os.Args[0])
	cmd.Env = append(os.Environ(), explainEnv+"=efbig", explainDirEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), "no EFBIG") {
		t.Skipf("cannot provoke EFBIG here:\n%s", out)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestHelperExplain") {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

const (
	explainEnv    = "PERTURB_RESULTS_EXPLAIN"     // helper case
	explainDirEnv = "PERTURB_RESULTS_EXPLAIN_DIR" // helper folder
)

var (
	nsOnce sync.Once
	nsErr  error
)

// inNamespace runs setup (a shell command; $DIR is dir) and then the
// helper case TestHelperExplain in a new user and mount namespace, where
// the test is root and can mount. It skips the test if the system allows
// no such namespace.
func inNamespace(t *testing.T, dir, setup, helperCase string) {
	t.Helper()
	nsOnce.Do(func() {
		probe := t.TempDir()
		out, err := exec.Command("unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
			`mount -t tmpfs -o size=64k tmpfs "$0" && mount --bind "$0" "$0" && mount -o remount,bind,ro "$0"`, probe).CombinedOutput()
		if err != nil {
			nsErr = fmt.Errorf("unshare --user --map-root-user --mount with tmpfs and read-only bind mounts: %v: %s", err, out)
		}
	})
	if nsErr != nil {
		t.Skipf("needs a user and mount namespace to mount a small tmpfs or a read-only folder; not possible here: %v", nsErr)
	}
	script := setup + ` && exec "$0" -test.run='^TestHelperExplain$' -test.count=1 -test.v`
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--mount", "sh", "-euc", script, os.Args[0])
	cmd.Env = append(os.Environ(), explainEnv+"="+helperCase, explainDirEnv+"="+dir, "DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestHelperExplain") {
		t.Fatalf("helper %s: %v\n%s", helperCase, err, out)
	}
	t.Logf("%s", out)
}

func TestExplainDiskFull(t *testing.T) {
	if os.Getenv(explainEnv) != "" {
		t.Skip("parent test")
	}
	inNamespace(t, t.TempDir(), `mount -t tmpfs -o size=192k tmpfs "$DIR"`, "full")
}

func TestExplainReadOnlyMount(t *testing.T) {
	if os.Getenv(explainEnv) != "" {
		t.Skip("parent test")
	}
	dir := t.TempDir()
	s, err := Create(filepath.Join(dir, "r.sqlite"), testMeta())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Insert([]Row{mkRow("sgd", 0.1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// A database in rollback-journal mode, which SQLite opens read-only on
	// read-only media even when asked for read-write.
	db, err := sql.Open("sqlite", filepath.Join(dir, "plain.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE x(a)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	inNamespace(t, dir, `mount --bind "$DIR" "$DIR" && mount -o remount,bind,ro "$DIR"`, "readonly")
}

// TestHelperExplain runs in a child process (see inNamespace), in a folder
// prepared by its parent test: a small tmpfs, a read-only mount, or under
// a file size limit.
func TestHelperExplain(t *testing.T) {
	dir := os.Getenv(explainDirEnv)
	switch os.Getenv(explainEnv) {
	case "":
		t.Skip("helper process for TestExplainDiskFull, TestExplainReadOnlyMount and TestExplainFileSizeLimit")
	case "full":
		helperFull(t, dir)
	case "readonly":
		helperReadOnly(t, dir)
	case "efbig":
		helperEFBIG(t, dir)
	default:
		t.Fatalf("unknown helper case %q", os.Getenv(explainEnv))
	}
}

// helperFull fills the tmpfs dir with a store until a commit fails, then
// with a plain file until the disk is full, then creates a store there.
func helperFull(t *testing.T, dir string) {
	path := filepath.Join(dir, "r.sqlite")
	s, err := Create(path, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	committed := 0
	for i := 0; ; i++ {
		var rows []Row
		for j := range 100 {
			rows = append(rows, mkRow("sgd", 0.1, i, j))
		}
		if err = s.Insert(rows); err != nil {
			break
		}
		committed += len(rows)
		if i > 1000 {
			t.Fatal("a 192 KiB tmpfs took 100000 rows")
		}
	}
	var lite *sqlite.Error
	if !errors.As(err, &lite) || lite.Code()&0xff != sqlite3.SQLITE_FULL {
		t.Fatalf("insert on a full disk: %v, want SQLITE_FULL", err)
	}
	e := checkExplained(t, path, err, ErrDiskFull, "the disk holding "+dir+" is full", "free some space", "choose another --out")
	t.Logf("insert: %v", e)
	s.Close()
	// The rows committed before the disk filled stay readable.
	if _, rows, err := ReadRows(path); err != nil || len(rows) != committed {
		t.Fatalf("after the failed insert: %d rows, err %v; want the %d committed rows", len(rows), err, committed)
	}

	// An ordinary file write: ENOSPC inside an *fs.PathError.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	fill := filepath.Join(dir, "fill")
	err = os.WriteFile(fill, make([]byte, 1<<20), 0o644)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing 1 MiB to a 192 KiB tmpfs: %v, want ENOSPC", err)
	}
	e = checkExplained(t, fill, err, ErrDiskFull, "the disk holding "+dir+" is full", "(0 B free)")
	var pe *fs.PathError
	if !errors.As(e, &pe) || !errors.Is(e, syscall.ENOSPC) {
		t.Errorf("Explain hid the *fs.PathError or ENOSPC: %v", e)
	}
	t.Logf("write: %v", e)

	// A new store on the full disk, with a little room left (an I/O error
	// extending the -shm index) and with none (SQLITE_FULL or so).
	for _, room := range []int64{20 << 10, 12 << 10, 0} {
		sub := filepath.Join(dir, fmt.Sprintf("new-%d", room))
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(fill, 0); err != nil {
			t.Fatal(err)
		}
		f, _ := os.OpenFile(fill, os.O_WRONLY|os.O_APPEND, 0)
		for {
			if _, err := f.Write(make([]byte, 4096)); err != nil {
				break
			}
		}
		f.Close()
		if room > 0 {
			fi, _ := os.Stat(fill)
			if err := os.Truncate(fill, fi.Size()-room); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(sub, "r.sqlite")
		free := freeSpace(sub)
		_, err := Create(p, testMeta())
		e := checkExplained(t, p, err, ErrDiskFull, "the disk holding "+sub+" is full", "choose another --out")
		t.Logf("create with %d bytes free (SQLite code %d): %v", free, sqliteCode(err), e)
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("failed Create left %s", p)
		}
	}
}

// helperReadOnly works on the read-only mount dir holding the store
// r.sqlite (WAL mode, closed) and the rollback-journal database plain.sqlite.
func helperReadOnly(t *testing.T, dir string) {
	want := []string{"the folder " + dir + " is not writable (read-only file system)", "make it writable", "choose another --out"}
	// A folder: EROFS inside an *fs.PathError.
	err := os.MkdirAll(filepath.Join(dir, "run"), 0o755)
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("mkdir on a read-only mount: %v, want EROFS", err)
	}
	t.Logf("mkdir: %v", checkExplained(t, filepath.Join(dir, "run"), err, ErrReadOnly, want...))

	// A new store.
	p := filepath.Join(dir, "new.sqlite")
	_, err = Create(p, testMeta())
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("Create on a read-only mount: %v, want EROFS", err)
	}
	t.Logf("create: %v", checkExplained(t, p, err, ErrReadOnly, want...))

	// An existing store: SQLite cannot create its -wal and -shm files.
	p = filepath.Join(dir, "r.sqlite")
	_, _, err = Open(p)
	var lite *sqlite.Error
	if !errors.As(err, &lite) {
		t.Fatalf("Open on a read-only mount: %v, want a SQLite error", err)
	}
	t.Logf("open: %v", checkExplained(t, p, err, ErrReadOnly, append(want, "copy its folder to a writable place")...))
	if _, _, err = ReadRows(p); err != nil {
		t.Logf("read: %v", checkExplained(t, p, err, ErrReadOnly, append(want, "copy its folder to a writable place")...))
	}

	// A rollback-journal database opened read-write falls back to
	// read-only: writing gives SQLITE_READONLY.
	p = filepath.Join(dir, "plain.sqlite")
	db, err := sql.Open("sqlite", uri(p, "mode=rw"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.Exec(`INSERT INTO x VALUES (1)`)
	if !errors.As(err, &lite) || lite.Code()&0xff != sqlite3.SQLITE_READONLY {
		t.Fatalf("insert on a read-only mount: %v, want SQLITE_READONLY", err)
	}
	t.Logf("insert: %v", checkExplained(t, p, err, ErrReadOnly, want...))
}

// helperEFBIG runs under a file size limit of 32 KiB (ulimit -f 64).
func helperEFBIG(t *testing.T, dir string) {
	p := filepath.Join(dir, "big")
	err := os.WriteFile(p, make([]byte, 1<<20), 0o644)
	if !errors.Is(err, syscall.EFBIG) {
		fmt.Printf("no EFBIG: writing 1 MiB under ulimit -f 64: %v\n", err)
		return
	}
	t.Logf("write: %v", checkExplained(t, p, err, ErrDiskFull, p, "largest file size", "ulimit -f"))
	p = filepath.Join(dir, "r.sqlite")
	s, err := Create(p, testMeta())
	if err == nil {
		for i := 0; err == nil && i < 1000; i++ {
			var rows []Row
			for j := range 100 {
				rows = append(rows, mkRow("sgd", 0.1, i, j))
			}
			err = s.Insert(rows)
		}
		s.Close()
	}
	if sqliteCode(err)&0xff != sqlite3.SQLITE_IOERR && sqliteCode(err)&0xff != sqlite3.SQLITE_FULL {
		t.Fatalf("store over ulimit -f: %v, want a SQLite I/O error", err)
	}
	t.Logf("store (SQLite code %d): %v", sqliteCode(err), checkExplained(t, p, err, ErrDiskFull, p, "largest file size", "ulimit -f, now 32 KiB"))
}

// sqliteCode returns the SQLite result code in err's chain, or -1.
func sqliteCode(err error) int {
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		return lite.Code()
	}
	return -1
}
