package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile of the whole command to the file
// named by $PERTURB_CPUPROFILE, when it is set (inspect it with
// "go tool pprof bin/perturb FILE"). The returned function stops it.
func startProfile(stderr io.Writer) func() {
	path := os.Getenv("PERTURB_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "perturb: PERTURB_CPUPROFILE: %v (profiling off)\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(stderr, "perturb: PERTURB_CPUPROFILE: %v (profiling off)\n", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "perturb: PERTURB_CPUPROFILE: %v\n", err)
		}
	}
}
