// Package merge combines the stores of a run's shards (perturb run --shard
// I/N) into one store, checking that together they hold every trial of the
// config exactly once.
//
// Merging is all-or-nothing: the merged store is written to a temporary
// file and renamed into place only when complete, so an interrupted or
// refused merge leaves nothing behind. Inputs are only read.
package merge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/perturb/perturb/trials"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/results"
)

// DuplicateTol is the relative tolerance within which two copies of one
// trial (from overlapping inputs) count as the same result.
const DuplicateTol = 1e-9

// Input is one store read for a merge.
type Input struct {
	Path string
	Meta results.Meta
	Rows int
}

// Duplicate is a trial stored by more than one input.
type Duplicate struct {
	Key   results.Key
	Paths []string
	// Rel is the largest relative difference between the copies'
	// measurements (0 when they are identical).
	Rel float64
}

// Plan is the outcome of reading a merge's inputs: what the merged store
// would hold and what is wrong with it.
type Plan struct {
	Config *config.Config
	Inputs []Input
	// History is the merged store's config history: the inputs' histories
	// (each config once, oldest first), ending with Config.
	History []results.Change
	Planned int           // trials in the config
	Rows    []results.Row // one per stored trial, in plan order
	// Duplicates are trials stored by more than one input; the copy of the
	// earliest input is kept.
	Duplicates []Duplicate
	// Missing are the config's trials that no input stores, in plan order,
	// with the shard (of the inputs' N; zero Shard if the inputs are not
	// shards of one N) that should have held each.
	Missing []Missing
}

// Missing is a trial no input stores.
type Missing struct {
	Key   results.Key
	Shard trials.Shard
}

// Read reads the stores at paths (results files) and plans their merge
// into the config of one of them that contains all the others' (see
// ReadInto).
func Read(paths []string) (*Plan, error) { return ReadInto(paths, nil) }

// ReadInto reads the stores at paths (results files) and plans their merge
// into config union, or, when union is nil, into the config of the input
// whose config contains every other input's (config.Grows): runs of one
// config, or a grown run with runs of the configs it grew from. It fails
// if an input's config is not contained (naming the settings that
// conflict), if the stores hold trials the config does not have, or copies
// of one trial that disagree. The merged history is the union of the
// inputs' config histories, ending with the merged config.
func ReadInto(paths []string, union *config.Config) (*Plan, error) {
	if len(paths) == 0 {
		return nil, errors.New("merge: no runs given")
	}
	p := &Plan{}
	byKey := map[results.Key]int{}     // index into p.Rows
	from := map[results.Key][]string{} // inputs holding the key
	dups := map[results.Key]float64{}
	var stored []results.Row
	var cfgs []*config.Config
	var inputRows [][]results.Row
	for i, path := range paths {
		for _, prev := range paths[:i] {
			if same(prev, path) {
				return nil, fmt.Errorf("merge: %s is given twice (also as %s): list each run once", path, prev)
			}
		}
		meta, rows, err := results.ReadRows(path)
		if err != nil {
			return nil, err
		}
		cfg, err := config.Parse(filepath.Join(filepath.Dir(path), "config.toml"), meta.ConfigText)
		if err != nil {
			return nil, fmt.Errorf("merge: the config stored in %s does not parse: %w", path, err)
		}
		h, err := results.ReadHistory(path)
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		cfgs = append(cfgs, cfg)
		p.History = append(p.History, h...)
		p.Inputs = append(p.Inputs, Input{Path: path, Meta: meta, Rows: len(rows)})
		inputRows = append(inputRows, rows)
	}
	// The configs first: copies of a trial under conflicting configs
	// differ, and the configs say why.
	if err := p.choose(cfgs, union); err != nil {
		return nil, err
	}
	for i, rows := range inputRows {
		path := paths[i]
		for _, r := range rows {
			k := r.Key()
			from[k] = append(from[k], path)
			if j, ok := byKey[k]; ok {
				c := results.Compare([]results.Row{stored[j]}, []results.Row{r}, DuplicateTol)
				if !c.Same() {
					d := c.Differences[0]
					return nil, fmt.Errorf("merge: trial %v is stored by %s and %s with different results (%s %s vs %s): they were not produced by the same computation; merge only shards of one run",
						k, from[k][0], path, d.Field, d.A, d.B)
				}
				dups[k] = max(dups[k], c.MaxRel)
				continue
			}
			byKey[k] = len(stored)
			stored = append(stored, r)
		}
	}

	// Every stored trial must be one of the config's; order rows by plan.
	plan := trials.Plan(p.Config)
	p.Planned = len(plan)
	n := shardCount(p.Inputs)
	for _, in := range p.Inputs {
		if in.Meta.ConfigHash != p.Config.Hash() {
			n = 0 // shards of another config than the merged one
		}
	}
	assign := trials.Assign(p.Config, max(n, 1))
	inPlan := make(map[results.Key]bool, len(plan))
	for pos, t := range plan {
		k := trials.Key(p.Config, t)
		inPlan[k] = true
		if j, ok := byKey[k]; ok {
			p.Rows = append(p.Rows, stored[j])
		} else {
			m := Missing{Key: k}
			if n > 0 {
				m.Shard = trials.Shard{I: assign[pos], N: n}
			}
			p.Missing = append(p.Missing, m)
		}
	}
	for _, r := range stored {
		if k := r.Key(); !inPlan[k] {
			return nil, fmt.Errorf("merge: %s stores trial %v, which config %s does not have: the store is damaged or was edited", from[k][0], k, p.Config.Name)
		}
	}
	for k, rel := range dups {
		p.Duplicates = append(p.Duplicates, Duplicate{Key: k, Paths: from[k], Rel: rel})
	}
	sort.Slice(p.Duplicates, func(i, j int) bool { return p.Duplicates[i].Key.Less(p.Duplicates[j].Key) })
	return p, nil
}

