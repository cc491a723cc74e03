package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets/precision"
	"github.com/perturb/perturb/trials/study/noise"
)

// TestNoiseTF32Device runs perturb noise with tf32 on the CPU emulation
// (--device cpu) and with a fake GPU (the float32 CPU twin, which does
// not honour SetTF32: the walker wraps it in kernels.TF32Products): both
// say where tf32 runs, record it in noise.json, and give the same scan.
// Without a GPU, --device gpu is an error that names the emulation, and
// without tf32 the GPU is not used.
func TestNoiseTF32Device(t *testing.T) {
	needFashion(t)
	dir := t.TempDir()
	cfg := write(t, dir, "n.toml", noiseCfg)
	scan := func(dev kernels.Device, mode, want string) *noise.Result {
		t.Helper()
		fakeGPU(t, dev)
		out := filepath.Join(dir, mode)
		code, stdout, stderr := perturb(t, "noise", cfg, "--out", out, "--directions", "2", "--steps", "8", "--hmin", "1e-6",
			"--examples", "100", "--precisions", "float32,tf32", "--device", mode)
		if code != 0 || !strings.Contains(stderr, want) {
			t.Fatalf("noise --device %s exited %d:\n%s%s\nwant %q", mode, code, stdout, stderr, want)
		}
		f, err := noise.Read(out)
		if err != nil {
			t.Fatal(err)
		}
		if md, err := os.ReadFile(filepath.Join(out, "noise.md")); err != nil || !strings.Contains(string(md), "tf32 computed by cpu float32 with tf32 products (emulated)") {
			t.Fatalf("noise.md does not say what computed tf32 (%v)", err)
		}
		r := f.Scans[0].Precisions[1]
		if r.Format != precision.TF32 || !strings.Contains(r.Device, "tf32 products (emulated)") || !(r.Floor > 0) {
			t.Fatalf("--device %s: result %v on %q, floor %g", mode, r.Format, r.Device, r.Floor)
		}
		return &r
	}
	cpu := scan(nil, "cpu", "device: CPU (--device cpu; tf32 emulated")
	gpu := scan(kernels.CPU[float32]{}, "gpu", "device: GPU cpu float32 (--device gpu): tf32 through cuBLAS's TF32 tensor-core products")
	if cpu.Floor != gpu.Floor || cpu.Loss != gpu.Loss {
		t.Errorf("tf32 on the CPU: loss %v floor %v; on the fake GPU: loss %v floor %v", cpu.Loss, cpu.Floor, gpu.Loss, gpu.Floor)
	}
	fakeGPU(t, nil)
	if code, _, stderr := perturb(t, "noise", cfg, "--precisions", "tf32", "--device", "gpu"); code == 0 ||
		!strings.Contains(stderr, "CUresult 100") || !strings.Contains(stderr, "tf32 on the CPU is an emulation") {
		t.Errorf("--device gpu without a GPU: exit %d, %s", code, stderr)
	}
	var e strings.Builder
	fakeGPU(t, kernels.CPU[float32]{})
	if dev, err := noiseDevice("gpu", false, &e); dev != nil || err != nil || !strings.Contains(e.String(), "computes only tf32 on the GPU") {
		t.Errorf("without tf32: %v, %v, %q", dev, err, e.String())
	}
}
