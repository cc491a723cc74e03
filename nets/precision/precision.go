// Package precision rounds real numbers to the binary floating-point
// formats perturb computes or emulates in: IEEE 754 binary64 (float64),
// binary32 (float32), binary16 (float16, "fp16") and Google's bfloat16
// ("bf16"), and NVIDIA's TF32 (the inputs of tensor-core products).
//
// # Formats
//
// A binary format with p significand bits (the implicit leading bit
// included) and exponent range [emin, emax] represents 0, ±Inf, NaN and
//
//	x = ±m · 2^(e−p+1),   m integer, 0 ≤ m < 2^p,   emin ≤ e ≤ emax,
//
// with m ≥ 2^(p−1) (normal numbers) unless e = emin (subnormal numbers
// below 2^emin). The spacing of the representable numbers (one unit in the
// last place) in the binade [2^e, 2^(e+1)) is 2^(e−p+1); below 2^emin it is
// the constant 2^(emin−p+1), the smallest subnormal.
//
//	format    p    emin    emax   largest finite        smallest subnormal
//	float64   53   −1022   1023   1.80e308              4.9e−324
//	float32   24   −126    127    3.4028235e38          1.4e−45
//	tf32      11   −126    127    3.4011621e38          1.1e−41 (2^−136)
//	bf16      8    −126    127    3.3895314e38          9.2e−41 (2^−133)
//	fp16      11   −14     15     65504                 5.96e−8 (2^−24)
//
// # Rounding
//
// Round rounds to nearest, ties to even (the IEEE default): with
// e = max(floor(log2 |x|), emin) and the quantum q = 2^(e−p+1),
//
//	round(x) = q · RoundToEven(x / q)
//
// where x/q and the final product are exact (scaling by a power of two),
// so the only rounding is RoundToEven's, which is exact in float64. A
// result beyond the largest finite number M = (2 − 2^(1−p)) · 2^emax is
// ±Inf: the rounding in binade emax gives at most 2^(emax+1) (when x ≥
// M + q/2, the tie going to the even 2^(emax+1)), so overflow is exactly
// the IEEE rule. Zeros keep their sign (RoundToEven(−0.3) = −0), NaN stays
// NaN and ±Inf stay ±Inf. Values that round to zero keep their sign too.
//
// Round32 does the same for float32 inputs with bit operations (about 1 ns
// a value), for the emulated formats that are subsets of float32:
//
//   - bf16 is float32 with the low 16 significand bits cleared, so adding
//     0x7FFF plus the lowest kept bit to the bit pattern and truncating
//     rounds to nearest even (a carry into the exponent is the next
//     binade, or Inf from the largest binade), subnormals included;
//   - tf32 likewise with the low 13 bits;
//   - fp16 normal numbers (|x| ≥ 2^−14) round like tf32 and overflow to
//     Inf above 65504; below 2^−14 the quantum is 2^−24 and
//     float32(|x|·2^24 + 2^23) − 2^23 rounds |x|·2^24 < 2^10 to the
//     nearest even integer (float32 spacing at 2^23 is 1).
//
// Both paths are tested bit for bit against hand-computed roundings and
// against each other.
package precision

import (
	"fmt"
	"math"
	"strings"
)

// Format is a binary floating-point format.
type Format int

// The formats, from widest to narrowest significand.
const (
	Float64 Format = iota
	Float32
	TF32
	BFloat16
	Float16
)

// Formats lists every format, widest first.
var Formats = []Format{Float64, Float32, TF32, BFloat16, Float16}

var names = map[Format]string{Float64: "float64", Float32: "float32", TF32: "tf32", BFloat16: "bf16", Float16: "fp16"}

