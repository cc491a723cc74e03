// Command perturb runs seeded SGD experiments for the perturbative theory
// of stochastic gradient descent and summarises their results.
//
//	perturb run CONFIG [--out DIR] [--scale K] [--set KEY=VALUE]... [--dry-run]
//	perturb stats RUN|CONFIG       landscape statistics into RUN/stats.json
//	perturb taylor RUN|CONFIG      exact Taylor coefficients in eta
//	perturb report RUN...          measurements against predictions
//	perturb summarize RUN          means with 95% intervals, paired differences
//	perturb export RUN             one tidy row per trial, CSV or JSON
//	perturb noise CONFIG           floating-point noise of the loss
//	perturb merge OUT RUN...       combine a sweep's shards
//	perturb compare A B            two runs trial by trial
//	perturb bench                  throughput
//	perturb help [COMMAND]
//
// README.md describes each; docs/config.md lists every config key and
// docs/results.md the store's schema and the export's columns.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type command struct {
	name, args, short, long string
	run                     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// errUsage marks an error whose message already explains the usage.
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprintln(w, `perturb: experiments on the perturbative theory of SGD.

Usage:
  perturb COMMAND [ARGS] [FLAGS]

Commands:`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].short)
	}
	fmt.Fprintln(w, `
Run "perturb help COMMAND" or "perturb COMMAND --help" for a command's flags.`)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the exit, for tests.
func run(args []string, stdout, stderr io.Writer) int {
	defer startProfile(stderr)()
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				commandHelp(stdout, c, nil)
				return 0
			}
			fmt.Fprintf(stderr, "perturb: unknown command %q\n", args[1])
			return 2
		}
		usage(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "perturb: unknown command %q%s\n\n", args[0], suggestCommand(args[0]))
		usage(stderr)
		return 2
	}
	if err := c.run(args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if errors.Is(err, errUsage) {
			return 2
		}
		var ex exitError
		if errors.As(err, &ex) {
			fmt.Fprintf(stderr, "perturb %s: %v\n", c.name, err)
			return ex.code
		}
		fmt.Fprintf(stderr, "perturb %s: %v\n", c.name, err)
		return 1
	}
	return 0
}

// exitError carries a specific exit code.
type exitError struct {
	error
	code int
}

func (e exitError) Unwrap() error { return e.error }

func commandHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: perturb %s %s\n\n%s\n", c.name, c.args, strings.TrimSpace(c.long))
	if fs != nil {
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

// parse parses flags that may come before or after the positional
// arguments, and checks the number of positional arguments.
func parse(c *command, fs *flag.FlagSet, args []string, nargs int, stderr io.Writer) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				commandHelp(stderr, c, fs)
				return nil, err
			}
			fmt.Fprintf(stderr, "perturb %s: %s\n\n", c.name, explainFlagError(fs, err))
			commandHelp(stderr, c, fs)
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if nargs >= 0 && len(pos) != nargs {
		fmt.Fprintf(stderr, "perturb %s: want %d argument(s), got %d\n\n", c.name, nargs, len(pos))
		commandHelp(stderr, c, fs)
		return nil, errUsage
	}
	return pos, nil
}

// suggestCommand returns "; did you mean NAME?" for the command closest to
// name (at most two edits), else "".
func suggestCommand(name string) string {
	best, bestD := "", min(2, len(name)/2)+1
	for n := range commands {
		if d := editDistance(name, n); d < bestD || d == bestD && n < best {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %s?", best)
}