// same reports whether paths a and b name the same file.
func same(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// shardCount is the N of the inputs' shards when they are all shards of
// one N, else 0.
func shardCount(in []Input) int {
	n := -1
	for _, i := range in {
		s, err := trials.ParseShard(i.Meta.Shard)
		if err != nil {
			return 0
		}
		if n >= 0 && s.N != n {
			return 0
		}
		n = s.N
	}
	return max(n, 0)
}

// MissingShards summarises p.Missing per shard, in shard order: how many
// trials each shard lacks, and which input (if any) is that shard.
func (p *Plan) MissingShards() []ShardGap {
	gaps := map[trials.Shard]int{}
	for _, m := range p.Missing {
		gaps[m.Shard]++
	}
	var out []ShardGap
	for s, n := range gaps {
		g := ShardGap{Shard: s, Missing: n}
		for _, in := range p.Inputs {
			if in.Meta.Shard == s.String() && s.N > 0 {
				g.Paths = append(g.Paths, in.Path)
			}
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Shard.I < out[j].Shard.I })
	return out
}

// ShardGap is the number of trials a shard lacks and the inputs that hold
// (part of) that shard.
type ShardGap struct {
	Shard   trials.Shard
	Missing int
	Paths   []string
}

// Write writes the merged store to path (which must not exist), with the
// config's meta and no shard. The store is built in path+".merging" and
// renamed into place when complete.
func (p *Plan) Write(path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("merge: %s already exists: choose a new output folder or remove it", path)
	}
	tmp := path + ".merging"
	for _, f := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
		os.Remove(f)
	}
	c := p.Config
	store, err := results.Create(tmp, results.Meta{ConfigHash: c.Hash(), ConfigText: c.Text, ConfigName: c.Name, Created: time.Now()})
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	fail := func(err error) error {
		store.Close()
		for _, f := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
			os.Remove(f)
		}
		return fmt.Errorf("merge: write %s: %w", path, err)
	}
	if len(p.History) > 0 {
		if err := store.ReplaceHistory(p.History); err != nil {
			return fail(err)
		}
	}
	for rows := p.Rows; len(rows) > 0; {
		n := min(len(rows), 4096)
		if err := store.Insert(rows[:n]); err != nil {
			return fail(err)
		}
		rows = rows[n:]
	}
	if err := store.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return nil
}

// choose sets p.Config to union, or when union is nil to the inputs'
// config that contains all the others', and p.History to the inputs'
// histories, each config once, oldest first, ending with p.Config.
func (p *Plan) choose(cfgs []*config.Config, union *config.Config) error {
	if union == nil {
		for _, c := range cfgs {
			if containsAll(c, cfgs) == nil {
				union = c
				break
			}
		}
		if union == nil {
			// Name the conflict between the first input and the first other
			// input that neither contains.
			for i, c := range cfgs[1:] {
				_, e1 := config.Grows(cfgs[0], c)
				_, e2 := config.Grows(c, cfgs[0])
				if e1 != nil && e2 != nil {
					return fmt.Errorf("merge: %s and %s hold runs of conflicting configs (%s, %s): %w\nmerge only runs of configs one of which contains the others, or give the config containing them all with --config",
						p.Inputs[0].Path, p.Inputs[i+1].Path, cfgs[0].Name, c.Name, e1)
				}
			}
			return fmt.Errorf("merge: no run's config contains all the others': write a config that contains them all and give it with --config")
		}
	} else if err := containsAll(union, cfgs); err != nil {
		return err
	}
	p.Config = union
	seen := map[string]bool{}
	var h []results.Change
	sort.SliceStable(p.History, func(i, j int) bool { return p.History[i].Time.Before(p.History[j].Time) })
	for _, c := range p.History {
		if !seen[c.ConfigHash] && c.ConfigHash != union.Hash() {
			seen[c.ConfigHash] = true
			h = append(h, c)
		}
	}
	last := results.Change{Time: time.Now(), ConfigHash: union.Hash(), ConfigName: union.Name, ConfigText: union.Text, Added: "merge"}
	for _, c := range p.History {
		if c.ConfigHash == union.Hash() {
			last = c
			break
		}
	}
	p.History = append(h, last)
	return nil
}

// containsAll checks that union's plan contains that of each of cfgs.
func containsAll(union *config.Config, cfgs []*config.Config) error {
	for _, c := range cfgs {
		if _, err := config.Grows(c, union); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
	}
	return nil
}