// String is the format's short name: float64, float32, tf32, bf16, fp16.
func (f Format) String() string {
	if n, ok := names[f]; ok {
		return n
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// MarshalText writes the short name (for JSON keys and values).
func (f Format) MarshalText() ([]byte, error) {
	if _, ok := names[f]; !ok {
		return nil, fmt.Errorf("precision: unknown format %d", int(f))
	}
	return []byte(f.String()), nil
}

// UnmarshalText reads a name accepted by Parse.
func (f *Format) UnmarshalText(b []byte) error {
	g, err := Parse(string(b))
	if err != nil {
		return err
	}
	*f = g
	return nil
}

// Parse reads a format name: float64, float32, tf32, bf16 (or bfloat16),
// fp16 (or float16, half).
func Parse(name string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "float64", "fp64", "double":
		return Float64, nil
	case "float32", "fp32", "single":
		return Float32, nil
	case "tf32":
		return TF32, nil
	case "bf16", "bfloat16":
		return BFloat16, nil
	case "fp16", "float16", "half":
		return Float16, nil
	}
	return 0, fmt.Errorf("unknown precision %q; use one of float64, float32, tf32, bf16, fp16", name)
}

// ParseList reads a comma-separated list of format names, refusing
// duplicates.
func ParseList(list string) ([]Format, error) {
	var out []Format
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		f, err := Parse(s)
		if err != nil {
			return nil, err
		}
		for _, g := range out {
			if g == f {
				return nil, fmt.Errorf("precision %s listed twice in %q; remove the duplicate", f, list)
			}
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty precision list %q; list at least one of float64, float32, tf32, bf16, fp16", list)
	}
	return out, nil
}

// Params returns the significand bits p (implicit bit included) and the
// exponent range [emin, emax] of f.
func (f Format) Params() (p, emin, emax int) {
	switch f {
	case Float64:
		return 53, -1022, 1023
	case Float32:
		return 24, -126, 127
	case TF32:
		return 11, -126, 127
	case BFloat16:
		return 8, -126, 127
	case Float16:
		return 11, -14, 15
	}
	panic(fmt.Sprintf("precision: unknown format %d", int(f)))
}

// UnitRoundoff is 2^−p, the largest relative error of rounding a normal
// number to f (half the machine epsilon 2^(1−p)).
func (f Format) UnitRoundoff() float64 {
	p, _, _ := f.Params()
	return math.Ldexp(1, -p)
}

// MaxFinite is the largest finite number of f, (2 − 2^(1−p)) · 2^emax.
func (f Format) MaxFinite() float64 {
	p, _, emax := f.Params()
	return (2 - math.Ldexp(1, 1-p)) * math.Ldexp(1, emax)
}

// SmallestNormal is 2^emin.
func (f Format) SmallestNormal() float64 {
	_, emin, _ := f.Params()
	return math.Ldexp(1, emin)
}

// SmallestSubnormal is 2^(emin−p+1).
func (f Format) SmallestSubnormal() float64 {
	p, emin, _ := f.Params()
	return math.Ldexp(1, emin-p+1)
}

// Ulp is the spacing of f's numbers at x: 2^(max(floor(log2|x|), emin)−p+1)
// (the quantum Round uses), for finite non-zero x; the smallest subnormal
// for x = 0.
func (f Format) Ulp(x float64) float64 {
	p, emin, _ := f.Params()
	e := emin
	if x != 0 && !math.IsInf(x, 0) && !math.IsNaN(x) {
		e = max(math.Ilogb(x), emin)
	}
	return math.Ldexp(1, e-p+1)
}

// Round rounds x to the nearest number of f, ties to even, overflowing to
// ±Inf (see the package documentation). Float64 returns x unchanged.
func (f Format) Round(x float64) float64 {
	if f == Float64 || x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	p, emin, emax := f.Params()
	e := max(math.Ilogb(x), emin)
	q := math.Ldexp(1, e-p+1)
	r := math.RoundToEven(x/q) * q
	if math.Abs(r) > (2-math.Ldexp(1, 1-p))*math.Ldexp(1, emax) {
		return math.Copysign(math.Inf(1), x)
	}
	return r
}

// Round32 rounds a float32 to f (f no wider than float32), ties to even,
// with bit operations; it equals float32(f.Round(float64(x))) for every x
// (tested). Float64 and Float32 return x.
func (f Format) Round32(x float32) float32 {
	switch f {
	case Float64, Float32:
		return x
	case BFloat16:
		return roundBits(x, 16)
	case TF32:
		return roundBits(x, 13)
	case Float16:
		return roundHalf(x)
	}
	panic(fmt.Sprintf("precision: unknown format %d", int(f)))
}

// RoundBF16 rounds a float32 to bfloat16 (BFloat16.Round32, inlinable).
func RoundBF16(x float32) float32 { return roundBits(x, 16) }

// RoundFP16 rounds a float32 to float16 (Float16.Round32).
func RoundFP16(x float32) float32 { return roundHalf(x) }

// roundBits clears the low k significand bits of x, rounding to nearest
// even; NaN stays a (quiet) NaN.
func roundBits(x float32, k uint) float32 {
	b := math.Float32bits(x)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it quiet and a NaN after truncation
		return math.Float32frombits(b | 0x00400000)
	}
	half := uint32(1)<<(k-1) - 1
	b += half + (b>>k)&1
	return math.Float32frombits(b &^ (uint32(1)<<k - 1))
}

