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

// peConvnet is the layout of the paper's convnet of package nets for the
// hand-written Hessian-vector products (hvp_convnet.go): two tanh
// convolutions (kernel 5, stride 2, no padding) as im2col products, a tanh
// dense layer and a dense output layer, every layer z = s·(x W) + b.
//
// Layouts: the first layer's im2col matrix has one row per (example, y, x)
// output position and columns in gorgonia's patch order (c, ky, kx), like
// the stored conv1 weights. The second layer's im2col matrix is built per
// trial from that output with columns in (ky, kx, c) order (ten contiguous
// channels per copy), so the stored conv2 weight rows are permuted from
// (c, ky, kx) to (ky, kx, c). The second layer's output rows (example, y,
// x) of channels are the dense layer's input in its (y, x, channel) order
// without a copy.
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
		return nil, fmt.Errorf("hand-written HVP: unexpected convnet parameters %v for %d×%d×%d inputs",
			p, m.c, m.h, m.wd)
	}
	for i := 1; i < 8; i++ {
		m.off[i] = m.off[i-1] + p[i-1].Size()
	}
	m.s1, m.s2, m.s3, m.s4 = T(p[0].Scale), T(p[2].Scale), T(p[4].Scale), T(p[6].Scale)
	return m, nil
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

// peLogistic is the layout of the logistic model z = s·(x W) + b for the
// hand-written Hessian-vector products (hvp_logistic.go).
type peLogistic[T float] struct {
	x   []T
	y   []uint8
	dim int
	cls int
	s   T
	npW int // size of W
}

func newPELogistic[T float](arch *nets.Arch, d *Data, x []T) (*peLogistic[T], error) {
	p := arch.Params
	if len(p) != 2 || len(p[0].Shape) != 2 || p[0].Shape[0] != arch.Dim() || p[0].Shape[1] != arch.Classes ||
		p[1].Size() != arch.Classes {
		return nil, fmt.Errorf("hand-written HVP: unexpected logistic parameters %v", p)
	}
	return &peLogistic[T]{x: x, y: d.Y, dim: arch.Dim(), cls: arch.Classes, s: T(p[0].Scale),
		npW: p[0].Size()}, nil
}

// peRow returns the example index of the i-th example of a chunk.
func peRow(from int, rows []int, i int) int {
	if rows != nil {
		return rows[i]
	}
	return from + i
}

// peSlab carves buffers out of one allocation that is kept between calls
// and grown only when a call needs more.
type peSlab[T float] struct {
	buf []T
	off int
}

func (s *peSlab[T]) reset(n int) {
	if cap(s.buf) < n {
		s.buf = make([]T, n)
	}
	s.buf = s.buf[:cap(s.buf)]
	s.off = 0
}

func (s *peSlab[T]) take(n int) []T {
	b := s.buf[s.off : s.off+n : s.off+n]
	s.off += n
	return b
}

func peSizeOf[T float]() int64 {
	var z T
	if _, ok := any(z).(float32); ok {
		return 4
	}
	return 8
}
