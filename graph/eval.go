package graph

import (
	"fmt"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/nets"
)

// Evaluator computes the mean loss and accuracy of a model over many
// examples by streaming them through Nets of a fixed chunk size (plus one
// Net for the remainder), so memory is bounded by the chunk size whatever
// the pool size. Per-chunk losses are summed in float64 in a fixed order,
// so the result does not depend on scheduling. Not safe for concurrent use.
type Evaluator struct {
	Arch  *nets.Arch
	DType tensor.Dtype
	Chunk int
	nets  map[int]*Net
}

// NewEvaluator returns an evaluator streaming chunk examples at a time.
func NewEvaluator(arch *nets.Arch, dt tensor.Dtype, chunk int) *Evaluator {
	return &Evaluator{Arch: arch, DType: dt, Chunk: chunk, nets: map[int]*Net{}}
}

// DefaultChunk is a chunk size that keeps one evaluator's graph below about
// 200 MB: the convnet needs about 10 kB of float64 intermediates per
// Fashion-MNIST example, the logistic model about 7 kB.
func DefaultChunk(arch *nets.Arch) int {
	if arch.Name == "convnet" {
		return 1000
	}
	return 5000
}

func (e *Evaluator) net(size int) (*Net, error) {
	if n, ok := e.nets[size]; ok {
		return n, nil
	}
	n, err := Compile(e.Arch, e.DType, size, false)
	if err != nil {
		return nil, err
	}
	e.nets[size] = n
	return n, nil
}

// Mean returns the mean loss and the accuracy of p over the examples rows
// of d, or over all of d when rows is nil.
func (e *Evaluator) Mean(p Params, d *Data, rows []int) (loss, acc float64, err error) {
	total := d.Len()
	if rows != nil {
		total = len(rows)
	}
	if total == 0 {
		return 0, 0, fmt.Errorf("evaluate %s: no examples", e.Arch.Name)
	}
	var sum float64
	correct := 0
	for from := 0; from < total; from += e.Chunk {
		size := min(e.Chunk, total-from)
		n, err := e.net(size)
		if err != nil {
			return 0, 0, err
		}
		var s float64
		var c int
		if rows != nil {
			s, c, err = n.Eval(p, d, rows[from:from+size], 0)
		} else {
			s, c, err = n.Eval(p, d, nil, from)
		}
		if err != nil {
			return 0, 0, err
		}
		sum += s
		correct += c
	}
	return sum / float64(total), float64(correct) / float64(total), nil
}

// Close releases every compiled Net.
func (e *Evaluator) Close() error {
	for _, n := range e.nets {
		n.Close()
	}
	return nil
}
