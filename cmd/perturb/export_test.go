package main

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/perturb/perturb/trials/results"
	"github.com/perturb/perturb/trials/study/sharp"
)

// exportCSV runs perturb export on run and parses the CSV back.
func exportCSV(t *testing.T, run string) (header []string, recs []map[string]string) {
	t.Helper()
	code, out, stderr := perturb(t, "export", run)
	if code != 0 {
		t.Fatalf("export exited %d: %s", code, stderr)
	}
	all, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("export CSV does not parse: %v\n%s", err, out)
	}
	for _, r := range all[1:] {
		m := map[string]string{}
		for j, h := range all[0] {
			m[h] = r[j]
		}
		recs = append(recs, m)
	}
	return all[0], recs
}

// checkExport requires the exported records to equal the store's rows,
// field by field and bit for bit.
func checkExport(t *testing.T, run string) []map[string]string {
	t.Helper()
	_, rows, err := results.ReadRows(filepath.Join(run, resultsFile))
	if err != nil {
		t.Fatal(err)
	}
	_, recs := exportCSV(t, run)
	if len(recs) != len(rows) {
		t.Fatalf("%d exported rows, %d stored", len(recs), len(rows))
	}
	f := func(s string) float64 {
		if s == "" {
			return math.NaN()
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return x
	}
	same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
	for i, r := range rows {
		e := recs[i]
		k := results.Key{Model: e["model"], Optimizer: e["optimizer"], Eta: f(e["eta"]), Init: int(f(e["init"])), Trial: int(f(e["trial"])), DType: e["dtype"]}
		if k != r.Key() || e["status"] != r.Status || e["n"] != strconv.Itoa(r.N) || e["batch"] != strconv.Itoa(r.Batch) ||
			e["epochs"] != strconv.Itoa(r.Epochs) || e["steps"] != strconv.Itoa(r.Steps) {
			t.Errorf("row %d: exported %v, stored %+v", i, e, r)
		}
		for name, v := range map[string]float64{"init_test_loss": r.InitTestLoss, "init_test_acc": r.InitTestAcc,
			"test_loss": r.TestLoss, "test_acc": r.TestAcc, "train_loss": r.TrainLoss} {
			if !same(f(e[name]), v) {
				t.Errorf("row %d %s: exported %s, stored %v", i, name, e[name], v)
			}
		}
		for j, w := range r.Weights {
			if !same(f(e["weight_"+strconv.Itoa(j)]), w) {
				t.Errorf("row %d weight %d: exported %s, stored %v", i, j, e["weight_"+strconv.Itoa(j)], w)
			}
		}
	}
	return recs
}

// TestExport exports a small real Fashion-MNIST run and a landscape run
// with sharpness measures, parses the CSV back and compares it with the
// stores; JSON, --out, the summarize CSV files and the refusals too.
func TestExport(t *testing.T) {
	needFashion(t)
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	if code, _, stderr := perturb(t, "run", write(t, dir, "tiny.toml", tiny), "--out", run, "--workers", "2"); code != 0 {
		t.Fatalf("run: %s", stderr)
	}
	recs := checkExport(t, run)
	if recs[0]["config"] != "tiny" || recs[0]["seed"] != "7" || recs[0]["diverged_step"] != "" {
		t.Errorf("first record %v", recs[0])
	}

	land := filepath.Join(dir, "land")
	cfg := strings.Replace(landscapeCfg, "count = 20", "count = 3", 1) + "[sharpness]\nsubset = 50\nmin_probes = 4\nmax_probes = 8\n"
	if code, _, stderr := perturb(t, "run", write(t, dir, "land.toml", cfg), "--out", land, "--workers", "1"); code != 0 {
		t.Fatalf("run: %s", stderr)
	}
	recs = checkExport(t, land)
	header, _ := exportCSV(t, land)
	_, rows, _ := results.ReadRows(filepath.Join(land, resultsFile))
	for i, r := range rows {
		var rec sharp.Record
		if err := json.Unmarshal(r.Sharpness, &rec); err != nil || rec.End == nil || rec.End.Train == nil || rec.End.Train.TrC == nil {
			t.Fatalf("row %d sharpness %s: %v", i, r.Sharpness, err)
		}
		if got := recs[i]["sharp_end_train_tr_c_value"]; got != strconv.FormatFloat(float64(rec.End.Train.TrC.Value), 'g', -1, 64) {
			t.Errorf("row %d: sharp_end_train_tr_c_value %q, stored %v", i, got, rec.End.Train.TrC.Value)
		}
	}

	// JSON into a file: one object per trial, the same columns.
	out := filepath.Join(dir, "land.json")
	if code, _, stderr := perturb(t, "export", land, "--format", "json", "--out", out); code != 0 || !strings.Contains(stderr, "wrote "+out) {
		t.Fatalf("export json: %s", stderr)
	}
	b, _ := os.ReadFile(out)
	var objs []map[string]any
	if err := json.Unmarshal(b, &objs); err != nil || len(objs) != len(rows) || objs[0]["test_loss"] != rows[0].TestLoss {
		t.Fatalf("JSON export: %v, %d objects\n%s", err, len(objs), b)
	}

	// Parquet into a file: its rows and columns.
	pq := filepath.Join(dir, "land.parquet")
	if code, _, stderr := perturb(t, "export", land, "--format", "parquet", "--out", pq); code != 0 {
		t.Fatalf("export parquet: %s", stderr)
	}
	fh, err := os.Open(pq)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	pf, err := parquet.OpenFile(fh, st.Size())
	if err != nil || pf.NumRows() != int64(len(rows)) || len(pf.Schema().Columns()) != len(header) {
		t.Fatalf("parquet: %v, %d rows, %d columns (CSV %d)", err, pf.NumRows(), len(pf.Schema().Columns()), len(header))
	}

	// summarize --format csv: two files.
	code, _, stderr := perturb(t, "summarize", run, "--format", "csv", "--out", filepath.Join(dir, "s"))
	if code != 0 {
		t.Fatalf("summarize csv: %s", stderr)
	}
	for _, f := range []struct{ name, head string }{{"s-cells.csv", "model,dtype,init,optimizer"}, {"s-pairs.csv", "model,dtype,init,a,b"}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		recs, cerr := csv.NewReader(strings.NewReader(string(b))).ReadAll()
		if err != nil || cerr != nil || !strings.HasPrefix(string(b), f.head) || len(recs) < 2 {
			t.Errorf("%s: %v %v\n%s", f.name, err, cerr, b)
		}
	}
	if code, _, _ := perturb(t, "summarize", run, "--format", "csv"); code != 0 || !exists(filepath.Join(run, "summary-cells.csv")) {
		t.Errorf("summarize csv without --out: exit %d, no %s", code, filepath.Join(run, "summary-cells.csv"))
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"export", run, "--format", "parquet"}, "--format parquet writes a binary file: add --out FILE"},
		{[]string{"export", run, "--format", "xml"}, `--format "xml": use csv, json or parquet`},
		{[]string{"export", filepath.Join(dir, "nothing")}, "nothing"},
		{[]string{"summarize", run, "--out", "x"}, "only --format csv writes files"},
		{[]string{"export", run, "--fromat", "csv"}, "unknown flag --fromat; did you mean --format?"},
	} {
		if code, _, stderr := perturb(t, tc.args...); code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %s", tc.args, code, stderr)
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
