package results

import (
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
)

// kind is a column's Parquet type, inferred from its cells.
type kind int

const (
	kindNone kind = iota // every cell nil
	kindBool
	kindInt
	kindFloat
	kindString
)

// columnKind is the type of column j: strings, booleans, integers, or
// floats when the cells hold numbers of both kinds (a JSON number may be
// whole in one row). nil cells do not count; mixed others are refused.
func (t *Table) columnKind(j int) (kind, error) {
	k := kindNone
	for _, r := range t.Rows {
		var c kind
		switch r[j].(type) {
		case nil:
			continue
		case bool:
			c = kindBool
		case int64, uint64:
			c = kindInt
		case float64:
			c = kindFloat
		case string:
			c = kindString
		default:
			return 0, fmt.Errorf("column %s: cell of type %T", t.Columns[j], r[j])
		}
		switch {
		case k == kindNone || k == c:
			k = c
		case (k == kindInt && c == kindFloat) || (k == kindFloat && c == kindInt):
			k = kindFloat
		default:
			return 0, fmt.Errorf("column %s mixes types", t.Columns[j])
		}
	}
	return k, nil
}

// WriteParquet writes t as a Parquet file (github.com/parquet-go/parquet-go):
// one optional column per table column, typed as its cells are (string,
// boolean, int64 or double; a column of nil cells is a string column of
// nulls); missing cells are null. Parquet orders a group's columns by
// name.
func (t *Table) WriteParquet(w io.Writer) error {
	group := parquet.Group{}
	kinds := make([]kind, len(t.Columns))
	for j, name := range t.Columns {
		k, err := t.columnKind(j)
		if err != nil {
			return fmt.Errorf("export parquet: %w", err)
		}
		kinds[j] = k
		var node parquet.Node
		switch k {
		case kindBool:
			node = parquet.Leaf(parquet.BooleanType)
		case kindInt:
			node = parquet.Int(64)
		case kindFloat:
			node = parquet.Leaf(parquet.DoubleType)
		default:
			node = parquet.String()
		}
		group[name] = parquet.Optional(node)
	}
	schema := parquet.NewSchema("trial", group)
	index := map[string]int{}
	for j, name := range t.Columns {
		index[name] = j
	}
	paths := schema.Columns()
	pw := parquet.NewWriter(w, schema)
	rows := make([]parquet.Row, 0, len(t.Rows))
	for _, r := range t.Rows {
		row := make(parquet.Row, len(paths))
		for ci, path := range paths {
			j := index[path[0]]
			v := r[j]
			if v == nil {
				row[ci] = parquet.Value{}.Level(0, 0, ci)
				continue
			}
			switch kinds[j] {
			case kindFloat:
				switch x := v.(type) {
				case int64:
					v = float64(x)
				case uint64:
					v = float64(x)
				}
			case kindInt:
				if x, ok := v.(uint64); ok {
					v = int64(x)
				}
			}
			row[ci] = parquet.ValueOf(v).Level(0, 1, ci)
		}
		rows = append(rows, row)
	}
	if _, err := pw.WriteRows(rows); err != nil {
		return fmt.Errorf("export parquet: %w", err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("export parquet: %w", err)
	}
	return nil
}