const (
	halfMax       = 65504       // largest finite fp16
	halfMinNormal = 1.0 / 16384 // 2^−14
	two24         = 16777216    // 2^24
	two23         = 8388608     // 2^23
	twoM24        = 1.0 / two24 // 2^−24
)

// roundHalf rounds x to fp16 (returned as a float32).
func roundHalf(x float32) float32 {
	b := math.Float32bits(x)
	sign, a := b&0x80000000, b&0x7fffffff
	switch {
	case a > 0x7f800000: // NaN
		return math.Float32frombits(b | 0x00400000)
	case a >= 0x38800000: // |x| ≥ 2^−14: clear 13 bits, overflow above 65504
		a += 0xfff + (a>>13)&1
		a &^= 0x1fff
		if a > 0x477fe000 {
			a = 0x7f800000
		}
		return math.Float32frombits(sign | a)
	default:
		// |x|·2^24 < 2^10 is exact; adding 2^23 rounds it to the nearest
		// even integer, subtracting it back and scaling are exact.
		t := float32(math.Float32frombits(a) * two24)
		t = float32(t + two23)
		t = float32(t - two23)
		return math.Float32frombits(sign | math.Float32bits(t*twoM24))
	}
}

// RoundSlice rounds every element of x to f in place (float32 or float64
// slices). Float64 leaves x unchanged; Float32 is a no-op on []float32.
func RoundSlice[T float32 | float64](f Format, x []T) {
	switch x := any(x).(type) {
	case []float32:
		switch f {
		case Float64, Float32:
		case BFloat16:
			for i, v := range x {
				x[i] = roundBits(v, 16)
			}
		case TF32:
			for i, v := range x {
				x[i] = roundBits(v, 13)
			}
		case Float16:
			for i, v := range x {
				x[i] = roundHalf(v)
			}
		default:
			panic(fmt.Sprintf("precision: unknown format %d", int(f)))
		}
	case []float64:
		switch f {
		case Float64:
			return
		case Float32:
			for i, v := range x {
				x[i] = float64(float32(v))
			}
			return
		}
		roundSlice64(f, x)
	}
}

// roundSlice64 is RoundSlice on float64 values for a format narrower than
// float32: values in the format's normal range are rounded with bit
// operations on the float64 (clear 53 − p significand bits, ties to even,
// Inf past the largest finite value), which is f.Round's result (tested);
// the others (subnormal in f, zero, NaN, Inf) go through f.Round.
func roundSlice64(f Format, x []float64) {
	p, emin, emax := f.Params()
	k := uint(53 - p)
	half, mask := uint64(1)<<(k-1)-1, uint64(1)<<k-1
	lo := math.Ldexp(1, emin)
	top := (2 - math.Ldexp(1, 1-p)) * math.Ldexp(1, emax)
	for i, v := range x {
		if a := math.Abs(v); a >= lo && a <= 2*top {
			b := math.Float64bits(v)
			b += half + (b>>k)&1
			r := math.Float64frombits(b &^ mask)
			if math.Abs(r) > top {
				r = math.Copysign(math.Inf(1), v)
			}
			x[i] = r
			continue
		}
		x[i] = f.Round(v)
	}
}
