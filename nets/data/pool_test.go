package data

import (
	"math"
	"sync"
	"testing"
)

// naiveStats is the textbook two-pass per-channel mean and population std of
// pixel/255, summed pixel by pixel.
func naiveStats(p *Pool) (mean, std []float64) {
	plane := p.Height * p.Width
	mean = make([]float64, p.Channels)
	std = make([]float64, p.Channels)
	for c := range p.Channels {
		var s float64
		for i := range p.Len() {
			for _, v := range p.Pixels[i*p.Dim()+c*plane : i*p.Dim()+(c+1)*plane] {
				s += float64(v) / 255
			}
		}
		m := float64(p.Len() * plane)
		mean[c] = s / m
		var ss float64
		for i := range p.Len() {
			for _, v := range p.Pixels[i*p.Dim()+c*plane : i*p.Dim()+(c+1)*plane] {
				d := float64(v)/255 - mean[c]
				ss += d * d
			}
		}
		std[c] = math.Sqrt(ss / m)
	}
	return mean, std
}

// TestNormalisation checks Mean/Std against a naive computation and that
// every channel of Float64() has mean ~0 and std ~1.
func TestNormalisation(t *testing.T) {
	s := makeCIFAR(9, 4)
	// Skew the channels apart so that per-channel statistics matter.
	for i := range s.pixels {
		if (i/1024)%3 == 2 {
			s.pixels[i] /= 4
		}
	}
	p, err := NewPool("cifar-10", 3, 32, 32, 10, s.pixels, s.labels)
	if err != nil {
		t.Fatal(err)
	}
	mean, std := naiveStats(p)
	for c := range 3 {
		if math.Abs(p.Mean[c]-mean[c]) > 1e-12 || math.Abs(p.Std[c]-std[c]) > 1e-12 {
			t.Errorf("channel %d: Mean %v Std %v, naive %v %v", c, p.Mean[c], p.Std[c], mean[c], std[c])
		}
	}
	x := p.Float64()
	if len(x) != p.Len()*p.Dim() {
		t.Fatalf("len(Float64()) = %d, want %d", len(x), p.Len()*p.Dim())
	}
	for c := range 3 {
		var s, ss float64
		var m int
		for i := range p.Len() {
			for _, z := range x[i*3072+c*1024 : i*3072+(c+1)*1024] {
				s += z
				ss += z * z
				m++
			}
		}
		mu := s / float64(m)
		sd := math.Sqrt(ss/float64(m) - mu*mu)
		if math.Abs(mu) > 1e-9 || math.Abs(sd-1) > 1e-9 {
			t.Errorf("channel %d of Float64(): mean %g, std %.12f; want 0 and 1", c, mu, sd)
		}
	}
	// One pixel by hand: example 3, channel 2 (blue), row 5, column 7.
	k := 3*3072 + 2*1024 + 5*32 + 7
	want := (float64(p.Pixels[k])/255 - mean[2]) / std[2]
	if math.Abs(x[k]-want) > 1e-12 {
		t.Errorf("Float64()[%d] = %v, want %v", k, x[k], want)
	}
	f := p.Float32()
	for i := range x {
		if f[i] != float32(x[i]) {
			t.Fatalf("Float32()[%d] = %v, want float32(%v) = %v", i, f[i], x[i], float32(x[i]))
		}
	}
}

// TestNormalisationByHand checks a pool small enough to do on paper.
func TestNormalisationByHand(t *testing.T) {
	// Channel 0 holds 0 and 51 (x = 0, 0.2): mean 0.1, std 0.1, z = -1, 1.
	// Channel 1 holds 255, 255 (x = 1, 1): mean 1, std 0; z = 0.
	p, err := NewPool("hand", 2, 1, 1, 2, []uint8{0, 255, 51, 255}, []uint8{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-15 }
	if !near(p.Mean[0], 0.1) || !near(p.Std[0], 0.1) || p.Mean[1] != 1 || p.Std[1] != 0 {
		t.Errorf("Mean %v Std %v, want [0.1 1] [0.1 0]", p.Mean, p.Std)
	}
	want := []float64{-1, 0, 1, 0}
	for i, z := range p.Float64() {
		if math.Abs(z-want[i]) > 1e-12 {
			t.Errorf("Float64() = %v, want %v", p.Float64(), want)
			break
		}
	}
}

func TestNewPoolErrors(t *testing.T) {
	if _, err := NewPool("x", 1, 2, 2, 10, make([]uint8, 7), make([]uint8, 2)); err == nil {
		t.Error("NewPool accepted 7 pixel bytes for 2 labels of 4")
	}
	if _, err := NewPool("x", 1, 1, 1, 10, make([]uint8, 1), []uint8{10}); err == nil {
		t.Error("NewPool accepted label 10 with 10 classes")
	}
}

// TestFloatConcurrent calls Float64 and Float32 from many goroutines; all
// must get the same cached slice (run with -race to check the guard).
func TestFloatConcurrent(t *testing.T) {
	s := makeCIFAR(10, 1)
	p, err := NewPool("cifar-10", 3, 32, 32, 10, s.pixels, s.labels)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got64 := make([]*float64, 8)
	got32 := make([]*float32, 8)
	for i := range 8 {
		wg.Go(func() {
			got64[i] = &p.Float64()[0]
			got32[i] = &p.Float32()[0]
		})
	}
	wg.Wait()
	for i := range 8 {
		if got64[i] != got64[0] || got32[i] != got32[0] {
			t.Fatal("concurrent callers got different slices")
		}
	}
}
