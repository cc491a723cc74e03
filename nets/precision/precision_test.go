package precision

import (
	"math"
	"math/rand/v2"
	"testing"
)

// p2 is 2^e.
func p2(e int) float64 { return math.Ldexp(1, e) }

var (
	inf    = math.Inf(1)
	negZ   = math.Copysign(0, -1)
	bfMax  = (2 - p2(-7)) * p2(127)
	tfMax  = (2 - p2(-10)) * p2(127)
	f32Max = (2 - p2(-23)) * p2(127)
)

// TestRoundHandComputed checks Round and Round32 bit for bit against
// roundings worked out by hand (and confirmed with exact rational
// arithmetic): ties to even in normal and subnormal ranges, the smallest
// subnormals, overflow at and around the largest finite number, signed
// zeros, infinities and NaN.
func TestRoundHandComputed(t *testing.T) {
	cases := []struct {
		f    Format
		x    float64
		want float64
		why  string
	}{
		// bfloat16: p = 8, quantum 2^-7 in [1, 2).
		{BFloat16, 1, 1, "exact"},
		{BFloat16, 1 + p2(-8), 1, "tie between 1 and 1+2^-7: even is 1"},
		{BFloat16, 1 + 3*p2(-8), 1 + p2(-6), "tie between 1+2^-7 (odd) and 1+2^-6 (even)"},
		{BFloat16, 1 + p2(-8) + p2(-20), 1 + p2(-7), "just above the tie"},
		{BFloat16, -(1 + p2(-8) + p2(-20)), -(1 + p2(-7)), "negative, just above the tie"},
		{BFloat16, 1.0 / 3, 0.333984375, "1/3 = 1.0101010|1010…·2^-2 rounds up"},
		{BFloat16, math.Pi, 3.140625, "pi = 1.1001001|0000111…·2: down"},
		{BFloat16, bfMax, bfMax, "largest finite"},
		{BFloat16, (2 - p2(-8) - p2(-30)) * p2(127), bfMax, "below the overflow tie"},
		{BFloat16, (2 - p2(-8)) * p2(127), inf, "overflow tie goes to the even 2^128: Inf"},
		{BFloat16, -(2 - p2(-8)) * p2(127), -inf, "negative overflow"},
		{BFloat16, f32Max, inf, "float32's largest finite overflows bf16"},
		{BFloat16, p2(-126), p2(-126), "smallest normal"},
		{BFloat16, p2(-133), p2(-133), "smallest subnormal"},
		{BFloat16, p2(-134), 0, "half the smallest subnormal: tie to even 0"},
		{BFloat16, -p2(-134), negZ, "negative tie to -0"},
		{BFloat16, p2(-134) + p2(-150), p2(-133), "just above half the smallest subnormal"},
		{BFloat16, 3 * p2(-134), p2(-132), "1.5 subnormal quanta: tie to 2"},
		{BFloat16, p2(-130) + p2(-134), p2(-130), "subnormal tie 8.5 quanta: to 8"},
		{BFloat16, p2(-130) + 3*p2(-134), p2(-130) + p2(-132), "subnormal tie 9.5 quanta: to 10"},
		{BFloat16, 1e-40, p2(-133), "1e-40 = 1.09 quanta"},
		{BFloat16, 1e-50, 0, "far below: +0"},
		{BFloat16, negZ, negZ, "-0 stays -0"},
		{BFloat16, inf, inf, "+Inf"},
		{BFloat16, -inf, -inf, "-Inf"},
		// fp16: p = 11, emin = -14, emax = 15.
		{Float16, 1 + p2(-11), 1, "tie between 1 and 1+2^-10: even is 1"},
		{Float16, 1 + 3*p2(-11), 1 + p2(-9), "tie to the even 1+2^-9"},
		{Float16, 1.0 / 3, 0.333251953125, "1/3 (0x3555)"},
		{Float16, 0.1, 0.0999755859375, "0.1 (0x2E66)"},
		{Float16, 2049, 2048, "ulp 2 above 2048: tie to even 2048"},
		{Float16, 2051, 2052, "tie to even 2052"},
		{Float16, 65504, 65504, "largest finite"},
		{Float16, 65519, 65504, "below the overflow tie"},
		{Float16, 65520, inf, "overflow tie goes to the even 65536: Inf"},
		{Float16, -65520, -inf, "negative overflow"},
		{Float16, 1e6, inf, "far above"},
		{Float16, p2(-14), p2(-14), "smallest normal"},
		{Float16, p2(-24), p2(-24), "smallest subnormal"},
		{Float16, p2(-25), 0, "half the smallest subnormal: tie to +0"},
		{Float16, -p2(-25), negZ, "tie to -0"},
		{Float16, p2(-25) + p2(-40), p2(-24), "above the tie"},
		{Float16, 3 * p2(-25), p2(-23), "1.5 quanta: tie to 2"},
		{Float16, 5 * p2(-25), p2(-23), "2.5 quanta: tie to 2"},
		{Float16, p2(-14) - p2(-25), p2(-14), "1023.5 quanta: tie to 1024 = smallest normal"},
		{Float16, 6e-8, p2(-24), "6e-8 = 1.007 quanta"},
		{Float16, 1e-8, 0, "0.17 quanta"},
		{Float16, 1e-40, 0, "a float32 subnormal"},
		{Float16, negZ, negZ, "-0"},
		// tf32: p = 11 with float32's exponents.
		{TF32, 1 + 3*p2(-11), 1 + p2(-9), "tie to even"},
		{TF32, 1.0 / 3, 0.333251953125, "1/3"},
		{TF32, 1e-40, 9 * p2(-136), "subnormal: 8.71 quanta of 2^-136"},
		{TF32, tfMax, tfMax, "largest finite"},
		{TF32, (2 - p2(-11)) * p2(127), inf, "overflow tie"},
		// float32: Go's conversion.
		{Float32, 1 + p2(-24), 1, "tie"},
		{Float32, 1 + 3*p2(-24), 1 + p2(-22), "tie to even"},
		{Float32, p2(-149), p2(-149), "smallest subnormal"},
		{Float32, p2(-150), 0, "half of it: tie to 0"},
		{Float32, 3 * p2(-150), p2(-148), "1.5 quanta: 2"},
		{Float32, (2 - p2(-24)) * p2(127), inf, "overflow tie"},
		{Float32, f32Max, f32Max, "largest finite"},
		// float64: unchanged.
		{Float64, 1.0 / 3, 1.0 / 3, "identity"},
	}
	for _, c := range cases {
		got := c.f.Round(c.x)
		if math.Float64bits(got) != math.Float64bits(c.want) {
			t.Errorf("%v.Round(%v) = %v (%#x), want %v (%#x): %s", c.f, c.x, got, math.Float64bits(got), c.want, math.Float64bits(c.want), c.why)
		}
		x32 := float32(c.x)
		if float64(x32) != c.x || c.f == Float64 {
			continue // Round32 takes float32 inputs only
		}
		got32 := c.f.Round32(x32)
		if math.Float32bits(got32) != math.Float32bits(float32(c.want)) {
			t.Errorf("%v.Round32(%v) = %v (%#x), want %v: %s", c.f, x32, got32, math.Float32bits(got32), c.want, c.why)
		}
	}
	for _, f := range Formats {
		if r := f.Round(math.NaN()); !math.IsNaN(r) {
			t.Errorf("%v.Round(NaN) = %v", f, r)
		}
		if r := f.Round32(float32(math.NaN())); r == r {
			t.Errorf("%v.Round32(NaN) = %v", f, r)
		}
		// A NaN whose payload sits only in the bits bf16 clears must not
		// turn into Inf.
		if r := f.Round32(math.Float32frombits(0x7f800001)); r == r {
			t.Errorf("%v.Round32(signalling NaN 0x7f800001) = %v, want NaN", f, r)
		}
	}
}

