// Package cuda13shim holds the CUDA 13 compatibility header for
// gorgonia.org/cu (cuda.h, a C header; this Go package only tests it).
package cuda13shim

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestShimAgainstFakeCUDA13 compiles a C program calling the five driver
// functions with their old signatures, with the shim first on the include
// path and a synthetic CUDA-13-style cuda.h behind it, and runs it: each
// call must reach the new function with the right translated arguments.
func TestShimAgainstFakeCUDA13(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("no gcc")
	}
	bin := filepath.Join(t.TempDir(), "use")
	out, err := exec.Command(cc, "-std=c99", "-Wall", "-Werror", "-I.", "-Itestdata/fake13", "-o", bin, "testdata/use.c").CombinedOutput()
	if err != nil {
		t.Fatalf("compile: %v\n%s", err, out)
	}
	out, err = exec.Command(bin).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok 5") {
		t.Fatalf("run: %v: %s", err, out)
	}
}

// TestShimTransparentOnOlderHeaders: with a CUDA 11/12 cuda.h (Debian's
// 11.8 where installed) the shim changes nothing.
func TestShimTransparentOnOlderHeaders(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("no gcc")
	}
	if _, err := os.Stat("/usr/include/cuda.h"); err != nil {
		t.Skip("no CUDA headers in /usr/include")
	}
	src := filepath.Join(t.TempDir(), "old.c")
	code := "#include <cuda.h>\nint main(void) { CUcontext c; return (int)cuCtxCreate(&c, 0, 0) * 0; }\n"
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cc, "-Wall", "-Werror", "-I.", "-fsyntax-only", src).CombinedOutput()
	if err != nil {
		t.Fatalf("compile against the system cuda.h: %v\n%s", err, out)
	}
}
