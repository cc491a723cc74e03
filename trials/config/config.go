// Package config reads and validates perturb's TOML trial configs.
//
// A config names the data, one or more models with their initialisation
// ids, one or more optimisers, a learning-rate sweep, the number of trials,
// the training-set size N, the dtype and the seed:
//
//	name  = "quickstart"
//	seed  = 1
//	dtype = "float32"            # or "float64"
//
//	[data]
//	set = "fashion-mnist"        # or "cifar-10"
//	dir = ""                     # empty: $PERTURB_FASHION_MNIST or the default folder
//
//	[trials]
//	count = 20                   # trials per (model, init, optimiser, eta)
//	n     = 10                   # training points, drawn with replacement
//	etas  = [0.01, 0.03, 0.1]
//
//	[[model]]
//	name  = "logistic"
//	inits = [0]
//
//	[[optimizer]]
//	name   = "sgd"               # SGD: batch B, epochs E (or steps T = E·N/B)
//	batch  = 1
//	epochs = 1
//	reshuffle = false            # reshuffle the order between epochs
//
//	[[optimizer]]
//	name  = "gd"                 # full-batch GD for T steps
//	steps = 10
//
// Further optimisers (see package optim for their updates): "gdc" (GD plus
// the covariance regulariser; steps, n >= 2), "igr" (GD on L + (eta/4)
// |grad L|^2; steps), "smith" (GD on Smith et al.'s SGD modified loss over
// minibatches of size batch; batch, steps) and "sde" (the SDE approximation
// of SGD with batch and epochs, refine = 16 substeps per step; n >= 2).
//
// The artificial landscapes "gauss", "archimedes", "mean-estimation" and
// "mean-estimation-l2" are models too; they need no [data] (their points
// are drawn from N(0,1)) and take optional keys:
//
//	[[model]]
//	name  = "mean-estimation"
//	inits = [0]
//	h     = 1.0                  # Hessian H > 0 (mean-estimation only)
//	s     = 10.0                 # gradient-noise scale S > 0 (mean-estimation only)
//	start = [10.0]               # initialisation 0 (default: the origin)
//
// Every error names the file, the line and the key, says what is wrong and
// what to do. Load checks every value before any work starts.
package config

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/landscape"
	"github.com/perturb/perturb/trials/optim"
)

// Config is a validated trial config.
type Config struct {
	Name       string      `toml:"name" json:"name"`
	Seed       uint64      `toml:"seed" json:"seed"`
	DType      string      `toml:"dtype" json:"dtype"`
	Data       Data        `toml:"data" json:"data"`
	Trials     Trials      `toml:"trials" json:"trials"`
	Models     []Model     `toml:"model" json:"model"`
	Optimizers []Optimizer `toml:"optimizer" json:"optimizer"`
	// Sharpness, when set, measures sharpness with the trials (see
	// sharpness.go); nil leaves the hash of a config without it unchanged.
	Sharpness *Sharpness `toml:"sharpness" json:"sharpness,omitempty"`

	// Path is the file the config was read from (not part of the hash).
	Path string `toml:"-" json:"-"`
	// Text is the file's content as read.
	Text string `toml:"-" json:"-"`
}

// Data selects the dataset.
type Data struct {
	Set string `toml:"set" json:"set"`
	// Dir overrides the dataset folder. It is not part of the config hash:
	// the same data in another folder is the same experiment.
	Dir string `toml:"dir" json:"-"`
}

// Trials sets the sweep.
type Trials struct {
	Count int       `toml:"count" json:"count"`
	N     int       `toml:"n" json:"n"`
	Etas  []float64 `toml:"etas" json:"etas"`
}

// Model names an architecture and its initialisations.
type Model struct {
	Name string `toml:"name" json:"name"`
	// Label names the model in results when one config holds several
	// models of the same architecture (e.g. Mean Estimation at several H);
	// empty means Name. Key returns the name in use.
	Label string `toml:"label" json:"label,omitempty"`
	Inits []int  `toml:"inits" json:"inits"`
	// H and S parameterise the Mean Estimation landscapes (Hessian and
	// gradient-noise scale); Start is a landscape's initialisation 0 (the
	// origin when empty).
	H     float64   `toml:"h" json:"h,omitempty"`
	S     float64   `toml:"s" json:"s,omitempty"`
	Start []float64 `toml:"start" json:"start,omitempty"`
	// Width and Depth size the model families mlp and convnet (see
	// nets.Size; 0 is the family's default, e.g. the paper's convnet).
	Width int `toml:"width" json:"width,omitempty"`
	Depth int `toml:"depth" json:"depth,omitempty"`
}

