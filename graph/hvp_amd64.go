package graph

// hvAddPatch10 adds 250 consecutive floats at src, in (ky, kx, c) order,
// to the 5×5 patch of 10-float pixels at dst, pixel (ky, kx) at byte
// offset ky·row + kx·stride from dst (the adjoint of peCopyPatch10). The
// caller checks the bounds.
//
//go:noescape
func hvAddPatch10(dst, src *float32, stride, row uintptr)
