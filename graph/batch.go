package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/nets"
)

// BatchKind selects what a BatchNet computes.
type BatchKind int

const (
	// BatchGrad computes every trial's mean loss and its gradient.
	BatchGrad BatchKind = iota
	// BatchHVP computes every trial's summed Hessian-vector product
	// Σ_n ∇²l_n · v.
	BatchHVP
)

func (k BatchKind) String() string {
	switch k {
	case BatchGrad:
		return "grad"
	case BatchHVP:
		return "hvp"
	}
	return fmt.Sprintf("BatchKind(%d)", int(k))
}

// BatchNet is one gorgonia graph for K independent trials of B samples
// each, in one dtype. Every parameter p of the architecture is a stacked
// input of shape (K, p.Shape...), the samples are (K, B, dim) gathered from
// the data pool by row on every call, and the K per-trial results are
// summed into one scalar, so that a single G.Grad yields every trial's
// gradient: trial k's parameters enter only trial k's term. Products are
// batched GEMMs (one per trial inside one op), the convolutions take im2col
// over all K·B images at once, so the number of graph operations does not
// depend on K. The heavy operations are the custom ops of batchops.go,
// which reuse their outputs from run to run (a call allocates a few hundred
// small objects, independent of K).
//
// The graph is built from nets.Arch.Layers alone, by the one model builder
// (forwardSeries, jetrules.go: the jets' steps and rules to order 0, or 1
// for BatchHVP), so it covers every model family: the logistic model, the tanh mlp, convnets of
// any width and depth (padded convolutions included). Each trial computes
// the function of nets.Arch.Forward and graph.Net: the same parameter
// layout, im2col patch order, (y, x, channel) flattening, Xavier scales and
// operation order (internally the convolutions' maps are
// stored channel-major, which changes no arithmetic). Results agree with
// graph.Net to about 1e-16 relative (G.LogSoftMax, which graph.Net uses,
// shifts rows differently; see logSoftmaxKernel). Each trial's arithmetic is
// the same whatever K and whatever the other trials hold, so its results are
// bitwise independent of K and of its position, and a NaN or Inf in one
// trial stays in that trial.
//
// For BatchHVP, every parameter also has a direction input V of the same
// shape, and the graph propagates the forward directional derivative along
// V next to every primal value (the series to order 1: dense ż = s·(ẋ W + x V_W) +
// V_b, tanh ṫ = (1 − t²) ⊙ ż, im2col and flattening linear); the gradient
// of the summed directional derivative of the loss is the Hessian-vector
// product. This avoids a second reverse pass, which gorgonia's Grad cannot
// build.
//
// A BatchNet is not safe for concurrent use.
type BatchNet struct {
	Arch  *nets.Arch
	DType tensor.Dtype
	K, B  int
	Kind  BatchKind

	g  *G.ExprGraph
	vm G.VM
	// the samples, the stacked parameters and, for BatchHVP, the stacked
	// directions
	seriesInputs
	y       *G.Node // (K·B, classes) one-hot targets
	losses  *G.Node // per-sample losses (K·B), BatchGrad only
	total   *G.Node // the scalar that is differentiated
	grads   []*G.Node
	ybuf    *tensor.Dense
	offsets []int // offsets of the parameters in a flat vector
	rows    []int // K·B pool rows of the current call
}

// CompileBatch builds the graph of kind for k trials of b samples each.
func CompileBatch(arch *nets.Arch, dt tensor.Dtype, k, b int, kind BatchKind) (*BatchNet, error) {
	if k < 1 || b < 1 {
		return nil, fmt.Errorf("compile batched %s: %d trials of %d samples", arch.Name, k, b)
	}
	if dt != tensor.Float64 && dt != tensor.Float32 {
		return nil, fmt.Errorf("compile batched %s: unsupported dtype %v", arch.Name, dt)
	}
	if kind != BatchGrad && kind != BatchHVP {
		return nil, fmt.Errorf("compile batched %s: unknown kind %v", arch.Name, kind)
	}
	n := &BatchNet{Arch: arch, DType: dt, K: k, B: b, Kind: kind, g: G.NewGraph()}
	n.seriesInputs = newSeriesInputs(n.g, arch, dt, k, b, kind == BatchHVP)
	n.ybuf = tensor.New(tensor.Of(dt), tensor.WithShape(k*b, arch.Classes))
	n.y = G.NewMatrix(n.g, dt, G.WithShape(k*b, arch.Classes), G.WithName("y"), G.WithValue(n.ybuf))
	off := 0
	for _, p := range arch.Params {
		n.offsets = append(n.offsets, off)
		off += p.Size()
	}
	n.rows = make([]int, k*b)
	if err := n.build(); err != nil {
		return nil, fmt.Errorf("compile batched %s (%s, K=%d, B=%d): %w", arch.Name, kind, k, b, err)
	}
	return n, nil
}