// Size is m's nets.Size.
func (m Model) Size() nets.Size { return nets.Size{Width: m.Width, Depth: m.Depth} }

// checkSize validates the keys width and depth of m.
func (m Model) checkSize(key string) error {
	if !nets.Sized(m.Name) {
		for k, v := range map[string]int{"width": m.Width, "depth": m.Depth} {
			if v != 0 {
				return &Error{Key: key + "." + k, Msg: fmt.Sprintf("%s applies only to mlp and convnet; remove it", k)}
			}
		}
		return nil
	}
	if m.Width < 0 || m.Width > nets.MaxWidth {
		return &Error{Key: key + ".width", Msg: fmt.Sprintf("width %d out of range; use 1 to %d (or leave it out for the default)", m.Width, nets.MaxWidth)}
	}
	minDepth := 1
	if m.Name == "convnet" {
		minDepth = 2
	}
	if m.Depth < 0 || m.Depth > nets.MaxDepth || (m.Depth != 0 && m.Depth < minDepth) {
		return &Error{Key: key + ".depth", Msg: fmt.Sprintf("depth %d out of range; use %d to %d (or leave it out for the default)", m.Depth, minDepth, nets.MaxDepth)}
	}
	return nil
}

// Key is the name of m in results, statistics and trials: Label if set,
// else Name.
func (m Model) Key() string {
	if m.Label != "" {
		return m.Label
	}
	return m.Name
}

// IsLandscape reports whether m is an artificial landscape (unlimited
// N(0,1) data, closed-form test loss) rather than an image model.
func (m Model) IsLandscape() bool { return landscape.IsLandscape(m.Name) }

// Optimizer is one optimiser setting. After Load, Batch, Epochs and Steps
// are all set and consistent: Steps = Epochs·N/Batch.
type Optimizer struct {
	Name      string `toml:"name" json:"name"`
	Label     string `toml:"label" json:"label"`
	Batch     int    `toml:"batch" json:"batch"`
	Epochs    int    `toml:"epochs" json:"epochs"`
	Steps     int    `toml:"steps" json:"steps"`
	Reshuffle bool   `toml:"reshuffle" json:"reshuffle"`
	// Refine is SDE's number of substeps per SGD step (default 16).
	Refine int `toml:"refine" json:"refine,omitempty"`
	// EtaScale multiplies the sweep's learning rates for this optimiser
	// (0 means 1): E-epoch SGD at η/E against one epoch at η (Corollary 4)
	// stores both under the sweep's η.
	EtaScale float64 `toml:"eta_scale" json:"eta_scale,omitempty"`
	// Population makes sde draw its drift and noise from the data
	// distribution itself (landscapes only) instead of the training set.
	Population bool `toml:"population" json:"population,omitempty"`
}

// Scale is the factor applied to the sweep's η (EtaScale, default 1).
func (o Optimizer) Scale() float64 {
	if o.EtaScale == 0 {
		return 1
	}
	return o.EtaScale
}

// Spec is o as the optimiser package takes it.
func (o Optimizer) Spec() optim.Spec {
	return optim.Spec{Name: o.Name, Batch: o.Batch, Epochs: o.Epochs, Steps: o.Steps, Reshuffle: o.Reshuffle, Refine: o.Refine, Population: o.Population}
}

// Known values.
var (
	DTypes     = []string{"float32", "float64"}
	DataSets   = []string{"fashion-mnist", "cifar-10"}
	Optimisers = optim.Names
)

// ErrInvalid is wrapped by every error Load returns for a bad config.
var ErrInvalid = errors.New("invalid config")

// Error is a config error at a position.
type Error struct {
	File string
	Line int    // 0 if unknown
	Key  string // dotted key, e.g. "optimizer[1].batch"
	Msg  string // what is wrong; what to do
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, " (key %q)", e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// Load reads, decodes and validates the config at path.
func Load(path string) (*Config, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w; check the path (CONFIG is a TOML file such as configs/quickstart.toml)", err)
	}
	return Parse(path, string(text))
}

