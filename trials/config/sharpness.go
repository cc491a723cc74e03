package config

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Sharpness is the optional [sharpness] table: measure the Hessian's
// sharpness and the gradient noise (package trials/study/sharp) of a sample of
// trials at initialisation and after training, and store them with each
// trial's row.
//
//	[sharpness]
//	measures    = ["lambda", "tr_h", "tr_c", "tr_hc"]  # default: all four
//	at          = ["init", "end"]    # points (default both)
//	on          = ["train", "pool"]  # losses: the training set, the pool subset (default both)
//	every       = 1                  # trials whose index is a multiple of every (default 1: all)
//	subset      = 1000               # pool examples the pool loss averages (default 1000)
//	eigenvalues = 1                  # largest Hessian eigenvalues wanted (default 1)
//	tol         = 1e-3               # Lanczos relative tolerance (default 1e-3)
//	max_iter    = 100                # Lanczos products at most (default 100)
//	trace_se    = 0.05               # target relative standard error of tr H and tr(HC) (default 0.05)
//	min_probes  = 10                 # probes at least (default 10)
//	max_probes  = 100                # probes at most (default 100)
//
// A config without the table measures nothing, and its hash is what it was
// before the table existed.
type Sharpness struct {
	Measures    []string `toml:"measures" json:"measures"`
	At          []string `toml:"at" json:"at"`
	On          []string `toml:"on" json:"on"`
	Every       int      `toml:"every" json:"every"`
	Subset      int      `toml:"subset" json:"subset"`
	Eigenvalues int      `toml:"eigenvalues" json:"eigenvalues"`
	Tol         float64  `toml:"tol" json:"tol"`
	MaxIter     int      `toml:"max_iter" json:"max_iter"`
	TraceSE     float64  `toml:"trace_se" json:"trace_se"`
	MinProbes   int      `toml:"min_probes" json:"min_probes"`
	MaxProbes   int      `toml:"max_probes" json:"max_probes"`
}

// Known values of the [sharpness] lists.
var (
	SharpnessMeasures = []string{"lambda", "tr_h", "tr_c", "tr_hc"}
	SharpnessPoints   = []string{"init", "end"}
	SharpnessLosses   = []string{"train", "pool"}
)

// sharpnessKeys lists the keys of [sharpness], for messages.
const sharpnessKeys = "measures, at, on, every, subset, eigenvalues, tol, max_iter, trace_se, min_probes, max_probes"

// Has reports whether list (one of Measures, At, On) holds v.
func (s *Sharpness) Has(list []string, v string) bool { return slices.Contains(list, v) }

// Selected reports whether trial index i is measured.
func (s *Sharpness) Selected(i int) bool { return i%s.Every == 0 }

// normalise fills in the defaults and checks every value; n is
// trials.n.
func (s *Sharpness) normalise(n int) error {
	bad := func(k, format string, a ...any) error {
		return &Error{Key: "sharpness." + k, Msg: fmt.Sprintf(format, a...)}
	}
	for _, l := range []struct {
		key   string
		list  *[]string
		known []string
	}{{"measures", &s.Measures, SharpnessMeasures}, {"at", &s.At, SharpnessPoints}, {"on", &s.On, SharpnessLosses}} {
		if *l.list == nil {
			*l.list = slices.Clone(l.known)
			continue
		}
		if len(*l.list) == 0 {
			return bad(l.key, "empty; list at least one of %s (or remove the key for all)", quoted(l.known))
		}
		for i, v := range *l.list {
			if !slices.Contains(l.known, v) {
				return bad(l.key, "%q is not known here; use some of %s", v, quoted(l.known))
			}
			if slices.Contains((*l.list)[:i], v) {
				return bad(l.key, "%q listed twice; remove the duplicate", v)
			}
		}
		// Canonical order, so that the order written does not change the hash.
		slices.SortFunc(*l.list, func(a, b string) int { return slices.Index(l.known, a) - slices.Index(l.known, b) })
	}
	ints := []struct {
		key string
		v   *int
		def int
	}{{"every", &s.Every, 1}, {"subset", &s.Subset, 1000}, {"eigenvalues", &s.Eigenvalues, 1},
		{"max_iter", &s.MaxIter, 100}, {"min_probes", &s.MinProbes, 10}, {"max_probes", &s.MaxProbes, 100}}
	for _, f := range ints {
		if *f.v < 0 {
			return bad(f.key, "%s = %d is negative; use a positive whole number (or remove the key for the default %d)", f.key, *f.v, f.def)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	for _, f := range []struct {
		key string
		v   *float64
		def float64
	}{{"tol", &s.Tol, 1e-3}, {"trace_se", &s.TraceSE, 0.05}} {
		if *f.v < 0 || *f.v >= 1 || math.IsNaN(*f.v) {
			return bad(f.key, "%s = %v must be in (0, 1), a relative accuracy, e.g. %s = %g", f.key, *f.v, f.key, f.def)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	switch {
	case s.Subset < 2:
		return bad("subset", "subset = %d; the gradient covariance needs at least 2 examples (e.g. subset = 1000)", s.Subset)
	case s.MinProbes < 2:
		return bad("min_probes", "min_probes = %d; a standard error needs at least 2 probes", s.MinProbes)
	case s.MaxProbes < s.MinProbes:
		return bad("max_probes", "max_probes = %d is below min_probes = %d; raise it or lower min_probes", s.MaxProbes, s.MinProbes)
	case s.Has(s.On, "train") && n < 2 && (s.Has(s.Measures, "tr_c") || s.Has(s.Measures, "tr_hc")):
		return bad("on", "tr_c and tr_hc on the training loss need trials.n >= 2 (n = %d); measure them on \"pool\" only", n)
	}
	return nil
}

func quoted(v []string) string {
	q := make([]string, len(v))
	for i, s := range v {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
