package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/merge"
	"github.com/perturb/perturb/trials/results"
)

func init() {
	register(&command{
		name:  "merge",
		args:  "OUT RUN... [--partial] [--config FILE]",
		short: "combine the run directories of a sweep's shards into one run",
		long: `Reads the stores of the RUN directories (or results.sqlite files), normally
the shards of one config run with "perturb run --shard I/N", and writes
their trials into the new run directory OUT (OUT/results.sqlite and
OUT/config.toml), ordered as the config plans them.

The RUNs may hold runs of different configs when one of them contains
the others (a grown run and runs of the configs it grew from: the same
seed, dtype, data and N, the others' models, inits, optimizers with the
same settings, etas and trials, see "perturb run"), or when --config FILE
names a config containing them all: the merge is a run of that config,
and its config history (table config_history) holds the RUNs' histories.
Conflicting configs are refused, naming the settings that differ. A
trial stored by more than one RUN
is kept once and reported; copies that disagree are refused. Trials that no
RUN stores are reported per shard, with the command that completes each
shard, and nothing is written, unless --partial is given: then OUT holds
what there is, and "perturb run OUT/config.toml --out OUT" runs the rest.

The merge is written to a temporary file and renamed into place when
complete, so OUT never holds half a merge. The RUN stores are only read.`,
		run: mergeCmd,
	})
}

func mergeCmd(args []string, stdout, stderr io.Writer) error {
	c := commands["merge"]
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	partial := fs.Bool("partial", false, "write the merge even if trials are missing")
	unionPath := fs.String("config", "", "the merged config: a config file containing every RUN's config (default: the RUN config that contains the others)")
	pos, err := parse(c, fs, args, -1, stderr)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		fmt.Fprintf(stderr, "perturb merge: want OUT and at least one RUN, got %d argument(s)\n\n", len(pos))
		commandHelp(stderr, c, fs)
		return errUsage
	}
	out, runs := pos[0], pos[1:]
	paths := make([]string, len(runs))
	for i, r := range runs {
		paths[i] = storePath(r)
	}
	outStore := filepath.Join(out, resultsFile)
	if _, err := os.Stat(outStore); err == nil {
		return fmt.Errorf("%s already holds a run (%s): merge into a new folder", out, outStore)
	}
	var union *config.Config
	if *unionPath != "" {
		if union, err = config.Load(*unionPath); err != nil {
			return err
		}
	}
	p, err := merge.ReadInto(paths, union)
	if err != nil {
		return err
	}
	for _, in := range p.Inputs {
		what := "whole run"
		if in.Meta.Shard != "" {
			what = "shard " + in.Meta.Shard
		}
		fmt.Fprintf(stderr, "%s: %s of %s, %d trials\n", in.Path, what, p.Config.Name, in.Rows)
	}
	if n := len(p.Duplicates); n > 0 {
		fmt.Fprintf(stderr, "%d trials are stored more than once (one copy kept; copies agree to %.2g relative), e.g.\n", n, maxRel(p.Duplicates))
		for _, d := range p.Duplicates[:min(n, 5)] {
			fmt.Fprintf(stderr, "  %v in %v\n", d.Key, d.Paths)
		}
	}
	if n := len(p.Missing); n > 0 {
		cfgPath := filepath.Join(filepath.Dir(p.Inputs[0].Path), configFile)
		fmt.Fprintf(stderr, "%d of %d trials are missing:\n", n, p.Planned)
		for _, g := range p.MissingShards() {
			switch {
			case g.Shard.N == 0:
				fmt.Fprintf(stderr, "  %d trials, e.g. %v\n", g.Missing, p.Missing[0].Key)
			case len(g.Paths) == 0:
				fmt.Fprintf(stderr, "  shard %s: %d trials, no run of it given; run it with: perturb run %s --shard %s --out DIR\n", g.Shard, g.Missing, cfgPath, g.Shard)
			default:
				fmt.Fprintf(stderr, "  shard %s: %d trials missing from %s; complete it with: perturb run %s --shard %s --out %s\n",
					g.Shard, g.Missing, g.Paths[0], cfgPath, g.Shard, filepath.Dir(g.Paths[0]))
			}
		}
		if !*partial {
			return fmt.Errorf("%d of %d trials missing; nothing written. Complete the shards and merge again, or pass --partial to write the %d trials there are",
				n, p.Planned, len(p.Rows))
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	if err := writeAtomic(filepath.Join(out, configFile), []byte(p.Config.Text)); err != nil {
		return err
	}
	if err := p.Write(outStore); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "merged %d of %d trials from %d runs into %s (%d duplicates dropped, %d missing)\n",
		len(p.Rows), p.Planned, len(p.Inputs), outStore, len(p.Duplicates), len(p.Missing))
	if len(p.Missing) > 0 {
		fmt.Fprintf(stderr, "run the missing trials with: perturb run %s --out %s\n", filepath.Join(out, configFile), out)
	}
	return nil
}

func maxRel(ds []merge.Duplicate) float64 {
	m := 0.0
	for _, d := range ds {
		m = max(m, d.Rel)
	}
	return m
}

// storePath is the results file of a run directory, or path itself if it
// is not a directory.
func storePath(path string) string {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return filepath.Join(path, resultsFile)
	}
	return path
}