// Parse decodes and validates text, reporting errors against file.
func Parse(file, text string) (*Config, error) {
	c := &Config{Path: file, Text: text}
	md, err := toml.Decode(text, c)
	if err != nil {
		return nil, decodeError(file, text, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		uk := und[0]
		if len(uk) > 1 && knownKeys(uk[:2]) == "" {
			uk = uk[:1] // a key under an unknown table: report the table
		}
		k := uk.String()
		return nil, &Error{File: file, Line: locate(text, k), Key: k,
			Msg: fmt.Sprintf("unknown key; %sknown keys here: %s", suggest(uk), knownKeys(uk))}
	}
	// The TOML decoder stores a negative seed into the uint64 field
	// without complaint; refuse it rather than run with 2^64 − |seed|.
	var raw struct {
		Seed any `toml:"seed"`
	}
	if _, err := toml.Decode(text, &raw); err == nil {
		if v, ok := raw.Seed.(int64); ok && v < 0 {
			return nil, &Error{File: file, Line: locate(text, "seed"), Key: "seed",
				Msg: fmt.Sprintf("seed = %d is negative; use a whole number from 0 to 18446744073709551615, e.g. seed = 1", v)}
		}
	}
	if err := c.validate(); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = file
			e.Line = locate(text, e.Key)
		}
		return nil, err
	}
	return c, nil
}

var posRe = regexp.MustCompile(`^(?:line (\d+))? ?(?:\(last key "([^"]*)"\))?: `)

// decodeError turns a toml error (syntax or type mismatch) into an *Error.
func decodeError(file, text string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := pe.Message
		if pe.Usage != "" {
			msg += "; " + strings.TrimSpace(pe.Usage)
		}
		e := &Error{File: file, Line: pe.Position.Line, Key: pe.LastKey, Msg: msg}
		e.Msg = explainType(text, e)
		return e
	}
	// Type mismatches read "toml: line N (last key "k"): what".
	msg := strings.TrimPrefix(err.Error(), "toml: ")
	e := &Error{File: file, Msg: msg}
	if m := posRe.FindStringSubmatchIndex(msg); m != nil {
		if m[2] >= 0 {
			e.Line, _ = strconv.Atoi(msg[m[2]:m[3]])
		}
		if m[4] >= 0 {
			e.Key = msg[m[4]:m[5]]
		}
		e.Msg = msg[m[1]:]
	}
	if e.Line == 0 && e.Key != "" {
		e.Line = locate(text, e.Key)
	}
	e.Msg = explainType(text, e)
	return e
}

var (
	typeRe  = regexp.MustCompile(`^incompatible types: TOML value has type (\S+); destination has type (.+)$`)
	tableRe = regexp.MustCompile(`^type mismatch for \S+: expected table but found (\S+)$`)
)

// examples are a valid setting of each key, for messages.
var examples = map[string]string{
	"name": `name = "quickstart"`, "seed": "seed = 1", "dtype": `dtype = "float32"`,
	"set": `set = "fashion-mnist"`, "dir": `dir = "/usr/share/datasets/fashion-mnist"`,
	"count": "count = 20", "n": "n = 10", "etas": "etas = [0.01, 0.1]",
	"inits": "inits = [0, 1]", "h": "h = 1.0", "s": "s = 10.0", "start": "start = [10.0]",
	"label": `label = "sgd-b2"`, "batch": "batch = 1", "epochs": "epochs = 1", "steps": "steps = 10",
	"reshuffle": "reshuffle = false", "refine": "refine = 16",
	"data": "[data] with set and dir", "trials": "[trials] with count, n and etas",
	"model": "[[model]] (one per model, with name and inits)", "optimizer": "[[optimizer]] (one per optimiser)",
	"sharpness": "[sharpness] with measures, at, on, every, ...", "measures": `measures = ["lambda", "tr_h"]`,
	"at": `at = ["init", "end"]`, "on": `on = ["train", "pool"]`, "every": "every = 10", "subset": "subset = 1000",
	"eigenvalues": "eigenvalues = 1", "tol": "tol = 1e-3", "max_iter": "max_iter = 100", "trace_se": "trace_se = 0.05",
	"min_probes": "min_probes = 10", "max_probes": "max_probes = 100",
}

