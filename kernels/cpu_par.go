package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The CPU device splits large operations over goroutines: GEMM batches or
// row blocks, elementwise ranges, patch rows, cross-entropy rows. Each
// element's arithmetic is the same whatever the split, so results are
// bitwise independent of the number of workers (and of the number of
// trials: a trial's slice is computed the same way in any batch).

// workers is the number of goroutines of the CPU device (0: GOMAXPROCS).
var workers atomic.Int32

// SetWorkers sets the number of goroutines the CPU device splits large
// operations over (n ≤ 0: GOMAXPROCS, the default) and returns the
// previous setting.
func SetWorkers(n int) int {
	return int(workers.Swap(int32(max(n, 0))))
}

// WithWorkers returns d with its own number of goroutines n (n ≤ 0: the
// SetWorkers default) when d is a CPU device, and whether it is: a caller
// that runs several programs at once (graph's DeviceEval) gives each a
// serial device (n = 1).
func WithWorkers(d Device, n int) (Device, bool) {
	switch c := d.(type) {
	case CPU[float32]:
		c.workers = n
		return c, true
	case CPU[float64]:
		c.workers = n
		return c, true
	}
	return d, false
}

// HostWorkers returns the number of goroutines of d when d is a CPU
// device (its own WithWorkers setting, else the SetWorkers default), and
// 0 otherwise. On a CPU device, Upload and Download calls on disjoint
// ranges may run concurrently (graph's DeviceNet converts the trials'
// vectors on that many goroutines).
func HostWorkers(d Device) int {
	switch c := d.(type) {
	case CPU[float32]:
		return c.w()
	case CPU[float64]:
		return c.w()
	}
	return 0
}

// w is the number of goroutines of the device.
func (c CPU[T]) w() int {
	if c.workers > 0 {
		return c.workers
	}
	return nWorkers()
}

// nWorkers is the default number of goroutines.
func nWorkers() int {
	if w := int(workers.Load()); w > 0 {
		return w
	}
	return runtime.GOMAXPROCS(0)
}

// grain is the smallest number of elements worth a goroutine for the
// memory-bound operations (a few microseconds of work, about 64 KiB of
// float32).
const grain = 1 << 14

// parallel runs f over [0, n) in at most workers contiguous ranges of at
// least minUnits units each (the last range in the calling goroutine).
func parallel(workers, n, minUnits int, f func(lo, hi int)) {
	w := min(workers, n/max(minUnits, 1))
	if w <= 1 {
		if n > 0 {
			f(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < w-1; i++ {
		lo, hi := n*i/w, n*(i+1)/w
		wg.Go(func() { f(lo, hi) })
	}
	f(n*(w-1)/w, n)
	wg.Wait()
}

// units returns the number of units of size per that make up about grain
// elements (at least one).
func units(per int) int { return max(grain/max(per, 1), 1) }

// Workers is the default number of goroutines of the CPU device (see
// SetWorkers).
func Workers() int { return nWorkers() }
