package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/perturb/perturb/trials/analysis/report"
	"github.com/perturb/perturb/trials/results"
)

// Manifest is manifest.toml: one panel per row of the claims table.
type Manifest struct {
	Panels []Panel `toml:"panel"`
}

// Panel is one claim and the run that tests it.
type Panel struct {
	// Claim is the claims table's first column (the paper's claim).
	Claim string `toml:"claim"`
	// Config is the config the run was made from; ConfigText, when set,
	// is the table's config column instead of `Config`.
	Config     string `toml:"config"`
	ConfigText string `toml:"config_text"`
	// Run is the run folder, relative to the repository root; empty for a
	// row without a run (Result is then plain prose).
	Run   string `toml:"run"`
	Scale int    `toml:"scale"`
	// Commands made the run, in order.
	Commands []string `toml:"commands"`
	// Cite names the tests of RUN/report/report.json the result quotes:
	// alias = "test-id", or "test-id@MODEL" or "test-id@MODEL/INIT" where
	// the id occurs for several models or initialisations.
	Cite map[string]string `toml:"cite"`
	// Result is a text/template for the table's result column; .C.ALIAS
	// is the cited test (report.JSONTest), .S the run's cost.
	Result string `toml:"result"`
	// Figures are PNGs of the run's report (paths relative to the run
	// folder) shown under the run's commands: copied to Options.ImgDir.
	Figures []string `toml:"figures"`
}

// Options of a generation.
type Options struct {
	Root         string // repository root: run folders and configs are relative to it
	Manifest     string // manifest.toml
	Template     string // template.md
	AllowMissing bool
	// ImgDir, when set, receives a copy of each panel's figures (named
	// after the file), and the page shows them from ImgLink/NAME.
	ImgDir, ImgLink string
}

// Cost is what the sessions of a run folder cost.
type Cost struct {
	Recorded bool
	Sessions int
	// Unfinished sessions have no recorded end (killed, or still
	// running): their trials and time are not counted.
	Unfinished int
	Trials     int
	Wall       string // e.g. "31 s", "12 min", "3.4 h"
	Seconds    float64
	Cores      string // e.g. "2", "2 and 16"
	Date       string // of the last session's end, YYYY-MM-DD
	FirstDate  string
}

// row is one generated row of the claims table.
type row struct {
	Claim, Config, Result string
}

// runInfo is one run folder, for the commands section.
type runInfo struct {
	Run, Config string
	Scale       int
	Commands    []string
	Cost        Cost
	Missing     bool
	Figures     []string // Markdown image links
}

// Doc is what template.md sees.
type Doc struct {
	Table    string // the claims table (Markdown)
	Commands string // one block per run folder: its commands and cost
	Cores    string // the cores of every recorded session, e.g. "2"
	From, To string // the dates of the first and last recorded session
}

