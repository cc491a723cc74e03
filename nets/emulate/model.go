package emulate

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/fastmath"
	"github.com/perturb/perturb/nets/precision"
)

type float interface{ float32 | float64 }

// group is the number of parameter vectors whose first-layer weights are
// multiplied with a chunk's shared first-layer input in one product.
const group = 8

// parts is the fixed number of contiguous parts of the examples whose
// gradients Grad accumulates separately (then adds in order), so that the
// result does not depend on the number of workers.
const parts = 16

type model[T float] struct {
	e      *Evaluator
	f      precision.Format
	layers []nets.Layer
	x      []T
	y      []uint8
	dim    int
	cls    int
	off    []int // offset of each parameter in a flat vector
}

func newModel[T float](e *Evaluator, x []float64, y []uint8) *model[T] {
	m := &model[T]{e: e, f: e.Format, layers: e.Layers, y: append([]uint8(nil), y...), dim: e.Arch.Dim(), cls: e.Arch.Classes}
	m.x = make([]T, len(x))
	for i, v := range x {
		m.x[i] = T(m.f.Round(v))
	}
	o := 0
	for _, p := range e.Arch.Params {
		m.off = append(m.off, o)
		o += p.Size()
	}
	return m
}

// round rounds x to the format (a no-op for the native formats).
func (m *model[T]) round(x []T) { precision.RoundSlice(m.f, x) }

// packed is one parameter vector's weights in the layout of the passes:
// per layer the weight matrix (In × Out, kernel rows of later convolutions
// in (ky, kx, c) order) and the bias, rounded to the format.
type packed[T float] struct {
	w, b [][]T
}

// permRow returns the packed row of stored kernel row r of layer l: for a
// convolution reading (y, x, c) maps, stored rows (c, ky, kx) become
// (ky, kx, c).
func permRow(l nets.Layer, r int) int {
	if !l.Conv || l.FirstReadsCHW {
		return r
	}
	kk := l.K * l.K
	c, q := r/kk, r%kk
	return q*l.InC + c
}

func (m *model[T]) pack(theta []float64) *packed[T] {
	p := &packed[T]{}
	for _, l := range m.layers {
		w := make([]T, l.In*l.Out)
		src := theta[m.off[l.W] : m.off[l.W]+l.In*l.Out]
		for r := 0; r < l.In; r++ {
			pr := permRow(l, r)
			for o := 0; o < l.Out; o++ {
				w[pr*l.Out+o] = T(m.f.Round(src[r*l.Out+o]))
			}
		}
		b := make([]T, l.Out)
		for o := range b {
			b[o] = T(m.f.Round(theta[m.off[l.B]+o]))
		}
		p.w = append(p.w, w)
		p.b = append(p.b, b)
	}
	return p
}

// mul sets the m × n matrix c (stride n) to a·b for a (m × k, stride lda)
// and b (k × n, contiguous): through the BLAS, or for the small weight
// matrices of the output layers (k·n ≤ 256) by a Go loop accumulating in
// T, which avoids a cgo call per chunk and layer.
func mul[T float](m, n, k int, a []T, lda int, b, c []T) {
	if k*n > 256 {
		fastmath.Gemm(false, false, m, n, k, 1, a, lda, b, n, 0, c, n)
		return
	}
	for i := 0; i < m; i++ {
		ci := c[i*n : (i+1)*n]
		clear(ci)
		for p, av := range a[i*lda : i*lda+k] {
			for j, bv := range b[p*n : (p+1)*n] {
				ci[j] += av * bv
			}
		}
	}
}

// epilogue sets the rows × cols block z (stride ld) to round(s·z + b[col])
// and, with act, then to round(tanh(·)), in one pass per element.
func (m *model[T]) epilogue(z []T, rows, cols, ld int, s T, b []T, act bool) {
	switch zz := any(z).(type) {
	case []float32:
		epilogue32(zz, rows, cols, ld, float32(s), any(b).([]float32), act, m.f)
	case []float64:
		epilogue64(zz, rows, cols, ld, float64(s), any(b).([]float64), act)
	}
}

func epilogue64(z []float64, rows, cols, ld int, s float64, b []float64, act bool) {
	for r := 0; r < rows; r++ {
		row := z[r*ld : r*ld+cols]
		if act {
			for c, v := range row {
				row[c] = math.Tanh(v*s + b[c])
			}
		} else {
			for c, v := range row {
				row[c] = v*s + b[c]
			}
		}
	}
}

