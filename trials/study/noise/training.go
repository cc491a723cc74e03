package noise

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/precision"
	"github.com/perturb/perturb/nets/seed"
	"github.com/perturb/perturb/trials/plots"
)

// Training in low precision.
//
// A trial trains θ by SGD with batch B for T = E·N/B steps on N pool
// examples drawn with replacement by the stream seed.TrainSet keyed by
// (seed, init, trial): the same training sets as `perturb run`, visited in
// draw order. Trained in precision P means: the gradient of the batch's
// mean loss is computed by the Evaluator's GradRows in P (inputs,
// parameters and every layer's output and gradient rounded to P, see
// kernels.Rounding), and the update θ ← round_P(θ − η g) is computed in float64 and
// rounded once to P, so the parameters are always numbers of P (no
// float32 master copy: an update below half an ulp of a parameter is lost,
// as in pure bf16 or fp16 training). float64 trains the reference
// trajectory on the same training set from the same start, θ0 rounded to
// P, so that the drift comes from the arithmetic of the steps only (the
// rounding of θ0 itself, |round_P(θ0) − θ0| ≈ 0.11 in bf16 for the
// convnet, is left out).
//
// At checkpoints T the drift is measured on the test examples in float64:
// WeightDrift = |θ_P(T) − θ_64(T)|, LossDrift = |L(θ_P(T)) − L(θ_64(T))|
// (both means over trials), and compared with the SGD noise of the same
// steps: one SGD step's noise has covariance η² C / B, so after T steps
// the SGD noise has size η sqrt(T tr C / B) (NoiseScale), with tr C the
// trace of the per-example gradient covariance at θ0 (unbiased estimate
// over TrCExamples pool examples, in float64). Ratio = WeightDrift /
// NoiseScale; RatioStep = WeightDrift / (η sqrt(tr C)) is the drift in
// units of the per-step scale the issue names, η·sqrt(tr C).
type TrainSettings struct {
	Seed        uint64
	Init        int
	N           int
	Batch       int
	Epochs      int
	Etas        []float64
	Trials      int
	Formats     []precision.Format
	Checkpoints []int
	TrCExamples int
	Workers     int
	// Engine computes the gradients and test losses (see Settings.Engine).
	Engine Engine
}

// TrainPoint is the drift of one precision at one (eta, T).
type TrainPoint struct {
	Format      precision.Format `json:"format"`
	Eta         float64          `json:"eta"`
	T           int              `json:"t"`
	WeightDrift float64          `json:"weight_drift"`
	LossDrift   float64          `json:"loss_drift"`
	Loss64      float64          `json:"loss64"`
	LossP       float64          `json:"loss_p"`
	NoiseScale  float64          `json:"noise_scale"`
	Ratio       float64          `json:"ratio"`
	RatioStep   float64          `json:"ratio_step"`
}

// Training is the low-precision training comparison of one model.
type Training struct {
	Model    string       `json:"model"`
	Init     int          `json:"init"`
	N        int          `json:"n"`
	Batch    int          `json:"batch"`
	Epochs   int          `json:"epochs"`
	Trials   int          `json:"trials"`
	Examples int          `json:"examples"`
	TrC      float64      `json:"tr_c"`
	Points   []TrainPoint `json:"points"`
	Seconds  float64      `json:"seconds"`
}

