package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/results"
)

// target is what stats and taylor work on: the config and the run folder
// their output belongs with.
type target struct {
	cfg *config.Config
	dir string // the run folder (stats.json goes here, taylor reads it here)
}

// isRunDir reports whether p is a run folder: a directory holding
// config.toml or results.sqlite.
func isRunDir(p string) bool {
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
		return false
	}
	for _, f := range []string{configFile, resultsFile} {
		if _, err := os.Stat(filepath.Join(p, f)); err == nil {
			return true
		}
	}
	return false
}

// resolveTarget turns the argument of stats or taylor into a config and a
// run folder. A run folder (runs/NAME) is read as it was run: its stored
// config, with the --scale and --set it was made with, so neither can be
// mismatched; --scale, --set and an --out elsewhere are refused with it. A
// config file (for a config not yet run) is loaded with sets and scale,
// and its output goes to out, else runs/NAME; when no run is there, one
// line on stderr says where the output goes.
//
// use says, for that line, what the command does with the folder.
func resolveTarget(cmd, arg string, scale int, sets []string, out, outFlag, use string, stderr io.Writer) (*target, error) {
	if isRunDir(arg) {
		switch {
		case scale != 1:
			return nil, fmt.Errorf("--scale %d: %s is a run folder, whose stored config already has the trial count it was run with; omit --scale", scale, arg)
		case len(sets) > 0:
			return nil, fmt.Errorf("--set %s: %s is a run folder, whose stored config is what was run; omit --set, or pass a config file to %s another config", sets[0], arg, cmd)
		case out != "" && filepath.Clean(out) != filepath.Clean(arg):
			return nil, fmt.Errorf("%s %s: the output for run folder %s goes into it; omit %s (or pass a config file to write elsewhere)", outFlag, out, arg, outFlag)
		}
		cfg, err := runConfig(arg)
		if err != nil {
			return nil, err
		}
		return &target{cfg: cfg, dir: arg}, nil
	}
	if fi, err := os.Stat(arg); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s is a folder without %s or %s: pass a run folder (made by perturb run) or a config file", arg, configFile, resultsFile)
	}
	cfg, err := loadConfig(arg, sets, scale)
	if err != nil {
		return nil, err
	}
	dir := out
	if dir == "" {
		dir = filepath.Join("runs", cfg.Name)
	}
	store := filepath.Join(dir, resultsFile)
	if _, err := os.Stat(store); err != nil {
		fmt.Fprintf(stderr, "%s: no run of %s in %s yet; %s\n", cmd, cfg.Name, dir, use)
		return &target{cfg: cfg, dir: dir}, nil
	}
	meta, err := results.ReadMeta(store)
	if err != nil {
		return nil, err
	}
	if meta.ConfigHash != cfg.Hash() {
		return nil, mismatchError(dir, meta, arg, sets, cfg, scale, outFlag)
	}
	return &target{cfg: cfg, dir: dir}, nil
}

// runConfig reads the config a run folder was run with: its config.toml,
// checked against the store's hash when there is a store.
func runConfig(dir string) (*config.Config, error) {
	path := filepath.Join(dir, configFile)
	meta, merr := results.ReadMeta(filepath.Join(dir, resultsFile))
	b, err := os.ReadFile(path)
	if err != nil {
		if merr != nil {
			return nil, fmt.Errorf("run folder %s: %w", dir, err)
		}
		b = []byte(meta.ConfigText) // config.toml removed: the store keeps the text
	}
	cfg, err := config.Parse(path, string(b))
	if err != nil {
		return nil, fmt.Errorf("run folder %s: its stored config does not parse with this perturb: %w", dir, err)
	}
	if merr == nil && meta.ConfigHash != cfg.Hash() {
		return nil, fmt.Errorf("run folder %s: %s is not the config of %s (edited after the run?); restore it from the store's config or rerun", dir, path, resultsFile)
	}
	return cfg, nil
}

// scaleComment is the comment config.Scaled leaves on the count line.
var scaleComment = regexp.MustCompile(`# --scale (\d+) of `)

// mismatchError explains why dir's run is not cfg's and what to do: when
// the run is cfg at another --scale, the fix is that --scale (or the run
// folder itself), not another output folder.
func mismatchError(dir string, meta results.Meta, path string, sets []string, cfg *config.Config, scale int, outFlag string) error {
	if err := scaleMismatch(dir, meta, path, sets, scale); err != nil {
		return err
	}
	return fmt.Errorf("%s holds a run of another config (%s), not %s: pass that run's folder to work on it, or choose another %s for %s%s",
		dir, meta.ConfigName, cfg.Path, outFlag, cfg.Name, describeDiff(meta.ConfigText, cfg))
}

// scaleMismatch returns the error for a run in dir of the config at path
// (with sets) at another --scale than scale, and nil if the stored run is
// not that.
func scaleMismatch(dir string, meta results.Meta, path string, sets []string, scale int) error {
	stored, err := config.Parse("stored config", meta.ConfigText)
	if err != nil {
		return nil
	}
	base, err := loadConfig(path, sets, 1)
	if err != nil {
		return nil
	}
	if m := scaleComment.FindStringSubmatch(meta.ConfigText); m != nil {
		s, _ := strconv.Atoi(m[1])
		if sc, err := base.Scaled(s); err == nil && s != scale && sc.Hash() == stored.Hash() {
			return fmt.Errorf("%s holds the run of %s made with --scale %d, not --scale %d: pass the run folder (%s) instead of the config, or use --scale %d",
				dir, path, s, scale, dir, s)
		}
	}
	if scale != 1 && base.Hash() == stored.Hash() {
		return fmt.Errorf("%s holds the run of %s made without --scale, not --scale %d: pass the run folder (%s) instead of the config, or omit --scale",
			dir, path, scale, dir)
	}
	return nil
}

// loadConfig loads the config file at path with the --set overrides sets
// applied and its trial count divided by scale.
func loadConfig(path string, sets []string, scale int) (*config.Config, error) {
	cfg, err := config.LoadSet(path, sets)
	if err != nil {
		return nil, err
	}
	return cfg.Scaled(scale)
}
