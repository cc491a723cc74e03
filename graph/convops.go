package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The convolution kernels of the batched graphs (see batchops.go for the
// custom-op machinery): im2col with zero padding, its adjoint col2im, and
// the flattening of channel-major maps into the dense layers' rows.

// im2colKernel extracts the patches of the b images of each of K trials,
// in gorgonia's im2col patch order (channel, kernel row, kernel column),
// with pad pixels of zeros around each image: h' = (h + 2·pad − size)/stride
// + 1, and patch value (ch, ky, kx) at output position (y, x) is pixel
// (y·stride + ky − pad, x·stride + kx − pad) of channel ch, or 0 where that
// lies outside the image. The input is either
//
//	(K·b, c, h, w)   (cbhw false: the network's input images), or
//	(K, c, b·h·w)    (cbhw true: the channel-major maps of a convolution),
//
// and the output is the channel-major patch matrix of every trial,
// (K, c·size·size, b·h'·w'): entry (f, j·h'·w' + y·w' + x) is patch value f
// at output position (y, x) of the trial's image j.
//
// Its adjoint (col2imKernel): padded im2col is P∘Z, Z the zero padding of
// each image to (h + 2·pad)×(w + 2·pad) and P the unpadded im2col of the
// padded images, so its adjoint is Zᵀ∘Pᵀ. Pᵀ sums every patch entry into
// the padded pixel it was read from (col2im without padding), and Zᵀ, the
// adjoint of embedding an image into the zero border, crops the border:
// ⟨Z x, u⟩ = Σ_{inner pixels} x·u. So the adjoint sums each patch entry
// into the pixel it read and drops the entries that read padding.
type im2colKernel struct {
	trials, images    int // K, b
	c, h, w           int
	size, stride, pad int
	cbhw              bool
}

func (k im2colKernel) name() string {
	return fmt.Sprintf("im2col(%d,%d,%d,%d,%d,%d,%d,%d,%t)", k.trials, k.images, k.c, k.h, k.w, k.size, k.stride, k.pad, k.cbhw)
}

func (k im2colKernel) out() (oh, ow int) {
	return (k.h+2*k.pad-k.size)/k.stride + 1, (k.w+2*k.pad-k.size)/k.stride + 1
}

// in is the input shape.
func (k im2colKernel) in() tensor.Shape {
	if k.cbhw {
		return tensor.Shape{k.trials, k.c, k.images * k.h * k.w}
	}
	return tensor.Shape{k.trials * k.images, k.c, k.h, k.w}
}

func (k im2colKernel) dims() ([]int, int) { return []int{len(k.in())}, 3 }

func (k im2colKernel) shape(in []tensor.Shape) (tensor.Shape, error) {
	if !in[0].Eq(k.in()) {
		return nil, fmt.Errorf("%s: input of shape %v, want %v", k.name(), in[0], k.in())
	}
	if k.stride < 1 || k.pad < 0 || k.h+2*k.pad < k.size || k.w+2*k.pad < k.size {
		return nil, fmt.Errorf("%s: patches of %d (stride %d, padding %d) on images of %d×%d", k.name(), k.size, k.stride, k.pad, k.h, k.w)
	}
	oh, ow := k.out()
	return tensor.Shape{k.trials, k.c * k.size * k.size, k.images * oh * ow}, nil
}

func (k im2colKernel) run(out *tensor.Dense, in []*tensor.Dense) error {
	return dispatch(out, in,
		func(o []float64, in [][]float64) { patches(k, o, in[0], false) },
		func(o []float32, in [][]float32) { patches(k, o, in[0], false) })
}

// span returns the output coordinates [lo, hi) whose patch entry at kernel
// offset kk reads inside an image side of n pixels: lo·stride + kk − pad ≥
// 0 and (hi−1)·stride + kk − pad < n, clamped to [0, outs].
func (k im2colKernel) span(kk, n, outs int) (lo, hi int) {
	if d := k.pad - kk; d > 0 {
		lo = (d + k.stride - 1) / k.stride
	}
	if d := n + k.pad - kk; d > 0 {
		hi = (d + k.stride - 1) / k.stride
	}
	hi = min(hi, outs)
	return min(lo, hi), hi
}

// patches copies images into cols (im2col; entries on the padding are 0)
// or, with back, sums cols back into images (col2im, the adjoint: images is
// cleared first, each pixel's patch entries are added in a fixed order,
// and entries on the padding are dropped).
func patches[T float](k im2colKernel, cols, images []T, back bool) {
	if back {
		clear(images)
	}
	oh, ow := k.out()
	p := oh * ow      // positions per image
	q := k.images * p // positions per trial
	f := k.c * k.size * k.size
	// Offsets of trial t's image j and of channel ch within it.
	sT, sJ, sC := k.images*k.c*k.h*k.w, k.c*k.h*k.w, k.h*k.w
	if k.cbhw {
		sJ, sC = k.h*k.w, k.images*k.h*k.w
	}
	// The output rows and columns inside the image at each kernel offset.
	spans := make([][2]int, 2*k.size)
	for o := 0; o < k.size; o++ {
		spans[o][0], spans[o][1] = k.span(o, k.h, oh)
		spans[k.size+o][0], spans[k.size+o][1] = k.span(o, k.w, ow)
	}
	for t := 0; t < k.trials; t++ {
		for j := 0; j < k.images; j++ {
			im := t*sT + j*sJ
			for ch := 0; ch < k.c; ch++ {
				for ky := 0; ky < k.size; ky++ {
					ylo, yhi := spans[ky][0], spans[ky][1]
					for kx := 0; kx < k.size; kx++ {
						xlo, xhi := spans[k.size+kx][0], spans[k.size+kx][1]
						row := cols[t*f*q+((ch*k.size+ky)*k.size+kx)*q+j*p:]
						for y := 0; y < oh; y++ {
							dst := row[y*ow : (y+1)*ow]
							if y < ylo || y >= yhi {
								if !back {
									clear(dst)
								}
								continue
							}
							// Pixel of output column xlo, and the columns inside.
							src := im + ch*sC + (y*k.stride+ky-k.pad)*k.w + xlo*k.stride + kx - k.pad
							in := dst[xlo:xhi]
							if back {
								for x, v := range in {
									images[src+x*k.stride] += v
								}
							} else {
								if xlo > 0 || xhi < ow {
									clear(dst[:xlo])
									clear(dst[xhi:])
								}
								for x := range in {
									in[x] = images[src+x*k.stride]
								}
							}
						}
					}
				}
			}
		}
	}
}

// diff: the adjoint of the images is col2im of the patches' adjoint.
func (k im2colKernel) diff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	d, err := apply(col2imKernel{k}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{d}, nil
}

// col2imKernel is the adjoint of an im2colKernel: patches back to images.
type col2imKernel struct{ im2col im2colKernel }

func (k col2imKernel) name() string       { return "col2im:" + k.im2col.name() }
func (k col2imKernel) dims() ([]int, int) { return []int{3}, len(k.im2col.in()) }

func (k col2imKernel) shape(in []tensor.Shape) (tensor.Shape, error) {
	s, err := k.im2col.shape([]tensor.Shape{k.im2col.in()})
	if err != nil {
		return nil, err
	}
	if !s.Eq(in[0]) {
		return nil, fmt.Errorf("%s: patches of shape %v, want %v", k.name(), in[0], s)
	}
	return k.im2col.in(), nil
}

func (k col2imKernel) run(out *tensor.Dense, in []*tensor.Dense) error {
	return dispatch(out, in,
		func(o []float64, in [][]float64) { patches(k.im2col, in[0], o, true) },
		func(o []float32, in [][]float32) { patches(k.im2col, in[0], o, true) })
}

// flattenKernel turns the channel-major maps (K, c, b·p) of K trials into
// the dense layer's rows (K, b, p·c), each image's maps in (position,
// channel) order as nets flattens them; with inverse, the reverse
// permutation (its adjoint).
type flattenKernel struct {
	c, images, p int
	inverse      bool
}

func (k flattenKernel) name() string {
	return fmt.Sprintf("flatten(%d,%d,%d,%t)", k.c, k.images, k.p, k.inverse)
}

func (k flattenKernel) dims() ([]int, int) { return []int{3}, 3 }

func (k flattenKernel) shape(in []tensor.Shape) (tensor.Shape, error) {
	if err := want3(in[0], k.name()+" input"); err != nil {
		return nil, err
	}
	maps := tensor.Shape{in[0][0], k.c, k.images * k.p}
	rows := tensor.Shape{in[0][0], k.images, k.p * k.c}
	if k.inverse {
		maps, rows = rows, maps
	}
	if !in[0].Eq(maps) {
		return nil, fmt.Errorf("%s: input of shape %v, want %v", k.name(), in[0], maps)
	}
	return rows, nil
}

func (k flattenKernel) run(out *tensor.Dense, in []*tensor.Dense) error {
	trials := in[0].Shape()[0]
	return dispatch(out, in,
		func(o []float64, in [][]float64) { flatten(k, trials, o, in[0]) },
		func(o []float32, in [][]float32) { flatten(k, trials, o, in[0]) })
}

func flatten[T float](k flattenKernel, trials int, out, in []T) {
	n := k.c * k.images * k.p
	for t := 0; t < trials; t++ {
		for ch := 0; ch < k.c; ch++ {
			for j := 0; j < k.images; j++ {
				for i := 0; i < k.p; i++ {
					m := t*n + (ch*k.images+j)*k.p + i // maps
					r := t*n + (j*k.p+i)*k.c + ch      // rows
					if k.inverse {
						out[m] = in[r]
					} else {
						out[r] = in[m]
					}
				}
			}
		}
	}
}

// diff: the adjoint of a permutation is its inverse.
func (k flattenKernel) diff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	inv := k
	inv.inverse = !k.inverse
	d, err := apply(inv, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{d}, nil
}
