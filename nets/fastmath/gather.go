package fastmath

// GatherRows32 sets dst[j·p + i] = src[j·stride + idx[i]] for every image
// j < rows and i < p: the gather of im2col, one patch row of rows images
// through an offsets table. With AVX2 the multiples of 8 of each row go
// through VGATHERDPS, the rest in Go; the values are copied, so the result
// is bitwise that of the loop. The caller guarantees that every index is
// within src.
func GatherRows32(dst, src []float32, idx []int32, rows, stride int) {
	p := len(idx)
	if rows == 0 || p == 0 {
		return
	}
	_ = dst[rows*p-1]
	_ = src[(rows-1)*stride]
	p8 := 0
	if HaveAVX2 {
		p8 = p &^ 7
		if p8 > 0 {
			gatherRowsAVX2(&dst[0], &src[0], &idx[0], p8, p, rows, stride)
		}
	}
	if p8 == p {
		return
	}
	for j := 0; j < rows; j++ {
		s := src[j*stride:]
		d := dst[j*p : (j+1)*p]
		for i := p8; i < p; i++ {
			d[i] = s[idx[i]]
		}
	}
}

// GatherStride2Rows32 is GatherRows32 for the gather of a stride-2
// convolution with oh output rows of ow pixels (ow a multiple of 4), rs
// values apart in src: for every image j < rows, y < oh and x < ow,
// dst[(j·oh + y)·ow + x] = src[j·stride + y·rs + 2x]. With AVX2 four
// pixels take one load and one permutation (VPERMPS) where the gather
// instruction takes one per pixel; a load reads one value past a row's
// last pixel, so the images whose reads would pass the end of src are
// copied in Go.
func GatherStride2Rows32(dst, src []float32, oh, ow, rs, rows, stride int) {
	p := oh * ow
	if rows == 0 || p == 0 {
		return
	}
	_ = dst[rows*p-1]
	fast := stride2Fast(len(src), oh, ow, rs, rows, stride)
	if fast > 0 {
		if ow == 4 && oh%2 == 0 { // two output rows per 8-wide store
			gatherStride2PairsAVX2(&dst[0], &src[0], oh/2, rs, fast, stride)
		} else {
			gatherStride2AVX2(&dst[0], &src[0], oh, ow/4, rs, fast, stride)
		}
	}
	for j := fast; j < rows; j++ {
		for y := range oh {
			s := src[j*stride+y*rs:]
			d := dst[(j*oh+y)*ow : (j*oh+y+1)*ow]
			for x := range d {
				d[x] = s[2*x]
			}
		}
	}
}

// AddStride2Rows32 is the adjoint of GatherStride2Rows32: for every image
// j < rows, y < oh and x < ow, dst[j·stride + y·rs + 2x] +=
// src[(j·oh + y)·ow + x], the images and rows in increasing order. With
// AVX2 (ow a multiple of 4) four values take one load and two
// interleaves, and eight values of dst one load, add and store: the
// pixels between those added to (and the one after a row's last) get +0
// added, which keeps every value but −0 (a sum that starts from +0 is
// never −0). Those stores pass a row's last pixel by one value, so the
// images whose stores would pass the end of dst are added in Go, and the
// caller must own dst up to its end (no other goroutine may touch it).
func AddStride2Rows32(dst, src []float32, oh, ow, rs, rows, stride int) {
	p := oh * ow
	if rows == 0 || p == 0 {
		return
	}
	_ = src[rows*p-1]
	fast := stride2Fast(len(dst), oh, ow, rs, rows, stride)
	if fast > 0 {
		addStride2AVX2(&dst[0], &src[0], oh, ow/4, rs, fast, stride)
	}
	for j := fast; j < rows; j++ {
		for y := range oh {
			d := dst[j*stride+y*rs:]
			s := src[(j*oh+y)*ow : (j*oh+y+1)*ow]
			for x, v := range s {
				d[2*x] += v
			}
		}
	}
}

// stride2Fast is the number of images (rows of them, stride apart) of a
// stride-2 patch row whose AVX2 accesses, eight values ending one past a
// row's last pixel, stay within the n values of the image slice: 0
// without AVX2 or for rows of other than a multiple of 4 pixels.
func stride2Fast(n, oh, ow, rs, rows, stride int) int {
	need := (oh-1)*rs + 2*ow
	if !HaveAVX2 || ow%4 != 0 || need > n {
		return 0
	}
	if stride > 0 {
		return min(rows, (n-need)/stride+1)
	}
	return rows
}