// Generate reads the manifest, the runs it cites and the template, and
// returns docs/reproduction.md.
func Generate(opt Options) ([]byte, error) {
	var m Manifest
	md, err := toml.DecodeFile(opt.Manifest, &m)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("manifest %s: unknown keys %v", opt.Manifest, und)
	}
	tmplText, err := os.ReadFile(opt.Template)
	if err != nil {
		return nil, err
	}
	var rows []row
	var runs []*runInfo
	byRun := map[string]*runInfo{}
	var cores []string
	var dates []string
	var errs []error
	for i, p := range m.Panels {
		name := fmt.Sprintf("panel %d (%s)", i+1, p.Claim)
		r := row{Claim: p.Claim, Config: configText(p)}
		if p.Run == "" {
			r.Result = strings.TrimSpace(p.Result)
			rows = append(rows, r)
			continue
		}
		if len(p.Commands) == 0 {
			errs = append(errs, fmt.Errorf("%s: run %s lists no commands", name, p.Run))
			continue
		}
		info := byRun[p.Run]
		if info == nil {
			info = &runInfo{Run: p.Run, Config: p.Config, Scale: p.Scale, Commands: p.Commands}
			byRun[p.Run] = info
			runs = append(runs, info)
		} else if !slices.Equal(info.Commands, p.Commands) {
			errs = append(errs, fmt.Errorf("%s: run %s has other commands in an earlier panel", name, p.Run))
			continue
		}
		dir := filepath.Join(opt.Root, p.Run)
		rep, err := readReport(dir)
		if errors.Is(err, os.ErrNotExist) {
			info.Missing = true
			how := strings.Join(p.Commands, " && ")
			if !opt.AllowMissing {
				errs = append(errs, fmt.Errorf("%s: run %s has no report/report.json; make it with: %s", name, p.Run, how))
				continue
			}
			r.Result = fmt.Sprintf("**Not run.** Make it with `%s`.", how)
			rows = append(rows, r)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		cost, err := readCost(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		info.Cost = cost
		if err := figures(opt, dir, p.Figures, info); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		if cost.Recorded {
			cores = append(cores, strings.Split(cost.Cores, " and ")...)
			dates = append(dates, cost.FirstDate, cost.Date)
		}
		cited, err := cite(p, rep)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		text, err := execute(p.Result, struct {
			C      map[string]report.JSONTest
			S      Cost
			Scale  int
			Subset []report.JSONGain
		}{cited, cost, p.Scale, rep.Subset})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: result: %w", name, err))
			continue
		}
		r.Result = text + " " + costText(cost)
		rows = append(rows, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	doc := Doc{Table: table(rows), Commands: commands(runs), Cores: join(uniqueSorted(cores))}
	if d := uniqueSorted(dates); len(d) > 0 {
		doc.From, doc.To = d[0], d[len(d)-1]
	}
	t, err := template.New(filepath.Base(opt.Template)).Option("missingkey=error").Parse(string(tmplText))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := t.Execute(&out, doc); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// readReport reads dir/report/report.json.
func readReport(dir string) (*report.JSONFile, error) {
	path := filepath.Join(dir, "report", "report.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f report.JSONFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.Schema != report.JSONSchema {
		return nil, fmt.Errorf("%s: schema %d, this generator reads %d; rerun perturb report", path, f.Schema, report.JSONSchema)
	}
	return &f, nil
}

// readCost sums dir's sessions.json.
func readCost(dir string) (Cost, error) {
	ss, err := results.ReadSessions(dir)
	if err != nil || len(ss) == 0 {
		return Cost{}, err
	}
	c := Cost{Recorded: true, Sessions: len(ss)}
	var cores []string
	first, last := ss[0].Start, ss[0].Start
	for _, s := range ss {
		cores = append(cores, fmt.Sprint(s.Cores))
		first = minTime(first, s.Start)
		last = maxTime(last, s.Start)
		if s.Outcome == results.Running {
			c.Unfinished++
			continue
		}
		c.Trials += s.Trials
		c.Seconds += s.WallSeconds
		last = maxTime(last, s.End)
	}
	c.Cores = join(uniqueSorted(cores))
	c.FirstDate = first.UTC().Format(time.DateOnly)
	c.Date = last.UTC().Format(time.DateOnly)
	c.Wall = duration(c.Seconds)
	return c, nil
}

// duration is s seconds in words.
func duration(s float64) string {
	switch {
	case s < 90:
		return fmt.Sprintf("%.0f s", s)
	case s < 90*60:
		return fmt.Sprintf("%.0f min", s/60)
	}
	return fmt.Sprintf("%.1f h", s/3600)
}

// cite resolves the panel's citations in rep.
func cite(p Panel, rep *report.JSONFile) (map[string]report.JSONTest, error) {
	out := map[string]report.JSONTest{}
	aliases := make([]string, 0, len(p.Cite))
	for a := range p.Cite {
		aliases = append(aliases, a)
	}
	sort.Strings(aliases)
	for _, a := range aliases {
		ref := p.Cite[a]
		id, model, init := ref, "", -1
		if at := strings.IndexByte(ref, '@'); at >= 0 {
			id, model = ref[:at], ref[at+1:]
			if sl := strings.LastIndexByte(model, '/'); sl >= 0 {
				if _, err := fmt.Sscanf(model[sl+1:], "%d", &init); err != nil {
					return nil, fmt.Errorf("cite %s = %q: the initialisation after / is not a number", a, ref)
				}
				model = model[:sl]
			}
		}
		var found []report.JSONTest
		known := false
		for _, t := range rep.Tests {
			if t.ID != id {
				continue
			}
			known = true
			if (model == "" || t.Model == model) && (init < 0 || t.Init == init) {
				found = append(found, t)
			}
		}
		switch {
		case !known:
			return nil, fmt.Errorf("%s/report/report.json has no test %q (cite %s); it has: %s", p.Run, id, a, strings.Join(testIDs(rep), ", "))
		case len(found) == 0:
			return nil, fmt.Errorf("%s/report/report.json has no test %q for %q (cite %s); it has: %s", p.Run, id, ref[len(id)+1:], a, strings.Join(testIDs(rep), ", "))
		case len(found) > 1:
			return nil, fmt.Errorf("%s/report/report.json has %d tests %q (cite %s): name one as %s", p.Run, len(found), id, a, strings.Join(refsOf(found), " or "))
		}
		out[a] = found[0]
	}
	return out, nil
}

// testIDs lists rep's tests as cite references, each once.
func testIDs(rep *report.JSONFile) []string {
	count := map[string]int{}
	for _, t := range rep.Tests {
		count[t.ID]++
	}
	var ids []string
	seen := map[string]bool{}
	for _, t := range rep.Tests {
		ref := t.ID
		if count[t.ID] > 1 {
			ref = refsOf([]report.JSONTest{t})[0]
		}
		if !seen[ref] {
			seen[ref] = true
			ids = append(ids, ref)
		}
	}
	return ids
}

// refsOf are the references "id@model/init" of ts.
func refsOf(ts []report.JSONTest) []string {
	var out []string
	for _, t := range ts {
		out = append(out, fmt.Sprintf("%s@%s/%d", t.ID, t.Model, t.Init))
	}
	return out
}

// funcs format the cited numbers in results.
var funcs = template.FuncMap{
	// z: a z-score with its sign, two decimals (+1.23).
	"z": func(x report.Num) string { return fmtNum("%+.2f", x) },
	// f2: two decimals; g3: three significant digits.
	"f2": func(x report.Num) string { return fmtNum("%.2f", x) },
	"f3": func(x report.Num) string { return fmtNum("%.3f", x) },
	"g3": func(x report.Num) string { return fmtNum("%.3g", x) },
	"g":  func(x report.Num) string { return fmtNum("%g", x) },
	// pm: estimate ± s.e. of a test.
	"pm": func(t report.JSONTest) string {
		return fmtNum("%.3g", t.Estimate) + " ± " + fmtNum("%.2g", t.SE)
	},
	// ci: the test's 95% CI.
	"ci": func(t report.JSONTest, format string) string {
		return "95% CI [" + fmtNum(format, t.CILo) + ", " + fmtNum(format, t.CIHi) + "]"
	},
	// ratio: measured over predicted at point i, and its s.e.
	"ratio": func(t report.JSONTest, i int) (string, error) {
		if i < 0 || i >= len(t.Points) {
			return "", fmt.Errorf("%s has %d points, not %d", t.ID, len(t.Points), i+1)
		}
		p := t.Points[i]
		return fmtNum("%.3f", p.Measured/p.Predicted) + " ± " + fmtNum("%.2g", p.SE/p.Predicted), nil
	},
	// point: the point of t at η (or at x, H for Mean Estimation).
	"point": func(t report.JSONTest, x float64) (report.JSONPoint, error) {
		for _, p := range t.Points {
			if near(float64(p.Eta), x) || near(float64(p.X), x) {
				return p, nil
			}
		}
		return report.JSONPoint{}, fmt.Errorf("%s has no point at %g", t.ID, x)
	},
	// mpm: a point's measurement ± its s.e.
	"mpm": func(p report.JSONPoint) string {
		return fmtNum("%.3g", p.Measured) + " ± " + fmtNum("%.2g", p.SE)
	},
	// summary: the verdicts of several tests in words ("all agree", "3
	// agree, 1 disagrees").
	"summary": summary,
	// worstz: the worst z of several tests (largest in size).
	"worstz": func(ts ...report.JSONTest) string {
		w := math.NaN()
		for _, t := range ts {
			if z := float64(t.WorstZ); math.IsNaN(w) || math.Abs(z) > math.Abs(w) || math.IsNaN(z) {
				w = z
			}
		}
		return fmtNum("%+.2f", report.Num(w))
	},
	// maxz: the measurement/s.e. of largest size over t's points (a
	// difference's z against 0).
	"maxz": func(t report.JSONTest) string {
		w := 0.0
		for _, p := range t.Points {
			if z := float64(p.Measured / p.SE); math.Abs(z) > math.Abs(w) || math.IsNaN(z) {
				w = z
			}
		}
		return fmtNum("%+.2f", report.Num(w))
	},
	// argmax: the point with the largest measurement.
	"argmax": func(t report.JSONTest) (report.JSONPoint, error) {
		if len(t.Points) == 0 {
			return report.JSONPoint{}, fmt.Errorf("%s has no points", t.ID)
		}
		best := t.Points[0]
		for _, p := range t.Points[1:] {
			if p.Measured > best.Measured {
				best = p
			}
		}
		return best, nil
	},
	"first": func(t report.JSONTest) report.JSONPoint { return t.Points[0] },
	"last":  func(t report.JSONTest) report.JSONPoint { return t.Points[len(t.Points)-1] },
	// tested: the number of tested points.
	"tested": func(t report.JSONTest) int { return len(t.Etas) },
	"count": func(p *int) (int, error) {
		if p == nil {
			return 0, errors.New("the test has no count")
		}
		return *p, nil
	},
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }

// fmtNum formats x, "NaN" when the report had no number.
func fmtNum(format string, x report.Num) string {
	v := float64(x)
	if math.IsNaN(v) {
		return "NaN"
	}
	s := fmt.Sprintf(format, v)
	if strings.HasPrefix(s, "-") {
		s = "−" + s[1:] // the minus sign of the docs
	}
	return s
}

// execute runs a result template.
func execute(text string, data any) (string, error) {
	t, err := template.New("result").Funcs(funcs).Option("missingkey=error").Parse(strings.TrimSpace(text))
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return strings.Join(strings.Fields(b.String()), " "), nil
}

// costText is the cost in the result column.
func costText(c Cost) string {
	if !c.Recorded {
		return "*(Cost not recorded: the run predates sessions.json.)*"
	}
	return fmt.Sprintf("*(%s trials in %s on %s cores, %s%s.)*", thousands(c.Trials), c.Wall, c.Cores, c.Date, unfinished(c))
}

// configText is the table's config column.
func configText(p Panel) string {
	if p.ConfigText != "" {
		return p.ConfigText
	}
	s := "`" + strings.TrimSuffix(filepath.Base(p.Config), ".toml") + "`"
	if p.Scale > 1 {
		s += fmt.Sprintf(" (SCALE=%d)", p.Scale)
	}
	return s
}

func table(rows []row) string {
	var b strings.Builder
	b.WriteString("| claim (paper) | config | result here |\n| --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", cell(r.Claim), cell(r.Config), cell(r.Result))
	}
	return b.String()
}

// cell escapes a table cell's pipes and joins its lines.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '|' && (i == 0 || s[i-1] != '\\') {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func commands(runs []*runInfo) string {
	var b strings.Builder
	for i, r := range runs {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "`%s`", r.Run)
		if r.Config != "" {
			fmt.Fprintf(&b, " (config `%s`", r.Config)
			if r.Scale > 1 {
				fmt.Fprintf(&b, ", scale %d", r.Scale)
			}
			b.WriteString(")")
		}
		switch {
		case r.Missing:
			b.WriteString(": not run yet.")
		case r.Cost.Recorded:
			s := "s"
			if r.Cost.Sessions == 1 {
				s = ""
			}
			fmt.Fprintf(&b, ": %s trials in %s on %s cores over %d session%s, last on %s%s.", thousands(r.Cost.Trials), r.Cost.Wall, r.Cost.Cores, r.Cost.Sessions, s, r.Cost.Date, unfinished(r.Cost))
		default:
			b.WriteString(": cost not recorded.")
		}
		b.WriteString("\n\n")
		for _, c := range r.Commands {
			b.WriteString("    " + c + "\n")
		}
		for _, f := range r.Figures {
			b.WriteString("\n" + f + "\n")
		}
	}
	return b.String()
}

