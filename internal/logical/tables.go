package logical

import (
	"context"
	"fmt"
	"sort"
)

// Table is a user table as logical replication sees it.
type Table struct {
	Schema, Name string
	Kind         byte // pg_class.relkind: 'r' a table, 'p' a partitioned table
	Partition    bool // a partition of a partitioned table
	Unlogged     bool
	// Identity is pg_class.relreplident: 'd' default (the primary key),
	// 'i' an index, 'f' full, 'n' nothing.
	Identity   byte
	PrimaryKey bool
	// Bytes is the table's size on disk (its partitions' for a
	// partitioned one), for the copy's progress.
	Bytes int64
}

// String is the table's qualified name.
func (t Table) String() string { return QualifiedName(t.Schema, t.Name) }

// ReadTables lists the user tables (ordinary and partitioned) of the
// database q is connected to: every schema but the catalogs and Schema,
// members of extensions left out. Sorted by name.
func ReadTables(ctx context.Context, q Querier) ([]Table, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname, c.relkind::text, c.relispartition,
  c.relpersistence = 'u', c.relreplident::text,
  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
  CASE WHEN c.relkind = 'p' THEN coalesce((SELECT sum(pg_total_relation_size(p.relid)) FROM pg_partition_tree(c.oid) p), 0)::bigint
       ELSE pg_total_relation_size(c.oid) END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND `+userRelations+`
ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("list the user tables: %w", err)
	}
	defer rows.Close()
	var out []Table
	for rows.Next() {
		var t Table
		var kind, ident string
		if err := rows.Scan(&t.Schema, &t.Name, &kind, &t.Partition, &t.Unlogged, &ident, &t.PrimaryKey, &t.Bytes); err != nil {
			return nil, err
		}
		t.Kind, t.Identity = kind[0], ident[0]
		out = append(out, t)
	}
	return out, rows.Err()
}

// Identity is how a table's updates and deletes find their row on the
// subscriber.
type Identity int

// How a table's rows are identified, from good to refused.
const (
	IdentityUnknown   Identity = iota
	IdentityKey                // a primary key, or REPLICA IDENTITY USING INDEX
	IdentityFull               // REPLICA IDENTITY FULL: the whole old row, a sequential scan per change on the subscriber
	IdentityMissing            // DEFAULT without a primary key: updates and deletes fail on the publisher once published
	IdentityNothing            // REPLICA IDENTITY NOTHING: updates and deletes fail on the publisher once published
	IdentityNotNeeded          // a partitioned table: its partitions carry their own
)

// ReplicaIdentity says how t's rows are identified.
func (t Table) ReplicaIdentity() Identity {
	switch {
	case t.Kind == 'p':
		return IdentityNotNeeded
	case t.Identity == 'i', t.Identity == 'd' && t.PrimaryKey:
		return IdentityKey
	case t.Identity == 'f':
		return IdentityFull
	case t.Identity == 'n':
		return IdentityNothing
	case t.Identity == 'd':
		return IdentityMissing
	}
	return IdentityUnknown
}

// IdentityVerdict sorts tables by how their rows are identified: refused
// are those logical replication cannot carry (NOTHING always; FULL and
// none unless allowFull), full those accepted only with allowFull (FULL
// already, or none: to be set FULL by SetIdentityFull). Each is named.
func IdentityVerdict(tables []Table, allowFull bool) (refused, full []string) {
	for _, t := range tables {
		switch t.ReplicaIdentity() {
		case IdentityKey, IdentityNotNeeded:
		case IdentityNothing:
			refused = append(refused, t.String()+" (REPLICA IDENTITY NOTHING)")
		case IdentityFull:
			if allowFull {
				full = append(full, t.String()+" (REPLICA IDENTITY FULL)")
			} else {
				refused = append(refused, t.String()+" (REPLICA IDENTITY FULL)")
			}
		case IdentityMissing:
			if allowFull {
				full = append(full, t.String()+" (no primary key: to be set REPLICA IDENTITY FULL)")
			} else {
				refused = append(refused, t.String()+" (no primary key, no replica identity index)")
			}
		default:
			refused = append(refused, fmt.Sprintf("%s (replica identity %q unknown)", t, t.Identity))
		}
	}
	return refused, full
}

// WithoutIdentity lists the tables with no primary key and no replica
// identity of their own (DEFAULT): what SetIdentityFull changes.
func WithoutIdentity(tables []Table) []Table {
	var out []Table
	for _, t := range tables {
		if t.ReplicaIdentity() == IdentityMissing {
			out = append(out, t)
		}
	}
	return out
}

// SetIdentityFullSQL is the statement that makes t's updates and deletes
// carry the whole old row.
func SetIdentityFullSQL(t Table) string {
	return fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY FULL", t)
}

// Oddities are what logical replication does not carry in a database.
type Oddities struct {
	LargeObjects int64    // rows of pg_largeobject_metadata
	Unlogged     []string // unlogged tables: not published
	// MaterializedViews are not replicated: REFRESH them on the
	// subscriber after the copy.
	MaterializedViews []string
	// ForeignTables are not replicated; their data is elsewhere.
	ForeignTables []string
}

// ReadOddities reads what logical replication would not carry.
func ReadOddities(ctx context.Context, q Querier) (Oddities, error) {
	var o Oddities
	if err := q.QueryRow(ctx, `SELECT count(*) FROM pg_largeobject_metadata`).Scan(&o.LargeObjects); err != nil {
		return o, fmt.Errorf("count large objects: %w", err)
	}
	rows, err := q.Query(ctx, `SELECT c.relkind::text, c.relpersistence = 'u', n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (c.relkind IN ('m', 'f') OR (c.relkind IN ('r', 'p') AND c.relpersistence = 'u')) AND `+userRelations+`
ORDER BY 3, 4`)
	if err != nil {
		return o, fmt.Errorf("list unlogged tables and materialized views: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, schema, name string
		var unlogged bool
		if err := rows.Scan(&kind, &unlogged, &schema, &name); err != nil {
			return o, err
		}
		qn := QualifiedName(schema, name)
		switch {
		case kind == "m":
			o.MaterializedViews = append(o.MaterializedViews, qn)
		case kind == "f":
			o.ForeignTables = append(o.ForeignTables, qn)
		case unlogged:
			o.Unlogged = append(o.Unlogged, qn)
		}
	}
	return o, rows.Err()
}

// Refused says what of o logical replication cannot carry and the move
// must not lose: large objects, unlogged tables. Nothing when o has none.
func (o Oddities) Refused() []string {
	var out []string
	if o.LargeObjects > 0 {
		out = append(out, fmt.Sprintf("%d large objects (pg_largeobject_metadata): logical replication does not carry them", o.LargeObjects))
	}
	if len(o.Unlogged) > 0 {
		sort.Strings(o.Unlogged)
		out = append(out, fmt.Sprintf("unlogged tables, which are not published: %s (ALTER TABLE ... SET LOGGED, or drop them)", List(o.Unlogged)))
	}
	return out
}

// Notes says what of o is not replicated but needs no refusal.
func (o Oddities) Notes() []string {
	var out []string
	if len(o.MaterializedViews) > 0 {
		out = append(out, fmt.Sprintf("materialized views are not replicated, REFRESH them on the subscriber after the copy: %s", List(o.MaterializedViews)))
	}
	if len(o.ForeignTables) > 0 {
		out = append(out, fmt.Sprintf("foreign tables are not replicated (their data lives elsewhere): %s", List(o.ForeignTables)))
	}
	return out
}
