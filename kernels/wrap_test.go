package kernels

import (
	"fmt"
	"sync"
	"testing"
)

// TestCounting checks the counters through a sequence of allocations and
// frees, and that a foreign or repeated Free is an error.
func TestCounting(t *testing.T) {
	c := Count(CPU[float64]{})
	a, _ := c.Alloc(10)
	b, _ := c.Alloc(5)
	if err := c.Free(a); err != nil {
		t.Fatal(err)
	}
	d, _ := c.Alloc(3)
	for _, tc := range []struct {
		name      string
		got, want int64
	}{
		{"allocs", int64(c.Stats().Allocs), 3},
		{"frees", int64(c.Stats().Frees), 1},
		{"live", c.Stats().Live, 8},
		{"peak", c.Stats().Peak, 15},
		{"allocated", c.Stats().Allocated, 18},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	if err := c.Free(a); err == nil {
		t.Error("second Free of a buffer: no error")
	}
	foreign, _ := CPU[float64]{}.Alloc(2)
	if err := c.Free(foreign); err == nil {
		t.Error("Free of a foreign buffer: no error")
	}
	for _, x := range []Buffer{b, d} {
		if err := c.Free(x); err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Stats(); s.Live != 0 || s.Frees != 3 {
		t.Errorf("after freeing everything: %+v", s)
	}
}

// TestSerial shares one device between goroutines (run with -race): each
// computes exp of its own buffer and gets its own result.
func TestSerial(t *testing.T) {
	dev := Serial(Count(CPU[float64]{}))
	if Serial(dev) != dev {
		t.Error("Serial of a Serial device wraps it again")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, _ := dev.Alloc(100)
			out, _ := dev.Alloc(100)
			src := make([]float64, 100)
			for i := range src {
				src[i] = float64(g)
			}
			for rep := 0; rep < 50; rep++ {
				if err := dev.Upload(in, 0, src); err != nil {
					errs <- err
					return
				}
				if err := dev.Unary(Neg, out, in); err != nil {
					errs <- err
					return
				}
				got := make([]float64, 100)
				if err := dev.Download(got, out, 0); err != nil {
					errs <- err
					return
				}
				for _, v := range got {
					if v != -float64(g) {
						errs <- fmt.Errorf("goroutine %d: got %v", g, v)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestView: a view shares its buffer's memory, cannot reach past it, and
// is not a buffer of its own to free.
func TestView(t *testing.T) {
	for _, dev := range []Device{CPU[float64]{}, CPU[float32]{}} {
		c := Count(dev)
		b, _ := c.Alloc(6)
		v, err := c.View(b, 4)
		if err != nil || v.Len() != 4 {
			t.Fatalf("%s: view of 4: %v, %v", dev.Name(), v, err)
		}
		if err := c.Upload(v, 0, []float64{1, 2, 3, 4}); err != nil {
			t.Fatal(err)
		}
		got := make([]float64, 6)
		if err := c.Download(got, b, 0); err != nil {
			t.Fatal(err)
		}
		if want := []float64{1, 2, 3, 4, 0, 0}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: buffer %v after writing its view, want %v", dev.Name(), got, want)
		}
		if err := c.Upload(v, 2, []float64{1, 2, 3}); err == nil {
			t.Errorf("%s: upload past the view's end: no error", dev.Name())
		}
		if _, err := c.View(b, 7); err == nil {
			t.Errorf("%s: view longer than its buffer: no error", dev.Name())
		}
		if err := c.Free(v); err == nil {
			t.Errorf("%s: Free of a view: no error", dev.Name())
		}
		if s := c.Stats(); s.Allocs != 1 || s.Live != 6 {
			t.Errorf("%s: a view counted as an allocation: %+v", dev.Name(), s)
		}
	}
}
