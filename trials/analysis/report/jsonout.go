package report

import (
	"encoding/json"
	"io"
	"math"
	"strconv"
	"strings"
)

// JSONSchema is the version of report.json's layout.
const JSONSchema = 1

// Facts are the numbers behind one verdict, written to report.json so
// that other tools (scripts/reproduction) quote them instead of parsing
// report.md. A number that does not apply is NaN (null in the JSON).
type Facts struct {
	// ID names the test, stable across runs of a config, e.g.
	// "order3.test_loss.sgd" or "gd_minus_sgd.slope". It is unique
	// within a report together with Model and Init.
	ID         string
	Model      string
	Init       int
	Optimizers []string
	// EtaTLimit is the η·T limit of the tested learning rates (NaN: the
	// test uses every η).
	EtaTLimit float64
	// Bound is the Bonferroni bound on |z| (NaN: not a z-test).
	Bound float64
	// WorstZ is the z of largest size over the tested points, at η
	// WorstEta (and abscissa WorstX, H for Mean Estimation).
	WorstZ, WorstEta, WorstX float64
	// Through is the largest η through which every tested point agrees.
	Through float64
	// Estimate ± SE with its 95% interval [CILo, CIHi]: the fitted slope,
	// the drift ratio, ...
	Estimate, SE, CILo, CIHi float64
	// Count of Of points satisfy the test (Against: decided the other
	// way); -1 where the test does not count.
	Count, Of, Against int
	Points             []Point
}

// Point is one learning rate (or curvature) of a test.
type Point struct {
	Eta, X            float64
	Measured, SE      float64
	Predicted, PredSE float64
	Z                 float64
	// Tested: inside the η·T limit, so part of the verdict.
	Tested bool
}

// newFacts are facts with every number absent.
func newFacts(id string) *Facts {
	n := math.NaN()
	return &Facts{ID: id, EtaTLimit: n, Bound: n, WorstZ: n, WorstEta: n, WorstX: n, Through: n,
		Estimate: n, SE: n, CILo: n, CIHi: n, Count: -1, Of: -1, Against: -1}
}

// on sets the model, initialisation, optimisers and η·T limit.
func (f *Facts) on(model string, init int, limit float64, opts ...string) *Facts {
	f.Model, f.Init, f.EtaTLimit, f.Optimizers = model, init, limit, opts
	return f
}

// estimate sets Estimate ± se with the normal 95% interval.
func (f *Facts) estimate(v, se float64) *Facts {
	f.Estimate, f.SE, f.CILo, f.CIHi = v, se, v-1.96*se, v+1.96*se
	return f
}

// counts sets Count of Of (against: decided the other way, -1: none).
func (f *Facts) counts(count, of, against int) *Facts {
	f.Count, f.Of, f.Against = count, of, against
	return f
}

// zFacts are the facts of agreement(meas, pred, predSE, ok, xs): the
// points with their z, the worst z and where, the bound and how far the
// agreement goes (the same rules as agreement).
func zFacts(id string, meas []sample, pred, predSE []float64, ok []bool, xs []float64) *Facts {
	f := newFacts(id)
	m := 0
	for i := range meas {
		if ok[i] {
			m++
		}
	}
	zc := zcrit(m)
	f.Bound = zc
	prefix, first := true, true
	for i := range meas {
		z := (meas[i].Mean - pred[i]) / math.Hypot(meas[i].SE, predSE[i])
		f.Points = append(f.Points, Point{Eta: xs[i], X: xs[i], Measured: meas[i].Mean, SE: meas[i].SE,
			Predicted: pred[i], PredSE: predSE[i], Z: z, Tested: ok[i]})
		if !ok[i] {
			continue
		}
		if first || math.Abs(z) > math.Abs(f.WorstZ) || math.IsNaN(z) {
			first = false
			f.WorstZ, f.WorstEta, f.WorstX = z, xs[i], xs[i]
		}
		if math.IsNaN(z) || math.Abs(z) > zc {
			prefix = false
		}
		if prefix {
			f.Through = xs[i]
		}
	}
	return f
}

// measuredFacts are facts whose points carry only the measurements.
func measuredFacts(id string, meas []sample, xs []float64) *Facts {
	f := newFacts(id)
	n := math.NaN()
	for i := range meas {
		f.Points = append(f.Points, Point{Eta: xs[i], X: xs[i], Measured: meas[i].Mean, SE: meas[i].SE, Predicted: n, PredSE: n, Z: n, Tested: true})
	}
	return f
}

// Num is a float64 that is null in JSON when it is NaN or infinite.
type Num float64

