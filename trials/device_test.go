package trials

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets/data"
	"github.com/perturb/perturb/trials/config"
	"github.com/perturb/perturb/trials/results"
)

// deviceConfig is a small sweep of both image models with sgd and gd at a
// few learning rates (dtype to fill in).
const deviceConfig = `name = "dev"
seed = 11
dtype = "%s"
[data]
set = "fashion-mnist"
[trials]
count = 3
n = 4
etas = [0.02, 0.1, 0.4]
[[model]]
name = "logistic"
inits = [0, 1]
[[model]]
name = "convnet"
inits = [2]
[[optimizer]]
name = "sgd"
batch = 2
epochs = 2
reshuffle = true
[[optimizer]]
name = "gd"
steps = 3
`

// runOn runs every trial of c on pool, on dev (nil: the CPU path), and
// returns the rows by key.
func runOn(t *testing.T, c *config.Config, pool *data.Pool, dev kernels.Device, s Settings) map[results.Key]results.Row {
	t.Helper()
	r, err := NewRunner(c, pool)
	if err != nil {
		t.Fatal(err)
	}
	if dev != nil {
		if err := r.UseDevice(dev); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := r.Close(); err != nil {
				t.Error(err)
			}
		}()
	}
	var col collect
	if err := r.Run(context.Background(), &col, s); err != nil {
		t.Fatal(err)
	}
	if len(col.rows) != c.NumTrials() {
		t.Fatalf("%d rows for %d trials", len(col.rows), c.NumTrials())
	}
	return col.byKey()
}

// rowDiff compares two rows of one trial: identity, status and diverged
// step exactly, accuracies to 1e-12, and returns the largest relative
// difference of the losses (init test, test, train); NaN equals NaN.
func rowDiff(t *testing.T, what string, a, b results.Row) float64 {
	t.Helper()
	if a.Key() != b.Key() || a.Status != b.Status || a.DivergedStep != b.DivergedStep || a.ConfigHash != b.ConfigHash {
		t.Fatalf("%s: %v: status %q step %d vs %q step %d", what, a.Key(), a.Status, a.DivergedStep, b.Status, b.DivergedStep)
	}
	worst := 0.0
	for _, p := range [][3]any{
		{"init test loss", a.InitTestLoss, b.InitTestLoss}, {"test loss", a.TestLoss, b.TestLoss}, {"train loss", a.TrainLoss, b.TrainLoss},
		{"init test acc", a.InitTestAcc, b.InitTestAcc}, {"test acc", a.TestAcc, b.TestAcc},
	} {
		x, y := p[1].(float64), p[2].(float64)
		if math.IsNaN(x) || math.IsNaN(y) {
			if math.IsNaN(x) != math.IsNaN(y) {
				t.Fatalf("%s: %v: %s %v vs %v", what, a.Key(), p[0], x, y)
			}
			continue
		}
		if strings.HasSuffix(p[0].(string), "acc") {
			if math.Abs(x-y) > 1e-12 {
				t.Fatalf("%s: %v: %s %v vs %v", what, a.Key(), p[0], x, y)
			}
			continue
		}
		if x != y { // equal infinities are equal
			worst = math.Max(worst, math.Abs(x-y)/math.Abs(x))
		}
	}
	return worst
}

// TestDevicePathMatchesCPU runs a sweep (logistic and convnet, sgd and gd,
// three learning rates) through the device path on the CPU twin and
// through the default CPU path: row by row, the same status and diverged
// step and the same losses to 1e-9 relative in float64, to float32
// rounding (amplified by a few steps) in float32.
func TestDevicePathMatchesCPU(t *testing.T) {
	pool := smallPool(t, 30)
	for _, tc := range []struct {
		dtype string
		dev   kernels.Device
		tol   float64
	}{{"float64", kernels.CPU[float64]{}, 1e-9}, {"float32", kernels.CPU[float32]{}, 2e-5}} {
		t.Run(tc.dtype, func(t *testing.T) {
			c := mustConfig(t, fmt.Sprintf(deviceConfig, tc.dtype))
			cpu := runOn(t, c, pool, nil, Settings{Workers: 2})
			dev := runOn(t, c, pool, tc.dev, Settings{Workers: 2})
			worst, ok := 0.0, 0
			for key, a := range cpu {
				b, found := dev[key]
				if !found {
					t.Fatalf("%v: no device row", key)
				}
				d := rowDiff(t, tc.dtype, a, b)
				if !(d <= tc.tol) {
					t.Errorf("%v: losses differ by %.2g relative (tolerance %.0g):\nCPU    %+v\ndevice %+v", key, d, tc.tol, a, b)
				}
				worst = math.Max(worst, d)
				if a.Status == results.StatusOK {
					ok++
				}
			}
			if ok < len(cpu)/2 {
				t.Errorf("only %d of %d trials ok: the comparison is vacuous", ok, len(cpu))
			}
			t.Logf("%s: %d trials (%d ok), largest relative loss difference device vs CPU %.2g", tc.dtype, len(cpu), ok, worst)
		})
	}
}

