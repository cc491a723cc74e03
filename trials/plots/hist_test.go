package plots

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestHistogram(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	normal := make([]float64, 1000)
	for i := range normal {
		normal[i] = 2 + 0.5*rng.NormFloat64()
	}
	tests := []struct {
		name       string
		values     []float64
		bins       int
		wantCounts []int // nil: not checked
		wantN      int
		wantBins   int
		wantMean   float64
		wantSD     float64
		tol        float64
	}{
		{"0..9 in 5 bins, max in last", []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 5, []int{2, 2, 2, 2, 2}, 10, 5, 4.5, math.Sqrt(55.0 / 6), 1e-12},
		{"edges go right", []float64{0, 0.25, 0.5, 0.75, 1}, 4, []int{1, 1, 1, 2}, 5, 4, 0.5, math.Sqrt(0.625 / 4), 1e-12},
		{"non-finite dropped", []float64{1, math.NaN(), 2, math.Inf(1), 3}, 2, []int{1, 2}, 3, 2, 2, 1, 1e-12},
		{"all equal", []float64{7, 7, 7}, 3, []int{0, 3, 0}, 3, 3, 7, 0, 0},
		{"Sturges", normal, 0, nil, 1000, 11, 2, 0.5, 0.05},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := Histogram(tc.name, "value", tc.values, tc.bins, true)
			if err != nil {
				t.Fatal(err)
			}
			sum := 0
			for _, c := range h.Counts {
				sum += c
			}
			if sum != tc.wantN || h.N != tc.wantN || h.N+h.Dropped != len(tc.values) {
				t.Errorf("counts sum to %d, N %d, dropped %d; want %d and %d values in all", sum, h.N, h.Dropped, tc.wantN, len(tc.values))
			}
			if len(h.Counts) != tc.wantBins || len(h.Edges) != tc.wantBins+1 {
				t.Errorf("%d bins, %d edges, want %d bins", len(h.Counts), len(h.Edges), tc.wantBins)
			}
			if tc.wantCounts != nil && !equalInts(h.Counts, tc.wantCounts) {
				t.Errorf("counts %v, want %v", h.Counts, tc.wantCounts)
			}
			if math.Abs(h.Mean-tc.wantMean) > tc.tol || math.Abs(h.SD-tc.wantSD) > tc.tol {
				t.Errorf("mean %g sd %g, want %g %g (±%g)", h.Mean, h.SD, tc.wantMean, tc.wantSD, tc.tol)
			}
		})
	}
}

func TestHistogramSave(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	v := make([]float64, 500)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	h, err := Histogram("gradient noise", "z", v, 25, true)
	if err != nil {
		t.Fatal(err)
	}
	pngPath, svgPath, err := h.Save(t.TempDir(), "hist")
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, pngPath, 0, 3) // bar outlines, normal density
	checkSVG(t, svgPath, "N = 500", "normal: mean")
}

func TestHistogramErrors(t *testing.T) {
	tests := []struct {
		name    string
		values  []float64
		bins    int
		wantErr string
	}{
		{"no values", nil, 5, "no finite values among 0"},
		{"only NaN", []float64{math.NaN()}, 5, "no finite values among 1"},
		{"negative bins", []float64{1}, -1, "negative number of bins"},
	}
	for _, tc := range tests {
		_, err := Histogram("h", "x", tc.values, tc.bins, false)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.wantErr)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