// explainType rewrites the toml package's type-mismatch messages of e
// ("incompatible types: TOML value has type string; destination has type
// integer") into what was found, what the key takes, and an example.
func explainType(text string, e *Error) string {
	leaf := e.Key
	if i := strings.LastIndex(leaf, "."); i >= 0 {
		leaf = leaf[i+1:]
	}
	example := ""
	if ex, ok := examples[leaf]; ok {
		example = "; write e.g. " + ex
	}
	if m := tableRe.FindStringSubmatch(e.Msg); m != nil {
		return fmt.Sprintf("%s must be a table, found %s%s", leaf, tomlKind(m[1]), example)
	}
	if strings.HasPrefix(e.Msg, "Key '") && strings.HasSuffix(e.Msg, "' has already been defined.") {
		return fmt.Sprintf("%s is set twice; keep one of the two", leaf)
	}
	if e.Msg == "strings cannot contain newlines" {
		return "unterminated string (strings cannot contain newlines); close it with \" on the same line"
	}
	m := typeRe.FindStringSubmatch(e.Msg)
	if m == nil {
		return e.Msg
	}
	found, want := tomlKind(m[1]), m[2]
	switch want {
	case "integer":
		want = "a whole number"
	case "float":
		want = "a number"
	case "string":
		want = "a quoted string"
	case "boolean":
		want = "true or false"
	case "slice":
		want = "an array"
		if m[1] == "map[string]any" && (leaf == "model" || leaf == "optimizer") {
			return fmt.Sprintf("%s is an array of tables: start each %s with a [[%s]] line (not [%s] or [[%s.…]])", leaf, leaf, leaf, leaf, leaf)
		}
	}
	v := valueAt(text, e.Line, leaf)
	switch {
	case strings.HasPrefix(v, "[") && m[2] != "slice":
		return fmt.Sprintf("%s holds %s, but each element of %s must be %s%s", v, found, leaf, want, example)
	case v != "":
		found = v + " is " + found
	default:
		found = "the value is " + found
	}
	return fmt.Sprintf("%s, but %s takes %s%s", found, leaf, want, example)
}

// tomlKind describes a Go type name of a decoded TOML value.
func tomlKind(t string) string {
	switch {
	case t == "string":
		return "a string"
	case t == "int64":
		return "an integer"
	case t == "float64":
		return "a float"
	case t == "bool":
		return "a boolean"
	case strings.HasPrefix(t, "map["):
		return "a table"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.Contains(t, "time.") || strings.Contains(t, "Local"):
		return "a date or time"
	}
	return "a " + t
}

// valueAt returns the text after "key =" on line (1-based) of text, cut
// to a readable length, or "" if that line does not set key.
func valueAt(text string, line int, key string) string {
	lines := strings.Split(text, "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	k, v, ok := strings.Cut(lines[line-1], "=")
	if !ok || strings.Trim(strings.TrimSpace(k), `"'`) != key {
		return ""
	}
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, `"`) && !strings.HasPrefix(v, "'") {
		v, _, _ = strings.Cut(v, "#")
		v = strings.TrimSpace(v)
	}
	if r := []rune(v); len(r) > 40 {
		v = string(r[:37]) + "..."
	}
	return v
}

func knownKeys(k toml.Key) string {
	known := map[string]string{
		"":          "name, seed, dtype, [data], [trials], [[model]], [[optimizer]], [sharpness]",
		"data":      "set, dir",
		"trials":    "count, n, etas",
		"model":     "name, inits, h, s, start, width, depth",
		"sharpness": sharpnessKeys,
		"optimizer": "name, label, batch, epochs, steps, reshuffle, refine",
	}
	parent := ""
	if len(k) > 1 {
		parent = k[0]
	}
	return known[parent]
}

