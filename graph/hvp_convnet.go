package graph

import "github.com/perturb/perturb/nets/fastmath"

// hvConvnet is the Hessian-vector product of the convnet of depth 2 (see
// HVPEvaluator for the passes), on the layouts of peConvnet: the first
// layer's im2col matrix X1 has one row per (example, y, x) and columns in
// (c, ky, kx) order, the second layer's X2 = im2col(a_1) columns in
// (ky, kx, c) order (so conv2's weights are permuted when loaded and its
// product permuted back), and the second layer's output rows are the
// dense layer's input in (y, x, channel) order. The adjoint of im2col
// (col2im) adds each patch value back to its pixel.
type hvConvnet[T float] struct {
	m *peConvnet[T]
}

func (h *hvConvnet[T]) defaultChunk() int { return hvConvChunk }

func (h *hvConvnet[T]) newWorker() hvWorker {
	m := h.m
	in3 := m.p2 * m.ch2
	w := &hvConvnetWorker[T]{m: m}
	for _, s := range []struct {
		ps   *[2][]T
		size int
	}{{&w.w1, m.kc1 * m.ch}, {&w.b1, m.ch}, {&w.w2, m.kc2 * m.ch2}, {&w.b2, m.ch2},
		{&w.w3, in3 * m.hid}, {&w.b3, m.hid}, {&w.w4, m.hid * m.cls}, {&w.b4, m.cls}} {
		s.ps[0], s.ps[1] = make([]T, s.size), make([]T, s.size)
	}
	w.g1, w.g2 = make([]T, m.kc1*m.ch), make([]T, m.kc2*m.ch2)
	w.g3, w.g4 = make([]T, in3*m.hid), make([]T, m.hid*m.cls)
	return w
}

// hvConvnetWorker holds one trial's parameters and directions: index 0 is
// the parameter, 1 the direction.
type hvConvnetWorker[T float] struct {
	m                   *peConvnet[T]
	w1, w2, w3, w4      [2][]T // weights; w2 rows in (ky, kx, c) order
	b1, b2, b3, b4      [2][]T
	tile1, tile2, tile3 []T       // bias tiles of the tanh layers
	g1, g2, g3, g4      []T       // one chunk's weight products
	p                   []float64 // softmax without a cache
	slab                peSlab[T]
}

func (w *hvConvnetWorker[T]) load(theta, v []float64) {
	m := w.m
	for i, src := range [2][]float64{theta, v} {
		hvConvert(w.w1[i], src[m.off[0]:m.off[1]])
		hvConvert(w.b1[i], src[m.off[1]:m.off[2]])
		const kk = peKernel * peKernel
		for c := 0; c < m.ch; c++ {
			for k := 0; k < kk; k++ {
				hvConvert(w.w2[i][(k*m.ch+c)*m.ch2:][:m.ch2], src[m.off[2]+(c*kk+k)*m.ch2:][:m.ch2])
			}
		}
		hvConvert(w.b2[i], src[m.off[3]:m.off[4]])
		hvConvert(w.w3[i], src[m.off[4]:m.off[5]])
		hvConvert(w.b3[i], src[m.off[5]:m.off[6]])
		hvConvert(w.w4[i], src[m.off[6]:m.off[7]])
		hvConvert(w.b4[i], src[m.off[7]:])
	}
	w.tile1, w.tile2, w.tile3 = peTile(w.b1[0]), peTile(w.b2[0]), peTile(w.b3[0])
}

// perExample is the size of the primal values of one example: the first
// three layers' activations a and loss reverses ∂a (in T) and the softmax
// p (float64).
func (h *hvConvnet[T]) perExample() (nt, np int) {
	m := h.m
	return 2 * (m.p1*m.ch + m.p2*m.ch2 + m.hid), m.cls
}

func (h *hvConvnet[T]) cacheBytes(n int) int64 {
	nt, np := h.perExample()
	return int64(n) * (int64(nt)*peSizeOf[T]() + int64(np)*8)
}

func (h *hvConvnet[T]) newCache(n int) *hvCache {
	nt, np := h.perExample()
	return &hvCache{t: make([]T, n*nt), p: make([]float64, n*np)}
}

// hvPrimal are the primal values of n examples: activations a1 (maps),
// a2 (the dense layer's input), a3, the loss reverses ∂a1, ∂a2 (as ∂f),
// ∂a3 (before the tanh derivative) and the softmax p.
type hvPrimal[T float] struct {
	a1, da1, a2, df, a3, da3 []T
	p                        []float64
}

// primal returns the primal values of examples [lo, lo+n) of a buffer of
// total examples (field-major: each field of every example together).
func (w *hvConvnetWorker[T]) primal(t []T, p []float64, total, lo, n int) hvPrimal[T] {
	m := w.m
	var pr hvPrimal[T]
	off := 0
	for _, f := range []struct {
		s    *[]T
		size int
	}{{&pr.a1, m.p1 * m.ch}, {&pr.da1, m.p1 * m.ch}, {&pr.a2, m.p2 * m.ch2}, {&pr.df, m.p2 * m.ch2},
		{&pr.a3, m.hid}, {&pr.da3, m.hid}} {
		*f.s = t[off+lo*f.size : off+(lo+n)*f.size]
		off += total * f.size
	}
	pr.p = p[lo*m.cls : (lo+n)*m.cls]
	return pr
}

