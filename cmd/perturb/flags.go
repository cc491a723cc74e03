package main

import (
	"flag"
	"fmt"
	"strings"
)

// setList collects repeated --set key=value flags.
type setList []string

func (s *setList) String() string { return strings.Join(*s, " ") }

// Set appends one override.
func (s *setList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("want key=value, e.g. --set trials.count=5")
	}
	*s = append(*s, v)
	return nil
}

// setFlag defines the repeatable --set flag on fs.
func setFlag(fs *flag.FlagSet) *setList {
	s := &setList{}
	fs.Var(s, "set", "override a config key before validation, key=value (repeatable; e.g. trials.count=5, optimizer[1].batch=2, model[0].inits=[1,2])")
	return s
}

// explainFlagError rewrites the flag package's "flag provided but not
// defined: -scael" with a "did you mean --scale?" when a defined flag is
// close.
func explainFlagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	const undefined = "flag provided but not defined: -"
	name, ok := strings.CutPrefix(msg, undefined)
	if !ok {
		return msg
	}
	name = strings.TrimLeft(name, "-")
	best, bestD := "", min(2, len(name)/2)+1
	fs.VisitAll(func(f *flag.Flag) {
		if d := editDistance(name, f.Name); d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best == "" {
		return fmt.Sprintf("unknown flag --%s (the flags are listed below)", name)
	}
	return fmt.Sprintf("unknown flag --%s; did you mean --%s?", name, best)
}

// editDistance is the optimal-string-alignment distance between a and b
// (bytes): insertions, deletions, substitutions and swaps of neighbours
// count one each.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