// epilogue32 is epilogue for float32 storage: float32, or bf16 and fp16
// values held in float32. The tanh of a bf16 or fp16 value, rounded to
// the format, is looked up in a table built from tanh32 (tanhBF16,
// tanhFP16: the same numbers, checked for every input of the formats).
func epilogue32(z []float32, rows, cols, ld int, s float32, b []float32, act bool, f precision.Format) {
	switch f {
	case precision.BFloat16:
		tab := bf16TanhTable()
		for r := 0; r < rows; r++ {
			row := z[r*ld : r*ld+cols]
			for c, v := range row {
				v = precision.RoundBF16(float32(v*s) + b[c])
				if act {
					v = tanhBF16(tab, v)
				}
				row[c] = v
			}
		}
	case precision.Float16:
		tab := fp16TanhTable()
		for r := 0; r < rows; r++ {
			row := z[r*ld : r*ld+cols]
			for c, v := range row {
				v = precision.RoundFP16(float32(v*s) + b[c])
				if act {
					v = tanhFP16(tab, v)
				}
				row[c] = v
			}
		}
	default:
		for r := 0; r < rows; r++ {
			row := z[r*ld : r*ld+cols]
			for c, v := range row {
				v = float32(v*s) + b[c]
				if act {
					v = float32(fastmath.Tanh(float64(v)))
				}
				row[c] = v
			}
		}
	}
}

// Tables of tanh rounded to bf16 and fp16. tanh32 is odd exactly (x·p/q
// with p and q even in x) and so is rounding to nearest even, so the
// tables hold non-negative arguments only and the sign is copied.
var (
	bf16Tab, fp16Tab   []float32
	bf16Once, fp16Once sync.Once
)

// bf16TanhTable holds round_bf16(fastmath.Tanh(x)) at index bits(x)>>16 for the
// finite non-negative bf16 numbers and +Inf (indices 0 .. 0x7f80).
func bf16TanhTable() []float32 {
	bf16Once.Do(func() {
		bf16Tab = make([]float32, 0x7f80+1)
		for i := range bf16Tab {
			bf16Tab[i] = precision.RoundBF16(float32(fastmath.Tanh(float64(math.Float32frombits(uint32(i) << 16)))))
		}
	})
	return bf16Tab
}

// tanhBF16 is round_bf16(fastmath.Tanh(v)) for a bf16 number v.
func tanhBF16(tab []float32, v float32) float32 {
	b := math.Float32bits(v)
	a := b & 0x7fffffff
	if a > 0x7f800000 { // NaN
		return precision.RoundBF16(float32(fastmath.Tanh(float64(v))))
	}
	return math.Float32frombits(math.Float32bits(tab[a>>16]) | b&0x80000000)
}

// fp16 numbers from the smallest normal 2^−14 (float32 bits 0x38800000)
// to the largest finite 65504 (0x477fe000) have their low 13 bits clear.
const (
	fp16Lo = 0x38800000
	fp16Hi = 0x477fe000
)

// fp16TanhTable holds round_fp16(fastmath.Tanh(x)) at index (bits(x) − fp16Lo)>>13
// for the normal non-negative fp16 numbers x.
func fp16TanhTable() []float32 {
	fp16Once.Do(func() {
		fp16Tab = make([]float32, (fp16Hi-fp16Lo)>>13+1)
		for i := range fp16Tab {
			fp16Tab[i] = precision.RoundFP16(float32(fastmath.Tanh(float64(math.Float32frombits(uint32(i)<<13 + fp16Lo)))))
		}
	})
	return fp16Tab
}

// tanhFP16 is round_fp16(fastmath.Tanh(v)) for an fp16 number v (subnormals,
// zeros, Inf and NaN computed directly).
func tanhFP16(tab []float32, v float32) float32 {
	b := math.Float32bits(v)
	a := b & 0x7fffffff
	if a < fp16Lo || a > fp16Hi {
		return precision.RoundFP16(float32(fastmath.Tanh(float64(v))))
	}
	return math.Float32frombits(math.Float32bits(tab[(a-fp16Lo)>>13]) | b&0x80000000)
}

