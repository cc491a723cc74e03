package kernels

import (
	"fmt"

	"github.com/perturb/perturb/nets/fastmath"
)

// The CPU device's patch matrices: loops over patch rows, images and
// output positions (no per-element divisions), patch rows (Im2col) or
// (trial, channel) planes (Col2im) spread over the workers.
// patches (cpu.go) is the element-by-element reference of both.

// Im2col writes the patch matrices.
func (d CPU[T]) Im2col(c Conv, cols, images Buffer) error {
	bs, err := bufs[T](cols, images)
	if err != nil {
		return err
	}
	if len(bs[0]) != c.ColsLen() || len(bs[1]) != c.ImagesLen() {
		return fmt.Errorf("cpu: im2col %+v of %d images into %d", c, len(bs[1]), len(bs[0]))
	}
	if c.Pad != 0 {
		// Padded convolutions (the 3×3 layers of deeper convnets) take
		// the element-by-element reference; the fast loops assume none.
		patches(c, bs[0], bs[1], false)
		return nil
	}
	im2col(d.w(), c, bs[0], bs[1])
	return nil
}

// Col2im sums the patch matrices back into images.
func (d CPU[T]) Col2im(c Conv, images, cols Buffer) error {
	bs, err := bufs[T](images, cols)
	if err != nil {
		return err
	}
	if len(bs[1]) != c.ColsLen() || len(bs[0]) != c.ImagesLen() {
		return fmt.Errorf("cpu: col2im %+v of %d into %d images", c, len(bs[1]), len(bs[0]))
	}
	if c.Pad != 0 {
		patches(c, bs[1], bs[0], true)
		return nil
	}
	col2im(d.w(), c, bs[0], bs[1])
	return nil
}

// strides returns the image strides of a trial, an image and a channel
// (see Conv.ImageIndex).
func (c Conv) strides() (sT, sJ, sC int) {
	sT, sJ, sC = c.Images*c.C*c.H*c.W, c.C*c.H*c.W, c.H*c.W
	if c.CBHW {
		sJ, sC = c.H*c.W, c.Images*c.H*c.W
	}
	return sT, sJ, sC
}

// offsets returns the offset in an image plane of every output position
// (y, x) of a patch's first pixel: the gather pattern of im2col.
func (c Conv) offsets() []int32 {
	oh, ow := c.Out()
	o := make([]int32, 0, oh*ow)
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			o = append(o, int32(y*c.Stride*c.W+x*c.Stride))
		}
	}
	return o
}

// im2col fills cols from images, one patch row (trial, channel, ky, kx)
// at a time, each image's positions through the offsets table (float32:
// fastmath.GatherRows32, AVX2 gathers; stride 2 with output rows of a
// multiple of 4 pixels, fastmath.GatherStride2Rows32, AVX2 permutations).
func im2col[T float](w int, c Conv, cols, images []T) {
	oh, ow := c.Out()
	p := oh * ow
	q := c.Images * p
	ss := c.Size * c.Size
	f := c.C * ss
	sT, sJ, sC := c.strides()
	offs := c.offsets()
	span := int(offs[len(offs)-1]) + 1
	c32, _ := any(cols).([]float32)
	i32, _ := any(images).([]float32)
	stride2 := c.Stride == 2 && ow%4 == 0
	parallel(w, c.Trials*f, units(q), func(lo, hi int) {
		for u := lo; u < hi; u++ {
			t, fi := u/f, u%f
			ch, k := fi/ss, fi%ss
			base := t*sT + ch*sC + (k/c.Size)*c.W + k%c.Size
			switch {
			case c32 != nil && stride2:
				fastmath.GatherStride2Rows32(c32[u*q:(u+1)*q], i32[base:], oh, ow, 2*c.W, c.Images, sJ)
				continue
			case c32 != nil:
				fastmath.GatherRows32(c32[u*q:(u+1)*q], i32[base:base+(c.Images-1)*sJ+span], offs, c.Images, sJ)
				continue
			}
			row := cols[u*q : (u+1)*q]
			if stride2 { // float64: strided copies, no offsets table
				for j := 0; j < c.Images; j++ {
					for y := 0; y < oh; y++ {
						src := images[base+j*sJ+y*2*c.W:][: 2*ow-1 : 2*ow-1]
						d := row[(j*oh+y)*ow:][:ow:ow]
						for x := range d {
							d[x] = src[2*x]
						}
					}
				}
				continue
			}
			for j := 0; j < c.Images; j++ {
				src := images[base+j*sJ : base+j*sJ+span]
				d := row[j*p : (j+1)*p]
				for i, o := range offs[:len(d)] {
					d[i] = src[o]
				}
			}
		}
	})
}

