package results

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// exportRows are two trials: an ok landscape trial with weights and a
// sharpness record, and a diverged one without them.
func exportRows() []Row {
	return []Row{
		{Model: "gauss", Optimizer: "sgd", Eta: 0.1, Init: 0, Trial: 0, DType: "float64", N: 10, Batch: 1, Epochs: 1, Steps: 10,
			Status: StatusOK, InitTestLoss: 0.5, InitTestAcc: math.NaN(), TestLoss: 0.25, TestAcc: math.NaN(), TrainLoss: 0.125,
			DivergedStep: -1, Weights: []float64{0.1, -2},
			Sharpness: []byte(`{"end":{"train":{"samples":10,"lambda":[2,0.5],"lanczos_converged":true,"tr_h":{"value":1.5,"stderr":null,"probes":10,"converged":false}}}}`)},
		{Model: "gauss", Optimizer: "sgd", Eta: 0.1, Init: 0, Trial: 1, DType: "float64", N: 10, Batch: 1, Epochs: 1, Steps: 10,
			Status: StatusDiverged, InitTestLoss: 0.5, InitTestAcc: math.NaN(), TestLoss: math.NaN(), TestAcc: math.NaN(), TrainLoss: math.Inf(1),
			DivergedStep: 7},
	}
}

func TestTidy(t *testing.T) {
	tab, err := Tidy("land", uint64(11), exportRows())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"config": {"land", "land"}, "seed": {"11", "11"}, "status": {"ok", "diverged"},
		"diverged_step": {"", "7"}, "test_loss": {"0.25", ""}, "train_loss": {"0.125", ""}, "init_test_acc": {"", ""},
		"weight_1": {"-2", ""}, "sharp_end_train_lambda_0": {"2", ""}, "sharp_end_train_lambda_1": {"0.5", ""},
		"sharp_end_train_tr_h_value": {"1.5", ""}, "sharp_end_train_tr_h_stderr": {"", ""},
		"sharp_end_train_lanczos_converged": {"true", ""}, "sharp_end_train_samples": {"10", ""},
	}
	var b bytes.Buffer
	if err := tab.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(recs) != 3 {
		t.Fatalf("CSV: %v, %d records", err, len(recs))
	}
	col := map[string]int{}
	for j, h := range recs[0] {
		col[h] = j
	}
	for name, w := range want {
		j, ok := col[name]
		if !ok {
			t.Errorf("no column %s in %v", name, recs[0])
			continue
		}
		if recs[1][j] != w[0] || recs[2][j] != w[1] {
			t.Errorf("%s: %q, %q; want %q, %q", name, recs[1][j], recs[2][j], w[0], w[1])
		}
	}

	b.Reset()
	if err := tab.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var objs []map[string]any
	if err := json.Unmarshal(b.Bytes(), &objs); err != nil || len(objs) != 2 || objs[0]["test_loss"] != 0.25 || objs[1]["test_loss"] != nil || objs[1]["diverged_step"] != 7.0 {
		t.Fatalf("JSON %v: %s", err, b.String())
	}
}

// TestWriteParquet writes the tidy table as Parquet, reads it back and
// compares every cell with the CSV's.
func TestWriteParquet(t *testing.T) {
	tab, err := Tidy("land", uint64(11), exportRows())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tab.WriteParquet(&b); err != nil {
		t.Fatal(err)
	}
	r := parquet.NewReader(bytes.NewReader(b.Bytes()))
	defer r.Close()
	paths := r.Schema().Columns()
	if len(paths) != len(tab.Columns) {
		t.Fatalf("%d parquet columns, %d in the table", len(paths), len(tab.Columns))
	}
	rows := make([]parquet.Row, 4)
	n, err := r.ReadRows(rows)
	if (err != nil && !errors.Is(err, io.EOF)) || n != len(tab.Rows) {
		t.Fatalf("read %d rows: %v", n, err)
	}
	index := map[string]int{}
	for j, c := range tab.Columns {
		index[c] = j
	}
	for i, row := range rows[:n] {
		for ci, path := range paths {
			j := index[path[0]]
			v := row[ci]
			want := cell(tab.Rows[i][j])
			var got string
			switch {
			case v.IsNull():
			case v.Kind() == parquet.Double:
				got = strconv.FormatFloat(v.Double(), 'g', -1, 64)
			case v.Kind() == parquet.Int64:
				got = strconv.FormatInt(v.Int64(), 10)
			case v.Kind() == parquet.Boolean:
				got = strconv.FormatBool(v.Boolean())
			default:
				got = string(v.ByteArray())
			}
			if got != want {
				t.Errorf("row %d %s: parquet %q, table %q", i, path[0], got, want)
			}
		}
	}
}
