package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// Jets computes Taylor-mode jets of an image model's per-sample losses:
// for parameters θ, K directions v_k and, for each direction, B samples n
// (pool rows), the coefficients
//
//	l_n(θ + t v_k) = c_0 + c_1 t + c_2 t² + c_3 t³ + O(t⁴),
//	c_0 = l_n(θ),  c_1 = g_n·v,  c_2 = vᵀH_n v/2,  c_3 = J_n(v, v, v)/6,
//
// where g_n, H_n and J_n are the gradient, Hessian and third derivative of
// sample n's cross-entropy loss, and covectors: gradients with respect to
// θ (v held fixed) of weighted sums of one coefficient. Since
// ∇_θ c_m(θ; v) is the derivative of the m-th derivative along v,
//
//	∇c_0 = g_n,  ∇c_1 = H_n v,  ∇c_2 = J_n(v, v, ·)/2,  ∇c_3 = ∇⁴l_n(v, v, v, ·)/6,
//
// and v·∇c_m = (m+1)·c_{m+1}.
//
// # Method
//
// The K·B forward passes run in one gorgonia graph laid out like a
// BatchNet of K trials of B samples (θ is replicated over the K trials,
// trial k carries direction v_k), and every activation is a truncated
// power series in t, one node per coefficient x_0..x_3 (a nil node is a
// zero coefficient: the data's, and the logistic model's second and third
// logit coefficients). The graph is built from the model's layers
// (nets.Arch.Layers, any model: logistic, mlp, convnets) as a list of
// steps, each mapping series to series exactly by the rule of its kind
// (jetSteps and jetRules, jetrules.go):
//
//   - linear maps (im2col, the (y, x, channel) flattening) act on every
//     coefficient;
//   - an affine layer z = s·x W + b with W(t) = W + t V_W, b(t) = b + t V_b
//     is a product of series (Leibniz, W(t) having two terms):
//     z_0 = s·x_0 W + b, z_1 = s·(x_1 W + x_0 V_W) + V_b and
//     z_n = s·(x_n W + x_{n−1} V_W) for n ≥ 2 (affineKernel with one or two
//     pairs, in the trial's row or channel-major layout);
//   - tanh: y_0 = tanh z_0 and, with q = 1 − y², y' = q·z' gives
//     q_0 = 1 − y_0², y_n = (1/n) Σ_{i=1..n} i z_i q_{n−i} and
//     q_n = −Σ_{i=0..n} y_i y_{n−i} (tanhSeries; kernels.Device.TanhJet);
//   - the loss l = logsumexp(z) − z_y: with p = softmax(z_0) (shifted by
//     the row's maximum) and a_c(t) = exp(z_c(t) − z_0c), the exponential
//     recurrence a_0 = 1, a_n = (1/n) Σ_{i=1..n} i z_i a_{n−i}, then
//     S_n = Σ_c p_c a_nc and the logarithm's recurrence
//     Λ_n = S_n − (1/n) Σ_{i=1..n−1} i Λ_i S_{n−i} give logsumexp's
//     coefficients L_0 = logsumexp(z_0), L_n = Λ_n, and c_n = L_n − z_{n,y}
//     (lseSeries).
//
// Every step is exact in real arithmetic: the coefficients agree with the
// derivatives of the loss along v up to rounding (no truncation error).
// Coeffs runs the series to order 3 and evaluates the loss's series on the
// host from the logits' coefficients. A covector of order m runs the
// series to order m in a separate graph, forms Σ_{k,n} w_kn c_m(k, n) and
// differentiates it once with G.Grad with respect to the K replicated
// parameter tensors, so trial k's gradient is Σ_n w_kn ∇c_m(k, n). The
// non-linear rules (tanh, log-sum-exp) are custom ops whose adjoints are
// the reverse sweeps of their recurrences (jetops.go); the affine and
// linear ops are those of the BatchNet. Graphs are compiled on first use,
// for gorgonia's TapeMachine (NewJets) or, by the walker, for a
// kernels.Device (NewDeviceJets, jetwalk.go).
//
// Rounding: the float64 coefficients agree with finite differences of the
// loss to the differences' own accuracy (see the tests); float32 graphs
// run products and activations in float32 (the series recurrences in
// float64 on the float32 values), so their coefficients carry float32
// relative errors, larger for c_2 and c_3 where the terms cancel.
//
// For the per-sample covectors an estimator needs (per-sample gradients,
// per-sample H_n v_n of a whole group in one pass), use B = 1 and one
// direction per sample: CovectorPerSample.
//
// A Jets is not safe for concurrent use.
type Jets struct {
	Arch  *nets.Arch
	DType tensor.Dtype
	Data  *Data
	K, B  int

	// graphs[m] computes the covector of order m (m ≤ 3), graphs[4] the
	// coefficients.
	graphs  [jetOrder + 2]*jetGraph
	dev     kernels.Device // nil: gorgonia's TapeMachine
	offsets []int
	rows    []int
	lse     *lseScratch
}