// TestDevicePathIndependentOfK runs the same sweep through the device path
// on the CPU twin with K = 1, 2 and 64 trials per batch (and 1 or 3
// workers): every row is bitwise the same.
func TestDevicePathIndependentOfK(t *testing.T) {
	pool := smallPool(t, 30)
	for _, tc := range []struct {
		dtype string
		dev   kernels.Device
	}{{"float64", kernels.CPU[float64]{}}, {"float32", kernels.CPU[float32]{}}} {
		t.Run(tc.dtype, func(t *testing.T) {
			c := mustConfig(t, fmt.Sprintf(deviceConfig, tc.dtype))
			ref := runOn(t, c, pool, tc.dev, Settings{K: 1, Workers: 1})
			for _, s := range []Settings{{K: 2, Workers: 3}, {K: 64, Workers: 1}} {
				got := runOn(t, c, pool, tc.dev, s)
				for key, a := range ref {
					b := got[key]
					if d := rowDiff(t, fmt.Sprintf("K=%d", s.K), a, b); d != 0 || !sameRow(a, b) {
						t.Errorf("K=1 and K=%d (%d workers) differ for %v:\n%+v\n%+v", s.K, s.Workers, key, a, b)
					}
				}
			}
		})
	}
}

// TestDevicePathDivergence: a huge learning rate through the device path
// is recorded as diverged (NaN losses, the step), not a crash, and leaves
// the sane trials of the same batches ok and equal to the CPU path's.
func TestDevicePathDivergence(t *testing.T) {
	pool := smallPool(t, 20)
	for _, tc := range []struct {
		dtype string
		dev   kernels.Device
		tol   float64
	}{{"float32", kernels.CPU[float32]{}, 2e-5}, {"float64", kernels.CPU[float64]{}, 1e-9}} {
		t.Run(tc.dtype, func(t *testing.T) {
			huge := map[string]string{"float32": "1e39", "float64": "1.7e308"}[tc.dtype] // the first updates overflow
			text := strings.NewReplacer("etas = [0.02, 0.1, 0.4]", "etas = [0.1, "+huge+"]",
				"epochs = 2", "epochs = 3", "steps = 3", "steps = 4").Replace(fmt.Sprintf(deviceConfig, tc.dtype))
			c := mustConfig(t, text)
			dev := runOn(t, c, pool, tc.dev, Settings{Workers: 1})
			cpu := runOn(t, c, pool, nil, Settings{Workers: 1})
			diverged := 0
			for key, row := range dev {
				want := results.StatusOK
				if row.Eta > 1 {
					want = results.StatusDiverged
				}
				if row.Status != want {
					t.Errorf("%v: status %q, want %q (test loss %v)", key, row.Status, want, row.TestLoss)
				}
				if want == results.StatusDiverged {
					diverged++
					if !math.IsNaN(row.TestLoss) || row.DivergedStep < 0 {
						t.Errorf("%v: diverged with test loss %v at step %d, want NaN and a step", key, row.TestLoss, row.DivergedStep)
					}
				}
				if d := rowDiff(t, "device vs CPU", cpu[key], row); !(d <= tc.tol) {
					t.Errorf("%v: device and CPU differ by %.2g", key, d)
				}
			}
			if diverged != len(dev)/2 {
				t.Errorf("%d diverged trials, want %d", diverged, len(dev)/2)
			}
		})
	}
}

// TestDevicePathMemory counts the CPU twin's allocations over a run: a
// sweep of 5 trials per group (K = 1: five batches of each shape)
// allocates exactly what the same sweep with one trial per group does,
// and everything is freed at the end.
func TestDevicePathMemory(t *testing.T) {
	pool := smallPool(t, 20)
	text := fmt.Sprintf(deviceConfig, "float64")
	var allocs [2]kernels.Stats
	for i, count := range []string{"count = 1", "count = 5"} {
		c := mustConfig(t, strings.Replace(text, "count = 3", count, 1))
		dev := kernels.Count(kernels.CPU[float64]{})
		runOn(t, c, pool, dev, Settings{K: 1, Workers: 1})
		allocs[i] = dev.Stats()
		if allocs[i].Live != 0 || allocs[i].Allocs != allocs[i].Frees {
			t.Errorf("%s: %d elements still allocated after the run (%d allocations, %d frees)", count, allocs[i].Live, allocs[i].Allocs, allocs[i].Frees)
		}
	}
	t.Logf("1 trial per group: %d allocations (peak %d elements); 5 trials: %d (peak %d)", allocs[0].Allocs, allocs[0].Peak, allocs[1].Allocs, allocs[1].Peak)
	if allocs[1].Allocs != allocs[0].Allocs || allocs[1].Peak != allocs[0].Peak {
		t.Errorf("5 batches per shape allocate %d buffers (peak %d elements), 1 batch %d (peak %d)", allocs[1].Allocs, allocs[1].Peak, allocs[0].Allocs, allocs[0].Peak)
	}
}

