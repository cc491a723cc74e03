package graph

// peHavePatchCopy selects the assembly patch copies of
// hvp_copy_amd64.s (SSE2, every amd64 CPU).
var peHavePatchCopy = true

// peCopyPatch10 copies the 5×5 patch of 10-float pixels at src to 250
// consecutive floats at dst in (ky, kx, c) order; pixel (ky, kx) starts at
// byte offset ky·row + kx·stride from src. The caller checks the bounds.
//
//go:noescape
func peCopyPatch10(dst, src *float32, stride, row uintptr)

// peCopyPatch5 copies n 5×5 patches of floats: patch j starts at byte
// offset j·srcStride from src (rows row bytes apart) and goes to 25
// consecutive floats at byte offset j·dstStride from dst. The caller checks
// the bounds.
//
//go:noescape
func peCopyPatch5(dst, src *float32, row, n, dstStride, srcStride uintptr)
