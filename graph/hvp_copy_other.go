//go:build !amd64

package graph

var peHavePatchCopy = false

func peCopyPatch10(dst, src *float32, stride, row uintptr) { panic("graph: no patch copy kernel") }

func peCopyPatch5(dst, src *float32, row, n, dstStride, srcStride uintptr) {
	panic("graph: no patch copy kernel")
}