func uniqueSorted(xs []string) []string {
	out := slices.Clone(xs)
	sort.Strings(out)
	return slices.Compact(out)
}

// join is "a", "a and b", "a, b and c".
func join(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}

// summary is the verdicts of ts in words: "all agree", "all disagree",
// or the counts, e.g. "3 agree, 1 disagrees".
func summary(ts ...report.JSONTest) string {
	n := map[string]int{}
	for _, t := range ts {
		n[t.Verdict]++
	}
	plural := map[string]string{"agrees": "agree", "disagrees": "disagree", "inconclusive": "inconclusive"}
	for w, k := range n {
		if k == len(ts) {
			if k == 1 {
				return w
			}
			return "all " + plural[w]
		}
	}
	var parts []string
	for _, w := range []string{"agrees", "disagrees", "inconclusive"} {
		if k := n[w]; k == 1 {
			parts = append(parts, "1 "+w)
		} else if k > 1 {
			parts = append(parts, fmt.Sprintf("%d %s", k, plural[w]))
		}
	}
	return strings.Join(parts, ", ")
}

// unfinished notes the sessions without a recorded end.
func unfinished(c Cost) string {
	switch c.Unfinished {
	case 0:
		return ""
	case 1:
		return "; 1 session without a recorded end (killed, or still running) is not counted"
	}
	return fmt.Sprintf("; %d sessions without a recorded end (killed, or still running) are not counted", c.Unfinished)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// thousands writes n with commas between groups of three digits.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// figures copies the run's figures (paths relative to its folder dir)
// into opt.ImgDir and records their links in info; without an ImgDir the
// figures are left out of the page.
func figures(opt Options, dir string, figs []string, info *runInfo) error {
	if opt.ImgDir == "" || len(info.Figures) > 0 {
		return nil
	}
	if err := os.MkdirAll(opt.ImgDir, 0o755); err != nil {
		return err
	}
	for _, f := range figs {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return fmt.Errorf("figure: %w (run perturb report on the run)", err)
		}
		name := filepath.Base(f)
		if err := os.WriteFile(filepath.Join(opt.ImgDir, name), b, 0o644); err != nil {
			return err
		}
		alt := strings.TrimSuffix(name, filepath.Ext(name))
		info.Figures = append(info.Figures, fmt.Sprintf("![%s](%s/%s)", alt, opt.ImgLink, name))
	}
	return nil
}