// suggest returns `did you mean "K"? ` for the known key K closest to
// the unknown key k (at most two edits away), else "".
func suggest(k toml.Key) string {
	bad := k[len(k)-1]
	best, bestD := "", min(2, len(bad)/2)+1
	for _, cand := range strings.Split(knownKeys(k), ", ") {
		cand = strings.Trim(cand, "[]")
		if d := editDistance(strings.ToLower(bad), cand); d < bestD {
			best, bestD = cand, d
		}
	}
	if best == "" || best == bad {
		return ""
	}
	return fmt.Sprintf("did you mean %q? ", best)
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// locate finds the line of a dotted key such as "trials.etas" or
// "optimizer[1].batch" (0-based array index) by scanning the text. A key
// that is absent is reported at its table's header; 0 if neither is found.
func locate(text, key string) int {
	if key == "" {
		return 0
	}
	parts := strings.Split(key, ".")
	last := parts[len(parts)-1]
	if i := strings.Index(last, "["); i >= 0 {
		last = last[:i]
	}
	table, index := "", -1
	if len(parts) > 1 {
		table = parts[0]
		if i := strings.Index(table, "["); i >= 0 {
			index, _ = strconv.Atoi(strings.TrimSuffix(table[i+1:], "]"))
			table = table[:i]
		}
	}
	cur, seen, header := "", map[string]int{}, 0
	keyRe := regexp.MustCompile(`^\s*"?` + regexp.QuoteMeta(last) + `"?\s*[=.]`)
	sc := bufio.NewScanner(strings.NewReader(text))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(s, "[") {
			cur = strings.Trim(strings.SplitN(s, "#", 2)[0], "[] \t")
			seen[cur]++
			if len(parts) == 1 && (cur == last || strings.HasPrefix(cur, last+".")) {
				return line
			}
			if table != "" && cur == table+"."+last {
				return line
			}
			if cur == table && (index < 0 || seen[cur]-1 == index) && header == 0 {
				header = line
			}
			continue
		}
		if cur == table && (index < 0 || seen[cur]-1 == index) && keyRe.MatchString(s) {
			return line
		}
	}
	return header
}

func (c *Config) validate() error {
	bad := func(key, format string, a ...any) error {
		return &Error{Key: key, Msg: fmt.Sprintf(format, a...)}
	}
	if strings.TrimSpace(c.Name) == "" {
		return bad("name", "missing; give the run a name, e.g. name = \"quickstart\"")
	}
	if !slices.Contains(DTypes, c.DType) {
		return bad("dtype", "%q is not a dtype; use one of %s", c.DType, strings.Join(DTypes, ", "))
	}
	// An unknown model name is reported below, not as a missing data set.
	if (c.Data.Set != "" || c.NeedsData()) && c.modelsKnown() && !slices.Contains(DataSets, c.Data.Set) {
		return bad("data.set", "%q is not a dataset; use one of %s", c.Data.Set, strings.Join(DataSets, ", "))
	}
	t := c.Trials
	if t.Count < 1 {
		return bad("trials.count", "%d trials; need at least 1", t.Count)
	}
	if t.N < 1 {
		return bad("trials.n", "training-set size %d; need at least 1", t.N)
	}
	if len(t.Etas) == 0 {
		return bad("trials.etas", "empty learning-rate sweep; list at least one eta > 0")
	}
	for i, eta := range t.Etas {
		if !(eta > 0) || math.IsInf(eta, 0) {
			return bad("trials.etas", "eta %v (entry %d) must be positive and finite", eta, i+1)
		}
		if slices.Contains(t.Etas[:i], eta) {
			return bad("trials.etas", "eta %v listed twice; remove the duplicate", eta)
		}
	}
	if len(c.Models) == 0 {
		return bad("model", "no [[model]]; add one, e.g. [[model]] name = \"logistic\" inits = [0]")
	}
	for i, m := range c.Models {
		key := fmt.Sprintf("model[%d]", i)
		if !slices.Contains(nets.Names, m.Name) && !m.IsLandscape() {
			return bad(key+".name", "%q is not a model; use one of %s", m.Name, strings.Join(append(slices.Clone(nets.Names), landscape.Names...), ", "))
		}
		if err := m.checkLandscape(key); err != nil {
			return err
		}
		if err := m.checkSize(key); err != nil {
			return err
		}
		for _, o := range c.Models[:i] {
			if o.Key() == m.Key() {
				if m.Label != "" {
					return bad(key+".label", "model label %q used twice; give each [[model]] a distinct label", m.Label)
				}
				return bad(key+".name", "model %q listed twice; merge the inits into one [[model]], or give each a distinct label", m.Name)
			}
		}
		if len(m.Inits) == 0 {
			return bad(key+".inits", "empty; list at least one initialisation id (0 = zeros, k > 0 = k-th Gaussian draw)")
		}
		for j, id := range m.Inits {
			if id < 0 {
				return bad(key+".inits", "initialisation id %d is negative; use 0 (zeros) or k > 0", id)
			}
			if id == 0 && m.Name == "convnet" && !m.IsLandscape() {
				return bad(key+".inits", "the convnet cannot start from 0 (all zeros: tanh layers get no gradient); use Gaussian draws k > 0")
			}
			if slices.Contains(m.Inits[:j], id) {
				return bad(key+".inits", "initialisation %d listed twice; remove the duplicate", id)
			}
		}
	}
	if len(c.Optimizers) == 0 {
		return bad("optimizer", "no [[optimizer]]; add one, e.g. [[optimizer]] name = \"sgd\" batch = 1 epochs = 1")
	}
	labels := map[string]bool{}
	for i := range c.Optimizers {
		o := &c.Optimizers[i]
		key := fmt.Sprintf("optimizer[%d]", i)
		if o.Label == "" {
			o.Label = o.Name
		}
		if err := o.normalise(key, t.N); err != nil {
			return err
		}
		if labels[o.Label] {
			return bad(key+".label", "optimizer label %q used twice; give each [[optimizer]] a distinct label", o.Label)
		}
		labels[o.Label] = true
		for _, m := range c.Models {
			switch {
			case o.Population && !m.IsLandscape():
				return bad(key+".population", "sde with population = true draws from the data distribution, which only the landscapes have; model %q is an image model: remove population or the model", m.Name)
			case o.Name == "stic" && m.Name != "mean-estimation-l2":
				return bad(key+".name", "stic tunes the l2 coefficient of mean-estimation-l2 and runs on no other model (here %q); use gd, or that model", m.Name)
			}
		}
	}
	if c.Sharpness != nil {
		if err := c.Sharpness.normalise(t.N); err != nil {
			return err
		}
	}
	return nil
}

