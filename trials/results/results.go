// Package results stores one row per trial in one SQLite file per run.
//
// A store is a SQLite database (driver modernc.org/sqlite) in WAL journal
// mode with synchronous=FULL, so that a process killed mid-run (even by
// SIGKILL) leaves a valid database holding every committed transaction and
// none of the uncommitted one. Its schema (SchemaVersion 3) is:
//
//	CREATE TABLE meta (
//	    key   TEXT PRIMARY KEY,
//	    value TEXT NOT NULL
//	);
//	-- keys: schema_version ("3"), config_hash (hex sha256 of the canonical
//	-- config), config_name, config_text, created (RFC 3339), and in a
//	-- store holding one shard of a run, shard ("I/N")
//
//	CREATE TABLE trials (
//	    config_hash    TEXT    NOT NULL,
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
//	    PRIMARY KEY (model, optimizer, eta, init_id, trial, dtype)
//	);
//
// Non-finite measurements (NaN, ±Inf) are stored as NULL and read back as NaN.
//
// Version 1 (perturb before the batched engine) lacked diverged_step and
// weights, version 2 lacked sharpness; Open upgrades such a store in place
// (the new columns are NULL for its rows, so a resumed run continues it)
// and ReadRows reads it as is.
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
	"os"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SchemaVersion is the version of the schema this package writes, and the
// newest it can read.
const SchemaVersion = 3

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
    PRIMARY KEY (model, optimizer, eta, init_id, trial, dtype)
);
`

const trialColumns = `config_hash, model, optimizer, eta, init_id, trial, dtype,
    n, batch, epochs, steps, status,
    init_test_loss, init_test_acc, test_loss, test_acc, train_loss,
    diverged_step, weights, sharpness`

// v1Columns reads a version 1 store, which lacks the last three columns,
// v2Columns a version 2 store, which lacks the last.
var (
	v1Columns = strings.Replace(trialColumns, "diverged_step, weights, sharpness", "NULL, NULL, NULL", 1)
	v2Columns = strings.Replace(trialColumns, "weights, sharpness", "weights, NULL", 1)
)

// uri builds a SQLite URI filename for path with the given query.
func uri(path, query string) string {
	var b strings.Builder
	b.WriteString("file:")
	for _, c := range []byte(path) {
		switch c {
		case '%', '?', '#':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteString("?")
	b.WriteString(query)
	return b.String()
}

const (
	rwQuery = "mode=rw&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"
	roQuery = "mode=ro&_pragma=busy_timeout(10000)"
)

func openDB(path, query string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", uri(path, query))
	if err != nil {
		return nil, err
	}
	// One connection: the Store serialises its own work, and a single
	// connection avoids SQLITE_BUSY between connections of this process.
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Create makes a new store at path holding meta m. It is an error if the
// file exists. A zero m.Created is replaced by the current time.
func Create(path string, m Meta) (*Store, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("results: create %s: file already exists (choose a new path or remove it)", path)
		}
		return nil, Explain(path, fmt.Errorf("results: create %s: %w", path, err))
	}
	f.Close()
	fail := func(db *sql.DB, err error) (*Store, error) {
		if db != nil {
			db.Close()
		}
		os.Remove(path)
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
		return nil, Explain(path, fmt.Errorf("results: create %s: %w", path, err))
	}
	db, err := openDB(path, rwQuery)
	if err != nil {
		return fail(nil, err)
	}
	if m.Created.IsZero() {
		m.Created = time.Now()
	}
	tx, err := db.Begin()
	if err != nil {
		return fail(db, err)
	}
	if _, err := tx.Exec(schemaSQL); err != nil {
		tx.Rollback()
		return fail(db, err)
	}
	kv := [][2]string{
		{"schema_version", strconv.Itoa(SchemaVersion)},
		{"config_hash", m.ConfigHash},
		{"config_name", m.ConfigName},
		{"config_text", m.ConfigText},
		{"created", m.Created.UTC().Format(time.RFC3339)},
	}
	if m.Shard != "" {
		kv = append(kv, [2]string{"shard", m.Shard})
	}
	for _, e := range kv {
		if _, err := tx.Exec(`INSERT INTO meta(key, value) VALUES (?, ?)`, e[0], e[1]); err != nil {
			tx.Rollback()
			return fail(db, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(db, err)
	}
	return &Store{db: db, path: path}, nil
}

// Open opens the existing store at path and returns its meta. It refuses a
// file that is not a perturb results store and a store whose schema_version
// is newer than SchemaVersion.
func Open(path string) (*Store, Meta, error) {
	if err := checkExists(path); err != nil {
		return nil, Meta{}, err
	}
	db, err := openDB(path, rwQuery)
	if err != nil {
		return nil, Meta{}, openErr(path, err)
	}
	m, err := readMeta(db, path)
	if err != nil {
		db.Close()
		return nil, Meta{}, err
	}
	if m.SchemaVersion < SchemaVersion {
		if err := upgrade(db, m.SchemaVersion); err != nil {
			db.Close()
			return nil, Meta{}, Explain(path, fmt.Errorf("results: upgrade %s from schema_version %d: %w", path, m.SchemaVersion, err))
		}
		m.SchemaVersion = SchemaVersion
	}
	return &Store{db: db, path: path}, m, nil
}

// ReadRows opens the store at path read-only and returns its meta and rows
// (ordered as by Store.Rows).
func ReadRows(path string) (Meta, []Row, error) {
	db, m, err := openReadOnly(path)
	if err != nil {
		return Meta{}, nil, err
	}
	defer db.Close()
	cols := trialColumns
	switch m.SchemaVersion {
	case 1:
		cols = v1Columns
	case 2:
		cols = v2Columns
	}
	rows, err := queryRows(db, cols)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("results: read %s: %w", path, err)
	}
	return m, rows, nil
}

// ReadMeta opens the store at path read-only and returns its meta without
// reading its rows.
func ReadMeta(path string) (Meta, error) {
	db, m, err := openReadOnly(path)
	if err != nil {
		return Meta{}, err
	}
	db.Close()
	return m, nil
}

// openReadOnly opens the store at path read-only and reads its meta.
func openReadOnly(path string) (*sql.DB, Meta, error) {
	if err := checkExists(path); err != nil {
		return nil, Meta{}, err
	}
	db, m, err := openRead(path, roQuery)
	if err != nil && (errors.Is(err, ErrReadOnly) || errors.Is(err, ErrDiskFull)) {
		if fi, werr := os.Stat(path + "-wal"); os.IsNotExist(werr) || werr == nil && fi.Size() == 0 {
			// A store closed cleanly (no -wal file, or an empty one) on
			// read-only media or a full disk: SQLite cannot create the -shm
			// file a WAL store needs, and no writer can change the file, so
			// it may be read as immutable.
			db, m, err = openRead(path, roQuery+"&immutable=1")
		}
	}
	return db, m, err
}

// openRead opens the store at path with query and reads its meta.
func openRead(path, query string) (*sql.DB, Meta, error) {
	db, err := openDB(path, query)
	if err != nil {
		return nil, Meta{}, openErr(path, err)
	}
	m, err := readMeta(db, path)
	if err != nil {
		db.Close()
		return nil, Meta{}, err
	}
	return db, m, nil
}

func checkExists(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("results: open %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("results: open %s: not a regular file", path)
	}
	return nil
}

func openErr(path string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_NOTADB {
		return Explain(path, fmt.Errorf("results: %s is not a perturb results store (not a SQLite database): %w", path, err))
	}
	return Explain(path, fmt.Errorf("results: open %s: %w", path, err))
}

func readMeta(db *sql.DB, path string) (Meta, error) {
	var n int
	err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type='table' AND name IN ('meta','trials')`).Scan(&n)
	if err != nil {
		return Meta{}, openErr(path, err)
	}
	if n != 2 {
		return Meta{}, fmt.Errorf("results: %s is not a perturb results store (SQLite database without the meta and trials tables)", path)
	}
	kv := map[string]string{}
	rs, err := db.Query(`SELECT key, value FROM meta`)
	if err != nil {
		return Meta{}, fmt.Errorf("results: read meta of %s: %w", path, err)
	}
	defer rs.Close()
	for rs.Next() {
		var k, v string
		if err := rs.Scan(&k, &v); err != nil {
			return Meta{}, fmt.Errorf("results: read meta of %s: %w", path, err)
		}
		kv[k] = v
	}
	if err := rs.Err(); err != nil {
		return Meta{}, fmt.Errorf("results: read meta of %s: %w", path, err)
	}
	sv, ok := kv["schema_version"]
	if !ok {
		return Meta{}, fmt.Errorf("results: %s is not a perturb results store (meta has no schema_version)", path)
	}
	v, err := strconv.Atoi(sv)
	if err != nil || v < 1 {
		return Meta{}, fmt.Errorf("results: %s is not a perturb results store (invalid schema_version %q)", path, sv)
	}
	if v > SchemaVersion {
		return Meta{}, fmt.Errorf("results: %s has schema_version %d, but this build of perturb supports schema_version %d at most; "+
			"read it with a newer perturb (update and rebuild)", path, v, SchemaVersion)
	}
	m := Meta{ConfigHash: kv["config_hash"], ConfigText: kv["config_text"], ConfigName: kv["config_name"], Shard: kv["shard"], SchemaVersion: v}
	if c := kv["created"]; c != "" {
		t, err := time.Parse(time.RFC3339, c)
		if err != nil {
			return Meta{}, fmt.Errorf("results: %s: invalid created time %q: %w", path, c, err)
		}
		m.Created = t
	}
	return m, nil
}

