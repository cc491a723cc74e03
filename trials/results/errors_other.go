//go:build !linux

package results

// freeSpace is unknown on this system.
func freeSpace(dir string) int64 { return -1 }

// writable assumes dir is writable on this system.
func writable(dir string) error { return nil }

// fileSizeLimit is unknown on this system.
func fileSizeLimit() int64 { return -1 }