func (w *hvConvnetWorker[T]) add(rows []int, acc []float64, c *hvCache, lo int, have bool) {
	m := w.m
	n := len(rows)
	r1, r2, in3 := n*m.p1, n*m.p2, m.p2*m.ch2
	ch, ch2, hid, cls, kc1, kc2 := m.ch, m.ch2, m.hid, m.cls, m.kc1, m.kc2
	nt, np := (&hvConvnet[T]{m: m}).perExample()
	scratch := r1*(kc1+2*ch) + r2*2*kc2 + n*(3*in3+3*hid+2*cls)
	if c == nil {
		scratch += n * nt
	}
	w.slab.reset(scratch)
	var pr hvPrimal[T]
	if c == nil {
		if cap(w.p) < n*np {
			w.p = make([]float64, n*np)
		}
		pr = w.primal(w.slab.take(n*nt), w.p[:n*np], n, 0, n)
	} else {
		pr = w.primal(c.t.([]T), c.p, c.n, lo, n)
	}
	x1 := w.slab.take(r1 * kc1)
	t1, dda1 := w.slab.take(r1*ch), w.slab.take(r1*ch)
	x2, xd2 := w.slab.take(r2*kc2), w.slab.take(r2*kc2)
	t2, d2, ddf := w.slab.take(n*in3), w.slab.take(n*in3), w.slab.take(n*in3)
	t3, d3, dda3 := w.slab.take(n*hid), w.slab.take(n*hid), w.slab.take(n*hid)
	z4, t4 := w.slab.take(n*cls), w.slab.take(n*cls)
	off := m.off

	m.im2col1(x1, 0, rows, n)
	if !have {
		// Forward and loss reverse: a, p and ∂a of every layer.
		fastmath.Gemm(false, false, r1, ch, kc1, 1, x1, kc1, w.w1[0], ch, 0, pr.a1, ch)
		peTanhScaleBias(pr.a1, m.s1, w.tile1)
		m.im2col2(x2, pr.a1, ch, 0, n)
		fastmath.Gemm(false, false, r2, ch2, kc2, 1, x2, kc2, w.w2[0], ch2, 0, pr.a2, ch2)
		peTanhScaleBias(pr.a2, m.s2, w.tile2)
		fastmath.Gemm(false, false, n, hid, in3, 1, pr.a2, in3, w.w3[0], hid, 0, pr.a3, hid)
		peTanhScaleBias(pr.a3, m.s3, w.tile3)
		fastmath.Gemm(false, false, n, cls, hid, 1, pr.a3, hid, w.w4[0], cls, 0, z4, cls)
		hvSoftmax(pr.p, z4, n, cls, m.s4, w.b4[0])
		hvDelta(z4, pr.p, n, cls, m.y, rows)
		fastmath.Gemm(false, true, n, hid, cls, m.s4, z4, cls, w.w4[0], cls, 0, pr.da3, hid)
		hvScaleTanh(d3, pr.da3, pr.a3)
		fastmath.Gemm(false, true, n, in3, hid, m.s3, d3, hid, w.w3[0], hid, 0, pr.df, in3)
		hvScaleTanh(d2, pr.df, pr.a2)
		fastmath.Gemm(false, true, r2, kc2, ch2, m.s2, d2, ch2, w.w2[0], ch2, 0, xd2, kc2)
		clear(pr.da1)
		w.col2im2(pr.da1, xd2, n)
	} else {
		m.im2col2(x2, pr.a1, ch, 0, n)
	}

	// Tangent.
	fastmath.Gemm(false, false, r1, ch, kc1, 1, x1, kc1, w.w1[1], ch, 0, t1, ch)
	hvTangent(t1, pr.a1, m.s1, w.b1[1])
	m.im2col2(xd2, t1, ch, 0, n)
	fastmath.Gemm(false, false, r2, ch2, kc2, 1, x2, kc2, w.w2[1], ch2, 0, t2, ch2)
	fastmath.Gemm(false, false, r2, ch2, kc2, 1, xd2, kc2, w.w2[0], ch2, 1, t2, ch2)
	hvTangent(t2, pr.a2, m.s2, w.b2[1])
	fastmath.Gemm(false, false, n, hid, in3, 1, pr.a2, in3, w.w3[1], hid, 0, t3, hid)
	fastmath.Gemm(false, false, n, hid, in3, 1, t2, in3, w.w3[0], hid, 1, t3, hid)
	hvTangent(t3, pr.a3, m.s3, w.b3[1])
	fastmath.Gemm(false, false, n, cls, hid, 1, pr.a3, hid, w.w4[1], cls, 0, t4, cls)
	fastmath.Gemm(false, false, n, cls, hid, 1, t3, hid, w.w4[0], cls, 1, t4, cls)

	// Reverse of the tangent: δ4 (in z4) and δ̇4 (in t4), then each layer's
	// weight product and the tangent reverse below it.
	hvJacobian(t4, pr.p, n, cls, m.s4, w.b4[1], acc[off[7]:])
	hvDelta(z4, pr.p, n, cls, m.y, rows)
	fastmath.Gemm(true, false, hid, cls, n, m.s4, t3, hid, z4, cls, 0, w.g4, cls)
	fastmath.Gemm(true, false, hid, cls, n, m.s4, pr.a3, hid, t4, cls, 1, w.g4, cls)
	hvWiden(acc[off[6]:off[7]], w.g4)
	fastmath.Gemm(false, true, n, hid, cls, m.s4, t4, cls, w.w4[0], cls, 0, dda3, hid)
	fastmath.Gemm(false, true, n, hid, cls, m.s4, z4, cls, w.w4[1], cls, 1, dda3, hid)
	hvBack(d3, dda3, pr.da3, pr.a3, t3, hid, acc[off[5]:off[6]])

	fastmath.Gemm(true, false, in3, hid, n, m.s3, t2, in3, d3, hid, 0, w.g3, hid)
	fastmath.Gemm(true, false, in3, hid, n, m.s3, pr.a2, in3, dda3, hid, 1, w.g3, hid)
	hvWiden(acc[off[4]:off[5]], w.g3)
	fastmath.Gemm(false, true, n, in3, hid, m.s3, dda3, hid, w.w3[0], hid, 0, ddf, in3)
	fastmath.Gemm(false, true, n, in3, hid, m.s3, d3, hid, w.w3[1], hid, 1, ddf, in3)
	hvBack(d2, ddf, pr.df, pr.a2, t2, ch2, acc[off[3]:off[4]])

	// conv2: the weight product (permuted back to (c, ky, kx) rows), then
	// the tangent reverse through X2 (into xd2) and col2im.
	fastmath.Gemm(true, false, kc2, ch2, r2, m.s2, xd2, kc2, d2, ch2, 0, w.g2, ch2)
	fastmath.Gemm(true, false, kc2, ch2, r2, m.s2, x2, kc2, ddf, ch2, 1, w.g2, ch2)
	const kk = peKernel * peKernel
	for c := 0; c < ch; c++ {
		for k := 0; k < kk; k++ {
			hvWiden(acc[off[2]+(c*kk+k)*ch2:][:ch2], w.g2[(k*ch+c)*ch2:][:ch2])
		}
	}
	fastmath.Gemm(false, true, r2, kc2, ch2, m.s2, ddf, ch2, w.w2[0], ch2, 0, xd2, kc2)
	fastmath.Gemm(false, true, r2, kc2, ch2, m.s2, d2, ch2, w.w2[1], ch2, 1, xd2, kc2)
	clear(dda1)
	w.col2im2(dda1, xd2, n)
	hvBack(nil, dda1, pr.da1, pr.a1, t1, ch, acc[off[1]:off[2]])

	// conv1 (its input does not move: only X1ᵀ δ̇1).
	fastmath.Gemm(true, false, kc1, ch, r1, m.s1, x1, kc1, dda1, ch, 0, w.g1, ch)
	hvWiden(acc[off[0]:off[1]], w.g1)
}

