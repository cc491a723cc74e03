package data

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
)

// Pool is every example of a dataset (train and test files together), in a
// fixed order: train examples first in file order, then test examples in
// file order.
//
// The exported fields are set by the loaders (or [NewPool]) and must not be
// changed afterwards: [Pool.Float64] and [Pool.Float32] cache results derived
// from them. A Pool must not be copied after first use.
type Pool struct {
	Name                    string    // "fashion-mnist" or "cifar-10"
	Channels, Height, Width int       // image shape C, H, W
	Classes                 int       // number of classes, 10
	Pixels                  []uint8   // Len()*Dim() raw bytes, each example in CHW order (channel-major)
	Labels                  []uint8   // Len() labels in [0, Classes)
	Mean, Std               []float64 // per channel, of pixel/255 over the whole pool (population std)

	once64 sync.Once
	f64    []float64
	once32 sync.Once
	f32    []float32
}

// Len returns the number of examples N in the pool.
func (p *Pool) Len() int { return len(p.Labels) }

// Dim returns the number of values per example, D = Channels·Height·Width.
func (p *Pool) Dim() int { return p.Channels * p.Height * p.Width }

// NewPool builds a pool from raw CHW pixels and labels, checking that the
// lengths agree with the shape and that every label is in [0, classes), and
// computes the per-channel Mean and Std of pixel/255 (see the package
// documentation for the formulas).
func NewPool(name string, channels, height, width, classes int, pixels, labels []uint8) (*Pool, error) {
	if channels <= 0 || height <= 0 || width <= 0 || classes <= 0 || classes > 256 {
		return nil, fmt.Errorf("data: pool %q: invalid shape %dx%dx%d with %d classes; all must be positive (classes at most 256)",
			name, channels, height, width, classes)
	}
	p := &Pool{Name: name, Channels: channels, Height: height, Width: width, Classes: classes,
		Pixels: pixels, Labels: labels}
	if len(pixels) != len(labels)*p.Dim() {
		return nil, fmt.Errorf("data: pool %q: %d pixel bytes for %d labels, want %d·%d = %d; pass one CHW image per label",
			name, len(pixels), len(labels), len(labels), p.Dim(), len(labels)*p.Dim())
	}
	for i, l := range labels {
		if int(l) >= classes {
			return nil, fmt.Errorf("data: pool %q: label %d of example %d is out of range [0, %d); fix the labels",
				name, l, i, classes)
		}
	}
	p.Mean, p.Std = channelStats(pixels, channels, height*width)
	return p, nil
}

// channelStats returns, per channel c, the mean and population standard
// deviation of x = pixel/255 over all examples. It first counts how often
// each byte value v occurs in the channel (cnt[v], M = Σ cnt[v]) and then
// evaluates exactly
//
//	Mean = (1/M) Σ_v cnt[v]·(v/255)
//	Std  = sqrt((1/M) Σ_v cnt[v]·(v/255 − Mean)²)
//
// which is the two-pass formula, free of cancellation, in 2·256 terms.
func channelStats(pixels []uint8, channels, plane int) (mean, std []float64) {
	mean = make([]float64, channels)
	std = make([]float64, channels)
	hist := make([][256]int64, channels)
	for off := 0; off+channels*plane <= len(pixels); off += channels * plane {
		for c := range channels {
			h := &hist[c]
			for _, v := range pixels[off+c*plane : off+(c+1)*plane] {
				h[v]++
			}
		}
	}
	for c := range channels {
		var m int64
		var s float64
		for v, n := range hist[c] {
			m += n
			s += float64(n) * (float64(v) / 255)
		}
		if m == 0 {
			continue
		}
		mu := s / float64(m)
		var ss float64
		for v, n := range hist[c] {
			d := float64(v)/255 - mu
			ss += float64(n) * d * d
		}
		mean[c] = mu
		std[c] = math.Sqrt(ss / float64(m))
	}
	return mean, std
}