// MarshalJSON writes null for NaN and ±Inf.
func (x Num) MarshalJSON() ([]byte, error) {
	v := float64(x)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON reads null as NaN.
func (x *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*x = Num(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*x = Num(v)
	return nil
}

// JSONFile is report.json.
type JSONFile struct {
	Schema       int        `json:"schema"`
	Title        string     `json:"title"`
	Agree        int        `json:"agree"`
	Disagree     int        `json:"disagree"`
	Inconclusive int        `json:"inconclusive"`
	Tests        []JSONTest `json:"tests"`
	// Subset is the measured gain of the subset test-loss estimate per
	// model and η, for runs that used it.
	Subset []JSONGain `json:"subset,omitempty"`
}

// JSONGain is a summary.SubsetGain in report.json: variances of the test
// loss across trials, costs in worker-seconds per trial.
type JSONGain struct {
	Model       string  `json:"model"`
	Eta         float64 `json:"eta"`
	M           int     `json:"m"`
	Trials      int     `json:"trials"`
	VarSubset   Num     `json:"var_subset"`
	MeanSE2     Num     `json:"mean_se2"`
	VarExact    Num     `json:"var_exact"`
	CostSubset  Num     `json:"cost_subset_s"`
	CostExact   Num     `json:"cost_exact_s"`
	Speedup     Num     `json:"speedup"`
	BestM       Num     `json:"best_m"`
	BestSpeedup Num     `json:"best_speedup"`
}

// JSONTest is one verdict in report.json. Verdict is the report's word:
// agrees, disagrees or inconclusive.
type JSONTest struct {
	ID         string      `json:"id"`
	Section    string      `json:"section"`
	Claim      string      `json:"claim"`
	Test       string      `json:"test"`
	Result     string      `json:"result"`
	Verdict    string      `json:"verdict"`
	Model      string      `json:"model,omitempty"`
	Init       int         `json:"init"`
	Optimizers []string    `json:"optimizers,omitempty"`
	Etas       []float64   `json:"etas,omitempty"`
	EtaTLimit  Num         `json:"eta_t_limit"`
	Bound      Num         `json:"bound"`
	WorstZ     Num         `json:"worst_z"`
	WorstEta   Num         `json:"worst_eta"`
	WorstX     Num         `json:"worst_x"`
	ThroughEta Num         `json:"through_eta"`
	Estimate   Num         `json:"estimate"`
	SE         Num         `json:"se"`
	CILo       Num         `json:"ci95_lo"`
	CIHi       Num         `json:"ci95_hi"`
	Count      *int        `json:"count,omitempty"`
	Of         *int        `json:"of,omitempty"`
	Against    *int        `json:"against,omitempty"`
	Points     []JSONPoint `json:"points,omitempty"`
}

// JSONPoint is a Point in report.json.
type JSONPoint struct {
	Eta       Num  `json:"eta"`
	X         Num  `json:"x"`
	Measured  Num  `json:"measured"`
	SE        Num  `json:"se"`
	Predicted Num  `json:"predicted"`
	PredSE    Num  `json:"predicted_se"`
	Z         Num  `json:"z"`
	Tested    bool `json:"tested"`
}

// JSONData is the report as report.json holds it. A verdict without
// facts gets the id "claim." followed by its claim in lower case with
// every other character an underscore.
func (r *Report) JSONData() JSONFile {
	out := JSONFile{Schema: JSONSchema, Title: r.Title, Tests: []JSONTest{}}
	out.Agree, out.Disagree, out.Inconclusive = r.Tally()
	count := func(n int) *int {
		if n < 0 {
			return nil
		}
		return &n
	}
	for _, s := range r.Sections {
		for _, v := range s.Verdicts {
			t := JSONTest{Section: s.Title, Claim: v.Claim, Test: v.Test, Result: v.Result, Verdict: v.Word()}
			f := v.Facts
			if f == nil {
				f = newFacts("claim." + slug(v.Claim))
			}
			t.ID, t.Model, t.Init, t.Optimizers = f.ID, f.Model, f.Init, f.Optimizers
			t.EtaTLimit, t.Bound, t.WorstZ, t.WorstEta, t.WorstX, t.ThroughEta = Num(f.EtaTLimit), Num(f.Bound), Num(f.WorstZ), Num(f.WorstEta), Num(f.WorstX), Num(f.Through)
			t.Estimate, t.SE, t.CILo, t.CIHi = Num(f.Estimate), Num(f.SE), Num(f.CILo), Num(f.CIHi)
			t.Count, t.Of, t.Against = count(f.Count), count(f.Of), count(f.Against)
			seen := map[float64]bool{}
			for _, p := range f.Points {
				t.Points = append(t.Points, JSONPoint{Num(p.Eta), Num(p.X), Num(p.Measured), Num(p.SE), Num(p.Predicted), Num(p.PredSE), Num(p.Z), p.Tested})
				if p.Tested && !seen[p.Eta] {
					seen[p.Eta] = true
					t.Etas = append(t.Etas, p.Eta)
				}
			}
			out.Tests = append(out.Tests, t)
		}
	}
	for _, g := range r.Gains {
		out.Subset = append(out.Subset, JSONGain{g.Model, g.Eta, g.M, g.Trials, Num(g.VarSubset), Num(g.MeanSE2), Num(g.VarExact),
			Num(g.CostSubset), Num(g.CostExact), Num(g.Speedup), Num(g.BestM), Num(g.BestSpeedup)})
	}
	return out
}

// JSON writes report.json: every verdict with its test id and numbers.
func (r *Report) JSON(w io.Writer) error {
	b, err := json.MarshalIndent(r.JSONData(), "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// slug is s in lower case with runs of other characters than ASCII
// letters and digits made one underscore.
func slug(s string) string {
	var sb strings.Builder
	under := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' {
			sb.WriteRune(r)
			under = false
		} else if !under && sb.Len() > 0 {
			sb.WriteByte('_')
			under = true
		}
	}
	return strings.TrimSuffix(sb.String(), "_")
}

// meFacts sets the points' η to etas (their X being the curvature H), and
// the worst point's η likewise.
func meFacts(f *Facts, etas []float64) *Facts {
	for i := range f.Points {
		if f.Points[i].X == f.WorstX && !math.IsNaN(f.WorstX) {
			f.WorstEta = etas[i]
		}
		f.Points[i].Eta = etas[i]
	}
	return f
}
