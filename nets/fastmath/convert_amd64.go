package fastmath

// narrowAVX converts n float64 at src to float32 at dst; n is a multiple
// of 16.
//
//go:noescape
func narrowAVX(dst *float32, src *float64, n int)

// widenAVX converts n float32 at src to float64 at dst; n is a multiple
// of 16.
//
//go:noescape
func widenAVX(dst *float64, src *float32, n int)