// Path returns the file the store was opened from.
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
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return Explain(s.path, fmt.Errorf("results: insert into %s: %w", s.path, err))
	}
	defer st.Close()
	for _, r := range rows {
		_, err := st.ExecContext(ctx, r.ConfigHash, r.Model, r.Optimizer, r.Eta, r.Init, r.Trial, r.DType,
			r.N, r.Batch, r.Epochs, r.Steps, r.Status,
			nullable(r.InitTestLoss), nullable(r.InitTestAcc), nullable(r.TestLoss), nullable(r.TestAcc), nullable(r.TrainLoss),
			stepValue(r.DivergedStep), weightsValue(r.Weights), sharpnessValue(r.Sharpness))
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
	qs = append(qs, `ALTER TABLE trials ADD COLUMN sharpness TEXT`,
		`UPDATE meta SET value = '`+strconv.Itoa(SchemaVersion)+`' WHERE key = 'schema_version'`)
	for _, q := range qs {
		if _, err := tx.Exec(q); err != nil {
			return err
		}
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
		var weights, sharpness sql.NullString
		if err := rs.Scan(&r.ConfigHash, &r.Model, &r.Optimizer, &r.Eta, &r.Init, &r.Trial, &r.DType,
			&r.N, &r.Batch, &r.Epochs, &r.Steps, &r.Status, &itl, &ita, &tl, &ta, &trl, &step, &weights, &sharpness); err != nil {
			return nil, err
		}
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
