// Package config reads and validates perturb's TOML trial configs.
//
// A config names the data, one or more models with their initialisation
// ids, one or more optimisers, a learning-rate sweep, the number of trials,
// the training-set size N, the dtype and the seed:
//
//	name  = "quickstart"
//	seed  = 1
//	dtype = "float32"            # or "float64", or both: ["float32", "float64"]
//
//	[data]
//	set = "fashion-mnist"        # or "cifar-10"
//	dir = ""                     # empty: $PERTURB_FASHION_MNIST or the default folder
//
//	[trials]
//	count = 20                   # trials per (model, init, optimiser, eta)
//	n     = 10                   # training points, drawn with replacement
//	etas  = [0.01, 0.03, 0.1]
//
//	[[model]]
//	name  = "logistic"
//	inits = [0]
//
//	[[optimizer]]
//	name   = "sgd"               # SGD: batch B, epochs E (or steps T = E·N/B)
//	batch  = 1
//	epochs = 1
//	reshuffle = false            # reshuffle the order between epochs
//
//	[[optimizer]]
//	name  = "gd"                 # full-batch GD for T steps
//	steps = 10
//
// Further optimisers (see package optim for their updates): "gdc" (GD plus
// the covariance regulariser; steps, n >= 2), "igr" (GD on L + (eta/4)
// |grad L|^2; steps), "smith" (GD on Smith et al.'s SGD modified loss over
// minibatches of size batch; batch, steps) and "sde" (the SDE approximation
// of SGD with batch and epochs, refine = 16 substeps per step; n >= 2).
//
// The artificial landscapes "gauss", "archimedes", "mean-estimation" and
// "mean-estimation-l2" are models too; they need no [data] (their points
// are drawn from N(0,1)) and take optional keys:
//
//	[[model]]
//	name  = "mean-estimation"
//	inits = [0]
//	h     = 1.0                  # Hessian H > 0 (mean-estimation only)
//	s     = 10.0                 # gradient-noise scale S > 0 (mean-estimation only)
//	start = [10.0]               # initialisation 0 (default: the origin)
//
// Every error names the file, the line and the key, says what is wrong and
// what to do. Load checks every value before any work starts. LoadSet
// applies command-line overrides (--set key=value) first. Every key, with
// its type, default and meaning, is in docs/config.md, which a test checks
// against KnownKeys.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/landscape"
	"github.com/perturb/perturb/trials/optim"
)

// Config is a validated trial config.
type Config struct {
	Name string `toml:"name" json:"name"`
	Seed uint64 `toml:"seed" json:"seed"`
	// DType is the dtype of a single-dtype config, and the first of
	// DTypes otherwise.
	DType string `toml:"-" json:"dtype"`
	// DTypes lists the dtypes of a config that sweeps several (dtype =
	// ["float32", "float64"]); nil for a single dtype, so the hash of a
	// single-dtype config is the one it always had. DTypeList is the list
	// in either case.
	DTypes []string `toml:"-" json:"dtypes,omitempty"`
	// DTypeValue is the key dtype as written: a string or an array of
	// strings. Parse copies it into DType and DTypes.
	DTypeValue DTypeValue  `toml:"dtype" json:"-"`
	Data       Data        `toml:"data" json:"data"`
	Trials     Trials      `toml:"trials" json:"trials"`
	Models     []Model     `toml:"model" json:"model"`
	Optimizers []Optimizer `toml:"optimizer" json:"optimizer"`
	// Sharpness, when set, measures sharpness with the trials (see
	// sharpness.go); nil leaves the hash of a config without it unchanged.
	Sharpness *Sharpness `toml:"sharpness" json:"sharpness,omitempty"`

	// Path is the file the config was read from (not part of the hash).
	Path string `toml:"-" json:"-"`
	// Text is the file's content as read.
	Text string `toml:"-" json:"-"`
}

// Data selects the dataset.
type Data struct {
	Set string `toml:"set" json:"set"`
	// Dir overrides the dataset folder. It is not part of the config hash:
	// the same data in another folder is the same experiment.
	Dir string `toml:"dir" json:"-"`
}

// Trials sets the sweep.
type Trials struct {
	Count int       `toml:"count" json:"count"`
	N     int       `toml:"n" json:"n"`
	Etas  []float64 `toml:"etas" json:"etas"`
	// Test selects the test-loss estimator (testloss.go); nil is the
	// exact pool loss and leaves the hash of a config without the key
	// unchanged.
	Test *TestLoss `toml:"test" json:"test,omitempty"`
}

// Model names an architecture and its initialisations.
type Model struct {
	Name string `toml:"name" json:"name"`
	// Label names the model in results when one config holds several
	// models of the same architecture (e.g. Mean Estimation at several H);
	// empty means Name. Key returns the name in use.
	Label string `toml:"label" json:"label,omitempty"`
	Inits []int  `toml:"inits" json:"inits"`
	// H and S parameterise the Mean Estimation landscapes (Hessian and
	// gradient-noise scale); Start is a landscape's initialisation 0 (the
	// origin when empty).
	H     float64   `toml:"h" json:"h,omitempty"`
	S     float64   `toml:"s" json:"s,omitempty"`
	Start []float64 `toml:"start" json:"start,omitempty"`
	// Width and Depth size the model families mlp and convnet (see
	// nets.Size; 0 is the family's default, e.g. the paper's convnet).
	Width int `toml:"width" json:"width,omitempty"`
	Depth int `toml:"depth" json:"depth,omitempty"`
}

