package kernels

import (
	"fmt"
	"sync"
)

// Counting wraps a Device and counts its allocations: the number of Alloc
// and Free calls, the elements currently allocated and their peak. Tests
// use it on the CPU twin to check that device memory is allocated once per
// batch shape and reused; on a GPU it gives the same figures. It is safe
// for concurrent use when the wrapped device's calls are serialised (see
// Serial) or made from one goroutine.
type Counting struct {
	Device
	mu                    sync.Mutex
	allocs, frees         int
	live, peak, allocated int64
	sizes                 map[Buffer]int
}

// Count returns dev wrapped in a Counting.
func Count(dev Device) *Counting { return &Counting{Device: dev, sizes: map[Buffer]int{}} }

// Alloc allocates on the wrapped device and counts the buffer.
func (c *Counting) Alloc(n int) (Buffer, error) {
	b, err := c.Device.Alloc(n)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.allocs++
	c.allocated += int64(n)
	c.live += int64(n)
	c.peak = max(c.peak, c.live)
	c.sizes[b] = n
	return b, nil
}

// Free releases the buffer on the wrapped device and counts it.
func (c *Counting) Free(b Buffer) error {
	c.mu.Lock()
	n, ok := c.sizes[b]
	if ok {
		delete(c.sizes, b)
		c.frees++
		c.live -= int64(n)
	}
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("free of a buffer this device did not allocate (or freed twice)")
	}
	return c.Device.Free(b)
}

// Limit wraps dev so that an Alloc that would bring the elements allocated
// and not freed above max fails with an error wrapping ErrOutOfMemory: a
// device of max elements (tests of the out-of-memory path use it on the
// CPU twin; it can also make a GPU act like a smaller one).
func Limit(dev Device, max int64) *Limited {
	return &Limited{Counting: Count(dev), max: max}
}

// Limited is a Counting device with a memory limit (see Limit).
type Limited struct {
	*Counting
	max      int64
	failures int
}

// Alloc allocates n elements unless that would exceed the limit.
func (l *Limited) Alloc(n int) (Buffer, error) {
	l.mu.Lock()
	over := l.live+int64(n) > l.max
	if over {
		l.failures++
	}
	live := l.live
	l.mu.Unlock()
	if over {
		return nil, fmt.Errorf("alloc of %d elements with %d of %d in use: %w", n, live, l.max, ErrOutOfMemory)
	}
	return l.Counting.Alloc(n)
}

// Failures is the number of allocations refused.
func (l *Limited) Failures() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failures
}

// Stats is a snapshot of a Counting device's counters.
type Stats struct {
	// Allocs and Frees are the numbers of Alloc and Free calls.
	Allocs, Frees int
	// Live is the number of elements allocated and not freed, Peak its
	// maximum, Allocated the elements of every Alloc together.
	Live, Peak, Allocated int64
}

// Stats returns the counters.
func (c *Counting) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Allocs: c.allocs, Frees: c.frees, Live: c.live, Peak: c.peak, Allocated: c.allocated}
}

// Serial wraps a Device so that several goroutines can share it: every
// call holds one mutex, so calls run one at a time, each to completion
// (a Device itself is not safe for concurrent use). Buffers are the
// wrapped device's. Each goroutine must still use its own buffers for its
// outputs.
func Serial(dev Device) Device {
	if s, ok := dev.(*serial); ok {
		return s
	}
	return &serial{d: dev}
}

type serial struct {
	mu sync.Mutex
	d  Device
}

func (s *serial) lock() func() { s.mu.Lock(); return s.mu.Unlock }

