package stats

import (
	"encoding/json"
	"fmt"
	"os"
)

// FileName is the name of the statistics file in a run directory.
const FileName = "stats.json"

// File is the statistics of a config's initialisations, as written next to
// a run's results by perturb stats.
type File struct {
	ConfigName string  `json:"config_name"`
	ConfigHash string  `json:"config_hash"`
	Entries    []Entry `json:"entries"`
}

// Entry is the estimates at one (model, init).
type Entry struct {
	Model     string     `json:"model"`
	Init      int        `json:"init"`
	DType     string     `json:"dtype"`
	Block     int        `json:"block"`   // samples per block
	Samples   int        `json:"samples"` // Groups · Blocks · Block
	Seconds   float64    `json:"seconds"`
	Estimates []Estimate `json:"estimates"`
	// Cov is the covariance matrix of the estimates' values, in the
	// order of Estimates (SummarizeCov): Cov[j][j] = Estimates[j].StdErr².
	// Files written before it existed have none.
	Cov [][]float64 `json:"cov,omitempty"`
}

// Get returns the named estimate of the entry for (model, init).
func (f *File) Get(model string, init int, name string) (Estimate, bool) {
	for _, e := range f.Entries {
		if e.Model == model && e.Init == init {
			for _, est := range e.Estimates {
				if est.Name == name {
					return est, true
				}
			}
		}
	}
	return Estimate{}, false
}

// ReadFile reads a statistics file.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read statistics: %w (write them with perturb stats RUN)", err)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("read statistics %s: %w", path, err)
	}
	return &f, nil
}
