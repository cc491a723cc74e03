package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/perturb/perturb/trials/analysis/summary"
	"github.com/perturb/perturb/trials/results"
)

func init() {
	register(&command{
		name:  "summarize",
		args:  "RUN [--format table|csv|json]",
		short: "print mean test loss with 95% intervals, and paired optimiser differences",
		long: `Prints, per (model, dtype, init, optimizer, eta), the mean test loss over
the stored trials with its 95% Student-t confidence interval, the number of
trials and of diverged trials, mean train loss, test accuracy and initial
test loss; then, for every pair of optimisers run on the same training sets,
the mean paired difference of test loss (B − A) with its 95% interval.

RUN is a run directory or its results.sqlite file. The output is a pure
function of the stored trials: equal stores give identical text.`,
		run: summarizeCmd,
	})
}

func summarizeCmd(args []string, stdout, stderr io.Writer) error {
	c := commands["summarize"]
	fs := flag.NewFlagSet("summarize", flag.ContinueOnError)
	format := fs.String("format", "table", "output format: table, csv or json")
	pos, err := parse(c, fs, args, 1, stderr)
	if err != nil {
		return err
	}
	write := map[string]func(io.Writer, summary.Summary) error{
		"table": summary.WriteTable, "csv": summary.WriteCSV, "json": summary.WriteJSON,
	}[*format]
	if write == nil {
		return fmt.Errorf("--format %q: use table, csv or json", *format)
	}
	_, rows, err := results.ReadRows(storePath(pos[0]))
	if err != nil {
		return err
	}
	return write(stdout, summary.Summarize(rows))
}
