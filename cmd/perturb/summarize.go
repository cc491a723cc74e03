package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/perturb/perturb/trials/analysis/summary"
	"github.com/perturb/perturb/trials/results"
)

func init() {
	register(&command{
		name:  "summarize",
		args:  "RUN [--format table|csv|json] [--out PREFIX]",
		short: "print mean test loss with 95% intervals, and paired optimiser differences",
		long: `Prints, per (model, dtype, init, optimizer, eta), the mean test loss over
the stored trials with its 95% Student-t confidence interval, the number of
trials and of diverged trials, mean train loss, test accuracy and initial
test loss; then, for every pair of optimisers run on the same training sets,
the mean paired difference of test loss (B − A) with its 95% interval.
When the run holds several dtypes (dtype = ["float32", "float64"]), a
third table pairs the dtypes per (model, init, optimizer, eta): the mean
difference B − A of test loss with A = float64 and B = float32, over the
trials ok in both (same training sets and initialisations), with its 95%
interval; --format csv writes it to PREFIX-dtypes.csv.

RUN is a run directory or its results.sqlite file. --format csv writes the
two tables as two files, PREFIX-cells.csv and PREFIX-pairs.csv (--out
PREFIX, default RUN/summary). The output is a pure function of the stored
trials: equal stores give identical text.`,
		run: summarizeCmd,
	})
}

func summarizeCmd(args []string, stdout, stderr io.Writer) error {
	c := commands["summarize"]
	fs := flag.NewFlagSet("summarize", flag.ContinueOnError)
	format := fs.String("format", "table", "output format: table, csv (two files) or json")
	out := fs.String("out", "", "with --format csv: write PREFIX-cells.csv and PREFIX-pairs.csv (default RUN/summary)")
	pos, err := parse(c, fs, args, 1, stderr)
	if err != nil {
		return err
	}
	write := map[string]func(io.Writer, summary.Summary) error{
		"table": summary.WriteTable, "csv": nil, "json": summary.WriteJSON,
	}
	w, ok := write[*format]
	if !ok {
		return fmt.Errorf("--format %q: use table, csv or json", *format)
	}
	if *out != "" && *format != "csv" {
		return fmt.Errorf("--out %s: only --format csv writes files (table and json go to the standard output); add --format csv or omit --out", *out)
	}
	path := storePath(pos[0])
	_, rows, err := results.ReadRows(path)
	if err != nil {
		return err
	}
	s := summary.Summarize(rows)
	if w != nil {
		return w(stdout, s)
	}
	prefix := *out
	if prefix == "" {
		prefix = filepath.Join(filepath.Dir(path), "summary")
	}
	for _, f := range []struct {
		suffix string
		write  func(io.Writer, summary.Summary) error
	}{{"-cells.csv", summary.WriteCellsCSV}, {"-pairs.csv", summary.WritePairsCSV}, {"-dtypes.csv", summary.WriteDTypePairsCSV}} {
		if f.suffix == "-dtypes.csv" && len(s.DTypePairs) == 0 {
			continue
		}
		var b bytes.Buffer
		if err := f.write(&b, s); err != nil {
			return err
		}
		if err := writeAtomic(prefix+f.suffix, b.Bytes()); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s\n", prefix+f.suffix)
	}
	return nil
}
