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
		args:  "RUN [--format csv|json|parquet] [--out FILE]",
		short: "write one tidy row per trial (identity, settings, status, measures, sharpness) as CSV, JSON or Parquet",
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
and null in JSON and Parquet; floats are written in full precision. The
rows are in the store's order (model, optimizer, eta, init, trial). The
columns are described in docs/results.md. --format parquet (needs --out)
writes one optional column per variable, typed string, boolean, int64 or
double, in name order (github.com/parquet-go/parquet-go).`,
		run: exportCmd,
	})
}

func exportCmd(args []string, stdout, stderr io.Writer) error {
	c := commands["export"]
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	format := fs.String("format", "csv", "csv, json or parquet")
	out := fs.String("out", "", "file to write (default: the standard output)")
	pos, err := parse(c, fs, args, 1, stderr)
	if err != nil {
		return err
	}
	switch *format {
	case "csv", "json":
	case "parquet":
		if *out == "" {
			return fmt.Errorf("--format parquet writes a binary file: add --out FILE (e.g. --out trials.parquet)")
		}
	default:
		return fmt.Errorf("--format %q: use csv, json or parquet", *format)
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
	switch *format {
	case "csv":
		err = t.WriteCSV(&b)
	case "json":
		err = t.WriteJSON(&b)
	default:
		err = t.WriteParquet(&b)
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