// TestFormatConstants checks the table of the package documentation.
func TestFormatConstants(t *testing.T) {
	cases := []struct {
		f                   Format
		max, minNorm, minSb float64
		u                   float64
	}{
		{Float32, math.MaxFloat32, p2(-126), p2(-149), p2(-24)},
		{BFloat16, bfMax, p2(-126), p2(-133), p2(-8)},
		{Float16, 65504, p2(-14), p2(-24), p2(-11)},
		{TF32, tfMax, p2(-126), p2(-136), p2(-11)},
		{Float64, math.MaxFloat64, p2(-1022), p2(-1074), p2(-53)},
	}
	for _, c := range cases {
		if c.f.MaxFinite() != c.max || c.f.SmallestNormal() != c.minNorm || c.f.SmallestSubnormal() != c.minSb || c.f.UnitRoundoff() != c.u {
			t.Errorf("%v: max %v normal %v subnormal %v u %v; want %v %v %v %v", c.f, c.f.MaxFinite(), c.f.SmallestNormal(),
				c.f.SmallestSubnormal(), c.f.UnitRoundoff(), c.max, c.minNorm, c.minSb, c.u)
		}
	}
	if u := BFloat16.Ulp(1.5); u != p2(-7) {
		t.Errorf("bf16 ulp at 1.5 = %v, want 2^-7", u)
	}
	if u := Float16.Ulp(1e-7); u != p2(-24) {
		t.Errorf("fp16 ulp at 1e-7 = %v, want 2^-24", u)
	}
}