// build adds the forward pass (forward), the differentiated scalar and its
// gradient.
func (n *BatchNet) build() error {
	z, err := forwardSeries(n, n.Arch, n.x, n.K, n.B)
	if err != nil {
		return err
	}
	kb, classes := n.K*n.B, n.Arch.Classes
	logits, err := G.Reshape(z[0], tensor.Shape{kb, classes})
	if err != nil {
		return err
	}
	lsm, err := logSoftmax(logits)
	if err != nil {
		return err
	}
	switch n.Kind {
	case BatchGrad:
		// l_n = −Σ_c y_c log softmax(z)_c; the scalar Σ_k (1/B) Σ_n l_kn has
		// the per-trial mean losses' gradients as its gradient.
		prod, err := G.HadamardProd(n.y, lsm)
		if err != nil {
			return err
		}
		s, err := G.Sum(prod, 1)
		if err != nil {
			return err
		}
		if n.losses, err = G.Neg(s); err != nil {
			return err
		}
		sum, err := G.Sum(n.losses)
		if err != nil {
			return err
		}
		if n.total, err = G.Mul(sum, n.constant(1/float64(n.B))); err != nil {
			return err
		}
	case BatchHVP:
		// l = logsumexp(z) − z_y has l̇ = Σ_c softmax(z)_c ż_c − ż_y =
		// Σ_c (p − y)_c ż_c, with p = exp(log softmax z) (never G.SoftMax
		// next to a log-softmax of the same node: gorgonia's op hash does
		// not tell them apart). The scalar Σ_k Σ_n l̇_kn = Σ_k Σ_n ∇l_kn·v_k
		// has gradient Σ_n H_kn v_k with respect to trial k's parameters.
		zd, err := G.Reshape(z[1], tensor.Shape{kb, classes})
		if err != nil {
			return err
		}
		p, err := G.Exp(lsm)
		if err != nil {
			return err
		}
		r, err := G.Sub(p, n.y)
		if err != nil {
			return err
		}
		prod, err := G.HadamardProd(r, zd)
		if err != nil {
			return err
		}
		if n.total, err = G.Sum(prod); err != nil {
			return err
		}
	}
	if n.grads, err = G.Grad(n.total, n.params...); err != nil {
		return fmt.Errorf("gradient: %w", err)
	}
	// Compile only what the outputs need: the adjoints of the data and of
	// the directions, which SymDiff builds too, are left out.
	outs := append(G.Nodes{}, n.grads...)
	if n.losses != nil {
		outs = append(outs, n.losses)
	}
	prog, locMap, err := G.CompileFunction(n.g, n.g.ExactSubgraphRoots(outs...).Inputs(), outs)
	if err != nil {
		return fmt.Errorf("compile: %w", err)
	}
	n.vm = G.NewTapeMachine(n.g, G.WithPrecompiled(prog, locMap))
	return nil
}

// constant is a scalar constant of the net's dtype.
func (n *BatchNet) constant(v float64) *G.Node {
	if n.DType == tensor.Float32 {
		return G.NewConstant(float32(v))
	}
	return G.NewConstant(v)
}

// Close releases the machine.
func (n *BatchNet) Close() error { return n.vm.Close() }

// check panics unless theta and rows describe K trials of B samples.
func (n *BatchNet) check(theta [][]float64, rows [][]int) {
	if len(theta) != n.K || len(rows) != n.K {
		panic(fmt.Sprintf("graph: %d parameter vectors and %d row lists for %d trials", len(theta), len(rows), n.K))
	}
	np := n.Arch.NumParams()
	for k := range theta {
		if len(theta[k]) != np {
			panic(fmt.Sprintf("graph: trial %d has %d parameters, want %d", k, len(theta[k]), np))
		}
		if len(rows[k]) != n.B {
			panic(fmt.Sprintf("graph: trial %d has %d samples, want %d", k, len(rows[k]), n.B))
		}
	}
}

// checkOut panics unless out holds K vectors of the model's length.
func (n *BatchNet) checkOut(what string, out [][]float64) {
	if len(out) != n.K {
		panic(fmt.Sprintf("graph: %d %s vectors for %d trials", len(out), what, n.K))
	}
	np := n.Arch.NumParams()
	for k := range out {
		if len(out[k]) != np {
			panic(fmt.Sprintf("graph: %s vector %d of length %d, want %d", what, k, len(out[k]), np))
		}
	}
}

