package results

import (
	"sync"
	"time"
)

// Writer batches rows into transactions on a Store. Add may be called from
// several goroutines.
type Writer struct {
	s       *Store
	every   time.Duration
	maxRows int

	mu      sync.Mutex
	pending []Row
	last    time.Time // time of the last commit (or of NewWriter)
}

// NewWriter returns a Writer that commits the pending rows, in one
// transaction, when maxRows rows are pending or when every has elapsed since
// the last commit (checked on Add; there is no background timer, so call
// Flush at the end). maxRows < 1 is taken as 1; every <= 0 disables the
// time-based commit.
func NewWriter(s *Store, every time.Duration, maxRows int) *Writer {
	if maxRows < 1 {
		maxRows = 1
	}
	return &Writer{s: s, every: every, maxRows: maxRows, last: time.Now()}
}

// Add queues r and commits the pending rows if a commit is due. On error the
// pending rows (r included) stay queued and nothing of them was written.
func (w *Writer) Add(r Row) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, r)
	if len(w.pending) >= w.maxRows || (w.every > 0 && time.Since(w.last) >= w.every) {
		return w.flushLocked()
	}
	return nil
}

// Flush commits the pending rows, if any.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

// Pending returns the number of rows queued but not committed.
func (w *Writer) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

func (w *Writer) flushLocked() error {
	if len(w.pending) == 0 {
		w.last = time.Now()
		return nil
	}
	if err := w.s.Insert(w.pending); err != nil {
		return err
	}
	w.pending = w.pending[:0]
	w.last = time.Now()
	return nil
}
