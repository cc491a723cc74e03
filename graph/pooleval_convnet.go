package graph

import (
	"fmt"

	"github.com/perturb/perturb/nets"
)

// Kernel size and stride of the convnet's convolutions (nets/convnet.go).
const (
	peKernel = 5
	peStride = 2
)

// peConvnet is the batched convnet of package nets: two tanh convolutions
// (kernel 5, stride 2, no padding) as im2col products, a tanh dense layer
// and a dense output layer, every layer z = s·(x W) + b.
//
// Layouts: the first layer's im2col matrix has one row per (example, y, x)
// output position and columns in gorgonia's patch order (c, ky, kx), like
// the stored conv1 weights. Its product with a group of trials' kernels has
// the trials' channels side by side in each row. The second layer's im2col
// matrix is built per trial from that output with columns in (ky, kx, c)
// order (ten contiguous channels per copy), so the stored conv2 weight rows
// are permuted from (c, ky, kx) to (ky, kx, c) when packed. The second
// layer's output rows (example, y, x) of channels are the dense layer's
// input in its (y, x, channel) order without a copy.
type peConvnet[T float] struct {
	x   []T
	y   []uint8
	c   int // input channels
	h   int // input height
	wd  int // input width
	dim int

	oh1, ow1, p1, kc1, ch  int // conv1: output size, positions, patch size, channels
	oh2, ow2, p2, kc2, ch2 int // conv2
	hid, cls               int
	off                    [8]int // offsets of the parameters in theta
	s1, s2, s3, s4         T

	// Packed parameters of the k trials of a call.
	k     int
	tb2   bool  // w2 blocks are stored transposed (see peTransB)
	tb3   bool  // w3 blocks are stored transposed
	w1    []T   // kc1 × k·ch
	tile1 [][]T // per first-layer group: bias tile of width gn·ch
	w2    []T   // k blocks of kc2 × ch2, rows in (ky, kx, c) order (or the transpose)
	w3    []T   // k blocks of p2·ch2 × hid (or the transpose)
	w4    []T   // k blocks of hid × cls
	b4    []T   // k × cls
	tile2 [][]T // per trial
	tile3 [][]T // per trial
}

func newPEConvnet[T float](arch *nets.Arch, d *Data, x []T) (*peConvnet[T], error) {
	m := &peConvnet[T]{x: x, y: d.Y, c: arch.Channels, h: arch.Height, wd: arch.Width, dim: arch.Dim()}
	out := func(n int) int { return (n-peKernel)/peStride + 1 }
	m.oh1, m.ow1 = out(m.h), out(m.wd)
	m.oh2, m.ow2 = out(m.oh1), out(m.ow1)
	m.p1, m.p2 = m.oh1*m.ow1, m.oh2*m.ow2
	p := arch.Params
	ok := len(p) == 8 && m.oh2 >= 1 && m.ow2 >= 1
	for i := 0; ok && i < 8; i += 2 {
		ok = len(p[i].Shape) == 2 && p[i+1].Size() == p[i].Shape[1]
	}
	if ok {
		m.kc1, m.ch = p[0].Shape[0], p[0].Shape[1]
		m.kc2, m.ch2 = p[2].Shape[0], p[2].Shape[1]
		m.hid, m.cls = p[4].Shape[1], p[6].Shape[1]
		ok = m.kc1 == m.c*peKernel*peKernel && m.kc2 == m.ch*peKernel*peKernel &&
			p[4].Shape[0] == m.p2*m.ch2 && p[6].Shape[0] == m.hid && m.cls == arch.Classes
	}
	if !ok {
		return nil, fmt.Errorf("pool evaluator: unexpected convnet parameters %v for %d×%d×%d inputs",
			p, m.c, m.h, m.wd)
	}
	for i := 1; i < 8; i++ {
		m.off[i] = m.off[i-1] + p[i-1].Size()
	}
	m.s1, m.s2, m.s3, m.s4 = T(p[0].Scale), T(p[2].Scale), T(p[4].Scale), T(p[6].Scale)
	return m, nil
}

func (m *peConvnet[T]) perExample(k int) int64 {
	g := min(k, peConvGroup)
	n := m.p1*m.kc1 + m.p1*g*m.ch + m.p2*m.kc2 + m.p2*m.ch2 + m.hid + m.cls
	return int64(n)*peSizeOf[T]() + peScoreBytes[T](m.cls)
}

// autoChunk keeps one worker's buffers near peCacheBytes.
func (m *peConvnet[T]) autoChunk(k int) int {
	return int(min(max(peCacheBytes/m.perExample(k), 4), 256))
}

