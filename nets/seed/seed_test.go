package seed

import (
	"math"
	"testing"
)

func TestStreamsDependOnlyOnIdentity(t *testing.T) {
	a := Draw(New(TrainSet, 1, 2, 3), 10, 70000)
	// Interleave other streams: must not perturb a fresh stream of the same identity.
	_ = Draw(New(TrainSet, 1, 2, 4), 100, 70000)
	b := Draw(New(TrainSet, 1, 2, 3), 10, 70000)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("stream (1,2,3) not reproducible: %v vs %v", a, b)
		}
	}
	c := Draw(New(TrainSet, 1, 2, 4), 10, 70000)
	d := Draw(New(Shuffle, 1, 2, 3), 10, 70000)
	same := func(x, y []int) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if same(a, c) || same(a, d) {
		t.Fatalf("different identities or purposes gave the same draws")
	}
}

// TestKeyUnambiguous checks that the purpose length prefix keeps
// ("ab", x) and ("a", ...) apart.
func TestKeyUnambiguous(t *testing.T) {
	if Key("ab", 1) == Key("a", 1) || Key("p", 1, 2) == Key("p", 2, 1) {
		t.Fatal("keys collide")
	}
}

// TestDrawUniform is a chi-square check that Draw is uniform on a small pool.
func TestDrawUniform(t *testing.T) {
	const pool, n = 10, 100000
	counts := make([]float64, pool)
	for _, i := range Draw(New(TrainSet, 7), n, pool) {
		counts[i]++
	}
	chi := 0.0
	for _, c := range counts {
		chi += (c - n/pool) * (c - n/pool) / (n / pool)
	}
	// 9 degrees of freedom: P(chi2 > 27.88) = 0.001.
	if chi > 27.88 || math.IsNaN(chi) {
		t.Fatalf("chi-square %.2f too large for a uniform draw: %v", chi, counts)
	}
}
