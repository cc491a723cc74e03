// Package results stores one row per trial in one SQLite file per run.
//
// A store is a SQLite database (driver modernc.org/sqlite) in WAL journal
// mode with synchronous=FULL, so that a process killed mid-run (even by
// SIGKILL) leaves a valid database holding every committed transaction and
// none of the uncommitted one. Its schema (SchemaVersion 4) is:
//
//	CREATE TABLE meta (
//	    key   TEXT PRIMARY KEY,
//	    value TEXT NOT NULL
//	);
//	-- keys: schema_version ("5"), config_hash (hex sha256 of the canonical
//	-- config), config_name, config_text (the newest config of the
//	-- history), created (RFC 3339), and in a store holding one shard of a
//	-- run, shard ("I/N")
//
//	CREATE TABLE config_history (
//	    seq         INTEGER PRIMARY KEY,  -- 1, 2, ...
//	    time        TEXT    NOT NULL,     -- RFC 3339, UTC
//	    config_hash TEXT    NOT NULL,
//	    config_name TEXT    NOT NULL,
//	    config_text TEXT    NOT NULL,
//	    added       TEXT    NOT NULL      -- what it added, in words ("" for the first)
//	);
//	-- one row per config the store was run with: the first, then each
//	-- config whose plan contains the previous one (a grown sweep, see
//	-- config.Grows and Store.Grow)
//
//	CREATE TABLE trials (
//	    config_hash    TEXT    NOT NULL,  -- the config it ran under: one of the history's
//	    model          TEXT    NOT NULL,  -- "logistic", "convnet", ...
//	    optimizer      TEXT    NOT NULL,  -- optimiser label, e.g. "sgd", "gd"
//	    eta            REAL    NOT NULL,
//	    init_id        INTEGER NOT NULL,  -- initialisation id
//	    trial          INTEGER NOT NULL,  -- trial index, 0-based
//	    dtype          TEXT    NOT NULL,  -- "float32" / "float64"
//	    n              INTEGER NOT NULL,
//	    batch          INTEGER NOT NULL,
//	    epochs         INTEGER NOT NULL,
//	    steps          INTEGER NOT NULL,
//	    status         TEXT    NOT NULL,  -- "ok" or "diverged"
//	    init_test_loss REAL,              -- NULL stands for a non-finite value
//	    init_test_acc  REAL,
//	    test_loss      REAL,
//	    test_acc       REAL,
//	    train_loss     REAL,
//	    diverged_step  INTEGER,           -- 0-based step a diverged trial blew up at
//	    weights        TEXT,              -- landscapes: final weights, JSON array
//	    sharpness      TEXT,              -- sharpness measures, JSON (package trials/study/sharp), NULL if not measured
//	    test_estimator TEXT,              -- "pool" (exact) or "subset:M" / "subset:M:none" (config key trials.test); NULL is "pool"
//	    test_se        REAL,              -- subset estimates: the standard error of test_loss over the subset draw
//	    pool_test_loss REAL,              -- subset estimates: the exact pool loss, on the checked trials only
//	    seconds        REAL,              -- the trial's share of its batch's worker-seconds (training and measures)
//	    test_seconds   REAL,              -- the part of seconds spent on the test loss
//	    pool_seconds   REAL,              -- checked trials: worker-seconds of the exact pool loss per trial
//	    PRIMARY KEY (model, optimizer, eta, init_id, trial, dtype)
//	);
//
// Non-finite measurements (NaN, ±Inf) are stored as NULL and read back as NaN.
//
// Version 1 (perturb before the batched engine) lacked diverged_step and
// weights, version 2 lacked sharpness, version 3 the config_history
// table, version 4 the columns from test_estimator on; Open upgrades such a store in place (the new columns are NULL for
// its rows, so a resumed run continues it; the history holds the store's
// one config, dated when the store was created) and ReadRows reads it as
// is.
//
// A row's config_hash is the hash of the config it was run under: a grown
// store keeps its older rows as they were, so its rows carry the hashes of
// several entries of the history, and the meta's config_hash is the newest.
//
// A store whose schema_version is newer than SchemaVersion is refused by Open
// and ReadRows; a file that is not a SQLite database, or a SQLite database
// without the meta table, is refused as "not a perturb results store".
package results

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SchemaVersion is the version of the schema this package writes, and the
// newest it can read.
const SchemaVersion = 5

