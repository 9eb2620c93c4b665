// Package logical is switchover's access to PostgreSQL's logical
// replication, for a blue/green move between two clusters (a major
// upgrade): the gates (capacity, replica identity, what logical
// replication cannot carry, extensions, the schema), the publication and
// the subscription and its slot, the initial copy's progress, sequences,
// row counts, the DDL guard and the read-only fence. It speaks SQL through
// pg.Querier, as internal/pg does for physical replication; the checks and
// steps of kind logical.* are thin over it.
//
// Everything switchover keeps in a database lives in the schema Schema
// (the run's claim among it). That schema is never published, never
// compared and never copied: each cluster has its own.
package logical

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/claim"
	"github.com/switchover/switchover/internal/pg"
)

// Schema is switchover's own schema, on both clusters: the claim of a run,
// the DDL guard's function. It is left out of the publication, the schema
// comparison and the schema copy.
const Schema = claim.Schema

// Querier is the part of a connection this package uses.
type Querier = pg.Querier

// Ident quotes a name as an SQL identifier.
func Ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// QualifiedName quotes schema.name as an SQL identifier.
func QualifiedName(schema, name string) string { return pgx.Identifier{schema, name}.Sanitize() }

// Literal quotes s as an SQL string literal.
func Literal(s string) string { return pg.QuoteLiteral(s) }

// excludedSchemas is the SQL list of schemas that hold no user table of
// the move: the catalogs, and ours.
var excludedSchemas = "'pg_catalog', 'information_schema', " + Literal(Schema)

// userRelations is the SQL condition on pg_class c and pg_namespace n that
// keeps the relations of the user's schemas: not the catalogs, not
// pg_toast or temporary schemas, not ours, and not a member of an
// extension (CREATE EXTENSION makes those on the other side).
var userRelations = `n.nspname NOT IN (` + excludedSchemas + `)
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')`

// version reads server_version_num.
func version(ctx context.Context, q Querier) (int, error) {
	var v int
	err := q.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&v)
	return v, err
}

// list joins names for a message, at most limit of them, saying how many
// more there are.
func list(names []string, limit int) string {
	if len(names) <= limit {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:limit], ", "), len(names)-limit)
}

// List joins names for a message, at most 20 of them.
func List(names []string) string { return list(names, 20) }

// collect reads one text column of every row.
func collect(ctx context.Context, q Querier, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