// Size is m's nets.Size.
func (m Model) Size() nets.Size { return nets.Size{Width: m.Width, Depth: m.Depth} }

// checkSize validates the keys width and depth of m.
func (m Model) checkSize(key string) error {
	if !nets.Sized(m.Name) {
		for k, v := range map[string]int{"width": m.Width, "depth": m.Depth} {
			if v != 0 {
				return &Error{Key: key + "." + k, Msg: fmt.Sprintf("%s applies only to mlp and convnet; remove it", k)}
			}
		}
		return nil
	}
	if m.Width < 0 || m.Width > nets.MaxWidth {
		return &Error{Key: key + ".width", Msg: fmt.Sprintf("width %d out of range; use 1 to %d (or leave it out for the default)", m.Width, nets.MaxWidth)}
	}
	minDepth := 1
	if m.Name == "convnet" {
		minDepth = 2
	}
	if m.Depth < 0 || m.Depth > nets.MaxDepth || (m.Depth != 0 && m.Depth < minDepth) {
		return &Error{Key: key + ".depth", Msg: fmt.Sprintf("depth %d out of range; use %d to %d (or leave it out for the default)", m.Depth, minDepth, nets.MaxDepth)}
	}
	return nil
}

// Key is the name of m in results, statistics and trials: Label if set,
// else Name.
func (m Model) Key() string {
	if m.Label != "" {
		return m.Label
	}
	return m.Name
}

// IsLandscape reports whether m is an artificial landscape (unlimited
// N(0,1) data, closed-form test loss) rather than an image model.
func (m Model) IsLandscape() bool { return landscape.IsLandscape(m.Name) }

// Optimizer is one optimiser setting. After Load, Batch, Epochs and Steps
// are all set and consistent: Steps = Epochs·N/Batch.
type Optimizer struct {
	Name      string `toml:"name" json:"name"`
	Label     string `toml:"label" json:"label"`
	Batch     int    `toml:"batch" json:"batch"`
	Epochs    int    `toml:"epochs" json:"epochs"`
	Steps     int    `toml:"steps" json:"steps"`
	Reshuffle bool   `toml:"reshuffle" json:"reshuffle"`
	// Refine is SDE's number of substeps per SGD step (default 16).
	Refine int `toml:"refine" json:"refine,omitempty"`
	// EtaScale multiplies the sweep's learning rates for this optimiser
	// (0 means 1): E-epoch SGD at η/E against one epoch at η (Corollary 4)
	// stores both under the sweep's η.
	EtaScale float64 `toml:"eta_scale" json:"eta_scale,omitempty"`
	// Population makes sde draw its drift and noise from the data
	// distribution itself (landscapes only) instead of the training set.
	Population bool `toml:"population" json:"population,omitempty"`
}

// Scale is the factor applied to the sweep's η (EtaScale, default 1).
func (o Optimizer) Scale() float64 {
	if o.EtaScale == 0 {
		return 1
	}
	return o.EtaScale
}

// Spec is o as the optimiser package takes it.
func (o Optimizer) Spec() optim.Spec {
	return optim.Spec{Name: o.Name, Batch: o.Batch, Epochs: o.Epochs, Steps: o.Steps, Reshuffle: o.Reshuffle, Refine: o.Refine, Population: o.Population}
}

// Known values.
var (
	DTypes     = []string{"float32", "float64"}
	DataSets   = []string{"fashion-mnist", "cifar-10"}
	Optimisers = optim.Names
)

// DTypeValue is the value of the key dtype: one dtype, or an array of
// them. It decodes a TOML string or an array of strings.
type DTypeValue []string

// UnmarshalTOML decodes a string or an array of strings.
func (d *DTypeValue) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		*d = DTypeValue{v}
		return nil
	case []any:
		out := make(DTypeValue, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("incompatible types: TOML value has type %T; destination has type string", e)
			}
			out = append(out, s)
		}
		*d = out
		return nil
	}
	return fmt.Errorf("incompatible types: TOML value has type %T; destination has type string", v)
}

// DTypeList is the config's dtypes: DTypes for a multi-dtype config, else
// the one DType.
func (c *Config) DTypeList() []string {
	if len(c.DTypes) > 0 {
		return slices.Clone(c.DTypes)
	}
	return []string{c.DType}
}

// ForDType is c restricted to the dtype dt: a single-dtype copy, equal
// (hash included) to the config with dtype = dt and every other key the
// same, so the trials of a multi-dtype sweep are exactly those of its
// single-dtype configs: the same training sets, initialisations and
// orders. The copy shares c's slices; treat it as read-only.
func (c *Config) ForDType(dt string) *Config {
	d := *c
	d.DType, d.DTypes, d.DTypeValue = dt, nil, DTypeValue{dt}
	return &d
}

// Hash is the hex SHA-256 of the config's canonical JSON form (validated
// values, defaults filled in; comments, formatting and data.dir excluded).
func (c *Config) Hash() string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // plain structs always marshal
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// NumTrials is the number of trials the config describes.
func (c *Config) NumTrials() int {
	inits := 0
	for _, m := range c.Models {
		inits += len(m.Inits)
	}
	return inits * len(c.Optimizers) * len(c.Trials.Etas) * c.Trials.Count
}
