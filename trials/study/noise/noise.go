// Package noise measures the floating-point noise of the full-pool loss
// and of its gradient in float64, float32 and emulated bfloat16 and
// float16: noise floors and crossovers of the second difference, the
// distribution of the noise, its growth with width and depth, per-layer
// gradient errors, and the drift of SGD trained in a low precision.
//
// The losses and gradients come from an Evaluator (engine.go): by default
// the model's batched graph run by graph's walker on the CPU device in
// float64 or float32, and for bf16 and fp16 on kernels.Rounding of the
// float32 device, which rounds every kernel's output to the format (the
// rule is in kernels.Rounding's documentation). The tests check the
// walker's rounded losses against a scalar reference that rounds every
// value (scalar_test.go); the hand-written nets/emulate, once the second
// engine and the reference, is retired.
//
// # The second difference and its reference
//
// Along a unit direction v at θ, with the loss f_P computed in precision P
// at the parameters rounded to P,
//
//	D_P(h) = f_P(θ) − 2 f_P(θ + h v) + f_P(θ + 2h v)
//	       = h² f''(θ; v) + h³ f'''(θ; v) + (7/12) h⁴ f''''(θ; v) + … + rounding noise
//
// (Taylor: the coefficient of h^k f^(k)/k! is 0 − 2 + 2^k). For P below
// float64 the reference is the float64 D_64(h) of the same quantity; for
// float64 itself it is the smooth part of D_64, a least-squares fit
// D_64(h) ≈ h² (a + b h + c h² + d h³) per direction over the grid points
// with 1e-5 ≤ h ≤ 1e-2 (where D_64's relative noise is below ~1e-5 and the
// cubic in h absorbs the truncation), so float64's noise is reported for
// h < 1e-5 only. The fitted a is the curvature f”(θ; v).
//
// # Reported per precision
//
//   - Noise(h): the root mean square over the directions of D_P(h) − ref(h)
//     (the standard deviation of the difference, whose mean is zero);
//   - Signal(h): the root mean square of the reference, ≈ h²·rms f”;
//   - Floor: the median of Noise(h) over the noise-dominated grid points
//     (Noise > Signal) where the perturbation survives rounding
//     (Moved(h) ≥ 0.5, see below; failing that, Moved ≥ 0.05 with
//     Quantised set; NaN when there is none); Crossover: the
//     h above which Signal exceeds Noise at every grid point (log-linear
//     interpolation between grid points), and CrossoverFormula = sqrt(Floor / rms f”), where h² rms f”
//     equals the floor;
//   - Moved(h): the mean fraction of parameters whose rounded value
//     changes when h v is added (1 in float64 down to tiny h; small when h
//     is below the format's resolution, where D_P is mostly exactly 0: the
//     "parameter quantisation" regime);
//   - the distribution of the errors at the floor's grid points divided by
//     the floor: skewness, excess kurtosis, the Jarque–Bera statistic and
//     its p-value (χ² with 2 degrees of freedom: p = exp(−JB/2)), the
//     fraction of exact zeros, and a verdict: "quantisation" when most
//     errors are exact zeros or they take few distinct values (fewer than
//     a quarter of them), "gaussian" when the Jarque–Bera p-value is at
//     least 0.01, "non-gaussian" otherwise.
//
// The f_P(θ) of a direction enters every D_P(h) of that direction, so the
// errors of one direction are correlated across h; the distribution pools
// them anyway (the test is then somewhat liberal).
package noise

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/precision"
	"github.com/perturb/perturb/nets/seed"
)

// DirectionStream is the seed purpose of the scan's random directions.
const DirectionStream = "perturb/noise-direction/v1"

// Settings of a scan. Zero values select the defaults.
type Settings struct {
	// Directions is the number of random unit directions (default 10).
	Directions int
	// HMin, HMax and Steps give the log grid of h (default 1e-9, 1e-1, 40).
	HMin, HMax float64
	Steps      int
	// Precisions to measure (float64 is always computed, as the
	// reference); default float64, float32, bf16, fp16.
	Precisions []precision.Format
	// Seed keys the directions (with the model and the initialisation).
	Seed uint64
	// Workers for the evaluators (default: one per CPU).
	Workers int
	// Batch is the number of perturbed parameter vectors evaluated per
	// call, besides θ itself (default: 256, fewer for models above 32,768
	// parameters, so that a batch takes at most about 128 MiB).
	Batch int `json:"batch,omitempty"`
	// Engine computes the losses and gradients (default EngineAuto: the
	// walker on the rounding device).
	Engine Engine `json:"engine,omitempty"`
	// Device is a GPU (a float32 device) for tf32: the walker runs tf32
	// on it with cuBLAS's TF32 tensor-core products (NewEvaluatorOn).
	// Nil: tf32 is the CPU emulation (kernels.TF32Products). The other
	// precisions run on the CPU either way.
	Device kernels.Device `json:"-"`
}