// NewJets returns the jets of arch in dtype dt for K directions of B
// samples each, the samples being rows of d (of dtype dt).
func NewJets(arch *nets.Arch, dt tensor.Dtype, d *Data, k, b int) (*Jets, error) {
	if k < 1 || b < 1 {
		return nil, fmt.Errorf("jets of %s: %d directions of %d samples", arch.Name, k, b)
	}
	if dt != tensor.Float64 && dt != tensor.Float32 {
		return nil, fmt.Errorf("jets of %s: unsupported dtype %v", arch.Name, dt)
	}
	if d.DType() != dt {
		return nil, fmt.Errorf("jets of %s: %v data for %v jets", arch.Name, d.DType(), dt)
	}
	if d.Dim != arch.Dim() || d.Classes != arch.Classes {
		return nil, fmt.Errorf("jets of %s: data of dimension %d and %d classes for a model of %d inputs and %d classes",
			arch.Name, d.Dim, d.Classes, arch.Dim(), arch.Classes)
	}
	if _, err := jetSteps(arch, k, b); err != nil {
		return nil, fmt.Errorf("jets of %s: %w", arch.Name, err)
	}
	j := &Jets{Arch: arch, DType: dt, Data: d, K: k, B: b, rows: make([]int, k*b), lse: newLSEScratch(arch.Classes)}
	off := 0
	for _, p := range arch.Params {
		j.offsets = append(j.offsets, off)
		off += p.Size()
	}
	return j, nil
}

// series is a truncated power series, one node per coefficient; nil is a
// zero coefficient.
type series [jetOrder + 1]*G.Node

// jetGraph is one compiled graph of a Jets: the series to order `order`
// and either the logits' coefficients (grad false) or the covector of
// order `order` (grad true).
type jetGraph struct {
	j     *Jets
	order int
	grad  bool
	g     *G.ExprGraph
	vm    G.VM // nil with a Jets' device
	// the samples, θ replicated (K, shape…) and, to order ≥ 1, the
	// directions
	seriesInputs
	zeros  map[int]*G.Node
	w, wy  *G.Node // weights (K, B) and weights times one-hot labels (K, B, C)
	logits series  // (K, B, C)
	grads  []*G.Node
	outs   G.Nodes    // the compiled outputs
	dv     *jetDevice // the walker's program, with a Jets' device
	wbuf   *tensor.Dense
	wybuf  *tensor.Dense
}

// graph returns graphs[i] (covector of order i, or the coefficients for
// i = jetOrder+1), compiling it on first use.
func (j *Jets) graph(i int) (*jetGraph, error) {
	if j.graphs[i] != nil {
		return j.graphs[i], nil
	}
	order, grad := i, true
	if i > jetOrder {
		order, grad = jetOrder, false
	}
	jg, err := j.compile(order, grad)
	if err != nil {
		what := "coefficients"
		if grad {
			what = fmt.Sprintf("covector of order %d", order)
		}
		return nil, fmt.Errorf("jets of %s (%v, K=%d, B=%d): %s: %w", j.Arch.Name, j.DType, j.K, j.B, what, err)
	}
	j.graphs[i] = jg
	return jg, nil
}