// RunTraining trains s.Trials SGD trials per eta in float64 and in each
// format from initialisation s.Init of a; pool is the whole pool (training
// sets and tr C are drawn from it), test the examples of the test loss.
func RunTraining(a *nets.Arch, theta0 []float64, pool, test Examples, s TrainSettings) (*Training, error) {
	start := time.Now()
	if s.Batch < 1 || s.N%s.Batch != 0 || s.Epochs < 1 || s.Trials < 1 || len(s.Etas) == 0 {
		return nil, fmt.Errorf("training: batch %d must divide n %d, epochs %d and trials %d must be positive, etas %v non-empty", s.Batch, s.N, s.Epochs, s.Trials, s.Etas)
	}
	dim := a.Dim()
	poolLen := len(pool.Y)
	steps := s.Epochs * s.N / s.Batch
	cps := map[int]bool{}
	for _, c := range s.Checkpoints {
		if c >= 1 && c <= steps {
			cps[c] = true
		}
	}
	cps[steps] = true
	tr := &Training{Model: a.Name, Init: s.Init, N: s.N, Batch: s.Batch, Epochs: s.Epochs, Trials: s.Trials, Examples: len(test.Y)}
	// tr C at θ0 from per-example float64 gradients.
	m := min(max(s.TrCExamples, 2), poolLen)
	r := seed.New(DirectionStream+"/trc", s.Seed, uint64(s.Init))
	rows := seed.Draw(r, m, poolLen)
	gs := make([][]float64, m)
	mean := make([]float64, len(theta0))
	trcX := make([]float64, 0, m*dim)
	trcY := make([]uint8, 0, m)
	for _, row := range rows {
		trcX = append(trcX, pool.X[row*dim:(row+1)*dim]...)
		trcY = append(trcY, pool.Y[row])
	}
	trcEval, _, err := NewEvaluator(s.Engine, a, precision.Float64, trcX, trcY, 1)
	if err != nil {
		return nil, err
	}
	defer trcEval.Close()
	for i := range rows {
		gs[i] = make([]float64, len(theta0))
		if _, err := trcEval.GradRows(theta0, []int{i}, gs[i]); err != nil {
			return nil, err
		}
		for j, v := range gs[i] {
			mean[j] += v / float64(m)
		}
	}
	for _, gv := range gs {
		for j, v := range gv {
			tr.TrC += (v - mean[j]) * (v - mean[j])
		}
	}
	tr.TrC /= float64(m - 1)
	testEval, _, err := NewEvaluator(s.Engine, a, precision.Float64, test.X, test.Y, s.Workers)
	if err != nil {
		return nil, err
	}
	defer testEval.Close()
	type key struct {
		f   precision.Format
		eta float64
		t   int
	}
	sums := map[key]*TrainPoint{}
	// sgd trains from start in format f and returns the parameters at the
	// checkpoints.
	sgd := func(f precision.Format, start []float64, set []int, eta float64) (map[int][]float64, error) {
		th := append([]float64(nil), start...)
		gr := make([]float64, len(th))
		at := map[int][]float64{}
		step := 0
		// The trial's training set, evaluated in f.
		x := make([]float64, 0, s.N*dim)
		y := make([]uint8, 0, s.N)
		for _, row := range set[:s.N] {
			x = append(x, pool.X[row*dim:(row+1)*dim]...)
			y = append(y, pool.Y[row])
		}
		e, _, err := NewEvaluator(s.Engine, a, f, x, y, 1)
		if err != nil {
			return nil, err
		}
		defer e.Close()
		batch := make([]int, s.Batch)
		for ep := 0; ep < s.Epochs; ep++ {
			for b := 0; b < s.N; b += s.Batch {
				for i := range batch {
					batch[i] = b + i
				}
				if _, err := e.GradRows(th, batch, gr); err != nil {
					return nil, err
				}
				for i := range th {
					th[i] = f.Round(th[i] - eta*gr[i])
				}
				step++
				if cps[step] {
					at[step] = append([]float64(nil), th...)
				}
			}
		}
		return at, nil
	}
	for _, eta := range s.Etas {
		for trial := 0; trial < s.Trials; trial++ {
			set := seed.Draw(seed.New(seed.TrainSet, s.Seed, uint64(s.Init), uint64(trial)), s.N, poolLen)
			for _, f := range s.Formats {
				// Both trajectories start from θ0 rounded to f, so the
				// drift is the arithmetic's, not θ0's rounding.
				start := make([]float64, len(theta0))
				for i, v := range theta0 {
					start[i] = f.Round(v)
				}
				ref, err := sgd(precision.Float64, start, set, eta)
				if err != nil {
					return nil, err
				}
				low, err := sgd(f, start, set, eta)
				if err != nil {
					return nil, err
				}
				for t, th64 := range ref {
					thP := low[t]
					losses := make([]float64, 2)
					if err := testEval.Losses([][]float64{th64, thP}, losses); err != nil {
						return nil, err
					}
					d := 0.0
					for i, v := range thP {
						d += (v - th64[i]) * (v - th64[i])
					}
					k := key{f, eta, t}
					p := sums[k]
					if p == nil {
						p = &TrainPoint{Format: f, Eta: eta, T: t}
						sums[k] = p
					}
					n := float64(s.Trials)
					p.WeightDrift += math.Sqrt(d) / n
					p.LossDrift += math.Abs(losses[1]-losses[0]) / n
					p.Loss64 += losses[0] / n
					p.LossP += losses[1] / n
				}
			}
		}
	}
	for _, p := range sums {
		p.NoiseScale = p.Eta * math.Sqrt(float64(p.T)*tr.TrC/float64(s.Batch))
		p.Ratio = p.WeightDrift / p.NoiseScale
		p.RatioStep = p.WeightDrift / (p.Eta * math.Sqrt(tr.TrC))
		tr.Points = append(tr.Points, *p)
	}
	sort.Slice(tr.Points, func(i, j int) bool {
		a, b := tr.Points[i], tr.Points[j]
		if a.Format != b.Format {
			return a.Format < b.Format
		}
		if a.Eta != b.Eta {
			return a.Eta < b.Eta
		}
		return a.T < b.T
	})
	tr.Seconds = time.Since(start).Seconds()
	return tr, nil
}

