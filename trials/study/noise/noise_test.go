package noise

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/precision"
)

func TestDescribe(t *testing.T) {
	cases := []struct {
		x                []float64
		mean, skew, kurt float64
	}{
		// m2 = 1/2, m3 = 0, m4 = 1/2: kurtosis 0.5/0.25 − 3 = −1.
		{[]float64{-1, 0, 0, 1}, 0, 0, -1},
		// mean 1/4, m2 = 3/16, m3 = 3/32 (= (27/64 − 3/64·3... by hand:
		// ((−1/4)³·3 + (3/4)³)/4 = (−3/64 + 27/64)/4 = 6/64 = 3/32),
		// skew = (3/32)/(3/16)^1.5 = 2/√3; m4 = (3/256 + 81/256)/4 = 21/256,
		// kurtosis = (21/256)/(9/256) − 3 = −2/3.
		{[]float64{0, 0, 0, 1}, 0.25, 2 / math.Sqrt(3), -2.0 / 3},
	}
	for _, c := range cases {
		d := describe(c.x)
		if math.Abs(d.Mean-c.mean) > 1e-15 || math.Abs(d.Skewness-c.skew) > 1e-14 || math.Abs(d.Kurtosis-c.kurt) > 1e-14 {
			t.Errorf("%v: mean %v skew %v kurtosis %v, want %v %v %v", c.x, d.Mean, d.Skewness, d.Kurtosis, c.mean, c.skew, c.kurt)
		}
		jb := float64(len(c.x)) * (c.skew*c.skew/6 + c.kurt*c.kurt/24)
		if math.Abs(d.JarqueBera-jb) > 1e-14 || math.Abs(d.P-math.Exp(-jb/2)) > 1e-15 {
			t.Errorf("%v: JB %v p %v, want %v", c.x, d.JarqueBera, d.P, jb)
		}
	}
	// Gaussian draws pass the test, uniform rounding-like draws of few
	// values are flagged by the distinct count in summarise.
	r := rand.New(rand.NewPCG(1, 1))
	g := make([]float64, 4000)
	for i := range g {
		g[i] = r.NormFloat64()
	}
	if d := describe(g); d.P < 0.01 || math.Abs(d.Kurtosis) > 0.3 {
		t.Errorf("Gaussian sample: p %v kurtosis %v", d.P, d.Kurtosis)
	}
}

// TestCrossover: signal h² against a constant noise 1e-8 crosses at
// h = 1e-4; log(signal/noise) is linear in log h, so the log-linear
// interpolation is exact.
func TestCrossover(t *testing.T) {
	s := Settings{HMin: 1e-9, HMax: 1e-1, Steps: 40}
	hs := s.Grid()
	if math.Abs(hs[0]-1e-9) > 1e-24 || math.Abs(hs[39]-1e-1) > 1e-16 {
		t.Fatalf("grid ends %v %v", hs[0], hs[39])
	}
	sig, noi := make([]float64, 40), make([]float64, 40)
	for i, h := range hs {
		sig[i], noi[i] = h*h, 1e-8
	}
	if c := crossover(hs, sig, noi); math.Abs(c-1e-4) > 1e-12 {
		t.Errorf("crossover %v, want 1e-4", c)
	}
	for i := range noi {
		noi[i] = 1
	}
	if c := crossover(hs, sig, noi); !math.IsNaN(c) {
		t.Errorf("never crossing: %v, want NaN", c)
	}
}

// TestFitSmooth recovers the coefficients of an exact cubic in h of
// D(h)/h².
func TestFitSmooth(t *testing.T) {
	hs := Settings{}.Grid()
	d := make([]float64, len(hs))
	want := [4]float64{2, 3, -1, 0.5}
	for i, h := range hs {
		d[i] = h * h * (want[0] + h*(want[1]+h*(want[2]+h*want[3])))
	}
	c, err := fitSmooth(hs, d)
	if err != nil {
		t.Fatal(err)
	}
	for i := range c {
		if math.Abs(c[i]-want[i]) > 1e-6*math.Pow(1e2, float64(i)) {
			t.Errorf("c%d = %v, want %v", i, c[i], want[i])
		}
	}
}

func smallProblem(t *testing.T) (*nets.Arch, []float64, Examples) {
	a, err := nets.NewSized("mlp", 1, 6, 6, 10, nets.Size{Width: 12, Depth: 2})
	if err != nil {
		t.Fatal(err)
	}
	theta, _ := initVector(a, 1)
	r := rand.New(rand.NewPCG(5, 6))
	const n = 300
	ex := Examples{X: make([]float64, n*36), Y: make([]uint8, n)}
	for i := range ex.X {
		ex.X[i] = r.NormFloat64()
	}
	for i := range ex.Y {
		ex.Y[i] = uint8(r.IntN(10))
	}
	return a, theta, ex
}