func (s *Settings) defaults() {
	if s.Directions == 0 {
		s.Directions = 10
	}
	if s.HMin == 0 {
		s.HMin = 1e-9
	}
	if s.HMax == 0 {
		s.HMax = 1e-1
	}
	if s.Steps == 0 {
		s.Steps = 40
	}
	if len(s.Precisions) == 0 {
		s.Precisions = []precision.Format{precision.Float64, precision.Float32, precision.BFloat16, precision.Float16}
	}
}

// Check reports settings a scan cannot use.
func (s Settings) Check() error {
	s.defaults()
	switch {
	case s.Directions < 2:
		return fmt.Errorf("%d directions: need at least 2 for a standard deviation", s.Directions)
	case !(s.HMin > 0) || !(s.HMax > s.HMin) || math.IsInf(s.HMax, 0):
		return fmt.Errorf("h range [%g, %g]: need 0 < hmin < hmax, finite", s.HMin, s.HMax)
	case s.Steps < 2:
		return fmt.Errorf("%d h values: need at least 2", s.Steps)
	}
	if s.Engine != EngineAuto && s.Engine != EngineWalker {
		return fmt.Errorf("engine %q: want walker (nets/emulate is retired)", s.Engine)
	}
	return nil
}

// Grid returns the log grid of h: Steps values from HMin to HMax.
func (s Settings) Grid() []float64 {
	s.defaults()
	hs := make([]float64, s.Steps)
	for i := range hs {
		hs[i] = s.HMin * math.Pow(s.HMax/s.HMin, float64(i)/float64(s.Steps-1))
	}
	return hs
}

// Examples are the examples a scan averages the loss over.
type Examples struct {
	X []float64 // rows of Dim normalised values
	Y []uint8
	// Desc says which examples these are ("the 10,000 test images").
	Desc string
}

// Scan is the result of one model at one initialisation.
type Scan struct {
	Model    string    `json:"model"`
	Width    int       `json:"width,omitempty"`
	Depth    int       `json:"depth,omitempty"`
	Init     int       `json:"init"`
	Params   int       `json:"params"`
	Examples int       `json:"examples"`
	H        []float64 `json:"h"`
	// Curvature[v] is f''(θ; v), fitted from float64 (see the package doc).
	Curvature []float64 `json:"curvature"`
	// Signal[i] is the rms over directions of the reference D(h_i).
	Signal     []float64 `json:"signal"`
	Precisions []Result  `json:"precisions"`
	Seconds    float64   `json:"seconds"`
	// Evaluations is the number of full loss evaluations.
	Evaluations int `json:"evaluations"`
	// Engine is what computed the losses (walker; emulate in scans made
	// before nets/emulate was retired).
	Engine Engine `json:"engine,omitempty"`
}

// Result is one precision's noise.
type Result struct {
	Format precision.Format `json:"format"`
	// Device says what computed a tf32 scan: cuBLAS's TF32 tensor-core
	// products on a GPU, or the emulation (kernels.TF32Products).
	Device string `json:"device,omitempty"`
	// Loss is f_P(θ).
	Loss float64 `json:"loss"`
	// LossBias and LossNoise are the mean and the standard deviation of
	// f_P − f_64 over every evaluated point (NaN for float64).
	LossBias  float64 `json:"loss_bias"`
	LossNoise float64 `json:"loss_noise"`
	// Quantised reports that the floor comes from grid points where most
	// parameters do not change under rounding (no point with Moved ≥ 0.5
	// is noise-dominated).
	Quantised bool `json:"quantised,omitempty"`
	// Noise[i] is the rms of D_P(h_i) − ref(h_i) (NaN where there is no
	// reference: float64 above 1e-5).
	Noise []float64 `json:"noise"`
	// Moved[i] is the mean fraction of parameters that change.
	Moved []float64 `json:"moved"`
	Floor float64   `json:"floor"`
	// RoundingFloor is the floor the rounding of the parameters alone
	// would give: √6 · sqrt(Σ_i g_i² ulp_P(θ_i)²/12), with g the float64
	// gradient at θ (each of D's three points rounds θ + jhv to P,
	// independently, moving the loss by g·δθ with δθ_i uniform within
	// half an ulp).
	RoundingFloor    float64      `json:"rounding_floor"`
	Crossover        float64      `json:"crossover"`
	CrossoverFormula float64      `json:"crossover_formula"`
	Dist             Distribution `json:"distribution"`
	// Errors[v][i] is D_P(h_i) − ref(h_i) of direction v.
	Errors [][]float64 `json:"errors"`
}

