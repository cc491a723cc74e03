package fastmath

// gatherRowsAVX2 gathers, for rows images, the first p8 (a multiple of 8)
// of the p values of a row: dst[j·p + i] = src[j·stride + idx[i]].
//
//go:noescape
func gatherRowsAVX2(dst, src *float32, idx *int32, p8, p, rows, stride int)

// gatherStride2AVX2 is GatherStride2Rows32 for rows images whose loads
// stay within src; q4 is ow/4.
//
//go:noescape
func gatherStride2AVX2(dst, src *float32, oh, q4, rs, rows, stride int)

// gatherStride2PairsAVX2 is gatherStride2AVX2 for output rows of four
// pixels, two rows per store; pairs is half the number of output rows.
//
//go:noescape
func gatherStride2PairsAVX2(dst, src *float32, pairs, rs, rows, stride int)

// addStride2AVX2 is AddStride2Rows32 for rows images whose stores stay
// within dst; q4 is ow/4.
//
//go:noescape
func addStride2AVX2(dst, src *float32, oh, q4, rs, rows, stride int)
