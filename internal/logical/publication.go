package logical

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// PublishedTables are the tables a move publishes, by qualified name: the
// user tables (ReadTables) but the unlogged ones, which cannot be. From
// PostgreSQL 13 a partitioned table is published as a whole (its
// partitions with it); before, its partitions are, one by one.
func PublishedTables(tables []Table, version int) []string {
	var out []string
	for _, t := range tables {
		switch {
		case t.Unlogged:
		case version >= 130000 && t.Partition:
		case version < 130000 && t.Kind == 'p':
		default:
			out = append(out, t.String())
		}
	}
	return out
}

// TablesToPublish lists PublishedTables of the database q is connected to.
func TablesToPublish(ctx context.Context, q Querier) ([]string, error) {
	v, err := version(ctx, q)
	if err != nil {
		return nil, err
	}
	tables, err := ReadTables(ctx, q)
	if err != nil {
		return nil, err
	}
	return PublishedTables(tables, v), nil
}

// Publication is a publication as the publisher has it.
type Publication struct {
	Name      string
	AllTables bool
	Tables    []string // its tables by qualified name, as added to it (not its partitions)
}

// ReadPublication reads a publication of the database q is connected to;
// nil when there is none of that name.
func ReadPublication(ctx context.Context, q Querier, name string) (*Publication, error) {
	p := &Publication{Name: name}
	err := q.QueryRow(ctx, `SELECT puballtables FROM pg_publication WHERE pubname = $1`, name).Scan(&p.AllTables)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read publication %s: %w", name, err)
	}
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname FROM pg_publication_rel r
JOIN pg_publication p ON p.oid = r.prpubid JOIN pg_class c ON c.oid = r.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE p.pubname = $1 ORDER BY 1, 2`, name)
	if err != nil {
		return nil, fmt.Errorf("read the tables of publication %s: %w", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var s, t string
		if err := rows.Scan(&s, &t); err != nil {
			return nil, err
		}
		p.Tables = append(p.Tables, QualifiedName(s, t))
	}
	return p, rows.Err()
}

// CreatePublicationSQL creates a publication of tables (by qualified
// name); with none, an empty one that tables are added to later.
func CreatePublicationSQL(name string, tables []string) string {
	if len(tables) == 0 {
		return "CREATE PUBLICATION " + Ident(name)
	}
	return fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s", Ident(name), strings.Join(tables, ", "))
}

// AddTablesSQL adds tables to a publication.
func AddTablesSQL(name string, tables []string) string {
	return fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s", Ident(name), strings.Join(tables, ", "))
}

// Missing returns the names of want that have lacks.
func Missing(want, have []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

// Publish makes sure a publication of the database's tables exists: it
// creates it, or adds the tables it lacks. It says what it did, "" when
// nothing. A publication FOR ALL TABLES is refused: it would publish
// switchover's own schema, which each cluster keeps for itself.
func Publish(ctx context.Context, q Querier, name string) (string, error) {
	want, err := TablesToPublish(ctx, q)
	if err != nil {
		return "", err
	}
	p, err := ReadPublication(ctx, q, name)
	if err != nil {
		return "", err
	}
	done, err := Privileged(ctx, q)
	defer done()
	if err != nil {
		return "", err
	}
	switch {
	case p == nil:
		if _, err := q.Exec(ctx, CreatePublicationSQL(name, want)); err != nil {
			return "", fmt.Errorf("create publication %s: %w", name, err)
		}
		return fmt.Sprintf("publication %s created with %d tables", name, len(want)), nil
	case p.AllTables:
		return "", fmt.Errorf("publication %s exists FOR ALL TABLES, which publishes switchover's own schema %s too (its run claim would collide on the subscriber); drop it, or give another name", name, Schema)
	}
	missing := Missing(want, p.Tables)
	if len(missing) == 0 {
		return "", nil
	}
	if _, err := q.Exec(ctx, AddTablesSQL(name, missing)); err != nil {
		return "", fmt.Errorf("add tables to publication %s: %w", name, err)
	}
	return fmt.Sprintf("added to publication %s: %s", name, List(missing)), nil
}
