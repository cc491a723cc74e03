package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// LoadSet is Load with the overrides sets ("key=value", the command
// line's --set flags) applied to the file's TOML tree before validation,
// so an override is checked exactly like the file. With no overrides it is
// Load.
func LoadSet(path string, sets []string) (*Config, error) {
	if len(sets) == 0 {
		return Load(path)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w; check the path (CONFIG is a TOML file such as configs/quickstart.toml)", err)
	}
	return ParseSet(path, string(text), sets)
}

// ParseSet is Parse with the overrides sets applied. Keys are dotted
// ("seed", "trials.count", "optimizer[1].batch"; array indices from 0,
// and without one a key of [[model]] or [[optimizer]] is set in every
// entry); values are TOML ("5", "[1, 2]", "\"sgd\"", or a bare word taken
// as a string). The config text becomes the re-encoded tree, headed by a
// comment naming the overrides, so a run stores what it ran. Errors name
// the --set flag, the key and the fix.
func ParseSet(file, text string, sets []string) (*Config, error) {
	if len(sets) == 0 {
		return Parse(file, text)
	}
	tree := map[string]any{}
	if _, err := toml.Decode(text, &tree); err != nil {
		return Parse(file, text) // the file's own error, with its line
	}
	set := map[string]string{} // normalised key -> the flag's text
	for _, s := range sets {
		key, err := applySet(tree, s)
		if err != nil {
			return nil, &Error{File: "--set " + s, Msg: err.Error()}
		}
		set[key] = s
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# %s with --set %s\n", file, strings.Join(sets, " --set "))
	if err := toml.NewEncoder(&buf).Encode(tree); err != nil {
		return nil, fmt.Errorf("%s with --set %s: encode: %w", file, strings.Join(sets, " --set "), err)
	}
	c, err := Parse(file, buf.String())
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return nil, err
		}
		e.Line = 0 // a line of the re-encoded text would mislead
		if s, ok := set[e.Key]; ok {
			e.File = "--set " + s
		} else if s, ok := set[indexRe.ReplaceAllString(e.Key, "")]; ok {
			e.File = "--set " + s
		} else {
			e.File = fmt.Sprintf("%s with --set %s", file, strings.Join(sets, " --set "))
		}
		return nil, e
	}
	return c, nil
}

var (
	segRe   = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_-]*)(?:\[(\d+)\])?$`)
	indexRe = regexp.MustCompile(`\[\d+\]`)
)

// applySet applies one "key=value" to tree and returns the key as errors
// name it ("optimizer[1].batch", or "optimizer.batch" for every entry).
func applySet(tree map[string]any, s string) (string, error) {
	key, val, ok := strings.Cut(s, "=")
	key, val = strings.TrimSpace(key), strings.TrimSpace(val)
	if !ok || key == "" {
		return "", errors.New("want key=value, e.g. --set trials.count=5 or --set optimizer[0].batch=2")
	}
	segs := strings.Split(key, ".")
	if len(segs) > 2 {
		return "", fmt.Errorf("key %q has %d parts; config keys are NAME or TABLE.NAME (e.g. trials.count, model[0].inits)", key, len(segs))
	}
	m := segRe.FindStringSubmatch(segs[0])
	if m == nil {
		return "", fmt.Errorf("key %q: write NAME, TABLE.NAME or TABLE[I].NAME (e.g. optimizer[1].batch)", key)
	}
	table, index := m[1], -1
	if m[2] != "" {
		index, _ = strconv.Atoi(m[2])
	}
	if len(segs) == 1 {
		if isTable(table) {
			return "", fmt.Errorf("key %q is a table; set one of its keys: %s.KEY with KEY one of %s", key, table, strings.Join(tableKeys[table], ", "))
		}
		if index >= 0 {
			return "", fmt.Errorf("key %q: %s is not an array; drop the [%d]", key, table, index)
		}
		if err := knownKey(toml.Key{table}, key); err != nil {
			return "", err
		}
		v, err := setValue(val)
		if err != nil {
			return "", err
		}
		tree[table] = v
		return key, nil
	}
	name := segs[1]
	if !isTable(table) {
		return "", fmt.Errorf("unknown key %q; %stables: data, trials, model, optimizer, sharpness", key, suggest(toml.Key{table}))
	}
	if err := knownKey(toml.Key{table, name}, key); err != nil {
		return "", err
	}
	if index >= 0 && !isArrayTable(table) {
		return "", fmt.Errorf("key %q: [%s] is a single table; write %s.%s", key, table, table, name)
	}
	v, err := setValue(val)
	if err != nil {
		return "", err
	}
	if !isArrayTable(table) {
		t, _ := tree[table].(map[string]any)
		if t == nil {
			t = map[string]any{}
			tree[table] = t
		}
		t[name] = v
		return key, nil
	}
	list, _ := tree[table].([]map[string]any)
	if index >= len(list) {
		return "", fmt.Errorf("key %q: the config has %d [[%s]] tables (%s[0] to %s[%d]); use one of those indices", key, len(list), table, table, table, max(len(list)-1, 0))
	}
	for i, t := range list {
		if index < 0 || i == index {
			t[name] = v
		}
	}
	if index >= 0 {
		return fmt.Sprintf("%s[%d].%s", table, index, name), nil
	}
	return table + "." + name, nil
}

// knownKey returns nil if k is a config key, else an error with a "did
// you mean" and the keys known there.
func knownKey(k toml.Key, key string) error {
	table := ""
	if len(k) > 1 {
		table = k[0]
	}
	for _, n := range tableKeys[table] {
		if n == k[len(k)-1] {
			return nil
		}
	}
	return fmt.Errorf("unknown key %q; %sknown keys here: %s", key, suggest(k), knownKeys(k))
}

func isArrayTable(name string) bool {
	for _, t := range arrayTables {
		if t == name {
			return true
		}
	}
	return false
}

// setValue parses the value of an override as TOML, or as a string if it
// is a bare word.
func setValue(val string) (any, error) {
	var v struct{ V any }
	if _, err := toml.Decode("V = "+val, &v); err == nil {
		return v.V, nil
	}
	if val != "" && !strings.ContainsAny(val, "[]{}\"'=,# \t") {
		return val, nil
	}
	return nil, fmt.Errorf("value %q is not a TOML value; write numbers as 5 or 0.1, lists as [1,2], strings as a bare word or quoted", val)
}