// Distribution summarises the errors at the floor's grid points divided by
// the floor.
type Distribution struct {
	N          int     `json:"n"`
	Mean       float64 `json:"mean"`
	Skewness   float64 `json:"skewness"`
	Kurtosis   float64 `json:"excess_kurtosis"`
	JarqueBera float64 `json:"jarque_bera"`
	P          float64 `json:"p_value"`
	Zeros      float64 `json:"zero_fraction"`
	Distinct   int     `json:"distinct"`
	Kind       string  `json:"kind"`
	// Values are the standardised errors (for the histogram).
	Values []float64 `json:"values"`
}

// fitLo and fitHi bound the h of float64's smooth reference fit.
const (
	fitLo = 1e-5
	fitHi = 1e-2
)

// Directions returns n random unit directions in R^np (normalised
// Gaussian vectors) keyed by seed, the architecture's name and size and
// the initialisation.
func Directions(a *nets.Arch, init int, s uint64, n int) [][]float64 {
	np := a.NumParams()
	id := uint64(0)
	for _, c := range fmt.Sprintf("%s/%v", a.Name, shapes(a)) {
		id = id*131 + uint64(c)
	}
	r := seed.New(DirectionStream, s, id, uint64(init))
	out := make([][]float64, n)
	for d := range out {
		v := make([]float64, np)
		norm := 0.0
		for i := range v {
			v[i] = r.NormFloat64()
			norm += v[i] * v[i]
		}
		norm = math.Sqrt(norm)
		for i := range v {
			v[i] /= norm
		}
		out[d] = v
	}
	return out
}

func shapes(a *nets.Arch) [][]int {
	var s [][]int
	for _, p := range a.Params {
		s = append(s, p.Shape)
	}
	return s
}