// TestRound32MatchesRound compares the bit-operation path with the generic
// one on every float32 near the rounding boundaries of every exponent (low
// significand bits just below, at and above the half-way point, with
// random high bits) and on random bit patterns; for float32 it checks
// Round against Go's conversion.
func TestRound32MatchesRound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lows := []uint32{0, 1, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x3000, 0x7fff, 0x8000, 0x8001, 0xffff, 0x17fff, 0x18000}
	check := func(f Format, b uint32) {
		x := math.Float32frombits(b)
		got := f.Round32(x)
		want := float32(f.Round(float64(x)))
		if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("%v: Round32(%v = %#08x) = %#08x, generic %#08x", f, x, b, math.Float32bits(got), math.Float32bits(want))
		}
	}
	for _, f := range []Format{BFloat16, Float16, TF32} {
		for e := uint32(0); e < 256; e++ {
			for _, s := range []uint32{0, 1 << 31} {
				for _, lo := range lows {
					for i := 0; i < 8; i++ {
						m := (r.Uint32() &^ 0x3ffff) | lo
						if i == 0 {
							m = lo
						}
						check(f, s|e<<23|m&0x7fffff)
					}
				}
			}
		}
		for i := 0; i < 1<<18; i++ {
			check(f, r.Uint32())
		}
	}
	for i := 0; i < 1<<18; i++ {
		x := math.Float64frombits(r.Uint64())
		if math.IsNaN(x) {
			continue
		}
		got, want := Float32.Round(x), float64(float32(x))
		if math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("float32 Round(%v) = %v, Go's conversion %v", x, got, want)
		}
	}
}

// TestRoundSlice checks the slice forms against the scalar ones.
func TestRoundSlice(t *testing.T) {
	xs := []float64{1.0 / 3, -0.1, 65519, 65520, 3 * p2(-25), 1e-40, negZ}
	for _, f := range Formats {
		a64 := append([]float64(nil), xs...)
		RoundSlice(f, a64)
		a32 := make([]float32, len(xs))
		for i, x := range xs {
			a32[i] = float32(x)
		}
		RoundSlice(f, a32)
		for i, x := range xs {
			if math.Float64bits(a64[i]) != math.Float64bits(f.Round(x)) {
				t.Errorf("%v: RoundSlice float64 [%d] = %v, want %v", f, i, a64[i], f.Round(x))
			}
			if f != Float64 && math.Float32bits(a32[i]) != math.Float32bits(f.Round32(float32(x))) {
				t.Errorf("%v: RoundSlice float32 [%d] = %v, want %v", f, i, a32[i], f.Round32(float32(x)))
			}
		}
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Format
	}{{"float64", Float64}, {"FP32", Float32}, {"bfloat16", BFloat16}, {"bf16", BFloat16}, {"half", Float16}, {"tf32", TF32}} {
		if f, err := Parse(c.in); err != nil || f != c.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", c.in, f, err, c.want)
		}
	}
	if _, err := Parse("fp8"); err == nil || err.Error() != `unknown precision "fp8"; use one of float64, float32, tf32, bf16, fp16` {
		t.Errorf("Parse(fp8): %v", err)
	}
	if l, err := ParseList("float64, bf16"); err != nil || len(l) != 2 || l[1] != BFloat16 {
		t.Errorf("ParseList: %v %v", l, err)
	}
	if _, err := ParseList("bf16,bfloat16"); err == nil {
		t.Error("duplicate accepted")
	}
}

func BenchmarkRound32(b *testing.B) {
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(i)*0.001 - 2
	}
	for _, f := range []Format{BFloat16, Float16} {
		b.Run(f.String(), func(b *testing.B) {
			y := make([]float32, len(x))
			for i := 0; i < b.N; i++ {
				copy(y, x)
				RoundSlice(f, y)
			}
			b.SetBytes(int64(4 * len(x)))
		})
	}
}

// TestRoundSlice64MatchesRound checks the bit-operation path of float64
// slices against Round bitwise: every exponent of the formats' ranges and
// beyond, mantissas with the low bits at the rounding boundary (ties, one
// either side), both signs, and random values.
func TestRoundSlice64MatchesRound(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, f := range []Format{BFloat16, Float16, TF32} {
		p, _, _ := f.Params()
		k := uint(53 - p)
		var xs []float64
		for e := uint64(1023 - 160); e < 1023+140; e++ {
			for _, s := range []uint64{0, 1 << 63} {
				for _, lo := range []uint64{0, 1, 1<<(k-1) - 1, 1 << (k - 1), 1<<(k-1) + 1, 1<<k - 1, 3 << (k - 1)} {
					for i := range 4 {
						m := (r.Uint64() &^ (1<<(k+1) - 1)) | lo
						if i == 0 {
							m = lo
						}
						xs = append(xs, math.Float64frombits(s|e<<52|m&(1<<52-1)))
					}
				}
			}
		}
		for range 1 << 16 {
			xs = append(xs, math.Float64frombits(r.Uint64()))
		}
		xs = append(xs, 0, negZ, math.Inf(1), math.Inf(-1), math.NaN())
		got := append([]float64(nil), xs...)
		RoundSlice(f, got)
		for i, x := range xs {
			want := f.Round(x)
			if math.Float64bits(got[i]) != math.Float64bits(want) && !(got[i] != got[i] && want != want) {
				t.Fatalf("%v: RoundSlice(%v = %#016x) = %v, Round %v", f, x, math.Float64bits(x), got[i], want)
			}
		}
	}
}
