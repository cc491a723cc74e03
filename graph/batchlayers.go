package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// A BatchNet's graph comes from the one model builder (jetrules.go): the
// steps of nets.Arch.Layers (jetSteps) through the propagation rules
// (jetRules) to order 0 (BatchGrad) or 1 (BatchHVP, the forward tangent
// along the stacked directions). Layouts: the input x is (K, B, dim), each
// image in CHW order; a dense layer reads and writes rows (K, B, values);
// a convolution reads the input images (the first layer: (K·B, c, h, w))
// or the channel-major maps (K, c, B·h·w) of the convolution before it,
// takes their patches with im2col (patch rows in (c, ky, kx) order, zero
// padding) and writes channel-major maps (K, out, B·h'·w'); a dense layer
// after a convolution first flattens each image's maps in (y, x, channel)
// order (flattenKernel), as nets' stack forward does. The logits are
// (K, B, classes).

func (n *BatchNet) maxOrder() int {
	if n.tangents != nil {
		return 1
	}
	return 0
}

func (n *BatchNet) paramSeries(i int) series {
	s := series{n.params[i]}
	if n.tangents != nil {
		s[1] = n.tangents[i]
	}
	return s
}

// zeroBias is never called: to order 1 every coefficient of a layer has
// its bias (b, and V_b for the tangent).
func (n *BatchNet) zeroBias(i int) *G.Node {
	panic(fmt.Sprintf("graph: BatchNet of %s: a zero bias for %s", n.Arch.Name, n.Arch.Params[i].Name))
}

// forward builds the logits' series: the logits, and for BatchHVP their
// tangent.
func (n *BatchNet) forward() (series, error) {
	steps, err := jetSteps(n.Arch, n.K, n.B)
	if err != nil {
		return series{}, err
	}
	h := series{n.x}
	for i, s := range steps {
		if h, err = jetRules[s.op](n, s, h); err != nil {
			return series{}, fmt.Errorf("step %d (%v, layer of %s): %w", i, s.op, s.what, err)
		}
	}
	return h, nil
}
