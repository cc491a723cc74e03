package kernels

import (
	"math/rand/v2"
	"testing"

	"github.com/perturb/perturb/nets/precision"
)

// TestTF32Products checks the TF32 emulation on the float32 CPU twin: a
// strided-batched product (both operands transposed, beta ≠ 0) equals the
// strict product of operands rounded to TF32 on the host, bit for bit,
// and differs from the strict product of the unrounded ones; the operands
// are left unrounded; SetTF32(false) makes the products strict again.
func TestTF32Products(t *testing.T) {
	cpu := NewCPU(F32)
	tf := TF32Products(NewCPU(F32))
	defer tf.Close()
	g := Gemm{Batch: 3, M: 5, N: 4, K: 7, TransA: true, TransB: true, Alpha: 1.5, Beta: 0.5}.Strided()
	r := rand.New(rand.NewPCG(1, 2))
	vals := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	a, b, c := vals(g.Batch*g.M*g.K), vals(g.Batch*g.K*g.N), vals(g.Batch*g.M*g.N)
	product := func(dev Device, a, b []float32) (out, aAfter []float64) {
		t.Helper()
		bufs := make([]Buffer, 3)
		for i, v := range [][]float32{a, b, c} {
			var err error
			if bufs[i], err = dev.Alloc(len(v)); err != nil {
				t.Fatal(err)
			}
			if err := dev.Upload32(bufs[i], 0, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := dev.Gemm(g, bufs[2], bufs[0], bufs[1]); err != nil {
			t.Fatal(err)
		}
		out, aAfter = make([]float64, len(c)), make([]float64, len(a))
		if err := dev.Download(out, bufs[2], 0); err != nil {
			t.Fatal(err)
		}
		if err := dev.Download(aAfter, bufs[0], 0); err != nil {
			t.Fatal(err)
		}
		for _, x := range bufs {
			dev.Free(x)
		}
		return out, aAfter
	}
	ra, rb := append([]float32(nil), a...), append([]float32(nil), b...)
	precision.RoundSlice(precision.TF32, ra)
	precision.RoundSlice(precision.TF32, rb)
	want, _ := product(cpu, ra, rb)
	strict, _ := product(cpu, a, b)
	got, aAfter := product(tf, a, b)
	differs := false
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("element %d: %v, want %v (the product of the rounded operands)", i, got[i], want[i])
		}
		differs = differs || got[i] != strict[i]
	}
	if !differs {
		t.Fatal("the tf32 product equals the strict float32 product")
	}
	for i, v := range aAfter {
		if v != float64(a[i]) {
			t.Fatalf("operand A changed at %d: %v, was %v", i, v, a[i])
		}
	}
	if ok, err := tf.SetTF32(false); !ok || err != nil {
		t.Fatalf("SetTF32(false): %v, %v", ok, err)
	}
	off, _ := product(tf, a, b)
	for i := range off {
		if off[i] != strict[i] {
			t.Fatalf("with the switch off, element %d: %v, want %v", i, off[i], strict[i])
		}
	}
}
