package results

import (
	"database/sql"
	"fmt"
	"time"
)

// historySQL creates the config_history table (schema version 4): one row
// per config the store has been run with, oldest first. Row 1 is the
// config the store was created with; each later row is a config whose plan
// contains the previous one's (config.Grows), run into the same store.
// The newest row's hash, name and text are the meta's config_hash,
// config_name and config_text.
const historySQL = `
CREATE TABLE IF NOT EXISTS config_history (
    seq         INTEGER PRIMARY KEY,  -- 1, 2, ... in the order of the changes
    time        TEXT    NOT NULL,     -- RFC 3339, UTC
    config_hash TEXT    NOT NULL,
    config_name TEXT    NOT NULL,
    config_text TEXT    NOT NULL,
    added       TEXT    NOT NULL      -- what the config added, in words ("" for the first)
);
`

// Change is one entry of a store's config history.
type Change struct {
	Seq        int
	Time       time.Time
	ConfigHash string
	ConfigName string
	ConfigText string
	// Added says what the config added to the previous one ("" for the
	// config the store was created with).
	Added string
}

// execer is a *sql.DB or *sql.Tx.
type execer interface {
	Exec(query string, args ...any) (sql.Result, error)
}

// addChange appends c to the history (c.Seq is ignored: the next one is
// used).
func addChange(db execer, c Change) error {
	_, err := db.Exec(`INSERT INTO config_history (seq, time, config_hash, config_name, config_text, added)
        VALUES ((SELECT coalesce(max(seq), 0) + 1 FROM config_history), ?, ?, ?, ?, ?)`,
		c.Time.UTC().Format(time.RFC3339), c.ConfigHash, c.ConfigName, c.ConfigText, c.Added)
	return err
}

// upgradeHistory creates the config history of a store older than
// version 4, holding its one config, dated when the store was created.
func upgradeHistory(tx *sql.Tx) error {
	if _, err := tx.Exec(historySQL); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM config_history`).Scan(&n); err != nil || n > 0 {
		return err
	}
	_, err := tx.Exec(`INSERT INTO config_history (seq, time, config_hash, config_name, config_text, added)
        SELECT 1, coalesce((SELECT value FROM meta WHERE key = 'created'), ''),
               (SELECT value FROM meta WHERE key = 'config_hash'),
               coalesce((SELECT value FROM meta WHERE key = 'config_name'), ''),
               (SELECT value FROM meta WHERE key = 'config_text'), ''`)
	return err
}

// Grow makes m's config the store's config, recording it in the config
// history with what it added: the meta's config_hash, config_name and
// config_text become m's, in one transaction with the history row. The
// stored rows keep the config_hash they were run with (one of the
// history's hashes). The caller checks that m's config contains the
// stored one (config.Grows).
func (s *Store) Grow(m Meta, added string) error {
	tx, err := s.db.Begin()
	if err != nil {
		return Explain(s.path, fmt.Errorf("results: record config of %s: %w", s.path, err))
	}
	defer tx.Rollback()
	for _, kv := range [][2]string{{"config_hash", m.ConfigHash}, {"config_name", m.ConfigName}, {"config_text", m.ConfigText}} {
		if _, err := tx.Exec(`INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)`, kv[0], kv[1]); err != nil {
			return Explain(s.path, fmt.Errorf("results: record config of %s: %w", s.path, err))
		}
	}
	if err := addChange(tx, Change{Time: time.Now(), ConfigHash: m.ConfigHash, ConfigName: m.ConfigName, ConfigText: m.ConfigText, Added: added}); err != nil {
		return Explain(s.path, fmt.Errorf("results: record config of %s: %w", s.path, err))
	}
	if err := tx.Commit(); err != nil {
		return Explain(s.path, fmt.Errorf("results: record config of %s: %w", s.path, err))
	}
	return nil
}

// History returns the store's config history, oldest first.
func (s *Store) History() ([]Change, error) {
	h, err := queryHistory(s.db)
	if err != nil {
		return nil, fmt.Errorf("results: config history of %s: %w", s.path, err)
	}
	return h, nil
}

// ReadHistory opens the store at path read-only and returns its config
// history, oldest first. A store older than version 4 (which Open has not
// upgraded) has one entry: its config, dated when the store was created.
func ReadHistory(path string) ([]Change, error) {
	db, m, err := openReadOnly(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if m.SchemaVersion < 4 {
		return []Change{{Seq: 1, Time: m.Created, ConfigHash: m.ConfigHash, ConfigName: m.ConfigName, ConfigText: m.ConfigText}}, nil
	}
	h, err := queryHistory(db)
	if err != nil {
		return nil, fmt.Errorf("results: config history of %s: %w", path, err)
	}
	return h, nil
}

func queryHistory(db *sql.DB) ([]Change, error) {
	rs, err := db.Query(`SELECT seq, time, config_hash, config_name, config_text, added FROM config_history ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []Change
	for rs.Next() {
		var c Change
		var t string
		if err := rs.Scan(&c.Seq, &t, &c.ConfigHash, &c.ConfigName, &c.ConfigText, &c.Added); err != nil {
			return nil, err
		}
		if t != "" {
			if c.Time, err = time.Parse(time.RFC3339, t); err != nil {
				return nil, fmt.Errorf("entry %d: time %q: %w", c.Seq, t, err)
			}
		}
		out = append(out, c)
	}
	return out, rs.Err()
}

// Hashes is the set of config hashes in history h: the hashes a store's
// rows may carry.
func Hashes(h []Change) map[string]bool {
	out := make(map[string]bool, len(h))
	for _, c := range h {
		out[c.ConfigHash] = true
	}
	return out
}

// ReplaceHistory replaces the store's config history with h (renumbered
// from 1), e.g. a merge's union of its inputs' histories; the meta is not
// changed.
func (s *Store) ReplaceHistory(h []Change) error {
	tx, err := s.db.Begin()
	if err != nil {
		return Explain(s.path, fmt.Errorf("results: write config history of %s: %w", s.path, err))
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM config_history`); err != nil {
		return Explain(s.path, fmt.Errorf("results: write config history of %s: %w", s.path, err))
	}
	for _, c := range h {
		if err := addChange(tx, c); err != nil {
			return Explain(s.path, fmt.Errorf("results: write config history of %s: %w", s.path, err))
		}
	}
	if err := tx.Commit(); err != nil {
		return Explain(s.path, fmt.Errorf("results: write config history of %s: %w", s.path, err))
	}
	return nil
}
