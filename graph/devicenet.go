package graph

import (
	"fmt"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// DeviceData is a data pool uploaded to a device once: the examples (N,
// dim) and the labels as floats.
type DeviceData struct {
	Dev     kernels.Device
	X, Y    kernels.Buffer
	N       int
	Dim     int
	Classes int
	labels  []float64
}

// UploadData copies d to dev (on a CPU device of the pool's dtype it
// shares the pool's slice instead: kernels.HostView). On error nothing
// stays allocated.
func UploadData(dev kernels.Device, d *Data) (_ *DeviceData, err error) {
	n := d.Len()
	dd := &DeviceData{Dev: dev, N: n, Dim: d.Dim, Classes: d.Classes, labels: make([]float64, n)}
	defer func() {
		if err != nil {
			dd.Close()
		}
	}()
	if dd.Y, err = dev.Alloc(max(n, 1)); err != nil {
		return nil, fmt.Errorf("upload data labels: %w", err)
	}
	// On a CPU device of the pool's dtype the programs read the host
	// slice itself (they only gather from it): no copy of the pool.
	if x, ok := kernels.HostView(dev, d.X32, d.X64); ok && n*d.Dim > 0 {
		dd.X = x
	} else {
		if dd.X, err = dev.Alloc(max(n*d.Dim, 1)); err != nil {
			return nil, fmt.Errorf("upload data pool of %d×%d: %w", n, d.Dim, err)
		}
		if d.X32 != nil {
			err = dev.Upload32(dd.X, 0, d.X32)
		} else {
			err = dev.Upload(dd.X, 0, d.X64)
		}
		if err != nil {
			return nil, fmt.Errorf("upload data pool: %w", err)
		}
	}
	for i, y := range d.Y {
		dd.labels[i] = float64(y)
	}
	if err := dev.Upload(dd.Y, 0, dd.labels); err != nil {
		return nil, fmt.Errorf("upload data labels: %w", err)
	}
	return dd, nil
}

// On returns the pool seen through dev, another handle on the device that
// holds it (a kernels.WithWorkers view of a CPU device): the buffers are
// shared, so close only the original.
func (dd *DeviceData) On(dev kernels.Device) *DeviceData {
	v := *dd
	v.Dev = dev
	return &v
}

// Close frees the pool's device buffers (once) and returns the first
// error of the frees.
func (dd *DeviceData) Close() error {
	var first error
	for _, b := range []*kernels.Buffer{&dd.X, &dd.Y} {
		if *b == nil {
			continue
		}
		if err := dd.Dev.Free(*b); err != nil && first == nil {
			first = fmt.Errorf("free the device data pool: %w", err)
		}
		*b = nil
	}
	return first
}

// DeviceNet runs a BatchNet's graph on a device: the per-trial samples are
// gathered from the device-resident pool, the stacked parameters uploaded,
// the walked program run, and the gradients (or Hessian-vector products)
// and losses downloaded.
//
// A BatchHVP net keeps the parameters and samples of its last call: a call
// with bitwise the same ones (a new direction at the same point, as in
// Lanczos) uploads the direction alone and reruns only the steps that
// depend on it (Program.Rerun), with the same results.
type DeviceNet struct {
	*BatchNet
	Prog *Program
	data *DeviceData
	idx  []int32
	host []float64
	// theta and rows are the parameters and samples of the last HVP
	// call, valid when primal is set.
	theta  [][]float64
	rows   [][]int
	primal bool
}

// NewDeviceNet compiles the graph of kind for k trials of b samples and
// maps it onto data's device.
func NewDeviceNet(arch *nets.Arch, data *DeviceData, k, b int, kind BatchKind) (*DeviceNet, error) {
	dt := tensor.Float32
	if data.Dev.DType() == kernels.F64 {
		dt = tensor.Float64
	}
	n, err := CompileBatch(arch, dt, k, b, kind)
	if err != nil {
		return nil, err
	}
	outs := append(G.Nodes{}, n.grads...)
	if n.losses != nil {
		outs = append(outs, n.losses)
	}
	var p *Program
	if kind == BatchHVP {
		p, err = n.CompileRerun(data.Dev, n.dirs, outs...)
	} else {
		p, err = n.Compile(data.Dev, outs...)
	}
	if err != nil {
		n.Close()
		return nil, err
	}
	return &DeviceNet{BatchNet: n, Prog: p, data: data, idx: make([]int32, k*b)}, nil
}

// Close frees the device buffers and the CPU machine.
func (d *DeviceNet) Close() error {
	err := d.Prog.Close()
	if e := d.BatchNet.Close(); err == nil {
		err = e
	}
	return err
}

// upload gathers the samples and uploads the stacked vectors src into the
// nodes (parameters or tangents).
func (d *DeviceNet) upload(rows [][]int, nodes []*G.Node, src ...[][]float64) error {
	for k, r := range rows {
		for j, v := range r {
			d.idx[k*d.B+j] = int32(v)
		}
	}
	xb, err := d.Prog.Buffer(d.x)
	if err != nil {
		return err
	}
	yb, err := d.Prog.Buffer(d.y)
	if err != nil {
		return err
	}
	dev := d.data.Dev
	if err := dev.Gather(xb, yb, d.data.X, d.data.Y, d.idx, d.data.Dim, d.data.Classes); err != nil {
		return fmt.Errorf("gather samples: %w", err)
	}
	np := len(d.Arch.Params)
	bufs := make([]kernels.Buffer, len(src)*np)
	for j := range bufs {
		b, err := d.Prog.Buffer(nodes[j])
		if err != nil {
			return err
		}
		bufs[j] = b
	}
	return d.eachTrial(len(rows), func(k int) error {
		for s, vecs := range src {
			for i, p := range d.Arch.Params {
				off, size := d.offsets[i], p.Size()
				if err := dev.Upload(bufs[s*np+i], k*size, vecs[k][off:off+size]); err != nil {
					return fmt.Errorf("upload %s: %w", p.Name, err)
				}
			}
		}
		return nil
	})
}

// download copies the stacked gradient buffers into out[k].
func (d *DeviceNet) download(out [][]float64) error {
	bufs := make([]kernels.Buffer, len(d.Arch.Params))
	for i := range bufs {
		b, err := d.Prog.Buffer(d.grads[i])
		if err != nil {
			return err
		}
		bufs[i] = b
	}
	return d.eachTrial(len(out), func(k int) error {
		for i, p := range d.Arch.Params {
			off, size := d.offsets[i], p.Size()
			if err := d.data.Dev.Download(out[k][off:off+size], bufs[i], k*size); err != nil {
				return fmt.Errorf("download gradient of %s: %w", p.Name, err)
			}
		}
		return nil
	})
}

// parallelCopy is the least number of elements (all trials) whose copy
// between host vectors and a CPU device is spread over goroutines.
const parallelCopy = 1 << 15

// eachTrial calls f for the trials 0..n-1: on a CPU device, when the
// trials' vectors are long enough, spread over the device's goroutines
// (kernels.HostWorkers) in contiguous ranges of trials (the conversions are
// elementwise, so the result does not depend on the split); else in
// order. It returns the first error.
func (d *DeviceNet) eachTrial(n int, f func(k int) error) error {
	w := 1
	if n*d.Arch.NumParams() >= parallelCopy {
		w = min(kernels.HostWorkers(d.data.Dev), n)
	}
	if w <= 1 {
		for k := range n {
			if err := f(k); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, w)
	var wg sync.WaitGroup
	for i := range w {
		wg.Go(func() {
			for k := n * i / w; k < n*(i+1)/w; k++ {
				if errs[i] = f(k); errs[i] != nil {
					return
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
	return nil
}

// Grad is BatchNet.Grad on the device.
func (d *DeviceNet) Grad(theta [][]float64, rows [][]int, loss []float64, grad [][]float64) error {
	if d.Kind != BatchGrad {
		return fmt.Errorf("device Grad on a %s net", d.Kind)
	}
	d.check(theta, rows)
	d.checkOut("gradient", grad)
	if err := d.upload(rows, d.params, theta); err != nil {
		return err
	}
	if err := d.Prog.Run(); err != nil {
		return fmt.Errorf("device gradient of %s: %w", d.Arch.Name, err)
	}
	lb, err := d.Prog.Buffer(d.losses)
	if err != nil {
		return err
	}
	if cap(d.host) < d.K*d.B {
		d.host = make([]float64, d.K*d.B)
	}
	ls := d.host[:d.K*d.B]
	if err := d.data.Dev.Download(ls, lb, 0); err != nil {
		return fmt.Errorf("download losses: %w", err)
	}
	meanRows(loss, ls, d.B)
	return d.download(grad)
}

// HVP is BatchNet.HVP on the device.
func (d *DeviceNet) HVP(theta [][]float64, rows [][]int, v, out [][]float64) error {
	if d.Kind != BatchHVP {
		return fmt.Errorf("device HVP on a %s net", d.Kind)
	}
	d.check(theta, rows)
	d.checkOut("direction", v)
	d.checkOut("output", out)
	if d.primal && sameVecs(d.theta, theta) && sameRows(d.rows, rows) {
		if err := d.rerun(v, out); err != nil {
			d.primal = false
			return err
		}
		return nil
	}
	d.primal = false
	if err := d.full(theta, rows, v, out); err != nil {
		return err
	}
	d.keep(theta, rows)
	return nil
}

// full runs the whole HVP program at theta, rows and v.
func (d *DeviceNet) full(theta [][]float64, rows [][]int, v, out [][]float64) error {
	if err := d.upload(rows, append(append([]*G.Node{}, d.params...), d.dirs...), theta, v); err != nil {
		return err
	}
	if err := d.Prog.Run(); err != nil {
		return fmt.Errorf("device Hessian-vector product of %s: %w", d.Arch.Name, err)
	}
	return d.download(out)
}

// rerun reruns the HVP program's steps that depend on the direction, at
// the point of the last full run in its buffers.
func (d *DeviceNet) rerun(v, out [][]float64) error {
	if err := d.uploadTangents(v); err != nil {
		return err
	}
	if err := d.Prog.Rerun(); err != nil {
		return fmt.Errorf("device Hessian-vector product of %s: %w", d.Arch.Name, err)
	}
	return d.download(out)
}

// logits returns the node of the logits (K·B, classes): the input of the
// graph's log-softmax.
func (n *BatchNet) logits() (*G.Node, error) {
	for _, nd := range n.g.AllNodes() {
		if c, ok := nd.Op().(*customOp); ok {
			if _, ok := c.k.(logSoftmaxKernel); ok {
				it := n.g.From(nd.ID())
				if it.Next() {
					return it.Node().(*G.Node), nil
				}
			}
		}
	}
	return nil, fmt.Errorf("%s: no log-softmax in the graph", n.Arch.Name)
}
