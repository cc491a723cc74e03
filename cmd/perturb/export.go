package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"

	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/results"
)

func init() {
	register(&command{
		name:  "export",
		args:  "RUN [--format csv|json] [--out FILE]",
		short: "write one tidy row per trial (identity, settings, status, measures, sharpness) as CSV or JSON",
		long: `Writes the trials of RUN (a run directory or its results.sqlite file) as a
tidy table, one row per trial and one column per variable, for pandas, R
or a spreadsheet:

  config, seed, model, init, optimizer, eta, trial, dtype   identity
  n, batch, epochs, steps                                   N, B, E, T
  status, diverged_step                                     "ok" or "diverged", the step it blew up at
  init_test_loss, init_test_acc, test_loss, test_acc, train_loss
  weight_0, weight_1, ...                                   a landscape's final weights
  sharp_POINT_LOSS_MEASURE_...                              the sharpness record, flattened
                                                            (e.g. sharp_end_train_tr_h_value,
                                                            sharp_init_pool_lambda_0)

Missing values (not measured, not applicable, not finite) are empty in CSV
and null in JSON; floats are written in full precision. The rows are in the
store's order (model, optimizer, eta, init, trial). The columns are
described in docs/results.md. --format parquet is not supported (no
Parquet library is part of this build); convert the CSV with pandas or
DuckDB.`,
		run: exportCmd,
	})
}

func exportCmd(args []string, stdout, stderr io.Writer) error {
	c := commands["export"]
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	format := fs.String("format", "csv", "csv or json")
	out := fs.String("out", "", "file to write (default: the standard output)")
	pos, err := parse(c, fs, args, 1, stderr)
	if err != nil {
		return err
	}
	switch *format {
	case "csv", "json":
	case "parquet":
		return fmt.Errorf("--format parquet: not supported by this build (no Parquet library among perturb's dependencies); use --format csv and convert it, e.g. pandas.read_csv(...).to_parquet(...) or DuckDB's COPY ... TO 'x.parquet'")
	default:
		return fmt.Errorf("--format %q: use csv or json", *format)
	}
	path := storePath(pos[0])
	meta, rows, err := results.ReadRows(path)
	if err != nil {
		return err
	}
	var seed any
	if cfg, err := config.Parse(path+" (stored config)", meta.ConfigText); err == nil {
		seed = cfg.Seed
	}
	t, err := results.Tidy(meta.ConfigName, seed, rows)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if *format == "csv" {
		err = t.WriteCSV(&b)
	} else {
		err = t.WriteJSON(&b)
	}
	if err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	if *out == "" {
		_, err := stdout.Write(b.Bytes())
		return err
	}
	if err := writeAtomic(*out, b.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s: %d trials, %d columns\n", *out, len(t.Rows), len(t.Columns))
	return nil
}
