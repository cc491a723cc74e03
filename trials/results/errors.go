package results

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Kinds of storage failure recognised by Explain. An explained error
// matches its kind with errors.Is, e.g. errors.Is(err, ErrDiskFull).
var (
	// ErrDiskFull: no space left on the device (or quota, or file size
	// limit) holding a store or run directory.
	ErrDiskFull = errors.New("disk full")
	// ErrReadOnly: the folder or file cannot be written (read-only file
	// system, missing permission).
	ErrReadOnly = errors.New("not writable")
	// ErrDamaged: the file is not a SQLite database or is a damaged one.
	ErrDamaged = errors.New("damaged results store")
)

// StorageError is an error from writing or reading a results store or a
// run directory, explained: the underlying error, then what is wrong with
// which folder or file and how to fix it. It unwraps to both the
// underlying error and its Kind, so errors.Is and errors.As see through it.
type StorageError struct {
	Path string // the file or folder the operation was on
	Kind error  // ErrDiskFull, ErrReadOnly or ErrDamaged
	Hint string // what is wrong and what to do
	Err  error  // the underlying error
}

func (e *StorageError) Error() string { return e.Err.Error() + "; " + e.Hint }

// Unwrap returns the underlying error and the kind.
func (e *StorageError) Unwrap() []error { return []error{e.Err, e.Kind} }

// lowSpace is the free space below which a SQLite I/O error while writing
// is taken for a full disk: SQLite reports some out-of-space conditions
// (extending the -shm index, for one) as a plain I/O error.
const lowSpace = 1 << 20

// Explain returns err, from an operation on the results store or run
// directory at path (a file or a folder, existing or not), with a
// diagnosis and a fix when it recognises the cause:
//
//   - disk full: SQLITE_FULL, ENOSPC, EDQUOT, EFBIG, or a SQLite I/O error
//     while the device holding path has (almost) no space left;
//   - not writable: SQLITE_READONLY, EROFS, EACCES, EPERM, or SQLite's
//     "unable to open" while the folder is not writable;
//   - damaged: SQLITE_CORRUPT, SQLITE_NOTADB.
//
// Other errors, nil, and errors already explained are returned unchanged.
// The result wraps err: errors.Is and errors.As still find its causes, and
// errors.Is(result, ErrDiskFull) (or ErrReadOnly, ErrDamaged) tells the kind.
func Explain(path string, err error) error {
	if err == nil {
		return nil
	}
	var se *StorageError
	if errors.As(err, &se) {
		return err
	}
	dir := existingDir(path)
	code := -1
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		code = lite.Code()
	}
	primary := code & 0xff
	switch {
	case errors.Is(err, syscall.EFBIG), primary == sqlite3.SQLITE_IOERR && atSizeLimit(path):
		return &StorageError{Path: path, Kind: ErrDiskFull, Err: err,
			Hint: fmt.Sprintf("%s reached the largest file size allowed (by its file system, or by the process limit ulimit -f%s): raise the limit, or choose another --out on a file system that allows larger files", path, limitNote())}
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), primary == sqlite3.SQLITE_FULL,
		code == sqlite3.SQLITE_IOERR_SHMSIZE,
		primary == sqlite3.SQLITE_IOERR && nearlyFull(dir):
		return &StorageError{Path: path, Kind: ErrDiskFull, Err: err,
			Hint: fmt.Sprintf("the disk holding %s is full%s: free some space there, or choose another --out on a disk with room", dir, freeNote(dir))}
	case errors.Is(err, syscall.EROFS), errors.Is(err, fs.ErrPermission), primary == sqlite3.SQLITE_READONLY:
		return readOnly(path, dir, err, writable(dir))
	case (primary == sqlite3.SQLITE_CANTOPEN || primary == sqlite3.SQLITE_IOERR) && writable(dir) != nil:
		// SQLite cannot create the -wal or -shm file next to the store.
		e := readOnly(path, dir, err, writable(dir))
		e.Hint += "; to read a run kept on read-only media, copy its folder to a writable place first (SQLite creates results.sqlite-shm next to the store)"
		return e
	case primary == sqlite3.SQLITE_CORRUPT, primary == sqlite3.SQLITE_NOTADB:
		return &StorageError{Path: path, Kind: ErrDamaged, Err: err,
			Hint: fmt.Sprintf("%s is damaged or is not a perturb results store: restore it from a backup, or choose another --out (perturb leaves the file as it is)", path)}
	}
	return err
}

// readOnly explains err for a store or run directory at path that cannot
// be written: its folder dir (when dirErr says why), else the file itself.
func readOnly(path, dir string, err, dirErr error) *StorageError {
	target, why := "the folder "+dir, dirErr
	if why == nil {
		target = path
		if _, serr := os.Stat(path); serr == nil {
			why = writable(path)
		}
	}
	reason := "opened read-only"
	if why != nil {
		reason = why.Error()
	}
	return &StorageError{Path: path, Kind: ErrReadOnly, Err: err,
		Hint: fmt.Sprintf("%s is not writable (%s): make it writable, or choose another --out", target, reason)}
}

// existingDir returns the folder of path that exists: path itself if it is
// a folder, else the nearest existing ancestor folder.
func existingDir(path string) string {
	p := filepath.Clean(path)
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return p
	}
	for {
		parent := filepath.Dir(p)
		if fi, err := os.Stat(parent); err == nil && fi.IsDir() {
			return parent
		}
		if parent == p {
			return p
		}
		p = parent
	}
}

// nearlyFull reports whether the file system holding dir is known to have
// less than lowSpace bytes free.
func nearlyFull(dir string) bool {
	free := freeSpace(dir)
	return free >= 0 && free < lowSpace
}

// atSizeLimit reports whether the file at path, or its -wal file, is
// within 64 KiB of the process's file size limit (SQLite reports EFBIG as
// a plain I/O error).
func atSizeLimit(path string) bool {
	limit := fileSizeLimit()
	if limit < 0 {
		return false
	}
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Size()+64<<10 >= limit {
			return true
		}
	}
	return false
}

// limitNote gives the process's file size limit for messages.
func limitNote() string {
	if limit := fileSizeLimit(); limit >= 0 {
		return ", now " + byteSize(limit)
	}
	return ""
}

// freeNote describes the free space of dir for messages ("" if unknown).
func freeNote(dir string) string {
	free := freeSpace(dir)
	if free < 0 {
		return ""
	}
	return fmt.Sprintf(" (%s free)", byteSize(free))
}

// byteSize formats n bytes as B, KiB, MiB or GiB.
func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