// TestRunSmall scans a small MLP: the fitted curvature f”(θ; v) must
// match a central difference of the float64 gradient along v (to 2e-5,
// the fit's truncation of the Taylor series at h ≤ 1e-2), the float64
// floor must be near float64's resolution and float32's near float32's,
// and the scan is reproducible.
func TestRunSmall(t *testing.T) {
	a, theta, ex := smallProblem(t)
	s := Settings{Directions: 4, Steps: 30, Precisions: []precision.Format{precision.Float64, precision.Float32, precision.Float16}}
	sc, err := Run(a, 1, theta, ex, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, _, err := NewEvaluator(EngineWalker, a, precision.Float64, ex.X, ex.Y, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	dirs := Directions(a, 1, 0, 4)
	for v, dir := range dirs {
		const eps = 1e-4
		gp, gm := make([]float64, len(theta)), make([]float64, len(theta))
		tp, tm := make([]float64, len(theta)), make([]float64, len(theta))
		for i := range theta {
			tp[i], tm[i] = theta[i]+eps*dir[i], theta[i]-eps*dir[i]
		}
		e.Grad(tp, gp)
		e.Grad(tm, gm)
		fd := 0.0
		for i := range dir {
			fd += (gp[i] - gm[i]) * dir[i] / (2 * eps)
		}
		if math.Abs(sc.Curvature[v]-fd) > 2e-5*math.Abs(fd) {
			t.Errorf("direction %d: fitted f'' %v, central difference of the gradient %v", v, sc.Curvature[v], fd)
		}
	}
	f64, f32, f16 := sc.Precisions[0], sc.Precisions[1], sc.Precisions[2]
	t.Logf("floors: float64 %.3g, float32 %.3g, fp16 %.3g; crossovers %.3g %.3g %.3g", f64.Floor, f32.Floor, f16.Floor, f64.Crossover, f32.Crossover, f16.Crossover)
	if !(f64.Floor > 1e-18 && f64.Floor < 1e-14) || !(f32.Floor > 1e-10 && f32.Floor < 1e-6) || !(f16.Floor > 1e-6 && f16.Floor < 1e-1) {
		t.Errorf("floors %v %v %v out of the expected ranges", f64.Floor, f32.Floor, f16.Floor)
	}
	if !(f64.Crossover < f32.Crossover) {
		t.Errorf("crossovers float64 %v, float32 %v: want float64's smaller", f64.Crossover, f32.Crossover)
	}
	// The crossover from the floor and the rms curvature agrees with the
	// measured one to a factor of a few.
	if r := f32.Crossover / f32.CrossoverFormula; r < 0.3 || r > 3 {
		t.Errorf("float32 crossover %v vs sqrt(floor/rms f'') %v", f32.Crossover, f32.CrossoverFormula)
	}
	sc2, _ := Run(a, 1, theta, ex, s, nil)
	if sc2.Precisions[1].Floor != f32.Floor || sc2.Curvature[0] != sc.Curvature[0] {
		t.Error("scan not reproducible")
	}
	if f32.LossNoise <= 0 || f32.LossNoise > 1e-6 {
		t.Errorf("float32 loss noise %v", f32.LossNoise)
	}
}

// TestGradsAndTraining checks the per-layer gradient errors (about the
// unit roundoff per precision) and that low-precision SGD drifts from
// float64 by more in fp16 than in float32, with tr C from its definition.
func TestGradsAndTraining(t *testing.T) {
	a, theta, ex := smallProblem(t)
	gr, err := RunGrads(a, 1, theta, ex, []precision.Format{precision.Float32, precision.BFloat16}, 0, EngineAuto)
	if err != nil {
		t.Fatal(err)
	}
	if len(gr.Layers) != 3 {
		t.Fatalf("%d layers", len(gr.Layers))
	}
	for _, l := range gr.Layers {
		if !(l.RelErr[0] > 1e-9 && l.RelErr[0] < 1e-5) || !(l.RelErr[1] > 1e-4 && l.RelErr[1] < 1e-1) {
			t.Errorf("layer %d: relative errors %v", l.Index, l.RelErr)
		}
	}
	tr, err := RunTraining(a, theta, ex, ex, TrainSettings{Seed: 1, Init: 1, N: 8, Batch: 2, Epochs: 2, Etas: []float64{0.1},
		Trials: 2, Formats: []precision.Format{precision.Float32, precision.Float16}, Checkpoints: []int{1, 4}, TrCExamples: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Points) != 2*3 || !(tr.TrC > 0) {
		t.Fatalf("points %+v tr C %v", tr.Points, tr.TrC)
	}
	var d32, d16 float64
	for _, p := range tr.Points {
		if p.T == 8 && p.Format == precision.Float32 {
			d32 = p.WeightDrift
		}
		if p.T == 8 && p.Format == precision.Float16 {
			d16 = p.WeightDrift
		}
		if want := p.Eta * math.Sqrt(float64(p.T)*tr.TrC/2); math.Abs(p.NoiseScale-want) > 1e-12*want {
			t.Errorf("noise scale %v, want %v", p.NoiseScale, want)
		}
	}
	if !(d32 > 0 && d32 < 1e-4 && d16 > 10*d32) {
		t.Errorf("drift after 8 steps: float32 %v, fp16 %v", d32, d16)
	}
}

// TestWriteAndSection writes a scan and reads the Markdown section back.
func TestWriteAndSection(t *testing.T) {
	a, theta, ex := smallProblem(t)
	sc, err := Run(a, 1, theta, ex, Settings{Directions: 3, Steps: 12, HMin: 1e-8, Precisions: []precision.Format{precision.Float64, precision.Float32}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := &File{ConfigName: "t", Examples: "300 random", Settings: Settings{Directions: 3, Steps: 12}, Scans: []*Scan{sc}}
	if err := Write(dir, f); err != nil {
		t.Fatal(err)
	}
	md, err := Section(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md, "| mlp | 1 | ") || !strings.Contains(md, "noise-mlp-init1.png") {
		t.Errorf("section:\n%s", md)
	}
	for _, name := range []string{"noise.json", "noise.md", "noise-mlp-init1.png", "noise-mlp-init1.svg", "noise-mlp-init1.csv"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	back, err := Read(dir)
	if err != nil || back.Scans[0].Precisions[1].Floor != sc.Precisions[1].Floor {
		t.Errorf("read back: %v", err)
	}
}

// TestRoundingFloor: θ = (1, 3), g = (2, 1) in float32: ulps 2^−23 and
// 2^−22, Σ g² ulp²/12 = (4·2^−46 + 2^−44)/12 = 8·2^−46/12, times 6 is
// 4·2^−46, whose root is 2^−22.
func TestRoundingFloor(t *testing.T) {
	if got := roundingFloor(precision.Float32, []float64{1, 3}, []float64{2, 1}); got != math.Ldexp(1, -22) {
		t.Errorf("rounding floor %v, want 2^-22 = %v", got, math.Ldexp(1, -22))
	}
	if got := roundingFloor(precision.BFloat16, []float64{1, 3}, []float64{2, 1}); got != math.Ldexp(1, -6) {
		t.Errorf("bf16 rounding floor %v, want 2^-6", got)
	}
}

// TestJSONSafeNonFinite checks that a study whose gradient table, fits and
// training hold NaN or Inf still marshals: non-finite errors and norms
// become −1, a non-finite fit is dropped, finite values are kept.
func TestJSONSafeNonFinite(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	f := &File{
		Sweeps: []*Sweep{{Model: "mlp", Fits: []ExponentFit{
			{Format: precision.Float32, Exponent: 0.5, Lo: 0.4, Hi: 0.6},
			{Format: precision.BFloat16, Exponent: nan},
		}}},
		Grads:    []*Grads{{Model: "mlp", Layers: []LayerGrad{{Layer: "dense1", Norm64: 0, RelErr: []float64{nan, inf, 2e-7}}}}},
		Training: &Training{TrC: nan},
	}
	if _, err := json.Marshal(f); err == nil {
		t.Fatal("json.Marshal accepted NaN: the test does not exercise the fallback")
	}
	b, err := json.Marshal(jsonSafe(f))
	if err != nil {
		t.Fatalf("jsonSafe copy does not marshal: %v", err)
	}
	var back File
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got := back.Grads[0].Layers[0].RelErr; got[0] != -1 || got[1] != -1 || got[2] != 2e-7 {
		t.Errorf("rel_err %v, want [-1 -1 2e-7]", got)
	}
	if fits := back.Sweeps[0].Fits; len(fits) != 1 || fits[0].Exponent != 0.5 {
		t.Errorf("fits %+v, want only the finite float32 fit", fits)
	}
	if back.Training.TrC != -1 {
		t.Errorf("tr_c %v, want -1", back.Training.TrC)
	}
	if !math.IsNaN(f.Grads[0].Layers[0].RelErr[0]) || len(f.Sweeps[0].Fits) != 2 {
		t.Error("jsonSafe changed the caller's File")
	}
}