func (j *Jets) compile(order int, grad bool) (*jetGraph, error) {
	dt, k, b := j.DType, j.K, j.B
	jg := &jetGraph{j: j, order: order, grad: grad, g: G.NewGraph(), zeros: map[int]*G.Node{}}
	jg.seriesInputs = newSeriesInputs(jg.g, j.Arch, dt, k, b, order >= 1)
	h, err := forwardSeries(jg, j.Arch, jg.x, k, b)
	if err != nil {
		return nil, err
	}
	jg.logits = h
	var outs G.Nodes
	if !grad {
		for _, z := range jg.logits {
			if z != nil {
				outs = append(outs, z)
			}
		}
	} else {
		if outs, err = jg.covector(); err != nil {
			return nil, err
		}
	}
	jg.outs = outs
	if j.dev != nil {
		if err := jg.compileOn(j.dev); err != nil {
			return nil, err
		}
		return jg, nil
	}
	prog, locMap, err := G.CompileFunction(jg.g, jg.g.ExactSubgraphRoots(outs...).Inputs(), outs)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	jg.vm = G.NewTapeMachine(jg.g, G.WithPrecompiled(prog, locMap))
	return jg, nil
}

// covector adds the scalar Σ_{k,n} w_kn c_m(k, n), with c_m = L_m −
// z_{m,y} (Σ w_kn z_{m,y} = Σ (w ⊙ onehot) ⊙ z_m), and its gradient with
// respect to the parameters.
func (jg *jetGraph) covector() (G.Nodes, error) {
	dt, k, b, c := jg.j.DType, jg.j.K, jg.j.B, jg.j.Arch.Classes
	jg.wbuf = tensor.New(tensor.Of(dt), tensor.WithShape(k, b))
	jg.wybuf = tensor.New(tensor.Of(dt), tensor.WithShape(k, b, c))
	jg.w = G.NewMatrix(jg.g, dt, G.WithShape(k, b), G.WithName("w"), G.WithValue(jg.wbuf))
	jg.wy = G.NewTensor(jg.g, dt, 3, G.WithShape(k, b, c), G.WithName("wy"), G.WithValue(jg.wybuf))
	m := jg.order
	l, err := lseJet(m, jg.logits[:])
	if err != nil {
		return nil, err
	}
	wl, err := G.HadamardProd(jg.w, l)
	if err != nil {
		return nil, err
	}
	total, err := G.Sum(wl)
	if err != nil {
		return nil, err
	}
	if z := jg.logits[m]; z != nil {
		wz, err := G.HadamardProd(jg.wy, z)
		if err != nil {
			return nil, err
		}
		s, err := G.Sum(wz)
		if err != nil {
			return nil, err
		}
		if total, err = G.Sub(total, s); err != nil {
			return nil, err
		}
	}
	if jg.grads, err = G.Grad(total, jg.params...); err != nil {
		return nil, fmt.Errorf("gradient: %w", err)
	}
	return append(G.Nodes{}, jg.grads...), nil
}

// zero is a zero bias input for parameter i (K, size).
func (jg *jetGraph) zero(i int) *G.Node {
	if z, ok := jg.zeros[i]; ok {
		return z
	}
	p := jg.j.Arch.Params[i]
	buf := tensor.New(tensor.Of(jg.j.DType), tensor.WithShape(jg.j.K, p.Size()))
	z := G.NewMatrix(jg.g, jg.j.DType, G.WithShape(jg.j.K, p.Size()), G.WithName("zero."+p.Name), G.WithValue(buf))
	jg.zeros[i] = z
	return z
}

// Close releases the compiled graphs (and their device buffers) and
// returns the first error of their releases.
func (j *Jets) Close() error {
	var first error
	for i, jg := range j.graphs {
		if jg == nil {
			continue
		}
		var err error
		if jg.dv != nil {
			err = jg.dv.prog.Close()
		} else {
			err = jg.vm.Close()
		}
		if err != nil && first == nil {
			first = err
		}
		j.graphs[i] = nil
	}
	return first
}

// check panics unless theta, dirs (unless !needDirs and nil) and rows fit.
func (j *Jets) check(theta []float64, dirs [][]float64, rows [][]int, needDirs bool) {
	np := j.Arch.NumParams()
	if len(theta) != np {
		panic(fmt.Sprintf("graph: jets: %d parameters, want %d", len(theta), np))
	}
	if needDirs || dirs != nil {
		if len(dirs) != j.K {
			panic(fmt.Sprintf("graph: jets: %d directions, want %d", len(dirs), j.K))
		}
		for k, v := range dirs {
			if len(v) != np {
				panic(fmt.Sprintf("graph: jets: direction %d has %d values, want %d", k, len(v), np))
			}
		}
	}
	if len(rows) != j.K {
		panic(fmt.Sprintf("graph: jets: %d row lists, want %d", len(rows), j.K))
	}
	n := j.Data.Len()
	for k, r := range rows {
		if len(r) != j.B {
			panic(fmt.Sprintf("graph: jets: row list %d has %d rows, want %d", k, len(r), j.B))
		}
		for _, i := range r {
			if i < 0 || i >= n {
				panic(fmt.Sprintf("graph: jets: row %d outside the pool of %d", i, n))
			}
		}
		copy(j.rows[k*j.B:], r)
	}
}

