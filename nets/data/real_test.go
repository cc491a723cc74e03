package data

import (
	"math"
	"os"
	"testing"
	"time"
)

// TestRealFashionMNIST loads the installed Fashion-MNIST, if any.
func TestRealFashionMNIST(t *testing.T) {
	if _, err := os.Stat(DefaultFashionDir); err != nil {
		t.Skipf("%s not installed (run make data): %v", DefaultFashionDir, err)
	}
	start := time.Now()
	p, err := LoadFashionMNIST(DefaultFashionDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d examples in %v; Mean %.6f Std %.6f", p.Len(), time.Since(start), p.Mean[0], p.Std[0])
	if p.Len() != 70000 || p.Dim() != 784 {
		t.Fatalf("Len() = %d, Dim() = %d; want 70000, 784", p.Len(), p.Dim())
	}
	var hist [10]int
	for _, l := range p.Labels {
		hist[l]++
	}
	for c, n := range hist {
		if n != 7000 {
			t.Errorf("class %d has %d examples, want 7000 (histogram %v)", c, n, hist)
		}
	}
	if math.Abs(p.Mean[0]-0.2860) > 1e-3 || math.Abs(p.Std[0]-0.3530) > 1e-3 {
		t.Errorf("Mean %.4f Std %.4f, want about 0.2860 and 0.3530", p.Mean[0], p.Std[0])
	}
	if testing.Short() {
		return
	}
	start = time.Now()
	x := p.Float32()
	t.Logf("Float32 in %v", time.Since(start))
	if len(x) != 70000*784 {
		t.Errorf("len(Float32()) = %d", len(x))
	}
}
