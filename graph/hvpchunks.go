package graph

import (
	"fmt"
	"sync"

	"github.com/perturb/perturb/kernels"
)

// Chunked Hessian-vector products on a CPU device. A product over B
// samples per trial is the sum of the products over chunks of the samples;
// on a CPU device DeviceBackend.HVP (with HVPChunk set) computes each
// chunk with its own program on a one-goroutine device, the chunks of a
// wave on the device's goroutines at once, and adds the chunks' products
// per trial in chunk order, so the result depends on HVPChunk but not on
// the number of goroutines. A chunk's values stay in the caches between
// the steps of its program (one program over all B samples sends the
// second convolution's patches to memory and back at every step), and the
// goroutines run whole programs rather than splitting each kernel. While
// the programs of every chunk fit HVPBytes, each chunk keeps its program,
// so a new direction at the same point reruns only the steps that depend
// on it, as a single program does (DeviceNet.HVP); beyond the budget the
// programs are shared by the chunks of a goroutine and rerun in full.

// DefaultHVPBytes is the default memory budget of the chunk programs of
// one DeviceBackend's Hessian-vector products.
const DefaultHVPBytes = 1 << 30

type chunkKey struct {
	k, b, idx int
}

// chunkedHVP holds the chunk programs and their outputs.
type chunkedHVP struct {
	nets map[chunkKey]*DeviceNet
	outs [][][]float64 // per goroutine: kk output vectors
	rows [][][]int     // per goroutine: the chunk's rows of every trial
	// kk and b are the trials and samples of the programs kept; shared
	// says they are one per goroutine (the chunks' did not fit).
	kk, b  int
	shared bool
	// perTrial is the number of elements of one trial's chunk program
	// (HVPBytesPerTrial), 0 until measured.
	perTrial int64
}

// hvpChunked is HVP over chunks of e.HVPChunk samples (see above); rows
// and the vectors are padded to kk trials.
func (e *DeviceBackend) hvpChunked(theta [][]float64, rows [][]int, v, out [][]float64, kk, b int) error {
	dev1, _ := kernels.WithWorkers(e.Data.Dev, 1)
	workers := max(1, kernels.HostWorkers(e.Data.Dev))
	c := e.HVPChunk
	chunks := (b + c - 1) / c
	workers = min(workers, chunks)
	h := &e.chunks
	if h.nets == nil {
		h.nets = map[chunkKey]*DeviceNet{}
	}
	fresh := h.kk != kk || h.b != b
	if fresh {
		// Keep the programs of one shape only (the budget is for them).
		if err := e.CloseChunks(); err != nil {
			return err
		}
		h.kk, h.b, h.shared = kk, b, false
	}
	if len(h.outs) < workers || len(h.outs[0]) != kk {
		// One output vector per trial and a row list per goroutine.
		h.outs, h.rows = make([][][]float64, workers), make([][][]int, workers)
		for w := range workers {
			h.outs[w], h.rows[w] = make([][]float64, kk), make([][]int, kk)
			for i := range kk {
				h.outs[w][i] = make([]float64, e.NumParams())
			}
		}
	}
	// Per-chunk programs while they fit the budget (measured on the
	// first of a shape), else one per goroutine (h.shared).
	budget := e.HVPBytes
	if budget <= 0 {
		budget = DefaultHVPBytes
	}
	net := func(w, lo, hi int) (*DeviceNet, error) {
		idx := lo / c
		if h.shared {
			idx = -1 - w
		}
		key := chunkKey{kk, hi - lo, idx}
		if n, ok := h.nets[key]; ok {
			return n, nil
		}
		n, err := NewDeviceNet(e.Arch, e.Data.On(dev1), kk, hi-lo, BatchHVP)
		if err != nil {
			return nil, fmt.Errorf("%s: Hessian-vector products of chunks of %d samples: %w", e.Arch.Name, hi-lo, err)
		}
		h.nets[key] = n
		return n, nil
	}
	if fresh {
		first, err := net(0, 0, min(c, b))
		if err != nil {
			return err
		}
		// (A quarter of slack: callers size their batches with
		// HVPBytesPerTrial, and K trials' programs hold a little more
		// than K times one trial's.)
		if int64(chunks)*first.Prog.Elements()*int64(e.Data.Dev.DType().Size()) > budget+budget/4 {
			if err := e.CloseChunks(); err != nil {
				return err
			}
			h.shared = true
		}
	}
	for i := range out {
		clear(out[i])
	}
	nets, errs := make([]*DeviceNet, workers), make([]error, workers)
	for lo := 0; lo < b; lo += workers * c {
		// A wave: chunk lo + w·c on goroutine w.
		n := min(workers, (b-lo+c-1)/c)
		for w := range n {
			clo := lo + w*c
			var err error
			if nets[w], err = net(w, clo, min(clo+c, b)); err != nil {
				return err
			}
		}
		var wg sync.WaitGroup
		for w := range n {
			clo := lo + w*c
			chi := min(clo+c, b)
			rs := h.rows[w][:kk]
			for i := range rs {
				rs[i] = rows[i][clo:chi]
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[w] = nets[w].HVP(theta, rs, v, h.outs[w][:kk])
			}()
		}
		wg.Wait()
		for w := range n {
			if errs[w] != nil {
				return errs[w]
			}
			for i := range out {
				axpy(out[i], 1, h.outs[w][i])
			}
		}
	}
	return nil
}

// HVPBytesPerTrial is the memory the chunk programs of one trial's
// Hessian-vector products over b samples take (with HVPChunk set; 0
// without), measured on a program of one trial.
func (e *DeviceBackend) HVPBytesPerTrial(b int) (int64, error) {
	c := e.HVPChunk
	if c <= 0 || b <= c {
		return 0, nil
	}
	if e.chunks.perTrial == 0 {
		dev1, _ := kernels.WithWorkers(e.Data.Dev, 1)
		n, err := NewDeviceNet(e.Arch, e.Data.On(dev1), 1, c, BatchHVP)
		if err != nil {
			return 0, fmt.Errorf("%s: Hessian-vector products of chunks of %d samples: %w", e.Arch.Name, c, err)
		}
		e.chunks.perTrial = n.Prog.Elements()
		if err := n.Close(); err != nil {
			return 0, err
		}
	}
	return int64((b+c-1)/c) * e.chunks.perTrial * int64(e.Data.Dev.DType().Size()), nil
}

// CloseChunks releases the chunk programs of the Hessian-vector products
// (compiled again on the next call).
func (e *DeviceBackend) CloseChunks() error {
	var first error
	for key, n := range e.chunks.nets {
		if err := n.Close(); err != nil && first == nil {
			first = err
		}
		delete(e.chunks.nets, key)
	}
	return first
}
