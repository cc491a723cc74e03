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
// convolution whose output rows have ow pixels, ow a multiple of 4: for
// every image j < rows, output row y < len(rowOff) and x < ow,
// dst[(j·len(rowOff) + y)·ow + x] = src[j·stride + rowOff[y] + 2x]. With
// AVX2 four pixels take one load and one permutation (VPERMPS) where the
// gather instruction takes one per pixel; a load reads one value past the
// row's last pixel, so an image whose reads would pass the end of src is
// copied in Go.
func GatherStride2Rows32(dst, src []float32, rowOff []int32, ow, rows, stride int) {
	oh := len(rowOff)
	if rows == 0 || oh == 0 || ow == 0 {
		return
	}
	p := oh * ow
	_ = dst[rows*p-1]
	maxOff := 0
	for _, o := range rowOff {
		maxOff = max(maxOff, int(o))
	}
	fast := 0
	if HaveAVX2 && ow%4 == 0 {
		// images whose last load (8 values from maxOff + 2·ow − 8) stays
		// within src
		fast = min(rows, max((len(src)-(maxOff+2*ow))/max(stride, 1)+1, 0))
		if stride == 0 && maxOff+2*ow > len(src) {
			fast = 0
		}
		switch {
		case fast > 0 && ow == 4 && oh%2 == 0 && evenlySpaced(rowOff):
			// two output rows of four pixels per 8-wide store
			rs := 0
			if oh > 1 {
				rs = int(rowOff[1] - rowOff[0])
			}
			gatherStride2PairsAVX2(&dst[0], &src[int(rowOff[0])], oh/2, rs, fast, stride)
		case fast > 0:
			gatherStride2AVX2(&dst[0], &src[0], &rowOff[0], oh, ow/4, fast, stride)
		}
	}
	for j := fast; j < rows; j++ {
		for y, o := range rowOff {
			s := src[j*stride+int(o):]
			d := dst[(j*oh+y)*ow : (j*oh+y+1)*ow]
			for x := range d {
				d[x] = s[2*x]
			}
		}
	}
}

// evenlySpaced reports whether o is an arithmetic progression.
func evenlySpaced(o []int32) bool {
	for i := 2; i < len(o); i++ {
		if o[i]-o[i-1] != o[1]-o[0] {
			return false
		}
	}
	return true
}