func (m *peConvnet[T]) fixedBytes(k int) int64 {
	n := m.off[7] + m.cls // all parameters
	// Bias tiles: at most 8 copies of every bias.
	return int64(k) * int64(n+8*(m.ch+m.ch2+m.hid)) * peSizeOf[T]()
}

func peGrow[T float](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func (m *peConvnet[T]) pack(theta [][]float64) {
	k := len(theta)
	m.k = k
	ld := k * m.ch
	m.w1 = peGrow(m.w1, m.kc1*ld)
	m.w2 = peGrow(m.w2, k*m.kc2*m.ch2)
	m.w3 = peGrow(m.w3, k*m.p2*m.ch2*m.hid)
	m.w4 = peGrow(m.w4, k*m.hid*m.cls)
	m.b4 = peGrow(m.b4, k*m.cls)
	m.tile1, m.tile2, m.tile3 = m.tile1[:0], m.tile2[:0], m.tile3[:0]
	conv := func(dst []T, src []float64) {
		for i, v := range src {
			dst[i] = T(v)
		}
	}
	nw2, nw3, nw4 := m.kc2*m.ch2, m.p2*m.ch2*m.hid, m.hid*m.cls
	m.tb2, m.tb3 = peTransB[T](m.ch2, m.kc2), peTransB[T](m.hid, m.p2*m.ch2)
	for j, t := range theta {
		for r := 0; r < m.kc1; r++ {
			conv(m.w1[r*ld+j*m.ch:r*ld+(j+1)*m.ch], t[m.off[0]+r*m.ch:m.off[0]+(r+1)*m.ch])
		}
		w2 := m.w2[j*nw2 : (j+1)*nw2]
		for c := 0; c < m.ch; c++ {
			for kk := 0; kk < peKernel*peKernel; kk++ {
				row := kk*m.ch + c // (ky, kx, c) order
				for o, v := range t[m.off[2]+(c*peKernel*peKernel+kk)*m.ch2:][:m.ch2] {
					if m.tb2 {
						w2[o*m.kc2+row] = T(v)
					} else {
						w2[row*m.ch2+o] = T(v)
					}
				}
			}
		}
		w3 := m.w3[j*nw3 : (j+1)*nw3]
		if m.tb3 {
			in3 := m.p2 * m.ch2
			for i := 0; i < in3; i++ {
				for o, v := range t[m.off[4]+i*m.hid:][:m.hid] {
					w3[o*in3+i] = T(v)
				}
			}
		} else {
			conv(w3, t[m.off[4]:m.off[4]+nw3])
		}
		conv(m.w4[j*nw4:(j+1)*nw4], t[m.off[6]:m.off[6]+nw4])
		conv(m.b4[j*m.cls:(j+1)*m.cls], t[m.off[7]:m.off[7]+m.cls])
		b := make([]T, m.ch2+m.hid)
		conv(b[:m.ch2], t[m.off[3]:m.off[3]+m.ch2])
		conv(b[m.ch2:], t[m.off[5]:m.off[5]+m.hid])
		m.tile2 = append(m.tile2, peTile(b[:m.ch2]))
		m.tile3 = append(m.tile3, peTile(b[m.ch2:]))
	}
	for g0 := 0; g0 < k; g0 += peConvGroup {
		gn := min(peConvGroup, k-g0)
		b := make([]T, gn*m.ch)
		for j := 0; j < gn; j++ {
			conv(b[j*m.ch:(j+1)*m.ch], theta[g0+j][m.off[1]:m.off[1]+m.ch])
		}
		m.tile1 = append(m.tile1, peTile(b))
	}
}

func (m *peConvnet[T]) newWorker() peWorker {
	return &peConvnetWorker[T]{m: m}
}

type peConvnetWorker[T float] struct {
	m    *peConvnet[T]
	slab peSlab[T]
	sc   peScorer[T]
}

func (w *peConvnetWorker[T]) run(from int, rows []int, n int, sums []float64, correct []int64) {
	m := w.m
	g := min(m.k, peConvGroup)
	w.slab.reset(n * int(m.perExample(m.k)/peSizeOf[T]()))
	a1 := w.slab.take(n * m.p1 * m.kc1)
	c1 := w.slab.take(n * m.p1 * g * m.ch)
	a2 := w.slab.take(n * m.p2 * m.kc2)
	c2 := w.slab.take(n * m.p2 * m.ch2)
	c3 := w.slab.take(n * m.hid)
	c4 := w.slab.take(n * m.cls)
	m.im2col1(a1, from, rows, n)
	clear(sums)
	clear(correct)
	nw2, nw3, nw4 := m.kc2*m.ch2, m.p2*m.ch2*m.hid, m.hid*m.cls
	for gi, g0 := 0, 0; g0 < m.k; gi, g0 = gi+1, g0+peConvGroup {
		gn := min(peConvGroup, m.k-g0)
		ld1 := gn * m.ch
		h1 := c1[:n*m.p1*ld1]
		peGemm(false, n*m.p1, ld1, m.kc1, a1, m.kc1, m.w1[g0*m.ch:], m.k*m.ch, h1, ld1)
		peTanhScaleBias(h1, m.s1, m.tile1[gi])
		for j := 0; j < gn; j++ {
			t := g0 + j
			m.im2col2(a2, h1, ld1, j*m.ch, n)
			ldb2, ldb3 := m.ch2, m.hid
			if m.tb2 {
				ldb2 = m.kc2
			}
			if m.tb3 {
				ldb3 = m.p2 * m.ch2
			}
			peGemm(m.tb2, n*m.p2, m.ch2, m.kc2, a2, m.kc2, m.w2[t*nw2:(t+1)*nw2], ldb2, c2, m.ch2)
			peTanhScaleBias(c2, m.s2, m.tile2[t])
			peGemm(m.tb3, n, m.hid, m.p2*m.ch2, c2, m.p2*m.ch2, m.w3[t*nw3:(t+1)*nw3], ldb3, c3, m.hid)
			peTanhScaleBias(c3, m.s3, m.tile3[t])
			peGemm(false, n, m.cls, m.hid, c3, m.hid, m.w4[t*nw4:(t+1)*nw4], m.cls, c4, m.cls)
			w.sc.block(c4, m.cls, n, 1, m.cls, m.s4, m.b4[t*m.cls:(t+1)*m.cls], m.y, from, rows,
				sums[t:t+1], correct[t:t+1])
		}
	}
}

// im2col1 fills a with the first layer's patches of the n examples: one row
// of kc1 values per (example, y, x), in (c, ky, kx) order.
func (m *peConvnet[T]) im2col1(a []T, from int, rows []int, n int) {
	plane := m.h * m.wd
	a32, fast := any(a).([]float32)
	x32, _ := any(m.x).([]float32)
	fast = fast && peHavePatchCopy
	const kk = peKernel * peKernel
	for i := 0; i < n; i++ {
		r := peRow(from, rows, i)
		src := m.x[r*m.dim : (r+1)*m.dim]
		for oy := 0; oy < m.oh1; oy++ {
			d0 := (i*m.oh1 + oy) * m.ow1 * m.kc1
			for c := 0; c < m.c; c++ {
				s0 := c*plane + peStride*oy*m.wd
				if fast {
					// One call for the row's ow1 patches of channel c.
					_ = src[s0+(peKernel-1)*m.wd+peStride*(m.ow1-1)+peKernel-1]
					_ = a[d0+(m.ow1-1)*m.kc1+c*kk+kk-1]
					peCopyPatch5(&a32[d0+c*kk], &x32[r*m.dim+s0], uintptr(4*m.wd),
						uintptr(m.ow1), uintptr(4*m.kc1), 4*peStride)
					continue
				}
				for ox := 0; ox < m.ow1; ox++ {
					for ky := 0; ky < peKernel; ky++ {
						d := d0 + ox*m.kc1 + (c*peKernel+ky)*peKernel
						s := s0 + ky*m.wd + peStride*ox
						copy(a[d:d+peKernel], src[s:s+peKernel])
					}
				}
			}
		}
	}
}

// im2col2 fills a with the second layer's patches of one trial: its
// first-layer output is the ch columns from col of h1 (stride ld1); one row
// of kc2 values per (example, y, x), in (ky, kx, c) order.
func (m *peConvnet[T]) im2col2(a, h1 []T, ld1, col, n int) {
	ch := m.ch
	a32, fast := any(a).([]float32)
	h32, _ := any(h1).([]float32)
	fast = fast && peHavePatchCopy && ch == 10
	for i := 0; i < n; i++ {
		for oy := 0; oy < m.oh2; oy++ {
			for ox := 0; ox < m.ow2; ox++ {
				d0 := ((i*m.oh2+oy)*m.ow2 + ox) * m.kc2
				s0 := (i*m.p1+peStride*oy*m.ow1+peStride*ox)*ld1 + col
				if fast {
					_ = h1[s0+(peKernel-1)*(m.ow1+1)*ld1+ch-1] // bounds of the patch
					_ = a[d0+m.kc2-1]
					peCopyPatch10(&a32[d0], &h32[s0], uintptr(4*ld1), uintptr(4*m.ow1*ld1))
					continue
				}
				for ky := 0; ky < peKernel; ky++ {
					for kx := 0; kx < peKernel; kx++ {
						s := s0 + (ky*m.ow1+kx)*ld1
						d := d0 + (ky*peKernel+kx)*ch
						copy(a[d:d+ch], h1[s:s+ch])
					}
				}
			}
		}
	}
}
