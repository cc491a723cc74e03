package graph

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/perturb/perturb/kernels"
)

// Chunked Hessian-vector products on a CPU device. A trial's product over
// its B samples is the sum of the products over chunks of HVPChunk
// consecutive samples. DeviceBackend.HVP (with HVPChunk set) computes
// each chunk of each trial with a program of one trial and one chunk, run
// by one of the device's goroutines on a one-goroutine device: a chunk's
// values stay in the caches between the steps of its program (one program
// over all trials and samples sends the patch matrices to memory and back
// at every step), and the goroutines run whole programs rather than
// splitting each kernel.
//
// Each goroutine has one program per chunk length; what a rerun at a new
// direction reads of a (trial, chunk)'s full run (parameters, samples,
// activations and the loss reverse: Program.planRerun) is kept in a Bank
// of its own while the banks of every (trial, chunk) fit HVPBytes, so a
// new direction at the same point reruns only the steps that depend on it
// (as DeviceNet.HVP does); beyond the budget every chunk runs in full.
//
// Summation: the chunks of a trial are taken in segments of
// hvpSegment samples; a segment's chunk products are added in float64 in
// chunk order, and the trial's segments in segment order. A (trial,
// segment) pair is one unit of work, so the result depends on HVPChunk
// but not on the number of trials, the goroutines or the scheduling, and
// a NaN in one trial stays in it. A trial whose direction is exactly
// zero gets a zero product without any evaluation (even where its
// Hessian is not finite): Lanczos and Hutchinson pass zero directions
// for the trials of a batch that have converged.

// DefaultHVPBytes is the default memory budget of the banks of one
// DeviceBackend's chunked Hessian-vector products.
const DefaultHVPBytes = 1 << 30

// hvpSegment is the number of samples whose chunks one unit adds.
const hvpSegment = 256

// chunkedHVP holds the chunk programs, the banks and the partial sums.
type chunkedHVP struct {
	progs map[[2]int]*DeviceNet // (goroutine, samples)
	banks map[[2]int]*chunkBank // (trial, chunk)
	// theta and gen: each trial's parameters of the last call and a
	// counter that changes with them.
	theta [][]float64
	gen   []int
	next  int
	b     int         // the samples per trial the banks are for
	part  [][]float64 // per unit: its partial sum
	outs  [][]float64 // per goroutine: a chunk's product
}

// chunkBank is the bank of one trial's chunk and the point it holds.
type chunkBank struct {
	bank *Bank
	gen  int
	rows []int
}