func trainingMarkdown(t *Training) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Training in low precision\n\n%s from init %d: SGD with N = %d, B = %d, %d epoch(s), %d trials per eta (the training sets of `perturb run`); drift against the float64 trajectory, test loss in float64 over %d examples; tr C = %.4g at θ0. Noise scale η·sqrt(T·tr C/B).\n\n",
		t.Model, t.Init, t.N, t.Batch, t.Epochs, t.Trials, t.Examples, t.TrC)
	b.WriteString("| precision | eta | T | weight drift | test-loss drift | L_64 | L_P | SGD noise η√(T trC/B) | drift / noise | drift / (η√trC) |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range t.Points {
		fmt.Fprintf(&b, "| %v | %g | %d | %.3g | %.3g | %.5g | %.5g | %.3g | %.3g | %.3g |\n", p.Format, p.Eta, p.T, p.WeightDrift, p.LossDrift, p.Loss64, p.LossP, p.NoiseScale, p.Ratio, p.RatioStep)
	}
	b.WriteString("\n![weight drift against T](train-drift.png)\n\n")
	return b.String()
}

func trainingOutputs(dir string, t *Training) error {
	rows := [][]string{{"format", "eta", "t", "weight_drift", "loss_drift", "loss64", "loss_p", "noise_scale", "ratio", "ratio_step"}}
	fig := plots.Figure{Title: fmt.Sprintf("Drift of low-precision SGD from float64, %s", t.Model), XLabel: "steps T", YLabel: "|θ_P − θ_64| (markers), η√(T trC/B) (lines)", LogX: true, LogY: true}
	series := map[string]*plots.Series{}
	noise := map[string]*plots.Series{}
	var order, norder []string
	for _, p := range t.Points {
		rows = append(rows, []string{p.Format.String(), g(p.Eta), fmt.Sprint(p.T), g(p.WeightDrift), g(p.LossDrift), g(p.Loss64), g(p.LossP), g(p.NoiseScale), g(p.Ratio), g(p.RatioStep)})
		k := fmt.Sprintf("%v eta %g", p.Format, p.Eta)
		if series[k] == nil {
			series[k] = &plots.Series{Label: k}
			order = append(order, k)
		}
		if p.WeightDrift > 0 {
			series[k].Points = append(series[k].Points, plots.Point{X: float64(p.T), Y: p.WeightDrift})
		}
		nk := fmt.Sprintf("SGD noise eta %g", p.Eta)
		if noise[nk] == nil {
			noise[nk] = &plots.Series{Label: nk}
			norder = append(norder, nk)
		}
		if p.Format == t.Points[0].Format {
			noise[nk].Points = append(noise[nk].Points, plots.Point{X: float64(p.T), Y: p.NoiseScale})
		}
	}
	for _, k := range order {
		if len(series[k].Points) > 0 {
			fig.Measured = append(fig.Measured, *series[k])
		}
	}
	for _, k := range norder {
		fig.Lines = append(fig.Lines, *noise[k])
	}
	if err := writeCSV(dir+"/train-drift.csv", rows); err != nil {
		return err
	}
	_, _, err := fig.Save(dir, "train-drift")
	return err
}
