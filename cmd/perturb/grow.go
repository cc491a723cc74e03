package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/results"
)

// grows decides whether cfg's plan contains that of the config stored in
// meta (config.Grows) and returns what cfg adds in words.
func grows(meta results.Meta, cfg *config.Config) (string, error) {
	stored, err := config.Parse("stored config", meta.ConfigText)
	if err != nil {
		return "", fmt.Errorf("the stored config does not parse with this perturb: %w", err)
	}
	return config.Grows(stored, cfg)
}

// growsOK reports whether cfg's plan contains the stored config's.
func growsOK(meta results.Meta, cfg *config.Config) bool {
	_, err := grows(meta, cfg)
	return err == nil
}

// growRun grows the store of run folder dir, holding a run of the config
// in meta, to cfg when cfg's plan contains it: the store's meta becomes
// cfg's and the change is appended to its config history (in one
// transaction), dir/config.toml being replaced by cfg's text atomically
// just before.
// The stored trials stay as they are (with the hash of the config they ran
// under); the caller runs the trials they lack. A shard store grows too:
// the grown plan may deal some of its trials to other shards, which then
// run them again (merge keeps one copy).
//
// A cfg that does not contain the stored plan is refused naming each
// setting that would change stored trials.
func growRun(store *results.Store, dir string, meta results.Meta, cfg *config.Config, stderr io.Writer) error {
	added, err := grows(meta, cfg)
	if err != nil {
		msg := fmt.Sprintf("%s holds a run of another config (%s, hash %.12s), not %s (hash %.12s); choose another --out, or resume with the stored config %s",
			dir, meta.ConfigName, meta.ConfigHash, cfg.Path, cfg.Hash(), filepath.Join(dir, configFile))
		if h, herr := store.History(); herr == nil && results.Hashes(h)[cfg.Hash()] {
			msg += fmt.Sprintf("; %s was run into it earlier, and the run has grown since", cfg.Path)
		}
		if ge, ok := err.(*config.GrowError); ok {
			return fmt.Errorf("%s\na config may add etas, inits, models, optimizers or trials to a run, but these changes alter its stored trials:\n  %s%s",
				msg, strings.Join(ge.Changes, "\n  "), describeDiff(meta.ConfigText, cfg))
		}
		return fmt.Errorf("%s: %w", msg, err)
	}
	if added == "" {
		added = "the same plan"
	}
	// config.toml first: should the store refuse the change, the old text
	// goes back, and a crash between the two leaves a folder that the same
	// command grows again.
	path := filepath.Join(dir, configFile)
	if err := writeAtomic(path, []byte(cfg.Text)); err != nil {
		return err
	}
	if err := store.Grow(results.Meta{ConfigHash: cfg.Hash(), ConfigName: cfg.Name, ConfigText: cfg.Text}, added); err != nil {
		if rerr := writeAtomic(path, []byte(meta.ConfigText)); rerr != nil {
			return fmt.Errorf("%w; restoring %s also failed (%v): restore it from the store's config_text", err, path, rerr)
		}
		return err
	}
	fmt.Fprintf(stderr, "growing %s: %s adds %s to its config; the stored trials are kept, the new ones run (history in %s, table config_history)\n",
		dir, cfg.Path, added, filepath.Join(dir, resultsFile))
	if meta.Shard != "" {
		fmt.Fprintf(stderr, "note: the grown plan deals trials to shards anew; trials stored here that now fall to other shards stay here, and those shards run them again (perturb merge keeps one copy)\n")
	}
	return nil
}