// Status values of a Row.
const (
	StatusOK       = "ok"
	StatusDiverged = "diverged"
)

// Row is one trial's identity and measurements.
type Row struct {
	// identity
	ConfigHash string // hex sha256 of the canonical config
	Model      string // "logistic", "convnet", ...
	Optimizer  string // optimiser label, e.g. "sgd", "gd"
	Eta        float64
	Init       int    // initialisation id
	Trial      int    // trial index, 0-based
	DType      string // "float32" / "float64"
	// settings, for the record
	N, Batch, Epochs, Steps int
	// outcome
	Status       string  // "ok" or "diverged"
	InitTestLoss float64 // test loss at initialisation
	InitTestAcc  float64
	TestLoss     float64 // may be NaN when Status=="diverged" (stored as NULL)
	TestAcc      float64
	TrainLoss    float64
	// DivergedStep is the 0-based step at which a diverged trial's loss or
	// weights stopped being finite; -1 when it did not diverge or is unknown.
	DivergedStep int
	// Weights are a landscape trial's final weights (nil for image models).
	Weights []float64
	// Sharpness is the trial's sharpness record as JSON (see package
	// trials/study/sharp), nil when it was not measured.
	Sharpness []byte
	// TestEstimator names how TestLoss and TestAcc were measured: "pool"
	// (exact; "" in rows of older stores means the same) or "subset:M"
	// ("subset:M:none" without the control variate), see config.TestLoss.
	TestEstimator string
	// TestSE is a subset estimate's standard error over the draw of the
	// subset (0 for the exact pool loss).
	TestSE float64
	// PoolTestLoss is the exact pool loss of a subset-estimated trial that
	// was checked against it (NaN otherwise).
	PoolTestLoss float64
	// Seconds is the trial's share of its batch's worker-seconds, and
	// TestSeconds the part spent on the test loss; PoolSeconds is the
	// worker-seconds of a checked trial's exact pool loss. 0 when not
	// measured (rows of older stores).
	Seconds, TestSeconds, PoolSeconds float64
}

// Results is r without its cost measurements (Seconds, TestSeconds,
// PoolSeconds), which depend on the machine and its load: two runs of one
// trial, in any batch, worker or shard, have equal Results.
func (r Row) Results() Row {
	r.Seconds, r.TestSeconds, r.PoolSeconds = 0, 0, 0
	return r
}

// Estimator is r.TestEstimator with "" read as "pool".
func (r Row) Estimator() string {
	if r.TestEstimator == "" {
		return "pool"
	}
	return r.TestEstimator
}

// Key is a row's identity without the measurements (comparable, usable as
// map key).
type Key struct {
	Model, Optimizer string
	Eta              float64
	Init, Trial      int
	DType            string
}

// Key returns the row's identity.
func (r Row) Key() Key {
	return Key{Model: r.Model, Optimizer: r.Optimizer, Eta: r.Eta, Init: r.Init, Trial: r.Trial, DType: r.DType}
}

// String formats the key for messages.
func (k Key) String() string {
	return fmt.Sprintf("model=%s optimizer=%s eta=%s init=%d trial=%d dtype=%s",
		k.Model, k.Optimizer, strconv.FormatFloat(k.Eta, 'g', -1, 64), k.Init, k.Trial, k.DType)
}

// Meta describes the run a store belongs to.
type Meta struct {
	ConfigHash string
	ConfigText string
	ConfigName string
	Created    time.Time
	// Shard is "I/N" for a store holding shard I of N of the config's
	// trials (see perturb run --shard), "" for a whole run or a merge.
	Shard string
	// SchemaVersion is the store's schema version as found on disk.
	SchemaVersion int
}

// Store is an open results store. Its methods may be called from several
// goroutines.
type Store struct {
	db   *sql.DB
	path string
}

const schemaSQL = `
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE trials (
    config_hash    TEXT    NOT NULL,
    model          TEXT    NOT NULL,
    optimizer      TEXT    NOT NULL,
    eta            REAL    NOT NULL,
    init_id        INTEGER NOT NULL,
    trial          INTEGER NOT NULL,
    dtype          TEXT    NOT NULL,
    n              INTEGER NOT NULL,
    batch          INTEGER NOT NULL,
    epochs         INTEGER NOT NULL,
    steps          INTEGER NOT NULL,
    status         TEXT    NOT NULL,
    init_test_loss REAL,
    init_test_acc  REAL,
    test_loss      REAL,
    test_acc       REAL,
    train_loss     REAL,
    diverged_step  INTEGER,
    weights        TEXT,
    sharpness      TEXT,
    test_estimator TEXT,
    test_se        REAL,
    pool_test_loss REAL,
    seconds        REAL,
    test_seconds   REAL,
    pool_seconds   REAL,
    PRIMARY KEY (model, optimizer, eta, init_id, trial, dtype)
);
`