// load copies the samples, θ (K times) and the directions into jg's
// inputs (the TapeMachine's; a device program uploads them itself).
func (jg *jetGraph) load(theta []float64, dirs [][]float64) {
	j, d := jg.j, jg.j.Data
	switch xs := jg.xbuf.Data().(type) {
	case []float64:
		for i, r := range j.rows {
			copy(xs[i*d.Dim:(i+1)*d.Dim], d.X64[r*d.Dim:(r+1)*d.Dim])
		}
	case []float32:
		for i, r := range j.rows {
			copy(xs[i*d.Dim:(i+1)*d.Dim], d.X32[r*d.Dim:(r+1)*d.Dim])
		}
	}
	for i, p := range j.Arch.Params {
		off, size := j.offsets[i], p.Size()
		src := theta[off : off+size]
		for k := 0; k < j.K; k++ {
			setVec(jg.pbuf[i], k*size, src)
			if jg.vbuf != nil {
				if dirs == nil {
					panic("graph: jets: directions needed for order ≥ 1")
				}
				setVec(jg.vbuf[i], k*size, dirs[k][off:off+size])
			}
		}
	}
}

// setVec copies src into t's data from offset off, converting.
func setVec(t *tensor.Dense, off int, src []float64) {
	switch dst := t.Data().(type) {
	case []float64:
		copy(dst[off:], src)
	case []float32:
		convert(dst[off:off+len(src)], src)
	}
}

// getVec copies t's data from offset off into dst, converting.
func getVec(dst []float64, t *tensor.Dense, off int) {
	switch src := t.Data().(type) {
	case []float64:
		copy(dst, src[off:])
	case []float32:
		widen(dst, src[off:off+len(dst)])
	}
}

// run loads theta and dirs, runs jg's machine (or program) and calls read
// before resetting it.
func (jg *jetGraph) run(theta []float64, dirs [][]float64, read func() error) error {
	if jg.dv != nil {
		if err := jg.dv.run(jg, theta, dirs); err != nil {
			return err
		}
		return read()
	}
	jg.load(theta, dirs)
	defer jg.vm.Reset()
	if err := jg.vm.RunAll(); err != nil {
		return err
	}
	return read()
}

// value is the dense value of node n.
func value(n *G.Node) (*tensor.Dense, error) {
	t, ok := n.Value().(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("node %v has value %T", n, n.Value())
	}
	return t, nil
}

