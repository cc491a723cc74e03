//go:build !amd64

package graph

func hvAddPatch10(dst, src *float32, stride, row uintptr) { panic("graph: no patch add kernel") }