// Run scans arch at theta (its initialisation init) over the examples.
func Run(a *nets.Arch, init int, theta []float64, ex Examples, s Settings, progress func(done, total int)) (*Scan, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	s.defaults()
	start := time.Now()
	hs := s.Grid()
	dirs := Directions(a, init, s.Seed, s.Directions)
	nh, nd := len(hs), len(dirs)
	// The parameter vectors: θ, then θ + j h v for v, h and j = 1, 2,
	// built a batch at a time. Every batch starts with θ, so that the
	// evaluator shares θ's rounded parameters and first layer with the
	// perturbations that leave them unchanged (bf16 and fp16 at small h);
	// θ's loss must come out the same in every batch.
	np := len(theta)
	nv := 1 + 2*nh*nd
	batch := s.Batch
	if batch == 0 {
		batch = min(max((1<<27)/(16*np), 4), 256)
	}
	vector := func(k int, dst []float64) {
		if k == 0 {
			copy(dst, theta)
			return
		}
		q := k - 1
		j, i, d := q%2+1, (q/2)%nh, q/(2*nh)
		step := float64(j) * hs[i]
		for p, v := range dirs[d] {
			dst[p] = theta[p] + step*v
		}
	}
	at := func(d, i, j int) int { return 1 + (d*nh+i)*2 + j - 1 }
	precs := slices.Clone(s.Precisions)
	if !slices.Contains(precs, precision.Float64) {
		precs = append([]precision.Format{precision.Float64}, precs...)
	}
	sc := &Scan{Model: a.Name, Init: init, Params: a.NumParams(), Examples: len(ex.Y), H: hs}
	total, done := len(precs)*nv, 0
	diffs := map[precision.Format][][]float64{}
	losses := map[precision.Format]float64{}
	values := map[precision.Format][]float64{}
	devices := map[precision.Format]string{}
	// The float64 gradient at θ, for the parameter-rounding floor.
	g64 := make([]float64, np)
	if e, _, err := NewEvaluator(s.Engine, a, precision.Float64, ex.X, ex.Y, s.Workers); err != nil {
		return nil, err
	} else if _, err := e.Grad(theta, g64); err != nil {
		e.Close()
		return nil, err
	} else if err := e.Close(); err != nil {
		return nil, err
	}
	bufs := make([][]float64, batch+1)
	for i := range bufs {
		bufs[i] = make([]float64, np)
	}
	vector(0, bufs[0])
	for _, f := range precs {
		e, used, err := NewEvaluatorOn(s.Engine, a, f, ex.X, ex.Y, s.Workers, s.Device)
		if err != nil {
			return nil, err
		}
		if d, ok := e.(interface{ Device() string }); ok && f == precision.TF32 {
			devices[f] = d.Device()
		}
		if f != precision.TF32 || sc.Engine == "" {
			sc.Engine = used
		}
		fs, err := scanLosses(e, a.Name, f, nv, batch, bufs, vector, &done, total, progress)
		if cerr := e.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		sc.Evaluations += nv
		d := make([][]float64, nd)
		for v := range d {
			d[v] = make([]float64, nh)
			for i := range hs {
				d[v][i] = fs[0] - 2*fs[at(v, i, 1)] + fs[at(v, i, 2)]
			}
		}
		diffs[f] = d
		losses[f] = fs[0]
		values[f] = fs
	}
	// float64's smooth reference and the curvatures.
	d64 := diffs[precision.Float64]
	smooth := make([][]float64, nd)
	sc.Curvature = make([]float64, nd)
	for v := range d64 {
		c, err := fitSmooth(hs, d64[v])
		if err != nil {
			return nil, fmt.Errorf("%s init %d direction %d: %w", a.Name, init, v, err)
		}
		sc.Curvature[v] = c[0]
		smooth[v] = make([]float64, nh)
		for i, h := range hs {
			smooth[v][i] = h * h * (c[0] + h*(c[1]+h*(c[2]+h*c[3])))
		}
	}
	sc.Signal = make([]float64, nh)
	for i, h := range hs {
		ss := 0.0
		for v := range d64 {
			x := smooth[v][i]
			if h > fitHi {
				x = d64[v][i]
			}
			ss += x * x
		}
		sc.Signal[i] = math.Sqrt(ss / float64(nd))
	}
	rmsCurv := 0.0
	for _, c := range sc.Curvature {
		rmsCurv += c * c
	}
	rmsCurv = math.Sqrt(rmsCurv / float64(nd))
	for _, f := range s.Precisions {
		r := Result{Format: f, Device: devices[f], Loss: losses[f], Noise: make([]float64, nh), Moved: make([]float64, nh), Errors: make([][]float64, nd)}
		for v := range r.Errors {
			r.Errors[v] = make([]float64, nh)
		}
		for i, h := range hs {
			ss := 0.0
			for v := range dirs {
				ref := d64[v][i]
				if f == precision.Float64 {
					ref = math.NaN()
					if h < fitLo {
						ref = smooth[v][i]
					}
				}
				e := diffs[f][v][i] - ref
				r.Errors[v][i] = e
				ss += e * e
				r.Moved[i] += moved(f, theta, dirs[v], h) / float64(nd)
			}
			r.Noise[i] = math.Sqrt(ss / float64(nd))
		}
		r.LossBias, r.LossNoise = math.NaN(), math.NaN()
		if f != precision.Float64 {
			var e []float64
			for k, v := range values[f] {
				e = append(e, v-values[precision.Float64][k])
			}
			r.LossBias, r.LossNoise = meanStd(e)
		}
		r.RoundingFloor = roundingFloor(f, theta, g64)
		r.summarise(hs, sc.Signal, rmsCurv, diffs[f])
		sc.Precisions = append(sc.Precisions, r)
	}
	sc.Seconds = time.Since(start).Seconds()
	return sc, nil
}

// roundingFloor is √6 · sqrt(Σ_i g_i² ulp_f(θ_i)²/12): the standard
// deviation of D's error if the only rounding were that of the parameters
// to f (the loss moving by g·δθ, δθ_i uniform in ±ulp/2, independently at
// the three points).
func roundingFloor(f precision.Format, theta, g []float64) float64 {
	ss := 0.0
	for i, t := range theta {
		u := f.Ulp(t)
		ss += g[i] * g[i] * u * u / 12
	}
	return math.Sqrt(6 * ss)
}

// moved is the fraction of parameters whose value in format f changes
// when h v is added.
func moved(f precision.Format, theta, v []float64, h float64) float64 {
	n := 0
	for i, t := range theta {
		if f.Round(t+h*v[i]) != f.Round(t) {
			n++
		}
	}
	return float64(n) / float64(len(theta))
}

