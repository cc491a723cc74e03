package graph

import (
	"fmt"
	"sync"
	"sync/atomic"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// DeviceEval is the test-loss evaluation on a device: the forward pass of
// K trials over chunks of the pool (the walked forward part of the batched
// graph), then the fused log-sum-exp cross-entropy kernel; the
// per-example losses and hits are added in float64 on the host in example
// order, so the result does not depend on the chunk size. Where the model
// allows (see sharedInput), the chunk is copied once and the first layer
// reads it for every trial. On a CPU device (kernels.WithWorkers) the
// chunks are at most evalCPUBytes of buffers (so that a chunk's live
// buffers stay in cache) and run in parallel, one program per worker on a
// serial device, so that workers do not meet at every operation.
type DeviceEval struct {
	arch *nets.Arch
	data *DeviceData
	k    int
	// group is the number of trials one program run evaluates (k on a
	// GPU; on a CPU device a few, so that a chunk's buffers for them stay
	// in a core's cache).
	group int
	// lanes holds, per worker, the programs for each chunk length.
	lanes [][]*evalPart
	// exLoss and exCorr hold the per-example values (trial-major) when
	// several lanes run.
	exLoss, exCorr []float64
}

// evalCPUBytes bounds the per-example buffers of one chunk's program (of
// evalCPUGroup trials) on a CPU device. The program's allocation
// overcounts what a chunk touches (the input and the first patches are
// allocated for every trial but, with sharedInput, written once): it gives
// chunks of 26 examples for the convnet and 330 for logistic regression.
const evalCPUBytes = 16 << 20

// evalCPUGroup is the number of trials of one program run on a CPU device:
// a chunk is copied once and the runs take the groups' parameters in turn,
// so that one run's buffers stay in a core's caches (measured best of
// 2–32 trials with 1–32 MiB on 2 EPYC cores: 16 trials, 16 MiB).
const evalCPUGroup = 16

// groups is the number of program runs per chunk.
func (e *DeviceEval) groups() int { return (e.k + e.group - 1) / e.group }

// cpuChunk is the longest chunk whose program's per-example buffers for
// k trials stay within evalCPUBytes on dev, from the sizes of one- and
// two-example programs.
func (e *DeviceEval) cpuChunk(dev kernels.Device) (int, error) {
	var size [2]int64
	for b := range size {
		p, err := e.part(dev, b+1)
		if err != nil {
			return 0, err
		}
		size[b] = p.prog.Elements() * int64(dev.DType().Size())
		if err := p.close(); err != nil {
			return 0, err
		}
	}
	per := max(size[1]-size[0], 1)
	return int(min(max(evalCPUBytes/per, 1), 4096)), nil
}

// evalPart is the program for one chunk length.
type evalPart struct {
	dev                   kernels.Device
	net                   *BatchNet
	prog                  *Program
	logits                *G.Node
	y, loss, corr, labels kernels.Buffer
	rows, chunks          int
	// shared is set when the program reads one copy of the chunk for all
	// trials (see sharedInput).
	shared *sharedInput
	// rowLoss and rowCorr receive the chunk's per-example values of all
	// k trials, runLoss and runCorr those of one run's group.
	rowLoss, rowCorr []float64
	runLoss, runCorr []float64
	idx              []int32
	// params are the program's parameter buffers; all holds, per
	// parameter, the groups·group trials' values when a chunk takes
	// several runs: each run copies its group's from it.
	params, all []kernels.Buffer
}

// NewDeviceEval prepares the evaluation of k trials over the whole pool in
// chunks of at most chunk examples.
func NewDeviceEval(arch *nets.Arch, data *DeviceData, k, chunk int) (*DeviceEval, error) {
	e := &DeviceEval{arch: arch, data: data, k: k, group: k}
	devs := []kernels.Device{data.Dev}
	if u, ok := kernels.WithUniformProducts(data.Dev); ok {
		devs[0] = u // the CUDA emulator: its products are the CPU's
	}
	if serial, ok := kernels.WithWorkers(data.Dev, 1); ok {
		// Every product through the micro-kernel: the loss does not
		// depend on the chunk length nor on the shared input.
		serial, _ = kernels.WithUniformProducts(serial)
		e.group = min(k, evalCPUGroup)
		c, err := e.cpuChunk(serial)
		if err != nil {
			return nil, err
		}
		chunk = max(min(chunk, c), 1)
		n := min(kernels.Workers(), (data.N+chunk-1)/chunk)
		devs = devs[:0]
		for range max(n, 1) {
			devs = append(devs, serial)
		}
	}
	chunk = max(min(chunk, data.N), 1)
	full := data.N / chunk
	for _, dev := range devs {
		var lane []*evalPart
		for _, pr := range [][2]int{{chunk, full}, {data.N - full*chunk, 1}} {
			if pr[0] == 0 || pr[1] == 0 {
				continue
			}
			p, err := e.part(dev, pr[0])
			if err != nil {
				for _, q := range lane {
					q.close()
				}
				e.Close()
				return nil, err
			}
			p.chunks = pr[1]
			lane = append(lane, p)
		}
		e.lanes = append(e.lanes, lane)
	}
	return e, nil
}

func (e *DeviceEval) part(dev kernels.Device, b int) (_ *evalPart, err error) {
	dt := tensor.Float32
	if dev.DType() == kernels.F64 {
		dt = tensor.Float64
	}
	kg := e.group
	n, err := CompileBatch(e.arch, dt, kg, b, BatchGrad)
	if err != nil {
		return nil, err
	}
	p := &evalPart{dev: dev, net: n, rows: b, rowLoss: make([]float64, e.k*b), rowCorr: make([]float64, e.k*b),
		runLoss: make([]float64, kg*b), runCorr: make([]float64, kg*b)}
	defer func() {
		if err != nil {
			p.close() // nothing stays allocated on error
		}
	}()
	if p.logits, err = n.logits(); err != nil {
		return nil, err
	}
	pdev := dev
	if evalShareInput && n.sharesInput(p.logits) {
		p.shared = &sharedInput{Device: dev, trials: kg}
		pdev = p.shared
	}
	p.idx = make([]int32, kg*b)
	if p.prog, err = n.Compile(pdev, p.logits); err != nil {
		return nil, err
	}
	for _, par := range n.params {
		b, err := p.prog.Buffer(par)
		if err != nil {
			return nil, err
		}
		p.params = append(p.params, b)
	}
	if p.shared != nil {
		if p.shared.x, err = p.prog.Buffer(n.x); err != nil {
			return nil, err
		}
	}
	for _, a := range []struct {
		b *kernels.Buffer
		n int
	}{{&p.y, kg * b * e.arch.Classes}, {&p.loss, kg * b}, {&p.corr, kg * b}, {&p.labels, b}} {
		if *a.b, err = dev.Alloc(a.n); err != nil {
			return nil, fmt.Errorf("device evaluation buffers: %w", err)
		}
	}
	if e.groups() > 1 {
		for _, par := range e.arch.Params {
			buf, err := dev.Alloc(e.groups() * kg * par.Size())
			if err != nil {
				return nil, fmt.Errorf("device evaluation parameters: %w", err)
			}
			p.all = append(p.all, buf)
		}
	}
	return p, nil
}

// close frees p's program, buffers and graph, and returns the first
// error.
func (p *evalPart) close() error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	if p.prog != nil {
		keep(p.prog.Close())
		p.prog = nil
	}
	for _, b := range []*kernels.Buffer{&p.y, &p.loss, &p.corr, &p.labels} {
		if *b != nil {
			keep(p.dev.Free(*b))
			*b = nil
		}
	}
	for _, b := range p.all {
		keep(p.dev.Free(b))
	}
	p.all = nil
	if p.net != nil {
		keep(p.net.Close())
		p.net = nil
	}
	return first
}

