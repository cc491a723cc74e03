package main

import (
	"bytes"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials/config"
)

// writeTinyCIFAR writes a 6×40-image CIFAR-10 folder of random pixels.
func writeTinyCIFAR(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, f := range []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"} {
		var b bytes.Buffer
		for range 40 {
			b.WriteByte(byte(rng.IntN(10)))
			for range 3072 {
				b.WriteByte(byte(rng.IntN(256)))
			}
		}
		write(t, dir, f, b.String())
	}
	return dir
}

// TestPaperConfigs runs every config of configs/paper at a tiny scale
// (two or three trials per cell; CIFAR-10 on a random 240-image set, the
// rest on the real Fashion-MNIST), estimates its statistics, writes its
// report, and checks that the report's figures decode as non-empty PNGs
// and that it has computed verdicts.
func TestPaperConfigs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every paper config at a tiny scale")
	}
	files, err := filepath.Glob("../../configs/paper/*.toml")
	if err != nil || len(files) < 9 {
		t.Fatalf("configs/paper: %v, %d files", err, len(files))
	}
	cifar := writeTinyCIFAR(t)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".toml")
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			var extra []string
			if cfg.NeedsData() {
				if cfg.Data.Set == "cifar-10" {
					extra = []string{"--data", cifar}
				} else {
					needFashion(t)
				}
			}
			count := 3
			if strings.HasSuffix(name, "convnet") {
				count = 2 // 6 initialisations: keep CI short
			}
			scale := itoa((cfg.Trials.Count + count - 1) / count)
			out := filepath.Join(t.TempDir(), "run")
			args := append([]string{"run", f, "--scale", scale, "--out", out}, extra...)
			if code, _, stderr := perturb(t, args...); code != 0 {
				t.Fatalf("run exited %d: %s", code, stderr)
			}
			args = append([]string{"stats", out, "--samples", "48", "--block", "3"}, extra...)
			if code, _, stderr := perturb(t, args...); code != 0 {
				t.Fatalf("stats exited %d: %s", code, stderr)
			}
			code, stdout, stderr := perturb(t, "report", out)
			if code != 0 {
				t.Fatalf("report exited %d: %s", code, stderr)
			}
			md, err := os.ReadFile(filepath.Join(out, "report", "report.md"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(md), "## Verdicts") || !strings.Contains(stdout, "claims agree") {
				t.Errorf("report without verdicts:\n%s", md)
			}
			pngs, _ := filepath.Glob(filepath.Join(out, "report", "*.png"))
			if len(pngs) == 0 {
				t.Fatalf("no figures in %s", out)
			}
			for _, p := range pngs {
				fh, err := os.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				img, err := png.Decode(fh)
				fh.Close()
				if err != nil || img.Bounds().Dx() < 100 || img.Bounds().Dy() < 100 {
					t.Errorf("%s: %v, %v", p, err, img)
				}
				if !strings.Contains(string(md), filepath.Base(p)) {
					t.Errorf("%s is not in the report", filepath.Base(p))
				}
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