// Coeffs sets out[k·B+n] to the Taylor coefficients (c_0, c_1, c_2, c_3)
// of t ↦ l(θ + t·dirs[k]; rows[k][n]), the cross-entropy loss of pool row
// rows[k][n] of the Jets' data, for every direction k < K and sample
// n < B. theta and every dirs[k] have NumParams values in the flat order
// of Arch.Params. The logits' series is computed in the Jets' dtype and
// the loss's series from it in float64.
func (j *Jets) Coeffs(theta []float64, dirs [][]float64, rows [][]int, out [][4]float64) error {
	j.check(theta, dirs, rows, true)
	if len(out) != j.K*j.B {
		panic(fmt.Sprintf("graph: jets: %d outputs, want K·B = %d", len(out), j.K*j.B))
	}
	jg, err := j.graph(jetOrder + 1)
	if err != nil {
		return err
	}
	c := j.Arch.Classes
	err = jg.run(theta, dirs, func() error {
		var vals [jetOrder + 1]*tensor.Dense
		for n, z := range jg.logits {
			if z != nil {
				v, err := jg.value(z)
				if err != nil {
					return err
				}
				vals[n] = v
			}
		}
		w := j.lse
		for r, row := range j.rows {
			for n, v := range vals {
				w.zs[n] = v != nil
				if v != nil {
					getVec(w.z[n], v, r*c)
				}
			}
			l0 := lseSeries(w, jetOrder)
			y := int(j.Data.Y[row])
			out[r][0] = l0 - w.z[0][y]
			for n := 1; n <= jetOrder; n++ {
				out[r][n] = w.l[n]
				if w.zs[n] {
					out[r][n] -= w.z[n][y]
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("jets of %s: %w", j.Arch.Name, err)
	}
	return nil
}

// Covector sets out[k] = Σ_n w[k·B+n] ∇_θ c_order(θ; dirs[k], rows[k][n])
// for every direction k, the gradient with respect to θ (the direction
// held fixed) of the weighted coefficients of order 0 ≤ order ≤ 3 (see
// Coeffs); w nil means all weights 1. By order:
//
//	0: Σ_n w_n g_n                  (dirs may be nil)
//	1: Σ_n w_n H_n v_k
//	2: Σ_n w_n J_n(v_k, v_k, ·)/2
//	3: Σ_n w_n ∇⁴l_n(v_k, v_k, v_k, ·)/6
//
// out[k] has NumParams values.
func (j *Jets) Covector(order int, theta []float64, dirs [][]float64, rows [][]int, w []float64, out [][]float64) error {
	if order < 0 || order > jetOrder {
		panic(fmt.Sprintf("graph: jets: covector of order %d, want 0..%d", order, jetOrder))
	}
	j.check(theta, dirs, rows, order > 0)
	if w != nil && len(w) != j.K*j.B {
		panic(fmt.Sprintf("graph: jets: %d weights, want K·B = %d", len(w), j.K*j.B))
	}
	np := j.Arch.NumParams()
	if len(out) != j.K {
		panic(fmt.Sprintf("graph: jets: %d output vectors, want %d", len(out), j.K))
	}
	for k := range out {
		if len(out[k]) != np {
			panic(fmt.Sprintf("graph: jets: output %d has %d values, want %d", k, len(out[k]), np))
		}
	}
	jg, err := j.graph(order)
	if err != nil {
		return err
	}
	jg.loadWeights(w)
	err = jg.run(theta, dirs, func() error {
		for i, p := range j.Arch.Params {
			g, err := jg.value(jg.grads[i])
			if err != nil {
				return err
			}
			off, size := j.offsets[i], p.Size()
			for k := range out {
				getVec(out[k][off:off+size], g, k*size)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("jets of %s: covector of order %d: %w", j.Arch.Name, order, err)
	}
	return nil
}

// loadWeights sets the weights and the weighted one-hot labels.
func (jg *jetGraph) loadWeights(w []float64) {
	j := jg.j
	c := j.Arch.Classes
	switch wb := jg.wbuf.Data().(type) {
	case []float64:
		setWeights(wb, jg.wybuf.Data().([]float64), w, j.rows, j.Data.Y, c)
	case []float32:
		setWeights(wb, jg.wybuf.Data().([]float32), w, j.rows, j.Data.Y, c)
	}
}

func setWeights[T float](wb, wy []T, w []float64, rows []int, y []uint8, c int) {
	clear(wy)
	for r, row := range rows {
		v := 1.0
		if w != nil {
			v = w[r]
		}
		wb[r] = T(v)
		wy[r*c+int(y[row])] = T(v)
	}
}

// CovectorPerSample sets out[n] = ∇_θ c_order(θ; dirs[n], rows[n]) for
// every sample n: per-sample gradients (order 0, dirs may be nil),
// per-sample Hessian-vector products H_n v_n (order 1), J_n(v_n, v_n, ·)/2
// (order 2) and ∇⁴l_n(v_n, v_n, v_n, ·)/6 (order 3), all in one run. The
// Jets must have B = 1 and K = len(rows): sample n is trial n, with θ
// replicated, as the backends run per-sample gradients.
func (j *Jets) CovectorPerSample(order int, theta []float64, dirs [][]float64, rows []int, out [][]float64) error {
	if j.B != 1 {
		panic(fmt.Sprintf("graph: jets: per-sample covectors need B = 1, have B = %d", j.B))
	}
	if len(rows) != j.K {
		panic(fmt.Sprintf("graph: jets: %d samples for K = %d", len(rows), j.K))
	}
	rs := make([][]int, len(rows))
	for n := range rows {
		rs[n] = rows[n : n+1]
	}
	return j.Covector(order, theta, dirs, rs, nil, out)
}
