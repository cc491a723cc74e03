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

// col2im sets every image pixel to the sum of the patch values that read
// it, each (trial, channel) plane by one worker. Channel-major float32
// maps of a stride-2 convolution with output rows of a multiple of four
// pixels take fastmath.AddStride2Rows32, an AVX2 scatter of each patch
// row; the others a gather through a table
// of the (row, position) pairs that read each pixel of a plane, in
// increasing row (ky, kx), so a pixel's sum is 0 + its values in the
// order of the scatter of patches (bitwise the same), four images at a
// time so that eight sums progress together.
func col2im[T float](w int, c Conv, images, cols []T) {
	oh, ow := c.Out()
	p := oh * ow
	q := c.Images * p
	ss := c.Size * c.Size
	f := c.C * ss
	sT, sJ, sC := c.strides()
	plane := c.H * c.W
	// start[pix]..start[pix+1] index src: k·q + position, by increasing k.
	start := make([]int32, plane+1)
	for k := 0; k < ss; k++ {
		ky, kx := k/c.Size, k%c.Size
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				start[(y*c.Stride+ky)*c.W+x*c.Stride+kx+1]++
			}
		}
	}
	for i := 1; i <= plane; i++ {
		start[i] += start[i-1]
	}
	src := make([]int32, start[plane])
	fill := append([]int32(nil), start[:plane]...)
	for k := 0; k < ss; k++ {
		ky, kx := k/c.Size, k%c.Size
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				pix := (y*c.Stride+ky)*c.W + x*c.Stride + kx
				src[fill[pix]] = int32(k*q + y*ow + x)
				fill[pix]++
			}
		}
	}
	c32, _ := any(cols).([]float32)
	i32, _ := any(images).([]float32)
	scatter := c32 != nil && c.CBHW && c.Stride == 2 && ow%4 == 0
	parallel(w, c.Trials*c.C, units(c.Images*plane*ss), func(lo, hi int) {
		for u := lo; u < hi; u++ {
			t, ch := u/c.C, u%c.C
			if scatter {
				// The patch rows added back in increasing row (ky, kx):
				// every pixel the same sum, bitwise, as the gather below.
				out := i32[t*sT+ch*sC:][:c.Images*plane]
				clear(out)
				for k := range ss {
					at := (k/c.Size)*c.W + k%c.Size
					row := c32[(t*f+ch*ss+k)*q:][:q]
					fastmath.AddStride2Rows32(out[at:], row, oh, ow, 2*c.W, c.Images, sJ)
				}
				continue
			}
			rows := cols[(t*f+ch*ss)*q : (t*f+ch*ss+ss)*q]
			out := images[t*sT+ch*sC:]
			j := 0
			// Eight images at a time: eight independent sums per pixel
			// (one sum's additions wait for each other).
			for ; j+8 <= c.Images; j += 8 {
				from := rows[j*p:]
				var d [8][]T
				for i := range d {
					d[i] = out[(j+i)*sJ:][:plane]
				}
				for pix := range d[0] {
					var s0, s1, s2, s3, s4, s5, s6, s7 T
					for _, o := range src[start[pix]:start[pix+1]] {
						v := from[int(o):][:7*p+1]
						s0 += v[0]
						s1 += v[p]
						s2 += v[2*p]
						s3 += v[3*p]
						s4 += v[4*p]
						s5 += v[5*p]
						s6 += v[6*p]
						s7 += v[7*p]
					}
					d[0][pix], d[1][pix], d[2][pix], d[3][pix] = s0, s1, s2, s3
					d[4][pix], d[5][pix], d[6][pix], d[7][pix] = s4, s5, s6, s7
				}
			}
			for ; j < c.Images; j++ {
				from, dst := rows[j*p:], out[j*sJ:][:plane]
				for pix := range dst {
					var sum T
					for _, o := range src[start[pix]:start[pix+1]] {
						sum += from[o]
					}
					dst[pix] = sum
				}
			}
		}
	})
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