// modelsKnown reports whether every model name of c is known.
func (c *Config) modelsKnown() bool {
	for _, m := range c.Models {
		if !slices.Contains(nets.Names, m.Name) && !m.IsLandscape() {
			return false
		}
	}
	return true
}

// NeedsData reports whether some model of c is an image model.
func (c *Config) NeedsData() bool {
	for _, m := range c.Models {
		if !m.IsLandscape() {
			return true
		}
	}
	return false
}

// checkLandscape validates the landscape keys h, s and start of m.
func (m Model) checkLandscape(key string) error {
	if !m.IsLandscape() {
		for k, set := range map[string]bool{"h": m.H != 0, "s": m.S != 0, "start": m.Start != nil} {
			if set {
				return &Error{Key: key + "." + k, Msg: fmt.Sprintf("%s applies only to the artificial landscapes (%s); remove it", k, strings.Join(landscape.Names, ", "))}
			}
		}
		return nil
	}
	if !strings.HasPrefix(m.Name, "mean-estimation") {
		for k, set := range map[string]bool{"h": m.H != 0, "s": m.S != 0} {
			if set {
				return &Error{Key: key + "." + k, Msg: fmt.Sprintf("%s applies only to mean-estimation and mean-estimation-l2; remove it", k)}
			}
		}
	}
	if _, err := landscape.New(m.Name, m.Options(), false); err != nil {
		k := key + ".start"
		switch {
		case strings.HasPrefix(m.Name, "mean-estimation") && !(m.H > 0) || math.IsInf(m.H, 0):
			k = key + ".h"
		case strings.HasPrefix(m.Name, "mean-estimation") && !(m.S > 0) || math.IsInf(m.S, 0):
			k = key + ".s"
		}
		return &Error{Key: k, Msg: err.Error()}
	}
	return nil
}

// Options are m's landscape options.
func (m Model) Options() landscape.Options {
	return landscape.Options{H: m.H, S: m.S, Start: m.Start}
}