// im2colCHW fills a with the patches of examples [from, from+n) of the
// input images for convolution l: one row of In values per (example, y,
// x), in (c, ky, kx) order; padding reads zeros.
func (m *model[T]) im2colCHW(a []T, l nets.Layer, from, n int) {
	k, plane := l.K, l.InH*l.InW
	for i := 0; i < n; i++ {
		src := m.x[(from+i)*m.dim : (from+i+1)*m.dim]
		for oy := 0; oy < l.OutH; oy++ {
			for ox := 0; ox < l.OutW; ox++ {
				d := a[((i*l.OutH+oy)*l.OutW+ox)*l.In:][:l.In]
				for c := 0; c < l.InC; c++ {
					for ky := 0; ky < k; ky++ {
						y := oy*l.Stride - l.Pad + ky
						dd := d[(c*k+ky)*k:][:k]
						if y < 0 || y >= l.InH {
							clear(dd)
							continue
						}
						x0 := ox*l.Stride - l.Pad
						if x0 >= 0 && x0+k <= l.InW {
							copy(dd, src[c*plane+y*l.InW+x0:][:k])
							continue
						}
						for kx := range dd {
							if x := x0 + kx; x >= 0 && x < l.InW {
								dd[kx] = src[c*plane+y*l.InW+x]
							} else {
								dd[kx] = 0
							}
						}
					}
				}
			}
		}
	}
}

// im2colYXC fills a with the patches of the (y, x, c) maps h (row stride
// ld, channels from column off) of n examples for convolution l: one row
// per (example, y, x) in (ky, kx, c) order.
func im2colYXC[T float](a, h []T, ld, off int, l nets.Layer, n int) {
	k, c := l.K, l.InC
	pin := l.InH * l.InW
	for i := 0; i < n; i++ {
		for oy := 0; oy < l.OutH; oy++ {
			for ox := 0; ox < l.OutW; ox++ {
				d := a[((i*l.OutH+oy)*l.OutW+ox)*l.In:][:l.In]
				for ky := 0; ky < k; ky++ {
					y := oy*l.Stride - l.Pad + ky
					for kx := 0; kx < k; kx++ {
						x := ox*l.Stride - l.Pad + kx
						dd := d[(ky*k+kx)*c:][:c]
						if y < 0 || y >= l.InH || x < 0 || x >= l.InW {
							clear(dd)
							continue
						}
						copy(dd, h[(i*pin+y*l.InW+x)*ld+off:][:c])
					}
				}
			}
		}
	}
}

// col2imYXC adds the patch gradients da (rows as im2colYXC's) onto the
// (y, x, c) map gradient dh (n examples, contiguous), which it clears
// first.
func col2imYXC[T float](dh, da []T, l nets.Layer, n int) {
	k, c := l.K, l.InC
	pin := l.InH * l.InW
	clear(dh[:n*pin*c])
	for i := 0; i < n; i++ {
		for oy := 0; oy < l.OutH; oy++ {
			for ox := 0; ox < l.OutW; ox++ {
				d := da[((i*l.OutH+oy)*l.OutW+ox)*l.In:][:l.In]
				for ky := 0; ky < k; ky++ {
					y := oy*l.Stride - l.Pad + ky
					for kx := 0; kx < k; kx++ {
						x := ox*l.Stride - l.Pad + kx
						if y < 0 || y >= l.InH || x < 0 || x >= l.InW {
							continue
						}
						dst := dh[(i*pin+y*l.InW+x)*c:][:c]
						for j, v := range d[(ky*k+kx)*c:][:c] {
							dst[j] += v
						}
					}
				}
			}
		}
	}
}

// chunkBytes is the automatic chunk's target size of one worker's buffers.
var chunkBytes = 512 << 10

// chunk is the number of examples evaluated at a time.
func (m *model[T]) chunk() int {
	if m.e.opts.Chunk > 0 {
		return m.e.opts.Chunk
	}
	l := m.layers[0]
	per := l.Positions * (l.In + group*l.Out)
	for _, l := range m.layers[1:] {
		per += l.Positions * (l.In + l.Out)
	}
	var z T
	size := int(8)
	if _, ok := any(z).(float32); ok {
		size = 4
	}
	return min(max((chunkBytes)/(per*size), 4), 256)
}

// buf is a worker's growable scratch space.
type buf[T float] struct{ s []T }

func (b *buf[T]) get(n int) []T {
	if cap(b.s) < n {
		b.s = make([]T, n)
	}
	return b.s[:n]
}

type lossWorker[T float] struct {
	a0, z0, a, z, h buf[T]
}

