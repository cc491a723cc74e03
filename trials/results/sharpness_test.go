package results

import (
	"testing"
)

// TestSharpnessColumn checks that a row's sharpness JSON round-trips
// (and nil stays NULL) through Insert, Rows and ReadRows.
func TestSharpnessColumn(t *testing.T) {
	s, path := newStore(t)
	with := mkRow("sgd", 0.1, 0, 0)
	with.Sharpness = []byte(`{"end":{"pool":{"samples":1000,"lambda":[12.5]}}}`)
	without := mkRow("sgd", 0.1, 0, 1)
	if err := s.Insert([]Row{with, without}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Rows()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, read, err := ReadRows(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, rows := range [][]Row{got, read} {
		if len(rows) != 2 || !sameRow(rows[0], with) || !sameRow(rows[1], without) || rows[1].Sharpness != nil {
			t.Errorf("rows %+v", rows)
		}
	}
}

// TestUpgradeV2 makes a version 2 store (no sharpness column), reads it
// as is, then opens it: Open upgrades it to version 3 in place, its keys
// are there to skip (a resumed run), and rows with sharpness join it.
func TestUpgradeV2(t *testing.T) {
	s, path := newStore(t)
	old := mkRow("gd", 0.5, 1, 0)
	old.Weights = []float64{0.25, -1}
	if err := s.Insert([]Row{old}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`ALTER TABLE trials DROP COLUMN test_estimator`, `ALTER TABLE trials DROP COLUMN test_se`, `ALTER TABLE trials DROP COLUMN pool_test_loss`,
		`ALTER TABLE trials DROP COLUMN seconds`, `ALTER TABLE trials DROP COLUMN test_seconds`, `ALTER TABLE trials DROP COLUMN pool_seconds`,
		`ALTER TABLE trials DROP COLUMN sharpness`,
		`UPDATE meta SET value = '2' WHERE key = 'schema_version'`,
	} {
		if _, err := s.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	m, rows, err := ReadRows(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != 2 || len(rows) != 1 || !sameRow(rows[0], old) {
		t.Fatalf("v2 store read as version %d, rows %+v", m.SchemaVersion, rows)
	}
	s2, m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != SchemaVersion {
		t.Errorf("Open left schema_version %d, want %d", m.SchemaVersion, SchemaVersion)
	}
	keys, err := s2.Keys()
	if err != nil || !keys[old.Key()] || len(keys) != 1 {
		t.Fatalf("keys after upgrade %v, %v", keys, err)
	}
	nw := mkRow("gd", 0.5, 1, 1)
	nw.Sharpness = []byte(`{"init":{"train":{"samples":10}}}`)
	if err := s2.Insert([]Row{nw}); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	m, got, err := ReadRows(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != SchemaVersion || len(got) != 2 || !sameRow(got[0], old) || !sameRow(got[1], nw) {
		t.Errorf("after upgrade: version %d, rows %+v", m.SchemaVersion, got)
	}
}