// hvpChunked is HVP over chunks of e.HVPChunk samples (see above) of
// the trials of theta (rows may have more, padded).
func (e *DeviceBackend) hvpChunked(theta [][]float64, rows [][]int, v, out [][]float64, b int) error {
	workers := max(1, kernels.HostWorkers(e.Data.Dev))
	c := e.HVPChunk
	k, np := len(theta), e.NumParams()
	chunks := (b + c - 1) / c
	perSeg := max(1, hvpSegment/c)
	segs := (chunks + perSeg - 1) / perSeg
	h := &e.chunks
	if h.b != b {
		// Banks of one shape only (the budget is for them).
		if err := e.closeBanks(); err != nil {
			return err
		}
		h.b = b
	}
	per, err := e.HVPBytesPerTrial(b)
	if err != nil {
		return err
	}
	budget := e.HVPBytes
	if budget <= 0 {
		budget = DefaultHVPBytes
	}
	banked := int64(k)*per <= budget
	// Which trials are at the point of their banks.
	for len(h.theta) < k {
		h.theta, h.gen = append(h.theta, nil), append(h.gen, 0)
	}
	for i := range k {
		if h.gen[i] == 0 || !sameVecs(h.theta[i:i+1], theta[i:i+1]) {
			h.next++
			h.theta[i], h.gen[i] = append(h.theta[i][:0], theta[i]...), h.next
		}
	}
	for len(h.part) < k*segs {
		h.part = append(h.part, make([]float64, np))
	}
	for len(h.outs) < workers {
		h.outs = append(h.outs, make([]float64, np))
	}
	// Each goroutine's programs: chunks of c samples and the last one.
	progs := make([][2]*DeviceNet, workers)
	for w := range workers {
		for i, n := range [2]int{c, b - (chunks-1)*c} {
			if progs[w][i], err = e.chunkProg(w, n); err != nil {
				return err
			}
		}
	}
	// attach points d at the bank of (trial, chunk) key, made on first
	// use by the goroutines under mu, or at d's own buffers unbanked.
	var mu sync.Mutex
	attach := func(d *DeviceNet, key [2]int) (*chunkBank, error) {
		if !banked {
			d.Prog.UseBank(nil)
			return nil, nil
		}
		mu.Lock()
		cb, ok := h.banks[key]
		if !ok {
			bk, err := d.Prog.NewBank()
			if err != nil {
				mu.Unlock()
				return nil, err
			}
			cb = &chunkBank{bank: bk}
			h.banks[key] = cb
		}
		mu.Unlock()
		d.Prog.UseBank(cb.bank)
		return cb, nil
	}
	// The units of the trials whose direction is not zero (a zero
	// direction gets a zero product without evaluation, as an idle trial
	// of a batch in Lanczos does).
	todo := make([]int, 0, k*segs)
	for i := range k {
		if slices.ContainsFunc(v[i], func(x float64) bool { return x != 0 }) {
			for sg := range segs {
				todo = append(todo, i*segs+sg)
			}
		} else {
			for sg := range segs {
				clear(h.part[i*segs+sg][:np])
			}
		}
	}
	var units atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			o := h.outs[w][:np]
			for {
				n := int(units.Add(1) - 1)
				if n >= len(todo) {
					return
				}
				u := todo[n]
				i, sg := u/segs, u%segs
				part := h.part[u][:np]
				clear(part)
				for ch := sg * perSeg; ch < min((sg+1)*perSeg, chunks); ch++ {
					lo, hi := ch*c, min(ch*c+c, b)
					d := progs[w][0]
					if ch == chunks-1 {
						d = progs[w][1]
					}
					cb, err := attach(d, [2]int{i, ch})
					if err == nil {
						err = chunkHVP(d, cb, h.gen[i], theta[i:i+1], rows[i][lo:hi], v[i:i+1], o)
					}
					if err != nil {
						errs[w] = err
						return
					}
					axpy(part, 1, o)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	for i := range k {
		clear(out[i])
		for sg := range segs {
			axpy(out[i], 1, h.part[i*segs+sg][:np])
		}
	}
	return nil
}

// chunkHVP computes one trial's product over one chunk's rows into o on
// the program d, which holds the chunk's bank cb (nil: its own buffers):
// a rerun when the bank holds the point (gen, rows), else a full run.
func chunkHVP(d *DeviceNet, cb *chunkBank, gen int, theta [][]float64, rows []int, v [][]float64, o []float64) error {
	outs, rs := [][]float64{o}, [][]int{rows}
	if cb == nil {
		return d.full(theta, rs, v, outs)
	}
	if cb.gen == gen && slices.Equal(cb.rows, rows) {
		return d.rerun(v, outs)
	}
	cb.gen = 0
	if err := d.full(theta, rs, v, outs); err != nil {
		return err
	}
	cb.gen, cb.rows = gen, append(cb.rows[:0], rows...)
	return nil
}

// chunkProg returns goroutine w's program of one trial and n samples.
func (e *DeviceBackend) chunkProg(w, n int) (*DeviceNet, error) {
	h := &e.chunks
	if h.progs == nil {
		h.progs, h.banks = map[[2]int]*DeviceNet{}, map[[2]int]*chunkBank{}
	}
	if d, ok := h.progs[[2]int{w, n}]; ok {
		return d, nil
	}
	dev1, _ := kernels.WithWorkers(e.Data.Dev, 1)
	d, err := NewDeviceNet(e.Arch, e.Data.On(dev1), 1, n, BatchHVP)
	if err != nil {
		return nil, fmt.Errorf("%s: Hessian-vector products of chunks of %d samples: %w", e.Arch.Name, n, err)
	}
	h.progs[[2]int{w, n}] = d
	return d, nil
}

// HVPBytesPerTrial is the memory the banks of one trial's Hessian-vector
// products over b samples take (with HVPChunk set; 0 without).
func (e *DeviceBackend) HVPBytesPerTrial(b int) (int64, error) {
	c := e.HVPChunk
	if c <= 0 || b <= c {
		return 0, nil
	}
	d, err := e.chunkProg(0, c)
	if err != nil {
		return 0, err
	}
	return int64((b+c-1)/c) * d.Prog.BankElements() * int64(e.Data.Dev.DType().Size()), nil
}

// DropHVPBanks frees the banks of the chunked Hessian-vector products
// (the next product at any point runs in full), keeping the programs.
func (e *DeviceBackend) DropHVPBanks() error { return e.closeBanks() }

// closeBanks frees the banks.
func (e *DeviceBackend) closeBanks() error {
	var first error
	h := &e.chunks
	for key, cb := range h.banks {
		if err := cb.bank.Close(); err != nil && first == nil {
			first = err
		}
		delete(h.banks, key)
	}
	h.b, h.gen = 0, nil
	h.theta = nil
	return first
}

// CloseChunks releases the banks and the chunk programs (compiled again
// on the next call).
func (e *DeviceBackend) CloseChunks() error {
	first := e.closeBanks()
	for key, d := range e.chunks.progs {
		d.Prog.UseBank(nil)
		if err := d.Close(); err != nil && first == nil {
			first = err
		}
		delete(e.chunks.progs, key)
	}
	return first
}

// hvpChunkElements is the size, in elements, of the chunk programs that
// AutoHVPChunk aims for: about 1.6 MB of float32, which keeps a chunk's
// values in a core's L2 cache and its reruns' products large enough for
// the micro-kernels (convnet: 16 samples; logistic regression: 128).
const hvpChunkElements = 400_000

// AutoHVPChunk returns the HVPChunk for e's model: the largest power of
// two from 8 to 256 samples whose program of one trial has at most
// hvpChunkElements elements, measured on a program of 16 samples.
func (e *DeviceBackend) AutoHVPChunk() (int, error) {
	const probe = 16
	d, err := e.chunkProg(0, probe)
	if err != nil {
		return 0, err
	}
	per := max(1, d.Prog.Elements()/probe)
	c := 8
	for c < 256 && int64(2*c)*per <= hvpChunkElements {
		c *= 2
	}
	return c, nil
}
