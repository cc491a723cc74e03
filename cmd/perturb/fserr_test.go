package main

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/perturb/perturb/trials/results"
)

// checkRunDirError checks runDirError(op, path, err): one mention of path,
// the cause, the fix, and err's chain kept.
func checkRunDirError(t *testing.T, op, path string, err error, want ...string) error {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	e := runDirError(op, path, err)
	msg := e.Error()
	if !strings.HasPrefix(msg, op+" "+path+": ") || strings.Count(msg, path) != strings.Count(strings.Join(want, " "), path)+1 {
		t.Errorf("message %q does not start with %q or names the path more often than wanted", msg, op+" "+path)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q lacks %q", msg, w)
		}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && !errors.Is(e, errno) {
		t.Errorf("errors.Is(%v, %v) is false", e, errno)
	}
	var pe *fs.PathError
	if !errors.As(e, &pe) || pe.Path != path {
		t.Errorf("errors.As(*fs.PathError) = %v", pe)
	}
	return e
}

func TestRunDirError(t *testing.T) {
	if runDirError("x", "y", nil) != nil {
		t.Error("runDirError(nil) != nil")
	}
	dir := t.TempDir()
	file := write(t, dir, "f", "keep")
	out := filepath.Join(file, "run")
	err := os.MkdirAll(out, 0o755)
	if !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("mkdir under a file: %v, want ENOTDIR", err)
	}
	checkRunDirError(t, "create run directory", out, err, file+" is a file, not a folder", "choose another --out")

	err = os.MkdirAll(file, 0o755)
	checkRunDirError(t, "create run directory", file, err, file+" is a file, not a folder")

	// Unrecognised errors keep their cause, with the path named once.
	err = os.WriteFile(filepath.Join(dir, "nope", "config.toml"), nil, 0o644)
	e := checkRunDirError(t, "write", filepath.Join(dir, "nope", "config.toml"), err)
	if !errors.Is(e, fs.ErrNotExist) {
		t.Errorf("lost ErrNotExist: %v", e)
	}
}

const fserrHelperEnv = "PERTURB_FSERR_HELPER_DIR"

// TestRunDirErrorMounts provokes ENOSPC and EROFS on a small tmpfs and a
// read-only mount in a user and mount namespace (see inNamespace).
func TestRunDirErrorMounts(t *testing.T) {
	if os.Getenv(fserrHelperEnv) != "" {
		t.Skip("parent test")
	}
	if err := nsProbe(); err != nil {
		t.Skipf("needs unshare --user --map-root-user --mount, which fails here: %v", err)
	}
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "full"))
	mkdir(t, filepath.Join(dir, "ro"))
	script := `mount -t tmpfs -o size=64k tmpfs "$1/full" && mount --bind "$1/ro" "$1/ro" && mount -o remount,bind,ro "$1/ro" && exec "$0" -test.run='^TestHelperRunDirError$' -test.count=1 -test.v`
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, os.Args[0], dir)
	cmd.Env = append(os.Environ(), fserrHelperEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestHelperRunDirError") {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestHelperRunDirError runs inside the namespace of TestRunDirErrorMounts.
func TestHelperRunDirError(t *testing.T) {
	dir := os.Getenv(fserrHelperEnv)
	if dir == "" {
		t.Skip("helper process for TestRunDirErrorMounts")
	}
	// Fill the tmpfs, then write a config copy: ENOSPC.
	full := filepath.Join(dir, "full")
	err := os.WriteFile(filepath.Join(full, "fill"), make([]byte, 1<<20), 0o644)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling a 64 KiB tmpfs: %v", err)
	}
	out := filepath.Join(full, "run")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(out, configFile)
	err = os.WriteFile(p+".tmp", []byte(strings.Repeat("x", 8192)), 0o644)
	e := checkRunDirError(t, "write", p, err, "no space left on device", "the disk holding "+out+" is full", "choose another --out")
	if !errors.Is(e, results.ErrDiskFull) || !errors.Is(e, syscall.ENOSPC) {
		t.Errorf("%v: not ErrDiskFull and ENOSPC", e)
	}
	t.Logf("full: %v", e)

	// A run directory on a read-only mount: EROFS.
	ro := filepath.Join(dir, "ro")
	out = filepath.Join(ro, "run")
	err = os.MkdirAll(out, 0o755)
	e = checkRunDirError(t, "create run directory", out, err, "read-only file system", "the folder "+ro+" is not writable", "make it writable, or choose another --out")
	if !errors.Is(e, results.ErrReadOnly) || !errors.Is(e, syscall.EROFS) {
		t.Errorf("%v: not ErrReadOnly and EROFS", e)
	}
	t.Logf("read-only: %v", e)
}
