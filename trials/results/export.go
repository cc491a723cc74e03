package results

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
)

// Table is a tidy table of a run's trials: one row per trial, one column
// per variable, each cell a string, an int64, a float64 or nil (missing:
// not measured, not applicable, or not finite).
type Table struct {
	Columns []string
	Rows    [][]any
}

// baseColumns are the columns every export has, in order.
var baseColumns = []string{
	"config", "seed", "model", "init", "optimizer", "eta", "trial", "dtype",
	"n", "batch", "epochs", "steps", "status", "diverged_step",
	"init_test_loss", "init_test_acc", "test_loss", "test_acc", "train_loss",
	"test_estimator", "test_se", "pool_test_loss", "seconds", "test_seconds", "pool_seconds",
}

// measured is a timing, nil when it was not measured (0).
func measured(x float64) any {
	if x == 0 {
		return nil
	}
	return num(x)
}

// Tidy makes the tidy table of rows of the run named config with seed (a
// uint64, or nil if unknown):
// identity, settings (N, B, E, T), status and diverged step, the
// measures, a landscape's final weights as weight_0, weight_1, ..., and
// the sharpness record flattened into columns named by its JSON path
// ("sharp_end_train_tr_h_value", "sharp_init_pool_lambda_0"). Columns
// that only some rows have are nil in the others.
func Tidy(config string, seed any, rows []Row) (*Table, error) {
	extra := map[string]bool{}
	flat := make([]map[string]any, len(rows))
	nw := 0
	for i, r := range rows {
		nw = max(nw, len(r.Weights))
		if len(r.Sharpness) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(r.Sharpness))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("export: trial %s: sharpness column: %w", r.Key(), err)
		}
		flat[i] = map[string]any{}
		flatten(flat[i], "sharp", v)
		for k := range flat[i] {
			extra[k] = true
		}
	}
	t := &Table{Columns: append([]string(nil), baseColumns...)}
	for j := range nw {
		t.Columns = append(t.Columns, "weight_"+strconv.Itoa(j))
	}
	sharp := make([]string, 0, len(extra))
	for k := range extra {
		sharp = append(sharp, k)
	}
	sort.Strings(sharp)
	t.Columns = append(t.Columns, sharp...)
	for i, r := range rows {
		var div any
		if r.DivergedStep >= 0 && r.Status == StatusDiverged {
			div = int64(r.DivergedStep)
		}
		row := []any{config, seed, r.Model, int64(r.Init), r.Optimizer, num(r.Eta), int64(r.Trial), r.DType,
			int64(r.N), int64(r.Batch), int64(r.Epochs), int64(r.Steps), r.Status, div,
			num(r.InitTestLoss), num(r.InitTestAcc), num(r.TestLoss), num(r.TestAcc), num(r.TrainLoss),
			r.Estimator(), num(r.TestSE), num(r.PoolTestLoss), measured(r.Seconds), measured(r.TestSeconds), measured(r.PoolSeconds)}
		for j := range nw {
			var w any
			if j < len(r.Weights) {
				w = num(r.Weights[j])
			}
			row = append(row, w)
		}
		for _, k := range sharp {
			row = append(row, flat[i][k])
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// num is x, or nil when x is not finite.
func num(x float64) any {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return x
}

// flatten stores the leaves of the decoded JSON value v under their paths
// joined by "_" (array elements by index, from 0).
func flatten(out map[string]any, prefix string, v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			flatten(out, prefix+"_"+k, x)
		}
	case []any:
		for i, x := range v {
			flatten(out, prefix+"_"+strconv.Itoa(i), x)
		}
	case json.Number:
		if i, err := v.Int64(); err == nil {
			out[prefix] = i
		} else if f, err := v.Float64(); err == nil {
			out[prefix] = f
		}
	case nil:
		out[prefix] = nil
	default: // string, bool
		out[prefix] = v
	}
}

// cell formats one cell for CSV: "" for nil, floats in the shortest form
// that reads back exactly.
func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case int64:
		return strconv.FormatInt(v, 10)
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// WriteCSV writes t as CSV with a header line; missing cells are empty.
func (t *Table) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(t.Columns); err != nil {
		return err
	}
	rec := make([]string, len(t.Columns))
	for _, r := range t.Rows {
		for j, v := range r {
			rec[j] = cell(v)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes t as a JSON array of objects, one per row, keys in
// column order; missing cells are null.
func (t *Table) WriteJSON(w io.Writer) error {
	var b bytes.Buffer
	b.WriteString("[")
	for i, r := range t.Rows {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n  {")
		for j, v := range r {
			if j > 0 {
				b.WriteString(", ")
			}
			k, _ := json.Marshal(t.Columns[j])
			x, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("export: column %s: %w", t.Columns[j], err)
			}
			b.Write(k)
			b.WriteString(": ")
			b.Write(x)
		}
		b.WriteString("}")
		if b.Len() > 1<<16 {
			if _, err := w.Write(b.Bytes()); err != nil {
				return err
			}
			b.Reset()
		}
	}
	b.WriteString("\n]\n")
	_, err := w.Write(b.Bytes())
	return err
}