func init() {
	register(&command{
		name:  "compare",
		args:  "A B [--tol X] | RUN --dtypes DA,DB [--tol X] | A B --dtypes DA,DB",
		short: "compare two runs trial by trial",
		long: `Compares the stores of run directories (or results.sqlite files) A and B
trial by trial: trials only one holds, and trials whose settings, status or
diverged step differ or whose losses, accuracies or weights differ by more
than the relative tolerance X (default 1e-9). Prints the largest relative
difference found. Exits 0 when the runs agree, 1 when they do not.

Use it to check a merged sweep against a local run, or one build or
machine against another.

--dtypes DA,DB pairs across dtypes: the trials of dtype DA in A with
those of dtype DB in B (or, given one RUN, with those of DB in RUN, a
run of dtype = ["float32", "float64"]), matched by identity but for the
dtype (they share training sets and initialisations). It reports the
largest relative difference, the rounding's effect, with keys in DA;
without --tol only settings and status must agree, with --tol the
measurements must agree to it too.`,
		run: compareCmd,
	})
}

func compareCmd(args []string, stdout, stderr io.Writer) error {
	c := commands["compare"]
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	tol := fs.Float64("tol", 1e-9, "relative tolerance of measurements")
	dtypes := fs.String("dtypes", "", "pair the trials of dtype DA in A with those of DB in B (or in RUN), e.g. float64,float32")
	pos, err := parse(c, fs, args, -1, stderr)
	if err != nil {
		return err
	}
	if n := len(pos); n != 2 && (n != 1 || *dtypes == "") {
		fmt.Fprintf(stderr, "perturb compare: want 2 arguments (or 1 with --dtypes), got %d\n\n", n)
		commandHelp(stderr, c, fs)
		return errUsage
	}
	if !(*tol >= 0) {
		return fmt.Errorf("--tol %g: must be zero or positive", *tol)
	}
	var da, db string
	if *dtypes != "" {
		var ok bool
		da, db, ok = strings.Cut(*dtypes, ",")
		da, db = strings.TrimSpace(da), strings.TrimSpace(db)
		if !ok || !slices.Contains(config.DTypes, da) || !slices.Contains(config.DTypes, db) {
			return fmt.Errorf("--dtypes %q: want two dtypes DA,DB of %s, e.g. --dtypes float64,float32", *dtypes, strings.Join(config.DTypes, ", "))
		}
		if len(pos) == 1 && da == db {
			return fmt.Errorf("--dtypes %q: with one run, name two different dtypes, e.g. --dtypes float64,float32", *dtypes)
		}
		if len(pos) == 1 {
			pos = append(pos, pos[0])
		}
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "tol" })
		if !set {
			*tol = math.Inf(1) // report the difference; judge only with --tol
		}
	}
	a, b := storePath(pos[0]), storePath(pos[1])
	ma, ra, err := results.ReadRows(a)
	if err != nil {
		return err
	}
	mb, rb, err := results.ReadRows(b)
	if err != nil {
		return err
	}
	if ma.ConfigHash != mb.ConfigHash {
		fmt.Fprintf(stdout, "note: %s and %s hold runs of different configs (%s %.12s, %s %.12s)\n", a, b, ma.ConfigName, ma.ConfigHash, mb.ConfigName, mb.ConfigHash)
	}
	cmp := results.Compare(ra, rb, *tol)
	if da != "" {
		cmp = results.CompareDTypes(ra, rb, da, db, *tol)
		ra, rb = ofDType(ra, da), ofDType(rb, db)
		a, b = a+" ("+da+")", b+" ("+db+")"
		if len(ra) == 0 || len(rb) == 0 {
			return fmt.Errorf("%s holds %d trials and %s %d: nothing to pair; check --dtypes against the runs' dtypes (perturb summarize shows them)", a, len(ra), b, len(rb))
		}
	}
	fmt.Fprintf(stdout, "%s: %d trials\n%s: %d trials\nin both: %d, only in the first: %d, only in the second: %d, differing: %d (tolerance %g)\nlargest relative difference: %.3g\n",
		a, len(ra), b, len(rb), cmp.Common, len(cmp.OnlyA), len(cmp.OnlyB), len(cmp.Differences), *tol, cmp.MaxRel)
	for _, k := range cmp.OnlyA[:min(len(cmp.OnlyA), 5)] {
		fmt.Fprintf(stdout, "  only in the first: %v\n", k)
	}
	for _, k := range cmp.OnlyB[:min(len(cmp.OnlyB), 5)] {
		fmt.Fprintf(stdout, "  only in the second: %v\n", k)
	}
	for _, d := range cmp.Differences[:min(len(cmp.Differences), 10)] {
		fmt.Fprintf(stdout, "  %v: %s %s vs %s (relative %.3g)\n", d.Key, d.Field, d.A, d.B, d.Rel)
	}
	if !cmp.Same() {
		return exitError{fmt.Errorf("%s and %s differ", a, b), 1}
	}
	fmt.Fprintln(stdout, "the runs agree")
	return nil
}

// ofDType is the rows of dtype dt.
func ofDType(rows []results.Row, dt string) []results.Row {
	var out []results.Row
	for _, r := range rows {
		if r.DType == dt {
			out = append(out, r)
		}
	}
	return out
}
