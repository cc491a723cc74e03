package config

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
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
	"name": `name = "quickstart"`, "seed": "seed = 1", "dtype": `dtype = "float32" (or ["float32", "float64"])`,
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

// knownKeys lists the keys allowed beside the last element of k (in its
// table), for messages: tables in brackets.
func knownKeys(k toml.Key) string {
	parent := ""
	if len(k) > 1 {
		parent = k[0]
	}
	if parent == "" {
		return "name, seed, dtype, [data], [trials], [[model]], [[optimizer]], [sharpness]"
	}
	return strings.Join(tableKeys[parent], ", ")
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
