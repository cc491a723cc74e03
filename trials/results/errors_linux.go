//go:build linux

package results

import "syscall"

// freeSpace returns the bytes available to this user on the file system
// holding dir, or -1 if unknown.
func freeSpace(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// writable returns nil if this process may create files in dir, else why
// not (e.g. "read-only file system", "permission denied").
func writable(dir string) error {
	const wOK = 2 // W_OK
	return syscall.Access(dir, wOK)
}

// fileSizeLimit returns this process's file size limit (ulimit -f) in
// bytes, or -1 if there is none.
func fileSizeLimit() int64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &rl); err != nil || rl.Cur == ^uint64(0) || rl.Cur > 1<<62 {
		return -1
	}
	return int64(rl.Cur)
}
