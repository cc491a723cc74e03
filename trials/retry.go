package trials

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/perturb/perturb/trials/results"
)

// ErrOutOfMemory marks a batch that would not fit in the memory available.
var ErrOutOfMemory = errors.New("out of memory")

// batchFault, when set (by tests), is called before each batch runs; a
// non-nil error makes the batch fail as if its computation had.
var batchFault func(b batch) error

// availableMemory returns the memory the system can still give this
// process (Linux MemAvailable), or 0 when unknown. A variable for tests.
var availableMemory = func() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// batchBytes estimates the working memory of a batch's training graph: for
// every (trial, example) of a step, a few copies (forward values, tangents,
// gradients) of the input and of the layers' activations, bounded above by
// 64 numbers per input pixel (the convnet's im2col buffers are the
// largest). Landscapes need a few vectors per trial and are not checked.
func (w *worker) batchBytes(b batch) int64 {
	m := w.r.models[b.model]
	if m.arch == nil {
		return 0
	}
	size := int64(8)
	if w.r.cfg.DType == "float32" {
		size = 4
	}
	return int64(len(b.trials)) * int64(b.opt.Batch) * 64 * int64(m.arch.Dim()) * size
}

// runSplitting runs batch b; if it fails (an error, a panic, or not enough
// memory) it retries b as two halves, recursively, down to single trials.
// It returns the rows of the trials that finished and the first error of
// a trial that failed on its own.
func (w *worker) runSplitting(b batch, log func(string)) ([]results.Row, error) {
	rows, err := w.safeRun(b)
	if err == nil || len(b.trials) == 1 {
		return rows, err
	}
	h := len(b.trials) / 2
	log(fmt.Sprintf("batch of %d trials (%s init %d %s) failed: %v; retrying as batches of %d and %d trials",
		len(b.trials), b.model, b.init, b.opt.Label, err, h, len(b.trials)-h))
	first, err := w.runSplitting(batch{model: b.model, init: b.init, opt: b.opt, trials: b.trials[:h]}, log)
	if err != nil {
		return first, err
	}
	second, err := w.runSplitting(batch{model: b.model, init: b.init, opt: b.opt, trials: b.trials[h:]}, log)
	return append(first, second...), err
}

// safeRun runs b, turning a panic into an error and refusing a batch that
// would not fit in the available memory. After a failure the worker's
// compiled graphs for the model are dropped, in case they were left
// half-updated.
func (w *worker) safeRun(b batch) (rows []results.Row, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s init %d %s: panic: %v\n%s", b.model, b.init, b.opt.Label, p, debug.Stack())
		}
		if err != nil {
			delete(w.backends, b.model)
			w.dropDevice(b.model)
		}
	}()
	if batchFault != nil {
		if err := batchFault(b); err != nil {
			return nil, err
		}
	}
	if need, avail := w.batchBytes(b), availableMemory(); avail > 0 && need > avail {
		return nil, fmt.Errorf("%s init %d %s: %w: a batch of %d trials needs about %.2f GiB, %.2f GiB are available",
			b.model, b.init, b.opt.Label, ErrOutOfMemory, len(b.trials), float64(need)/(1<<30), float64(avail)/(1<<30))
	}
	return w.run(b)
}