// fitSmooth fits D(h) = h² (c0 + c1 h + c2 h² + c3 h³) by least squares over
// the grid points with fitLo ≤ h ≤ fitHi (with fewer than 6 such points,
// over the 6 smallest h ≥ fitLo, or all points).
func fitSmooth(hs, d []float64) ([4]float64, error) {
	var xs, ys []float64
	for i, h := range hs {
		if h >= fitLo && h <= fitHi {
			xs, ys = append(xs, h), append(ys, d[i]/(h*h))
		}
	}
	if len(xs) < 6 {
		xs, ys = xs[:0], ys[:0]
		for i, h := range hs {
			if h >= fitLo && len(xs) < 6 {
				xs, ys = append(xs, h), append(ys, d[i]/(h*h))
			}
		}
	}
	if len(xs) < 4 {
		return [4]float64{}, fmt.Errorf("float64 reference: %d grid points with h >= %g; widen the h grid (hmax >= 1e-3)", len(xs), fitLo)
	}
	// Least squares on D itself (not D/h², whose small-h values carry
	// D's noise divided by h²), in the scaled variable u = h / max h:
	// D/max h² = u² (c0 + c1' u + c2' u² + c3' u³).
	sc := xs[len(xs)-1]
	var ata [4][4]float64
	var aty [4]float64
	for k, x := range xs {
		u := x / sc
		u2 := u * u
		p := [4]float64{u2, u2 * u, u2 * u * u, u2 * u * u * u}
		for i := range 4 {
			aty[i] += p[i] * ys[k] * u2
			for j := range 4 {
				ata[i][j] += p[i] * p[j]
			}
		}
	}
	c, err := solve4(ata, aty)
	if err != nil {
		return c, err
	}
	for i := 1; i < 4; i++ {
		c[i] /= math.Pow(sc, float64(i))
	}
	return c, nil
}

// solve4 solves a 4×4 system by Gaussian elimination with partial
// pivoting.
func solve4(a [4][4]float64, b [4]float64) ([4]float64, error) {
	for k := range 4 {
		p := k
		for i := k + 1; i < 4; i++ {
			if math.Abs(a[i][k]) > math.Abs(a[p][k]) {
				p = i
			}
		}
		if a[p][k] == 0 {
			return b, fmt.Errorf("float64 reference: singular fit")
		}
		a[k], a[p] = a[p], a[k]
		b[k], b[p] = b[p], b[k]
		for i := k + 1; i < 4; i++ {
			m := a[i][k] / a[k][k]
			for j := k; j < 4; j++ {
				a[i][j] -= m * a[k][j]
			}
			b[i] -= m * b[k]
		}
	}
	var x [4]float64
	for i := 3; i >= 0; i-- {
		s := b[i]
		for j := i + 1; j < 4; j++ {
			s -= a[i][j] * x[j]
		}
		x[i] = s / a[i][i]
	}
	return x, nil
}

// summarise sets the floor, the crossovers and the distribution.
func (r *Result) summarise(hs, signal []float64, rmsCurv float64, d [][]float64) {
	var floorIdx []int
	for i := range hs {
		if !math.IsNaN(r.Noise[i]) && r.Noise[i] > signal[i] && r.Moved[i] >= 0.5 {
			floorIdx = append(floorIdx, i)
		}
	}
	if len(floorIdx) == 0 {
		for i := range hs {
			if !math.IsNaN(r.Noise[i]) && r.Noise[i] > signal[i] && r.Moved[i] >= 0.05 {
				floorIdx = append(floorIdx, i)
			}
		}
		r.Quantised = len(floorIdx) > 0
	}
	var fl []float64
	for _, i := range floorIdx {
		fl = append(fl, r.Noise[i])
	}
	r.Floor = median(fl)
	r.Crossover = crossover(hs, signal, r.Noise)
	r.CrossoverFormula = math.Sqrt(r.Floor / rmsCurv)
	var vals []float64
	zeros := 0
	for v := range r.Errors {
		for _, i := range floorIdx {
			vals = append(vals, r.Errors[v][i]/r.Floor)
			if d[v][i] == 0 {
				zeros++
			}
		}
	}
	r.Dist = describe(vals)
	if len(vals) > 0 {
		r.Dist.Zeros = float64(zeros) / float64(len(vals))
	}
	switch {
	case len(floorIdx) == 0:
		r.Dist.Kind = "no noise-dominated h"
	case len(vals) < 8:
		r.Dist.Kind = "too few points"
	case r.Quantised || r.Dist.Zeros > 0.5 || r.Dist.Distinct < len(vals)/4:
		r.Dist.Kind = "quantisation"
	case r.Dist.P >= 0.01:
		r.Dist.Kind = "gaussian"
	default:
		r.Dist.Kind = "non-gaussian"
	}
}