const trialColumns = `config_hash, model, optimizer, eta, init_id, trial, dtype,
    n, batch, epochs, steps, status,
    init_test_loss, init_test_acc, test_loss, test_acc, train_loss,
    diverged_step, weights, sharpness,
    test_estimator, test_se, pool_test_loss, seconds, test_seconds, pool_seconds`

// v1Columns reads a version 1 store, which lacks the last three columns,
// v2Columns a version 2 store, which lacks the last.
func (s *Store) Path() string { return s.path }

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Keys returns the keys of all stored rows.
func (s *Store) Keys() (map[Key]bool, error) {
	rs, err := s.db.Query(`SELECT model, optimizer, eta, init_id, trial, dtype FROM trials`)
	if err != nil {
		return nil, Explain(s.path, fmt.Errorf("results: keys of %s: %w", s.path, err))
	}
	defer rs.Close()
	keys := map[Key]bool{}
	for rs.Next() {
		var k Key
		if err := rs.Scan(&k.Model, &k.Optimizer, &k.Eta, &k.Init, &k.Trial, &k.DType); err != nil {
			return nil, Explain(s.path, fmt.Errorf("results: keys of %s: %w", s.path, err))
		}
		keys[k] = true
	}
	if err := rs.Err(); err != nil {
		return nil, Explain(s.path, fmt.Errorf("results: keys of %s: %w", s.path, err))
	}
	return keys, nil
}

// stepValue stores a negative step as NULL.
func stepValue(step int) any {
	if step < 0 {
		return nil
	}
	return step
}

// weightsValue stores weights as a JSON array (non-finite values as null),
// nil as NULL.
func weightsValue(w []float64) any {
	if w == nil {
		return nil
	}
	vals := make([]any, len(w))
	for i, v := range w {
		vals[i] = nullable(v)
	}
	b, err := json.Marshal(vals)
	if err != nil {
		panic(err) // finite floats and nil always marshal
	}
	return string(b)
}

