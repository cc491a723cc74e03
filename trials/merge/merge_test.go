package merge

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perturb/perturb/trials"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/results"
)

const cfgText = `name = "m"
seed = 3
dtype = "float64"
[trials]
count = 7
n = 5
etas = [0.1, 0.2]
[[model]]
name = "gauss"
inits = [0]
[[optimizer]]
name = "sgd"
batch = 1
[[optimizer]]
name = "gd"
steps = 4
`

type rec struct{ s *results.Store }

func (r rec) Record(row results.Row) error { return r.s.Insert([]results.Row{row}) }

// runStore runs shard s of the config text into dir/results.sqlite.
func runStore(t *testing.T, text, dir string, s trials.Shard) string {
	t.Helper()
	c, err := config.Parse("c.toml", text)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "results.sqlite")
	st, err := results.Create(path, results.Meta{ConfigHash: c.Hash(), ConfigText: c.Text, ConfigName: c.Name, Shard: s.String()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := trials.NewRunner(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background(), rec{st}, trials.Settings{Shard: s, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	return path
}

func readAll(t *testing.T, path string) []results.Row {
	t.Helper()
	_, rows, err := results.ReadRows(path)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestMerge(t *testing.T) {
	dir := t.TempDir()
	whole := runStore(t, cfgText, filepath.Join(dir, "whole"), trials.Shard{})
	var shards []string
	for i := 1; i <= 3; i++ {
		shards = append(shards, runStore(t, cfgText, filepath.Join(dir, "s", string(rune('0'+i))), trials.Shard{I: i, N: 3}))
	}
	other := runStore(t, strings.Replace(cfgText, "seed = 3", "seed = 4", 1), filepath.Join(dir, "other"), trials.Shard{I: 2, N: 3})

	t.Run("complete", func(t *testing.T) {
		p, err := Read(shards)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Missing) != 0 || len(p.Duplicates) != 0 || p.Planned != 28 || len(p.Rows) != 28 {
			t.Fatalf("planned %d, rows %d, missing %d, duplicates %d", p.Planned, len(p.Rows), len(p.Missing), len(p.Duplicates))
		}
		out := filepath.Join(dir, "merged.sqlite")
		if err := p.Write(out); err != nil {
			t.Fatal(err)
		}
		if c := results.Compare(readAll(t, whole), readAll(t, out), 0); !c.Same() || c.Common != 28 {
			t.Fatalf("merged store differs from the whole run: %+v", c)
		}
		if _, err := os.Stat(out + ".merging"); !os.IsNotExist(err) {
			t.Error("temporary file left behind")
		}
		if err := p.Write(out); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("second write: %v", err)
		}
		if m, _, _ := results.ReadRows(out); m.Shard != "" || m.ConfigName != "m" {
			t.Errorf("merged meta %+v", m)
		}
	})
	t.Run("missing shard", func(t *testing.T) {
		p, err := Read([]string{shards[0], shards[2]})
		if err != nil {
			t.Fatal(err)
		}
		gaps := p.MissingShards()
		want := len(readAll(t, shards[1]))
		if len(gaps) != 1 || gaps[0].Shard != (trials.Shard{I: 2, N: 3}) || gaps[0].Missing != want || len(gaps[0].Paths) != 0 {
			t.Fatalf("gaps %+v, want shard 2/3 missing %d", gaps, want)
		}
	})
	t.Run("duplicates", func(t *testing.T) {
		p, err := Read([]string{shards[0], whole, shards[1]})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Missing) != 0 || len(p.Rows) != 28 || len(p.Duplicates) != len(readAll(t, shards[0]))+len(readAll(t, shards[1])) {
			t.Fatalf("rows %d, missing %d, duplicates %d", len(p.Rows), len(p.Missing), len(p.Duplicates))
		}
		if d := p.Duplicates[0]; len(d.Paths) != 2 || d.Rel != 0 {
			t.Errorf("duplicate %+v", d)
		}
	})
	for _, tc := range []struct {
		name  string
		paths func() []string
		want  string
	}{
		{"other config", func() []string { return []string{shards[0], other} }, "hold runs of conflicting configs (m, m): "},
		{"twice", func() []string { return []string{shards[0], shards[0]} }, "given twice"},
		{"none", func() []string { return nil }, "no runs"},
		{"not a store", func() []string { return []string{shards[0], filepath.Join(dir, "nowhere")} }, "nowhere"},
		{"disagreeing copy", func() []string { return []string{shards[0], tamper(t, shards[0], dir)} }, "different results"},
		{"unknown trial", func() []string { return []string{extra(t, shards[0], dir)} }, "does not have"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Read(tc.paths()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// copyStore copies the rows of src into a new store under dir, changed by
// edit.
func copyStore(t *testing.T, src, dir, name string, edit func([]results.Row) []results.Row) string {
	meta, rows, err := results.ReadRows(src)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	st, err := results.Create(path, meta)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Insert(edit(rows)); err != nil {
		t.Fatal(err)
	}
	return path
}

// tamper copies src with one test loss changed in the 6th digit.
func tamper(t *testing.T, src, dir string) string {
	return copyStore(t, src, dir, "tampered.sqlite", func(r []results.Row) []results.Row {
		r[0].TestLoss *= 1 + 1e-6
		return r
	})
}

// extra copies src with a trial index the config does not have.
func extra(t *testing.T, src, dir string) string {
	return copyStore(t, src, dir, "extra.sqlite", func(r []results.Row) []results.Row {
		x := r[0]
		x.Trial = 99
		return append(r, x)
	})
}
