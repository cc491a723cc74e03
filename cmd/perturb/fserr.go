package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/perturb/perturb/trials/results"
)

// runDirError explains a failure of op (e.g. "create run directory",
// "write") on path, the run directory or a file in it: the error names the
// path once, says what is wrong and how to fix it, and wraps err (so
// errors.Is(err, syscall.ENOSPC) and errors.Is(err, results.ErrDiskFull)
// both hold for a full disk). A full disk, a read-only folder and a file
// standing where the run directory should be are recognised; other errors
// are returned as "op path: cause".
func runDirError(op, path string, err error) error {
	if err == nil {
		return nil
	}
	cause := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		cause = pe.Err // the path is named once, below
	}
	e := &fs.PathError{Op: op, Path: path, Err: cause}
	if errors.Is(cause, syscall.ENOTDIR) || errors.Is(cause, syscall.EEXIST) {
		blocker := path
		for p := path; ; {
			if fi, serr := os.Stat(p); serr == nil && !fi.IsDir() {
				blocker = p
				break
			}
			parent := filepath.Dir(p)
			if parent == p {
				break
			}
			p = parent
		}
		return fmt.Errorf("%w; %s is a file, not a folder: choose another --out, or move the file away", e, blocker)
	}
	return results.Explain(path, e)
}