// load copies the samples rows of d (inputs and one-hot targets) into the
// input buffers.
func (n *BatchNet) load(d *Data, rows [][]int) {
	if d.DType() != n.DType {
		panic(fmt.Sprintf("graph: %v data for a %v net", d.DType(), n.DType))
	}
	for k, r := range rows {
		copy(n.rows[k*n.B:(k+1)*n.B], r)
	}
	switch xs := n.xbuf.Data().(type) {
	case []float64:
		gather(xs, n.ybuf.Data().([]float64), d.X64, d, n.rows, 0)
	case []float32:
		gather(xs, n.ybuf.Data().([]float32), d.X32, d, n.rows, 0)
	}
}

// stack copies parameter i of every flat vector src[k] into buf (K,
// shape...), converting to the net's dtype.
func (n *BatchNet) stack(bufs []*tensor.Dense, src [][]float64) {
	for i, p := range n.Arch.Params {
		off, size := n.offsets[i], p.Size()
		switch dst := bufs[i].Data().(type) {
		case []float64:
			for k, s := range src {
				copy(dst[k*size:(k+1)*size], s[off:off+size])
			}
		case []float32:
			for k, s := range src {
				convert(dst[k*size:(k+1)*size], s[off:off+size])
			}
		}
	}
}

func convert[T float](dst []T, src []float64) {
	for j, v := range src {
		dst[j] = T(v)
	}
}

func widen[T float](dst []float64, src []T) {
	for j, v := range src {
		dst[j] = float64(v)
	}
}

// unstack copies the stacked gradient tensors into the flat vectors out[k].
func (n *BatchNet) unstack(out [][]float64) {
	for i, p := range n.Arch.Params {
		off, size := n.offsets[i], p.Size()
		switch src := n.grads[i].Value().Data().(type) {
		case []float64:
			for k, o := range out {
				copy(o[off:off+size], src[k*size:(k+1)*size])
			}
		case []float32:
			for k, o := range out {
				widen(o[off:off+size], src[k*size:(k+1)*size])
			}
		}
	}
}

func (n *BatchNet) run() error {
	defer n.vm.Reset()
	return n.vm.RunAll()
}

// Grad sets loss[k] to the mean loss of trial k (flat parameters theta[k]
// in the order of Arch.Params, samples rows[k] of d) and grad[k] to its
// gradient, for every trial. The net must be of kind BatchGrad, with
// len(theta) = K and len(rows[k]) = B. The loss is the float64 mean of the
// per-sample losses of the net's dtype.
func (n *BatchNet) Grad(theta [][]float64, d *Data, rows [][]int, loss []float64, grad [][]float64) error {
	if n.Kind != BatchGrad {
		panic("graph: Grad on a " + n.Kind.String() + " BatchNet")
	}
	n.check(theta, rows)
	n.checkOut("gradient", grad)
	if len(loss) != n.K {
		panic(fmt.Sprintf("graph: %d losses for %d trials", len(loss), n.K))
	}
	n.load(d, rows)
	n.stack(n.pbuf, theta)
	if err := n.run(); err != nil {
		return fmt.Errorf("batched gradient of %s: %w", n.Arch.Name, err)
	}
	switch ls := n.losses.Value().Data().(type) {
	case []float64:
		meanRows(loss, ls, n.B)
	case []float32:
		meanRows(loss, ls, n.B)
	}
	n.unstack(grad)
	return nil
}

// meanRows sets out[k] to the float64 mean of ls[k·b : (k+1)·b].
func meanRows[T float](out []float64, ls []T, b int) {
	for k := range out {
		s := 0.0
		for _, l := range ls[k*b : (k+1)*b] {
			s += float64(l)
		}
		out[k] = s / float64(b)
	}
}

// HVP sets out[k] = Σ_n ∇²l(theta[k]; rows[k][n]) · v[k] for every trial.
// The net must be of kind BatchHVP.
func (n *BatchNet) HVP(theta [][]float64, d *Data, rows [][]int, v, out [][]float64) error {
	if n.Kind != BatchHVP {
		panic("graph: HVP on a " + n.Kind.String() + " BatchNet")
	}
	n.check(theta, rows)
	n.checkOut("direction", v)
	n.checkOut("output", out)
	n.load(d, rows)
	n.stack(n.pbuf, theta)
	n.stack(n.vbuf, v)
	if err := n.run(); err != nil {
		return fmt.Errorf("batched Hessian-vector product of %s: %w", n.Arch.Name, err)
	}
	n.unstack(out)
	return nil
}

// maxOrder is 0 for BatchGrad and 1 for BatchHVP (seriesGraph).
func (n *BatchNet) maxOrder() int {
	if n.dirs != nil {
		return 1
	}
	return 0
}

// zeroBias is never called: to order 1 every coefficient of a layer has
// its bias (b, and V_b for the tangent).
func (n *BatchNet) zeroBias(i int) *G.Node {
	panic(fmt.Sprintf("graph: BatchNet of %s: a zero bias for %s", n.Arch.Name, n.Arch.Params[i].Name))
}
