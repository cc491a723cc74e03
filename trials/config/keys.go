package config

import (
	"slices"
	"strings"
)

// tableKeys lists the keys of each table of a config, in the order the
// documentation gives them. Top-level keys are under "".
var tableKeys = map[string][]string{
	"":          {"name", "seed", "dtype"},
	"data":      {"set", "dir"},
	"trials":    {"count", "n", "etas", "test"},
	"model":     {"name", "label", "inits", "h", "s", "start", "width", "depth"},
	"optimizer": {"name", "label", "batch", "epochs", "steps", "reshuffle", "refine", "eta_scale", "population"},
	"sharpness": strings.Split(sharpnessKeys, ", "),
}

// arrayTables are the tables written [[name]], one per entry.
var arrayTables = []string{"model", "optimizer"}

// KnownKeys returns every key a config may hold, dotted ("seed",
// "trials.count", "model.inits"), sorted: the list the "did you mean"
// suggestions, --set and the config reference (docs/config.md) go by.
func KnownKeys() []string {
	var out []string
	for table, keys := range tableKeys {
		for _, k := range keys {
			if table != "" {
				k = table + "." + k
			}
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// isTable reports whether name is a table of the config ([name] or
// [[name]]).
func isTable(name string) bool {
	_, ok := tableKeys[name]
	return ok && name != ""
}