// Close frees the device buffers and returns the first error of the frees.
func (e *DeviceEval) Close() error {
	var first error
	for _, lane := range e.lanes {
		for _, p := range lane {
			if err := p.close(); err != nil && first == nil {
				first = fmt.Errorf("device evaluation: %w", err)
			}
		}
	}
	e.lanes = nil
	return first
}

// TestLoss sets loss[k] and acc[k] to the mean loss and accuracy of
// theta[k] over the whole pool.
func (e *DeviceEval) TestLoss(theta [][]float64, loss, acc []float64) error {
	return e.Mean(theta, nil, loss, acc)
}

// Mean sets loss[k] and acc[k] to the mean loss and accuracy of theta[k]
// over the pool rows (all trials the same rows, in any order and with
// repeats; nil: the whole pool). The rows are cut into chunks of e's
// chunk length and one shorter remainder (its program compiled on first
// use); per-example values are added on the host in row order, so the
// result does not depend on the chunk length.
func (e *DeviceEval) Mean(theta [][]float64, rows []int, loss, acc []float64) error {
	if len(theta) != e.k || len(loss) != e.k || len(acc) != e.k {
		return fmt.Errorf("device evaluation of %d trials with %d vectors", e.k, len(theta))
	}
	n := e.data.N
	if rows != nil {
		n = len(rows)
		for _, r := range rows {
			if r < 0 || r >= e.data.N {
				return fmt.Errorf("device evaluation: row %d outside the pool of %d", r, e.data.N)
			}
		}
	}
	clear(loss)
	clear(acc)
	if n == 0 {
		return fmt.Errorf("device evaluation over no rows")
	}
	// The chunks in row order: the part of their length and their first
	// position in rows.
	type chunk struct{ part, from int }
	var chunks []chunk
	size := e.lanes[0][0].rows
	for from := 0; from < n; from += size {
		i, err := e.partFor(min(size, n-from))
		if err != nil {
			return err
		}
		chunks = append(chunks, chunk{i, from})
	}
	used := map[int]bool{}
	for _, c := range chunks {
		if !used[c.part] {
			used[c.part] = true
			for _, lane := range e.lanes {
				if err := e.upload(lane[c.part], theta); err != nil {
					return err
				}
			}
		}
	}
	at := func(c chunk) []int {
		if rows != nil {
			return rows[c.from:]
		}
		return nil
	}
	if len(e.lanes) == 1 {
		// Per-example values are added on the host in row order, so a
		// trial's loss does not depend on the chunk size (nor,
		// therefore, on K or the memory budget).
		for _, c := range chunks {
			p := e.lanes[0][c.part]
			if err := e.run(p, c.from, at(c)); err != nil {
				return err
			}
			for k := 0; k < e.k; k++ {
				for j := 0; j < p.rows; j++ {
					loss[k] += p.rowLoss[k*p.rows+j]
					acc[k] += p.rowCorr[k*p.rows+j]
				}
			}
		}
	} else {
		// Lanes take chunks in turn and store per-example values; the sums
		// run afterwards in row order (the same as one lane's).
		if len(e.exLoss) < e.k*n {
			e.exLoss, e.exCorr = make([]float64, e.k*n), make([]float64, e.k*n)
		}
		var next atomic.Int64
		errs := make([]error, len(e.lanes))
		var wg sync.WaitGroup
		for l, lane := range e.lanes {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(chunks) || errs[l] != nil {
						return
					}
					c := chunks[i]
					p := lane[c.part]
					if errs[l] = e.run(p, c.from, at(c)); errs[l] != nil {
						next.Store(int64(len(chunks))) // stop the others
						return
					}
					for k := 0; k < e.k; k++ {
						copy(e.exLoss[k*n+c.from:][:p.rows], p.rowLoss[k*p.rows:(k+1)*p.rows])
						copy(e.exCorr[k*n+c.from:][:p.rows], p.rowCorr[k*p.rows:(k+1)*p.rows])
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
		for k := 0; k < e.k; k++ {
			for _, v := range e.exLoss[k*n : (k+1)*n] {
				loss[k] += v
			}
			for _, v := range e.exCorr[k*n : (k+1)*n] {
				acc[k] += v
			}
		}
	}
	for k := range loss {
		loss[k] /= float64(n)
		acc[k] /= float64(n)
	}
	return nil
}

// partFor returns the index, in every lane, of the part for chunks of b
// examples, compiling it on first use.
func (e *DeviceEval) partFor(b int) (int, error) {
	for i, p := range e.lanes[0] {
		if p.rows == b {
			return i, nil
		}
	}
	for l, lane := range e.lanes {
		p, err := e.part(lane[0].dev, b)
		if err != nil {
			for j := range e.lanes[:l] {
				q := e.lanes[j]
				q[len(q)-1].close()
				e.lanes[j] = q[:len(q)-1]
			}
			return 0, fmt.Errorf("device evaluation of chunks of %d: %w", b, err)
		}
		e.lanes[l] = append(lane, p)
	}
	return len(e.lanes[0]) - 1, nil
}

// upload copies the stacked parameters into p's program, or, when a
// chunk takes several runs, into p.all (the last group padded with the
// last trial).
func (e *DeviceEval) upload(p *evalPart, theta [][]float64) error {
	for i, par := range e.arch.Params {
		b := p.params[i]
		if e.groups() > 1 {
			b = p.all[i]
		}
		off, size := p.net.offsets[i], par.Size()
		for k := range e.groups() * e.group {
			v := theta[min(k, len(theta)-1)]
			if err := p.dev.Upload(b, k*size, v[off:off+size]); err != nil {
				return fmt.Errorf("upload %s: %w", par.Name, err)
			}
		}
	}
	return nil
}

// run evaluates the chunk of p.rows examples into p.rowLoss and p.rowCorr
// (trial-major): the pool's examples from on when rows is nil, else
// rows[:p.rows].
func (e *DeviceEval) run(p *evalPart, from int, rows []int) error {
	dev, kg := p.dev, e.group
	if err := e.input(p, from, rows); err != nil {
		return err
	}
	lb, err := p.prog.Buffer(p.logits)
	if err != nil {
		return err
	}
	for g := range e.groups() {
		if e.groups() > 1 {
			for i, par := range e.arch.Params {
				size := par.Size()
				if err := dev.Copy(p.params[i], 0, p.all[i], g*kg*size, kg*size); err != nil {
					return fmt.Errorf("parameters of group %d: %w", g, err)
				}
			}
		}
		if err := p.prog.Run(); err != nil {
			return fmt.Errorf("device forward pass of %s: %w", e.arch.Name, err)
		}
		if err := dev.CrossEntropy(p.loss, p.corr, lb, p.labels, kg, p.rows, e.arch.Classes); err != nil {
			return err
		}
		if err := dev.Download(p.runLoss, p.loss, 0); err != nil {
			return fmt.Errorf("download losses: %w", err)
		}
		if err := dev.Download(p.runCorr, p.corr, 0); err != nil {
			return fmt.Errorf("download accuracies: %w", err)
		}
		n := min(kg, e.k-g*kg) * p.rows
		copy(p.rowLoss[g*kg*p.rows:][:n], p.runLoss)
		copy(p.rowCorr[g*kg*p.rows:][:n], p.runCorr)
	}
	return nil
}

// input fills p's input and labels with the chunk's examples: the pool's
// from on (rows nil) or rows[:p.rows]; once when the program shares its
// input, else once per trial.
func (e *DeviceEval) input(p *evalPart, from int, rows []int) error {
	dev, d := p.dev, e.data
	xb, err := p.prog.Buffer(p.net.x)
	if err != nil {
		return err
	}
	row := func(j int) int {
		if rows == nil {
			return from + j
		}
		return rows[j]
	}
	copies := e.group
	if p.shared != nil {
		copies = 1
		if rows == nil { // one contiguous copy serves every trial
			if err := dev.Copy(xb, 0, d.X, from*d.Dim, p.rows*d.Dim); err != nil {
				return fmt.Errorf("copy chunk at %d: %w", from, err)
			}
			return dev.Copy(p.labels, 0, d.Y, from, p.rows)
		}
	}
	idx := p.idx[:copies*p.rows]
	for k := range copies {
		for j := range p.rows {
			idx[k*p.rows+j] = int32(row(j))
		}
	}
	x, y := xb, p.y
	if copies == 1 {
		if x, err = dev.View(xb, p.rows*d.Dim); err != nil {
			return err
		}
		if y, err = dev.View(p.y, p.rows*d.Classes); err != nil {
			return err
		}
	}
	if err := dev.Gather(x, y, d.X, d.Y, idx, d.Dim, d.Classes); err != nil {
		return fmt.Errorf("gather chunk at %d: %w", from, err)
	}
	if rows == nil {
		return dev.Copy(p.labels, 0, d.Y, from, p.rows)
	}
	lab := make([]float64, p.rows)
	for j := range lab {
		lab[j] = d.labels[rows[j]]
	}
	return dev.Upload(p.labels, 0, lab)
}