// TestUseDeviceDType: a device of the other dtype is refused, naming both.
func TestUseDeviceDType(t *testing.T) {
	pool := smallPool(t, 10)
	c := mustConfig(t, fmt.Sprintf(deviceConfig, "float64"))
	r, err := NewRunner(c, pool)
	if err != nil {
		t.Fatal(err)
	}
	err = r.UseDevice(kernels.CPU[float32]{})
	if err == nil || !strings.Contains(err.Error(), "float32") || !strings.Contains(err.Error(), "float64") {
		t.Fatalf("float32 device for a float64 config: %v", err)
	}
}

// TestDevicePathSharpness runs a config with [sharpness] (a landscape and
// the logistic model) through the device path on the float64 CPU twin:
// the sharpness measures then use the device backend's graph HVPs, and the
// rows (losses and the sharpness record) match the CPU path's.
func TestDevicePathSharpness(t *testing.T) {
	pool := smallPool(t, 40)
	c := mustConfig(t, sharpConfig)
	cpu := runOn(t, c, pool, nil, Settings{Workers: 1})
	dev := runOn(t, c, pool, kernels.CPU[float64]{}, Settings{Workers: 1})
	measured := 0
	for key, a := range cpu {
		b := dev[key]
		if d := rowDiff(t, "sharpness", a, b); !(d <= 1e-9) {
			t.Errorf("%v: losses differ by %.2g", key, d)
		}
		if (a.Sharpness == nil) != (b.Sharpness == nil) {
			t.Fatalf("%v: sharpness recorded on one path only", key)
		}
		if a.Sharpness != nil && key.Model == "logistic" {
			measured++
			if d := jsonNumbersDiff(t, a.Sharpness, b.Sharpness); !(d <= 1e-6) {
				t.Errorf("%v: sharpness records differ by %.2g relative:\nCPU    %s\ndevice %s", key, d, a.Sharpness, b.Sharpness)
			}
		}
	}
	if measured == 0 {
		t.Fatal("no logistic sharpness record compared")
	}
}

// jsonNumbersDiff returns the largest relative difference between the
// numbers of two JSON documents of the same structure.
func jsonNumbersDiff(t *testing.T, a, b []byte) float64 {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	var walk func(x, y any) float64
	walk = func(x, y any) float64 {
		switch x := x.(type) {
		case float64:
			y, ok := y.(float64)
			if !ok {
				return math.Inf(1)
			}
			if x == y {
				return 0
			}
			return math.Abs(x-y) / math.Max(math.Abs(x), 1e-12)
		case []any:
			y, ok := y.([]any)
			if !ok || len(x) != len(y) {
				return math.Inf(1)
			}
			w := 0.0
			for i := range x {
				w = math.Max(w, walk(x[i], y[i]))
			}
			return w
		case map[string]any:
			y, ok := y.(map[string]any)
			if !ok || len(x) != len(y) {
				return math.Inf(1)
			}
			w := 0.0
			for k := range x {
				w = math.Max(w, walk(x[k], y[k]))
			}
			return w
		}
		if fmt.Sprint(x) != fmt.Sprint(y) {
			return math.Inf(1)
		}
		return 0
	}
	return walk(x, y)
}

// TestDevicePathOutOfMemory runs the sweep on a device with room for the
// peak memory of batches of 2 trials but not of 8: asked for K = 8, the
// runner's batches fail with kernels.ErrOutOfMemory, the backends lower
// their capacity and the retried halves fit, and every row is bitwise the
// row of the unlimited run.
func TestDevicePathOutOfMemory(t *testing.T) {
	pool := smallPool(t, 30)
	c := mustConfig(t, fmt.Sprintf(deviceConfig, "float64"))
	peak := func(k int) (int64, map[results.Key]results.Row) {
		dev := kernels.Count(kernels.CPU[float64]{})
		rows := runOn(t, c, pool, dev, Settings{K: k, Workers: 1})
		return dev.Stats().Peak, rows
	}
	p2, ref := peak(2)
	p8, _ := peak(8)
	if p8 < p2*5/4 {
		t.Fatalf("peak memory %d elements at K = 8, %d at K = 2: the limit cannot separate them", p8, p2)
	}
	dev := kernels.Limit(kernels.CPU[float64]{}, p2+(p8-p2)/8)
	var logs []string
	got := runOn(t, c, pool, dev, Settings{K: 8, Workers: 1, Log: func(m string) { logs = append(logs, m) }})
	if dev.Failures() == 0 {
		t.Fatalf("no allocation was refused under a limit of %d elements (peaks: %d at K = 2, %d at K = 8)", p2+(p8-p2)/8, p2, p8)
	}
	retried := false
	for _, m := range logs {
		retried = retried || strings.Contains(m, "device out of memory")
	}
	if !retried {
		t.Errorf("no retry log names the out-of-memory error; logs: %q", logs)
	}
	for key, a := range ref {
		b, ok := got[key]
		if !ok || !sameRow(a, b) {
			t.Errorf("%v: row after out-of-memory retries differs:\n%+v\n%+v", key, a, b)
		}
	}
	t.Logf("peaks %d (K = 2) and %d (K = 8) elements; %d allocations refused, %d retry logs", p2, p8, dev.Failures(), len(logs))
}
