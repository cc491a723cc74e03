package results

import (
	"testing"
)

// TestHistory: a new store's history holds its config; Grow makes a new
// config the meta's and appends it, leaving the rows as they were.
func TestHistory(t *testing.T) {
	s, path := newStore(t)
	old := mkRow("sgd", 0.1, 0, 0)
	if err := s.Insert([]Row{old}); err != nil {
		t.Fatal(err)
	}
	h, err := s.History()
	if err != nil || len(h) != 1 || h[0].Seq != 1 || h[0].ConfigHash != "abc123" || !h[0].Time.Equal(testMeta().Created) || h[0].Added != "" {
		t.Fatalf("new store's history %+v, %v", h, err)
	}
	grown := Meta{ConfigHash: "def456", ConfigName: "t", ConfigText: "name = \"t\"\n[run]\nn = 8\ncount = 2\n"}
	if err := s.Grow(grown, "trials 1 to 1"); err != nil {
		t.Fatal(err)
	}
	nw := mkRow("sgd", 0.1, 0, 1)
	nw.ConfigHash = "def456"
	if err := s.Insert([]Row{nw}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	m, rows, err := ReadRows(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.ConfigHash != "def456" || m.ConfigText != grown.ConfigText || !m.Created.Equal(testMeta().Created) {
		t.Errorf("meta after Grow %+v", m)
	}
	if len(rows) != 2 || !sameRow(rows[0], old) || !sameRow(rows[1], nw) {
		t.Errorf("rows after Grow %+v", rows)
	}
	h, err = ReadHistory(path)
	if err != nil || len(h) != 2 || h[1].Seq != 2 || h[1].ConfigHash != "def456" || h[1].Added != "trials 1 to 1" || h[1].ConfigText != grown.ConfigText {
		t.Fatalf("history after Grow %+v, %v", h, err)
	}
	if hs := Hashes(h); !hs["abc123"] || !hs["def456"] || len(hs) != 2 {
		t.Errorf("Hashes = %v", hs)
	}
}

// TestUpgradeV3 reads a version 3 store (no config history) as holding
// one config, and Open upgrades it with that history.
func TestUpgradeV3(t *testing.T) {
	s, path := newStore(t)
	for _, q := range []string{
		`ALTER TABLE trials DROP COLUMN test_estimator`, `ALTER TABLE trials DROP COLUMN test_se`, `ALTER TABLE trials DROP COLUMN pool_test_loss`,
		`ALTER TABLE trials DROP COLUMN seconds`, `ALTER TABLE trials DROP COLUMN test_seconds`, `ALTER TABLE trials DROP COLUMN pool_seconds`,
		`DROP TABLE config_history`, `UPDATE meta SET value = '3' WHERE key = 'schema_version'`} {
		if _, err := s.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	want := func(what string, h []Change, err error) {
		t.Helper()
		if err != nil || len(h) != 1 || h[0].Seq != 1 || h[0].ConfigHash != "abc123" || h[0].ConfigText != testMeta().ConfigText || !h[0].Time.Equal(testMeta().Created) {
			t.Fatalf("%s: history %+v, %v", what, h, err)
		}
	}
	h, err := ReadHistory(path)
	want("v3 read as is", h, err)
	s2, m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if m.SchemaVersion != SchemaVersion {
		t.Errorf("Open left schema_version %d", m.SchemaVersion)
	}
	h, err = s2.History()
	want("upgraded", h, err)
}
