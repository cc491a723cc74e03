package results

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var (
	v4Columns = strings.Replace(trialColumns, "test_estimator, test_se, pool_test_loss, seconds, test_seconds, pool_seconds", "NULL, NULL, NULL, NULL, NULL, NULL", 1)
	v1Columns = strings.Replace(v4Columns, "diverged_step, weights, sharpness", "NULL, NULL, NULL", 1)
	v2Columns = strings.Replace(v4Columns, "weights, sharpness", "weights, NULL", 1)
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
	if _, err := tx.Exec(schemaSQL + historySQL); err != nil {
		tx.Rollback()
		return fail(db, err)
	}
	if err := addChange(tx, Change{Time: m.Created, ConfigHash: m.ConfigHash, ConfigName: m.ConfigName, ConfigText: m.ConfigText}); err != nil {
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
	case 3, 4:
		cols = v4Columns
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