// sharpnessValue stores a sharpness record (JSON) as text, nil as NULL.
func sharpnessValue(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// estimatorValue stores "" as NULL.
func estimatorValue(e string) any {
	if e == "" {
		return nil
	}
	return e
}

// nullable maps non-finite values to NULL.
func nullable(x float64) any {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return x
}

func validate(r Row) error {
	switch {
	case r.Model == "" || r.Optimizer == "" || r.DType == "":
		return fmt.Errorf("results: row %v: model, optimizer and dtype must be set", r.Key())
	case math.IsNaN(r.Eta) || math.IsInf(r.Eta, 0):
		return fmt.Errorf("results: row %v: eta must be finite", r.Key())
	case r.Status != StatusOK && r.Status != StatusDiverged:
		return fmt.Errorf("results: row %v: status %q is neither %q nor %q", r.Key(), r.Status, StatusOK, StatusDiverged)
	}
	return nil
}

// Insert writes rows in one transaction: all of them or, on error, none. A
// row whose key is already stored (or repeated within rows) is an error
// naming the key.
func (s *Store) Insert(rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	for _, r := range rows {
		if err := validate(r); err != nil {
			return err
		}
	}
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Explain(s.path, fmt.Errorf("results: insert into %s: %w", s.path, err))
	}
	defer tx.Rollback() // no-op after Commit
	st, err := tx.PrepareContext(ctx, `INSERT INTO trials (`+trialColumns+`)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return Explain(s.path, fmt.Errorf("results: insert into %s: %w", s.path, err))
	}
	defer st.Close()
	for _, r := range rows {
		_, err := st.ExecContext(ctx, r.ConfigHash, r.Model, r.Optimizer, r.Eta, r.Init, r.Trial, r.DType,
			r.N, r.Batch, r.Epochs, r.Steps, r.Status,
			nullable(r.InitTestLoss), nullable(r.InitTestAcc), nullable(r.TestLoss), nullable(r.TestAcc), nullable(r.TrainLoss),
			stepValue(r.DivergedStep), weightsValue(r.Weights), sharpnessValue(r.Sharpness),
			estimatorValue(r.TestEstimator), nullable(r.TestSE), nullable(r.PoolTestLoss), nullable(r.Seconds), nullable(r.TestSeconds), nullable(r.PoolSeconds))
		if err != nil {
			var se *sqlite.Error
			if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
				return fmt.Errorf("results: insert into %s: duplicate trial %v (nothing from this batch was written)", s.path, r.Key())
			}
			return Explain(s.path, fmt.Errorf("results: insert %v into %s: %w", r.Key(), s.path, err))
		}
	}
	if err := tx.Commit(); err != nil {
		return Explain(s.path, fmt.Errorf("results: commit to %s: %w", s.path, err))
	}
	return nil
}

// Rows reads all rows ordered by (model, optimizer, eta, init, trial, dtype).
func (s *Store) Rows() ([]Row, error) {
	rows, err := queryRows(s.db, trialColumns)
	if err != nil {
		return nil, fmt.Errorf("results: read %s: %w", s.path, err)
	}
	return rows, nil
}

// upgrade adds the columns of the later versions to a store of version
// from, in one transaction.
func upgrade(db *sql.DB, from int) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var qs []string
	if from < 2 {
		qs = append(qs, `ALTER TABLE trials ADD COLUMN diverged_step INTEGER`, `ALTER TABLE trials ADD COLUMN weights TEXT`)
	}
	if from < 3 {
		qs = append(qs, `ALTER TABLE trials ADD COLUMN sharpness TEXT`)
	}
	if from < 5 {
		for _, c := range []string{"test_estimator TEXT", "test_se REAL", "pool_test_loss REAL", "seconds REAL", "test_seconds REAL", "pool_seconds REAL"} {
			qs = append(qs, `ALTER TABLE trials ADD COLUMN `+c)
		}
	}
	qs = append(qs, `UPDATE meta SET value = '`+strconv.Itoa(SchemaVersion)+`' WHERE key = 'schema_version'`)
	for _, q := range qs {
		if _, err := tx.Exec(q); err != nil {
			return err
		}
	}
	if err := upgradeHistory(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func queryRows(db *sql.DB, cols string) ([]Row, error) {
	rs, err := db.Query(`SELECT ` + cols + ` FROM trials
        ORDER BY model, optimizer, eta, init_id, trial, dtype`)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []Row
	for rs.Next() {
		var r Row
		var itl, ita, tl, ta, trl sql.NullFloat64
		var step sql.NullInt64
		var weights, sharpness, est sql.NullString
		var se, ptl, sec, tsec, psec sql.NullFloat64
		if err := rs.Scan(&r.ConfigHash, &r.Model, &r.Optimizer, &r.Eta, &r.Init, &r.Trial, &r.DType,
			&r.N, &r.Batch, &r.Epochs, &r.Steps, &r.Status, &itl, &ita, &tl, &ta, &trl, &step, &weights, &sharpness,
			&est, &se, &ptl, &sec, &tsec, &psec); err != nil {
			return nil, err
		}
		r.TestEstimator = est.String // NULL: ""
		r.PoolTestLoss = orNaN(ptl)
		r.TestSE, r.Seconds, r.TestSeconds, r.PoolSeconds = se.Float64, sec.Float64, tsec.Float64, psec.Float64 // NULL: 0
		if sharpness.Valid {
			r.Sharpness = []byte(sharpness.String)
		}
		r.InitTestLoss, r.InitTestAcc, r.TestLoss, r.TestAcc, r.TrainLoss = orNaN(itl), orNaN(ita), orNaN(tl), orNaN(ta), orNaN(trl)
		r.DivergedStep = -1
		if step.Valid {
			r.DivergedStep = int(step.Int64)
		}
		if weights.Valid {
			var w []*float64 // null stands for a non-finite weight
			if err := json.Unmarshal([]byte(weights.String), &w); err != nil {
				return nil, fmt.Errorf("row %v: weights %q: %w", r.Key(), weights.String, err)
			}
			r.Weights = make([]float64, len(w))
			for i, v := range w {
				r.Weights[i] = math.NaN()
				if v != nil {
					r.Weights[i] = *v
				}
			}
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

func orNaN(x sql.NullFloat64) float64 {
	if !x.Valid {
		return math.NaN()
	}
	return x.Float64
}