// col2im clears images and adds the patch rows into them, each (trial,
// channel) plane by one worker, its rows in increasing (ky, kx) and
// positions in increasing order: the order of patches.
func col2im[T float](w int, c Conv, images, cols []T) {
	oh, ow := c.Out()
	p := oh * ow
	q := c.Images * p
	ss := c.Size * c.Size
	f := c.C * ss
	sT, sJ, sC := c.strides()
	plane := c.H * c.W
	parallel(w, c.Trials*c.C, units(c.Images*plane*ss), func(lo, hi int) {
		for u := lo; u < hi; u++ {
			t, ch := u/c.C, u%c.C
			for j := 0; j < c.Images; j++ {
				o := t*sT + ch*sC + j*sJ
				clear(images[o : o+plane])
			}
			for k := 0; k < ss; k++ {
				base := t*sT + ch*sC + (k/c.Size)*c.W + k%c.Size
				row := cols[(t*f+ch*ss+k)*q : (t*f+ch*ss+k+1)*q]
				span := (ow-1)*c.Stride + 1
				for j := 0; j < c.Images; j++ {
					dst := images[base+j*sJ:]
					for y := 0; y < oh; y++ {
						addStrided(dst[y*c.Stride*c.W:][:span], row[(j*oh+y)*ow:(j*oh+y+1)*ow], c.Stride)
					}
				}
			}
		}
	})
}

// addStrided sets d[x·stride] += s[x] (len(d) = (len(s)−1)·stride + 1),
// stride 1 and 2 unrolled by four (the convnet's output rows are 4 to 12
// pixels, so the loop's overhead is most of a generic loop's cost).
func addStrided[T float](d, s []T, stride int) {
	switch stride {
	case 1:
		d = d[:len(s)]
		for x, v := range s {
			d[x] += v
		}
	case 2:
		for len(s) >= 4 {
			e := d[:7]
			e[0] += s[0]
			e[2] += s[1]
			e[4] += s[2]
			e[6] += s[3]
			s = s[4:]
			d = d[min(8, len(d)):]
		}
		for x, v := range s {
			d[2*x] += v
		}
	default:
		for x, v := range s {
			d[x*stride] += v
		}
	}
}

// Flatten permutes channel-major maps into rows (or back), trials spread
// over the workers.
func (d CPU[T]) Flatten(out, in Buffer, trials, c, images, p int, inverse bool) error {
	bs, err := bufs[T](out, in)
	if err != nil {
		return err
	}
	n := c * images * p
	if err := same("flatten", trials*n, bs[0], bs[1]); err != nil {
		return err
	}
	o, x := bs[0], bs[1]
	parallel(d.w(), trials*images, units(c*p), func(lo, hi int) {
		for u := lo; u < hi; u++ {
			t, j := u/images, u%images
			rows := t*n + j*p*c // image j's row (p·c values)
			for ch := 0; ch < c; ch++ {
				maps := t*n + (ch*images+j)*p
				for i := 0; i < p; i++ {
					if inverse {
						o[maps+i] = x[rows+i*c+ch]
					} else {
						o[rows+i*c+ch] = x[maps+i]
					}
				}
			}
		}
	})
	return nil
}