func (s *serial) Name() string { return s.d.Name() }
func (s *serial) DType() DType { return s.d.DType() }
func (s *serial) Alloc(n int) (Buffer, error) {
	defer s.lock()()
	return s.d.Alloc(n)
}
func (s *serial) Free(b Buffer) error { defer s.lock()(); return s.d.Free(b) }
func (s *serial) View(b Buffer, n int) (Buffer, error) {
	defer s.lock()()
	return s.d.View(b, n)
}
func (s *serial) Upload(dst Buffer, off int, src []float64) error {
	defer s.lock()()
	return s.d.Upload(dst, off, src)
}
func (s *serial) Upload32(dst Buffer, off int, src []float32) error {
	defer s.lock()()
	return s.d.Upload32(dst, off, src)
}
func (s *serial) Download(dst []float64, src Buffer, off int) error {
	defer s.lock()()
	return s.d.Download(dst, src, off)
}
func (s *serial) Fill(b Buffer, v float64) error { defer s.lock()(); return s.d.Fill(b, v) }
func (s *serial) Copy(dst Buffer, dstOff int, src Buffer, srcOff, n int) error {
	defer s.lock()()
	return s.d.Copy(dst, dstOff, src, srcOff, n)
}
func (s *serial) Gemm(g Gemm, c, a, b Buffer) error { defer s.lock()(); return s.d.Gemm(g, c, a, b) }
func (s *serial) BiasAct(z Buffer, batch, m, n int, sc float64, bias Buffer, cm, act bool) error {
	defer s.lock()()
	return s.d.BiasAct(z, batch, m, n, sc, bias, cm, act)
}
func (s *serial) Unary(f Unary, out, in Buffer) error { defer s.lock()(); return s.d.Unary(f, out, in) }
func (s *serial) Binary(f Binary, out, a, b Buffer) error {
	defer s.lock()()
	return s.d.Binary(f, out, a, b)
}
func (s *serial) TanhBack(out, t, g Buffer) error { defer s.lock()(); return s.d.TanhBack(out, t, g) }
func (s *serial) TanhBack2(out, t, g, h Buffer) error {
	defer s.lock()()
	return s.d.TanhBack2(out, t, g, h)
}
func (s *serial) Sum(out, in Buffer, outer, mid, inner int) error {
	defer s.lock()()
	return s.d.Sum(out, in, outer, mid, inner)
}
func (s *serial) Repeat(out, in Buffer, outer, reps, inner int) error {
	defer s.lock()()
	return s.d.Repeat(out, in, outer, reps, inner)
}
func (s *serial) Im2col(c Conv, cols, images Buffer) error {
	defer s.lock()()
	return s.d.Im2col(c, cols, images)
}
func (s *serial) Col2im(c Conv, images, cols Buffer) error {
	defer s.lock()()
	return s.d.Col2im(c, images, cols)
}
func (s *serial) Flatten(out, in Buffer, trials, c, images, p int, inverse bool) error {
	defer s.lock()()
	return s.d.Flatten(out, in, trials, c, images, p, inverse)
}
func (s *serial) LogSoftmax(out, in Buffer, rows, c int) error {
	defer s.lock()()
	return s.d.LogSoftmax(out, in, rows, c)
}
func (s *serial) LogSoftmaxBack(out, y, g Buffer, rows, c int) error {
	defer s.lock()()
	return s.d.LogSoftmaxBack(out, y, g, rows, c)
}
func (s *serial) CrossEntropy(loss, correct, logits, labels Buffer, trials, rows, c int) error {
	defer s.lock()()
	return s.d.CrossEntropy(loss, correct, logits, labels, trials, rows, c)
}
func (s *serial) Gather(x, y, pool, labels Buffer, idx []int32, dim, classes int) error {
	defer s.lock()()
	return s.d.Gather(x, y, pool, labels, idx, dim, classes)
}
func (s *serial) TanhJet(t, z Buffer, d, n int) error {
	defer s.lock()()
	return s.d.TanhJet(t, z, d, n)
}
func (s *serial) Round(b Buffer, f Format) error { defer s.lock()(); return s.d.Round(b, f) }
func (s *serial) SetTF32(on bool) (bool, error)  { defer s.lock()(); return s.d.SetTF32(on) }
func (s *serial) Sync() error                    { defer s.lock()(); return s.d.Sync() }
func (s *serial) Close() error                   { defer s.lock()(); return s.d.Close() }