// normalise checks o against the training-set size n and fills in Batch,
// Epochs and Steps.
func (o *Optimizer) normalise(key string, n int) error {
	bad := func(k, format string, a ...any) error {
		return &Error{Key: key + "." + k, Msg: fmt.Sprintf(format, a...)}
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"batch", o.Batch}, {"epochs", o.Epochs}, {"steps", o.Steps}} {
		if f.v < 0 {
			return bad(f.key, "%s = %d is negative; batch, epochs and steps must be positive (or left out for the defaults)", f.key, f.v)
		}
	}
	if o.Refine != 0 && o.Name != "sde" {
		return bad("refine", "refine applies only to sde; remove it")
	}
	if o.Population && o.Name != "sde" {
		return bad("population", "population applies only to sde; remove it")
	}
	if o.EtaScale < 0 || math.IsNaN(o.EtaScale) || math.IsInf(o.EtaScale, 0) {
		return bad("eta_scale", "eta_scale = %v; use a positive factor (e.g. 0.5 for half the sweep's learning rates)", o.EtaScale)
	}
	switch o.Name {
	case "sgd", "sde":
		if o.Batch == 0 {
			o.Batch = 1
		}
		if n%o.Batch != 0 {
			return bad("batch", "batch size %d %s trials.n = %d; choose a divisor of n%s", o.Batch, notDividing(o.Batch, n), n, divisors(n))
		}
		perEpoch := n / o.Batch
		switch {
		case o.Epochs == 0 && o.Steps == 0:
			o.Epochs = 1
		case o.Steps != 0 && o.Steps%perEpoch != 0:
			return bad("steps", "%d steps is not a whole number of epochs of %d steps (n/batch); set epochs instead", o.Steps, perEpoch)
		case o.Steps != 0 && o.Epochs != 0 && o.Steps != o.Epochs*perEpoch:
			return bad("steps", "steps = %d contradicts epochs = %d (epochs·n/batch = %d); set only one", o.Steps, o.Epochs, o.Epochs*perEpoch)
		case o.Epochs == 0:
			o.Epochs = o.Steps / perEpoch
		}
		o.Steps = o.Epochs * perEpoch
		if o.Name == "sde" {
			if o.Reshuffle {
				return bad("reshuffle", "sde draws Gaussian noise and visits no order; remove the key")
			}
			if o.Refine < 0 {
				return bad("refine", "refine = %d; use a positive number of substeps per SGD step (the paper: 16)", o.Refine)
			}
			if o.Refine == 0 {
				o.Refine = 16
			}
			if n < 2 && !o.Population {
				return bad("name", "sde estimates the gradient covariance from the training points and needs trials.n >= 2 (n = %d), or population = true on a landscape", n)
			}
		}
	case "gd", "gdc", "igr", "smith", "stic":
		if o.Name == "smith" {
			if o.Batch == 0 {
				o.Batch = 1
			}
			if n%o.Batch != 0 {
				return bad("batch", "minibatch size %d of the modified loss %s trials.n = %d; choose a divisor of n%s", o.Batch, notDividing(o.Batch, n), n, divisors(n))
			}
		} else {
			if o.Batch != 0 && o.Batch != n {
				return bad("batch", "%s uses the full batch (n = %d); remove batch or use sgd", o.Name, n)
			}
			o.Batch = n
		}
		if o.Reshuffle {
			return bad("reshuffle", "%s is full-batch and has no order to reshuffle; remove the key", o.Name)
		}
		switch {
		case o.Steps == 0 && o.Epochs == 0:
			return bad("steps", "missing; set the number of full-batch steps, e.g. steps = 10")
		case o.Steps != 0 && o.Epochs != 0 && o.Steps != o.Epochs:
			return bad("steps", "for %s a step is an epoch; steps = %d contradicts epochs = %d", o.Name, o.Steps, o.Epochs)
		case o.Steps == 0:
			o.Steps = o.Epochs
		}
		o.Epochs = o.Steps
		if (o.Name == "gdc" || o.Name == "stic") && n < 2 {
			return bad("name", "%s estimates the gradient covariance and needs trials.n >= 2 training points (n = %d); use gd", o.Name, n)
		}
	default:
		return bad("name", "%q is not an optimizer; use one of %s", o.Name, strings.Join(Optimisers, ", "))
	}
	if err := o.Spec().Check(n); err != nil {
		return bad("name", "%v", err)
	}
	return nil
}

// notDividing says how batch fails to divide n.
func notDividing(batch, n int) string {
	if batch > n {
		return "is larger than"
	}
	return "does not divide"
}

// divisors lists the divisors of n for messages (": 1, 2, 5, 10"), or ""
// when there are too many to list.
func divisors(n int) string {
	var d []string
	for k := 1; k <= n && len(d) <= 12; k++ {
		if n%k == 0 {
			d = append(d, strconv.Itoa(k))
		}
		if k > 1<<20 {
			return ""
		}
	}
	if len(d) > 12 {
		return ""
	}
	return ": " + strings.Join(d, ", ")
}

// Hash is the hex SHA-256 of the config's canonical JSON form (validated
// values, defaults filled in; comments, formatting and data.dir excluded).
func (c *Config) Hash() string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // plain structs always marshal
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// NumTrials is the number of trials the config describes.
func (c *Config) NumTrials() int {
	inits := 0
	for _, m := range c.Models {
		inits += len(m.Inits)
	}
	return inits * len(c.Optimizers) * len(c.Trials.Etas) * c.Trials.Count
}