// crossover is the h above which the signal exceeds the noise at every
// grid point: between the largest grid point where noise ≥ signal and the
// next one, log-linearly interpolated in log(signal/noise). It is hs[0]
// when the signal exceeds the noise everywhere and NaN when it does not
// at the largest h (or there is no noise value).
func crossover(hs, signal, noise []float64) float64 {
	last, any := -1, false
	for i := range hs {
		if math.IsNaN(noise[i]) || signal[i] <= 0 {
			continue
		}
		any = true
		if noise[i] >= signal[i] {
			last = i
		}
	}
	switch {
	case !any || last == len(hs)-1:
		return math.NaN()
	case last < 0:
		return hs[0]
	}
	a := math.Log(signal[last] / noise[last]) // ≤ 0
	b := math.Log(signal[last+1] / noise[last+1])
	if math.IsNaN(noise[last+1]) || noise[last+1] == 0 || math.IsInf(a, 0) {
		return hs[last+1]
	}
	t := a / (a - b)
	return math.Exp(math.Log(hs[last]) + t*(math.Log(hs[last+1])-math.Log(hs[last])))
}

// meanStd is the mean and the standard deviation (n − 1) of x.
func meanStd(x []float64) (float64, float64) {
	if len(x) < 2 {
		return math.NaN(), math.NaN()
	}
	m := 0.0
	for _, v := range x {
		m += v
	}
	m /= float64(len(x))
	ss := 0.0
	for _, v := range x {
		ss += (v - m) * (v - m)
	}
	return m, math.Sqrt(ss / float64(len(x)-1))
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	s := slices.Clone(x)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// describe computes the moments and the Jarque–Bera test of x:
// skewness g1 = m3/m2^(3/2), excess kurtosis g2 = m4/m2² − 3 (central
// moments m_k with 1/n), JB = n (g1²/6 + g2²/24), p = exp(−JB/2).
func describe(x []float64) Distribution {
	d := Distribution{N: len(x), Values: x}
	if len(x) == 0 {
		return d
	}
	n := float64(len(x))
	for _, v := range x {
		d.Mean += v
	}
	d.Mean /= n
	var m2, m3, m4 float64
	distinct := map[float64]bool{}
	for _, v := range x {
		e := v - d.Mean
		m2 += e * e
		m3 += e * e * e
		m4 += e * e * e * e
		distinct[v] = true
	}
	m2, m3, m4 = m2/n, m3/n, m4/n
	d.Distinct = len(distinct)
	if m2 > 0 {
		d.Skewness = m3 / math.Pow(m2, 1.5)
		d.Kurtosis = m4/(m2*m2) - 3
		d.JarqueBera = n * (d.Skewness*d.Skewness/6 + d.Kurtosis*d.Kurtosis/24)
		d.P = math.Exp(-d.JarqueBera / 2)
	}
	return d
}

// scanLosses evaluates the scan's nv parameter vectors (vector(k, dst)
// writes the k-th; 0 is θ) in batches of batch besides θ, which starts
// every batch and must come out bit-identical in each.
func scanLosses(e Evaluator, model string, f precision.Format, nv, batch int, bufs [][]float64, vector func(int, []float64), done *int, total int, progress func(done, total int)) ([]float64, error) {
	fs := make([]float64, nv)
	out := make([]float64, batch+1)
	for b := 1; b < nv; b += batch {
		hi := min(b+batch, nv)
		for k := b; k < hi; k++ {
			vector(k, bufs[1+k-b])
		}
		if err := e.Losses(bufs[:1+hi-b], out); err != nil {
			return nil, err
		}
		if b == 1 {
			fs[0] = out[0]
		} else if math.Float64bits(out[0]) != math.Float64bits(fs[0]) {
			return nil, fmt.Errorf("%s %v: the loss at θ is %.17g in one batch and %.17g in another; the evaluator is not deterministic", model, f, fs[0], out[0])
		}
		copy(fs[b:hi], out[1:])
		*done += hi - b
		if progress != nil {
			progress(*done, total)
		}
	}
	if nv == 1 {
		if err := e.Losses(bufs[:1], fs); err != nil {
			return nil, err
		}
	}
	return fs, nil
}