// loss adds each example's loss (computed in float64 from the rows × cls
// logits z, rounded to T) to *sum.
func (m *model[T]) loss(z []T, ys []uint8, sum *float64) {
	for i, y := range ys {
		l := z[i*m.cls : (i+1)*m.cls]
		mx := float64(l[0])
		for _, v := range l[1:] {
			mx = max(mx, float64(v))
		}
		s := 0.0
		for _, v := range l {
			s += math.Exp(float64(v) - mx)
		}
		*sum += float64(T(math.Log(s) - (float64(l[y]) - mx)))
	}
}

// firstInput returns layer 0's input matrix for examples [from, from+n).
func (m *model[T]) firstInput(b *buf[T], from, n int) []T {
	l := m.layers[0]
	if !l.Conv {
		return m.x[from*m.dim : (from+n)*m.dim]
	}
	a := b.get(n * l.Positions * l.In)
	m.im2colCHW(a, l, from, n)
	return a
}

// rest runs layers 1.. of one parameter vector on the first layer's
// output h (n·P0 rows, stride ld, columns from off) and returns the
// logits (n × cls, contiguous).
func (m *model[T]) rest(w *lossWorker[T], p *packed[T], h []T, ld, off, n int) []T {
	for li := 1; li < len(m.layers); li++ {
		l, prev := m.layers[li], m.layers[li-1]
		rows := n * l.Positions
		var a []T
		lda := l.In
		switch {
		case l.Conv:
			a = w.a.get(rows * l.In)
			im2colYXC(a, h, ld, off, l, n)
		case prev.Positions == 1:
			a, lda = h[off:], ld
		case ld == prev.Out:
			a = h
		default:
			a = w.a.get(n * l.In)
			for i := 0; i < n*prev.Positions; i++ {
				copy(a[i*prev.Out:][:prev.Out], h[i*ld+off:][:prev.Out])
			}
		}
		zb := &w.z
		if li%2 == 0 {
			zb = &w.h
		}
		z := zb.get(rows * l.Out)
		mul(rows, l.Out, l.In, a, lda, p.w[li], z)
		m.epilogue(z, rows, l.Out, l.Out, T(l.Scale), p.b[li], l.Tanh)
		h, ld, off = z, l.Out, 0
	}
	return h
}

// key hashes the packed weights and biases of layers [lo, hi).
func (p *packed[T]) key(lo, hi int) uint64 {
	h := uint64(14695981039346656037)
	for l := lo; l < hi; l++ {
		for _, s := range [][]T{p.w[l], p.b[l]} {
			for _, v := range s {
				h = (h ^ math.Float64bits(float64(v))) * 1099511628211
			}
		}
	}
	return h
}

// same reports whether p and q have bit-identical layers [lo, hi).
func (p *packed[T]) same(q *packed[T], lo, hi int) bool {
	for l := lo; l < hi; l++ {
		for _, s := range [][2][]T{{p.w[l], q.w[l]}, {p.b[l], q.b[l]}} {
			for i, v := range s[0] {
				if math.Float64bits(float64(v)) != math.Float64bits(float64(s[1][i])) {
					return false
				}
			}
		}
	}
	return true
}

// dedupe returns, for each of ps, the index of the first vector with the
// same packed layers [lo, hi) among those listed in from (itself when
// there is none).
func dedupe[T float](ps []*packed[T], from []int, lo, hi int) []int {
	first := make([]int, len(ps))
	seen := map[uint64][]int{}
	for _, i := range from {
		k := ps[i].key(lo, hi)
		first[i] = i
		for _, j := range seen[k] {
			if ps[j].same(ps[i], lo, hi) {
				first[i] = j
				break
			}
		}
		if first[i] == i {
			seen[k] = append(seen[k], i)
		}
	}
	return first
}