// table64 returns, per channel c, the 256 normalised values
// z = (v/255 − Mean[c]) / Std[c] for v = 0..255. A channel with Std[c] == 0
// (every pixel equal) is only centred: z = v/255 − Mean[c] = 0.
func (p *Pool) table64() [][256]float64 {
	if len(p.Mean) != p.Channels || len(p.Std) != p.Channels {
		panic(fmt.Sprintf("data: pool %q has %d means and %d stds for %d channels; build it with a loader or NewPool",
			p.Name, len(p.Mean), len(p.Std), p.Channels))
	}
	t := make([][256]float64, p.Channels)
	for c := range t {
		sd := p.Std[c]
		if sd == 0 {
			sd = 1
		}
		for v := range 256 {
			t[c][v] = (float64(v)/255 - p.Mean[c]) / sd
		}
	}
	return t
}

// Float64 returns the normalised pool as a row-major Len() x Dim() matrix:
// element (i, c·H·W + k) is z = (pixel/255 − Mean[c]) / Std[c], computed in
// float64. The matrix is computed on the first call and cached; concurrent
// callers are safe and share the same slice, which they must not modify.
func (p *Pool) Float64() []float64 {
	p.once64.Do(func() { p.f64 = normalised(p, p.table64()) })
	return p.f64
}

// Float32 returns [Pool.Float64] rounded to float32: each element is computed
// in float64 and then converted, so Float32()[i] == float32(Float64()[i]).
// It does not build or keep the float64 matrix. Cached like Float64.
func (p *Pool) Float32() []float32 {
	p.once32.Do(func() {
		t64 := p.table64()
		t := make([][256]float32, len(t64))
		for c := range t64 {
			for v := range 256 {
				t[c][v] = float32(t64[c][v])
			}
		}
		p.f32 = normalised(p, t)
	})
	return p.f32
}

// normalised maps every pixel through its channel's lookup table.
func normalised[T float32 | float64](p *Pool, table [][256]T) []T {
	out := make([]T, len(p.Pixels))
	p.fill(func(c, lo, hi int) {
		tc := &table[c]
		for j, v := range p.Pixels[lo:hi] {
			out[lo+j] = tc[v]
		}
	})
	return out
}

// fill calls f(c, lo, hi) for every channel plane Pixels[lo:hi] of every
// example, c being the plane's channel, splitting the examples among up to
// GOMAXPROCS goroutines (f must only write to its own range).
func (p *Pool) fill(f func(c, lo, hi int)) {
	plane := p.Height * p.Width
	dim := p.Dim()
	n := p.Len()
	if dim == 0 || n == 0 {
		return
	}
	workers := min(runtime.GOMAXPROCS(0), max(1, n*dim/(1<<20)))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w * n / workers; i < (w+1)*n/workers; i++ {
				off := i * dim
				for c := range p.Channels {
					f(c, off+c*plane, off+(c+1)*plane)
				}
			}
		})
	}
	wg.Wait()
}

// Load loads a dataset by name: "fashion-mnist" (see [LoadFashionMNIST]) or
// "cifar-10" (see [LoadCIFAR10]); case and the hyphen are ignored
// ("FashionMNIST", "cifar10" work too). dir == "" means: the dataset's
// environment variable ([EnvFashionDir] or [EnvCIFARDir]) if set, else its
// default folder.
func Load(name, dir string) (*Pool, error) {
	switch strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(name)) {
	case "fashionmnist":
		return LoadFashionMNIST(dir)
	case "cifar10":
		return LoadCIFAR10(dir)
	}
	return nil, fmt.Errorf("data: unknown dataset %q; use \"fashion-mnist\" or \"cifar-10\"", name)
}

// resolveDir returns dir if non-empty, else the value of the environment
// variable env if set and non-empty, else def, together with a phrase saying
// where the folder came from (for error messages).
func resolveDir(dir, env, def string, getenv func(string) string) (string, string) {
	if dir != "" {
		return dir, "the folder given by the config's data.dir or --data"
	}
	if v := getenv(env); v != "" {
		return v, "from $" + env
	}
	return def, "the default folder; set $" + env + " to use another"
}
