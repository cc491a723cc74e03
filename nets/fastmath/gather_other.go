//go:build !amd64

package fastmath

func gatherRowsAVX2(dst, src *float32, idx *int32, p8, p, rows, stride int) {
	panic("fastmath: no AVX2 kernel on this architecture")
}

func gatherStride2AVX2(dst, src *float32, oh, q4, rs, rows, stride int) {
	panic("fastmath: no AVX2 kernel on this architecture")
}

func gatherStride2PairsAVX2(dst, src *float32, pairs, rs, rows, stride int) {
	panic("fastmath: no AVX2 kernel on this architecture")
}

func addStride2AVX2(dst, src *float32, oh, q4, rs, rows, stride int) {
	panic("fastmath: no AVX2 kernel on this architecture")
}