// col2im2 adds the second layer's patch matrix a (one row of kc2 values
// in (ky, kx, c) order per (example, y, x)) back to the first layer's maps
// h1 (rows (example, y, x) of ch channels): the adjoint of im2col2.
func (w *hvConvnetWorker[T]) col2im2(h1, a []T, n int) {
	m := w.m
	ch := m.ch
	h32, fast := any(h1).([]float32)
	a32, _ := any(a).([]float32)
	fast = fast && peHavePatchCopy && ch == 10
	for i := 0; i < n; i++ {
		for oy := 0; oy < m.oh2; oy++ {
			for ox := 0; ox < m.ow2; ox++ {
				d0 := ((i*m.oh2+oy)*m.ow2 + ox) * m.kc2
				s0 := (i*m.p1 + peStride*oy*m.ow1 + peStride*ox) * ch
				if fast {
					_ = h1[s0+(peKernel-1)*(m.ow1+1)*ch+ch-1] // bounds of the patch
					_ = a[d0+m.kc2-1]
					hvAddPatch10(&h32[s0], &a32[d0], uintptr(4*ch), uintptr(4*m.ow1*ch))
					continue
				}
				for ky := 0; ky < peKernel; ky++ {
					for kx := 0; kx < peKernel; kx++ {
						dst := h1[s0+(ky*m.ow1+kx)*ch:][:ch]
						for c, x := range a[d0+(ky*peKernel+kx)*ch:][:ch] {
							dst[c] += x
						}
					}
				}
			}
		}
	}
}
