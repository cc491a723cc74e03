package graph

import (
	"strings"

	G "gorgonia.org/gorgonia"

	"github.com/perturb/perturb/kernels"
)

// The test-loss evaluation feeds every trial the same chunk of the pool,
// so the first layer's input is the same for all K trials. sharedInput
// lets the walked forward program exploit that without a second copy of
// the model: the chunk is copied once (trial 0's rows of the input
// buffer), the first convolution's patches are made once (Im2col of one
// trial), and the first layer's batched product reads that one copy for
// every trial (a stride-0 operand, which kernels.CPU turns into one tall
// or wide BLAS product). Each trial's arithmetic is unchanged, so results
// equal those of K copies bitwise.

// evalShareInput enables sharedInput (tests compare with it off).
var evalShareInput = true

// sharedInput is the Device of an evaluation program whose input x holds
// one copy of the chunk.
type sharedInput struct {
	kernels.Device
	x      kernels.Buffer // the program's input buffer
	trials int
	// cols is the patch buffer Im2col last made from x (one trial's
	// patches), until something else writes it.
	cols kernels.Buffer
}

// Im2col makes one trial's patches when the images are the shared input.
func (s *sharedInput) Im2col(c kernels.Conv, cols, images kernels.Buffer) error {
	if images != s.x || c.Trials != s.trials {
		if cols == s.cols {
			s.cols = nil
		}
		return s.Device.Im2col(c, cols, images)
	}
	one := c
	one.Trials = 1
	cv, err := s.View(cols, one.ColsLen())
	if err != nil {
		return err
	}
	iv, err := s.View(images, one.ImagesLen())
	if err != nil {
		return err
	}
	if err := s.Device.Im2col(one, cv, iv); err != nil {
		return err
	}
	s.cols = cols
	return nil
}

// Gemm reads a shared operand (x or its patches) with stride 0.
func (s *sharedInput) Gemm(g kernels.Gemm, c, a, b kernels.Buffer) error {
	shared := func(o kernels.Buffer) bool { return o == s.x || s.cols != nil && o == s.cols }
	if g.Batch == s.trials {
		if shared(a) {
			g.StrideA = 0
		}
		if shared(b) {
			g.StrideB = 0
		}
	}
	if s.cols != nil && (a == s.cols || b == s.cols || c == s.cols) {
		s.cols = nil // read once (or overwritten): the buffer may be reused
	}
	return s.Device.Gemm(g, c, a, b)
}

// sharesInput reports whether the forward program of n computing out reads
// the input x only through products (affine layers) and patch matrices
// that only products read, so that it can run on sharedInput.
func (n *BatchNet) sharesInput(out *G.Node) bool {
	seen := map[int64]bool{}
	var nodes []*G.Node
	var walk func(nd *G.Node)
	walk = func(nd *G.Node) {
		if seen[nd.ID()] {
			return
		}
		seen[nd.ID()] = true
		nodes = append(nodes, nd)
		for it := n.g.From(nd.ID()); it.Next(); {
			walk(it.Node().(*G.Node))
		}
	}
	walk(out)
	// derived: x and its reshapes (one buffer); patches: im2col of them.
	derived, patches := map[int64]bool{n.x.ID(): true}, map[int64]bool{}
	for changed := true; changed; {
		changed = false
		for _, nd := range nodes {
			if derived[nd.ID()] || patches[nd.ID()] || nd.Op() == nil {
				continue
			}
			it := n.g.From(nd.ID())
			if !it.Next() {
				continue
			}
			c := it.Node().(*G.Node).ID()
			reshape := strings.HasPrefix(nd.Op().String(), "Reshape")
			_, im := nd.Op().(*customOp)
			if im {
				_, im = nd.Op().(*customOp).k.(im2colKernel)
			}
			switch {
			case reshape && derived[c]:
				derived[nd.ID()], changed = true, true
			case reshape && patches[c], im && derived[c]:
				patches[nd.ID()], changed = true, true
			}
		}
	}
	for _, nd := range nodes {
		if derived[nd.ID()] || patches[nd.ID()] {
			continue
		}
		for it := n.g.From(nd.ID()); it.Next(); {
			c := it.Node().(*G.Node).ID()
			if !derived[c] && !patches[c] {
				continue
			}
			op, ok := nd.Op().(*customOp)
			if !ok {
				return false
			}
			if _, ok := op.k.(affineKernel); !ok {
				return false
			}
		}
	}
	return true
}