// losses evaluates the parameter vectors. Vectors whose rounded
// parameters are identical (common in bf16 and fp16 at small
// perturbations) are evaluated once, and vectors with identical rounded
// first layers share that layer's output; a vector's loss does not depend
// on the others (tested), so this changes no value.
func (m *model[T]) losses(thetas [][]float64, dst []float64) {
	k := len(thetas)
	ps := make([]*packed[T], k)
	all := make([]int, k)
	for i, t := range thetas {
		ps[i] = m.pack(t)
		all[i] = i
	}
	L := len(m.layers)
	same := dedupe(ps, all, 0, L)
	var eval []int // the vectors evaluated
	for i := range ps {
		if same[i] == i {
			eval = append(eval, i)
		}
	}
	firstSame := dedupe(ps, eval, 0, 1)
	l0 := m.layers[0]
	// The distinct first layers, side by side in groups: vector i reads
	// column block col[i] (group col[i]/group, position col[i]%group).
	col := make([]int, k)
	var firsts []int
	for _, i := range eval {
		if firstSame[i] == i {
			col[i] = len(firsts)
			firsts = append(firsts, i)
		} else {
			col[i] = col[firstSame[i]]
		}
	}
	type grp struct {
		w, b  []T
		n     int
		users []int // vectors evaluated from this group
	}
	var groups []grp
	// A group's vectors sit side by side in one buffer of width group·Out,
	// but each is multiplied by its own product of width Out: OpenBLAS's
	// result for a column depends on the product's width and on the
	// column's position in it (its edge kernels, and on some CPUs its
	// blocking), so only equal shapes give a vector the same bits alone
	// and in a batch.
	ld := group * l0.Out
	for g0 := 0; g0 < len(firsts); g0 += group {
		gn := min(group, len(firsts)-g0)
		g := grp{w: make([]T, l0.In*ld), b: make([]T, ld), n: gn}
		for j := 0; j < gn; j++ {
			p := ps[firsts[g0+j]]
			for r := 0; r < l0.In; r++ {
				copy(g.w[r*ld+j*l0.Out:][:l0.Out], p.w[0][r*l0.Out:][:l0.Out])
			}
			copy(g.b[j*l0.Out:], p.b[0])
		}
		groups = append(groups, g)
	}
	for _, i := range eval {
		gi := col[i] / group
		groups[gi].users = append(groups[gi].users, i)
	}
	chunk := m.chunk()
	nChunks := (m.e.n + chunk - 1) / chunk
	sums := make([]float64, nChunks*k)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(m.e.opts.Workers, nChunks) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &lossWorker[T]{}
			for {
				ci := int(next.Add(1) - 1)
				if ci >= nChunks {
					return
				}
				from := ci * chunk
				n := min(chunk, m.e.n-from)
				a0 := m.firstInput(&w.a0, from, n)
				rows := n * l0.Positions
				ys := m.y[from : from+n]
				for _, g := range groups {
					z0 := w.z0.get(rows * ld)
					for j := 0; j < g.n; j++ {
						// One product per vector: its shape (and so
						// OpenBLAS's kernels and their rounding) is the
						// same whatever the vector's place in the group.
						fastmath.Gemm(false, false, rows, l0.Out, l0.In, 1, a0, l0.In, g.w[j*l0.Out:], ld, 0, z0[j*l0.Out:], ld)
					}
					m.epilogue(z0, rows, g.n*l0.Out, ld, T(l0.Scale), g.b, l0.Tanh)
					for _, t := range g.users {
						j := col[t] % group
						logits := z0
						if L > 1 {
							logits = m.rest(w, ps[t], z0, ld, j*l0.Out, n)
						} else {
							logits = w.a.get(n * m.cls)
							for i := 0; i < n; i++ {
								copy(logits[i*m.cls:][:m.cls], z0[i*ld+j*m.cls:][:m.cls])
							}
						}
						m.loss(logits, ys, &sums[ci*k+t])
					}
				}
			}
		}()
	}
	wg.Wait()
	for t := 0; t < k; t++ {
		s := 0.0
		for ci := 0; ci < nChunks; ci++ {
			s += sums[ci*k+same[t]]
		}
		dst[t] = s / float64(m.e.n)
	}
}

// gradWorker holds one part's buffers and gradient accumulators.
type gradWorker[T float] struct {
	a, h            []buf[T] // per layer: input matrix (convolutions) and output
	dz, dz2, da, dh buf[T]
}

