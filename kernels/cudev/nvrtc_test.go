//go:build gpu

package cudev

import (
	"fmt"
	"strings"
	"testing"

	"github.com/perturb/perturb/kernels"
)

// TestNVRTCCompile compiles the embedded kernel text with NVRTC exactly as
// Open does (compile: kernels.Source, kernels.NVRTCOptions) for
// compute_90 (H100) and compute_80 (A100), and fails on any error or
// warning, printing NVRTC's log. NVRTC needs no GPU and no driver: make
// cuda-check runs it on any machine with the CUDA packages.
func TestNVRTCCompile(t *testing.T) {
	for _, cc := range [][2]int{{9, 0}, {8, 0}} {
		t.Run(fmt.Sprintf("compute_%d%d", cc[0], cc[1]), func(t *testing.T) {
			ptx, log, err := compileLog(cc[0], cc[1])
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimRight(log, "\x00 \n") != "" {
				t.Fatalf("NVRTC with %v: warnings:\n%s", kernels.NVRTCOptions(cc[0], cc[1]), log)
			}
			target := fmt.Sprintf(".target sm_%d%d", cc[0], cc[1])
			if !strings.Contains(ptx, target) {
				t.Fatalf("the PTX has no %q", target)
			}
			for _, k := range kernels.KernelNames {
				if !strings.Contains(ptx, ".entry "+k+"(") {
					t.Errorf("the PTX has no kernel %s", k)
				}
			}
			t.Logf("%d bytes of PTX, %d kernels, empty log", len(ptx), len(kernels.KernelNames))
		})
	}
}