func (m *model[T]) grad(theta, dst []float64) float64 {
	p := m.pack(theta)
	L := len(m.layers)
	chunk := m.chunk()
	np := len(theta)
	nParts := min(parts, m.e.n)
	acc := make([][]T, nParts) // per part: packed-order gradient sums
	lossSum := make([]float64, nParts)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(m.e.opts.Workers, nParts) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &gradWorker[T]{a: make([]buf[T], L), h: make([]buf[T], L)}
			for {
				pi := int(next.Add(1) - 1)
				if pi >= nParts {
					return
				}
				g := make([]T, np)
				lo, hi := pi*m.e.n/nParts, (pi+1)*m.e.n/nParts
				for from := lo; from < hi; from += chunk {
					m.gradChunk(w, p, g, from, min(chunk, hi-from), &lossSum[pi])
				}
				acc[pi] = g
			}
		}()
	}
	wg.Wait()
	total := make([]T, np)
	loss := 0.0
	for pi := range nParts {
		for i, v := range acc[pi] {
			total[i] += v
		}
		loss += lossSum[pi]
	}
	inv := T(1 / float64(m.e.n))
	for i := range total {
		total[i] *= inv
	}
	m.round(total)
	// Back to the stored order.
	for _, l := range m.layers {
		wo := m.off[l.W]
		for r := 0; r < l.In; r++ {
			pr := permRow(l, r)
			for o := 0; o < l.Out; o++ {
				dst[wo+r*l.Out+o] = float64(total[wo+pr*l.Out+o])
			}
		}
		for o := 0; o < l.Out; o++ {
			dst[m.off[l.B]+o] = float64(total[m.off[l.B]+o])
		}
	}
	return loss / float64(m.e.n)
}

// gradChunk adds the gradient of the summed loss of examples [from,
// from+n) to g (packed order) and their losses to *loss.
func (m *model[T]) gradChunk(w *gradWorker[T], p *packed[T], g []T, from, n int, loss *float64) {
	L := len(m.layers)
	ins := make([][]T, L) // each layer's input matrix
	lds := make([]int, L)
	var h []T
	for li, l := range m.layers {
		rows := n * l.Positions
		switch {
		case li == 0:
			ins[0] = m.firstInput(&w.a[0], from, n)
		case l.Conv:
			ins[li] = w.a[li].get(rows * l.In)
			im2colYXC(ins[li], h, m.layers[li-1].Out, 0, l, n)
		default:
			ins[li] = h
		}
		lds[li] = l.In
		z := w.h[li].get(rows * l.Out)
		fastmath.Gemm(false, false, rows, l.Out, l.In, 1, ins[li], l.In, p.w[li], l.Out, 0, z, l.Out)
		m.epilogue(z, rows, l.Out, l.Out, T(l.Scale), p.b[li], l.Tanh)
		h = z
	}
	// Loss and the logits' gradient p − e_y.
	dz := w.dz.get(n * m.cls)
	for i, y := range m.y[from : from+n] {
		l := h[i*m.cls : (i+1)*m.cls]
		mx := float64(l[0])
		for _, v := range l[1:] {
			mx = max(mx, float64(v))
		}
		s := 0.0
		for _, v := range l {
			s += math.Exp(float64(v) - mx)
		}
		*loss += float64(T(math.Log(s) - (float64(l[y]) - mx)))
		d := dz[i*m.cls : (i+1)*m.cls]
		for c, v := range l {
			d[c] = T(math.Exp(float64(v)-mx) / s)
		}
		d[y] -= 1
	}
	m.round(dz)
	for li := L - 1; li >= 0; li-- {
		l := m.layers[li]
		rows := n * l.Positions
		s := T(l.Scale)
		gw := g[m.off[l.W] : m.off[l.W]+l.In*l.Out]
		fastmath.Gemm(true, false, l.In, l.Out, rows, s, ins[li], lds[li], dz, l.Out, 1, gw, l.Out)
		gb := g[m.off[l.B] : m.off[l.B]+l.Out]
		for r := 0; r < rows; r++ {
			for o, v := range dz[r*l.Out : (r+1)*l.Out] {
				gb[o] += v
			}
		}
		if li == 0 {
			break
		}
		da := w.da.get(rows * l.In)
		fastmath.Gemm(false, true, rows, l.In, l.Out, s, dz, l.Out, p.w[li], l.Out, 0, da, l.In)
		m.round(da)
		prev := m.layers[li-1]
		dh := da
		if l.Conv {
			dh = w.dh.get(n * prev.Positions * prev.Out)
			col2imYXC(dh, da, l, n)
			m.round(dh)
		}
		// dz of the previous layer: dh·tanh' = dh·(1 − a²), into the
		// buffer dz does not occupy.
		a := w.h[li-1].s[:n*prev.Positions*prev.Out]
		nb := &w.dz2
		if li%2 == 0 {
			nb = &w.dz
		}
		next := nb.get(len(a))
		for i, v := range a {
			next[i] = dh[i] * (1 - v*v)
		}
		m.round(next)
		dz = next
	}
}
