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
	"regexp"
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

// Ident renders a name as an SQL identifier, quoted only when it must be
// (as quote_ident does): a name of lower-case letters, digits and
// underscores that is no keyword is written as it is, so that messages
// read public.orders.
func Ident(name string) string {
	if plainIdent.MatchString(name) && !keywords[name] {
		return name
	}
	return pgx.Identifier{name}.Sanitize()
}

// QualifiedName renders schema.name as SQL, each part as Ident does.
func QualifiedName(schema, name string) string { return Ident(schema) + "." + Ident(name) }

var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// keywords are PostgreSQL's keywords that cannot stand unquoted as a
// table's name (reserved, column-name and type-or-function-name ones).
var keywords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`all analyse analyze and any array as asc asymmetric authorization between bigint binary bit boolean both case cast char character check coalesce collate collation column concurrently constraint create cross current_catalog current_date current_role current_schema current_time current_timestamp current_user dec decimal default deferrable desc distinct do else end except exists extract false fetch float for foreign freeze from full grant greatest group grouping having ilike in initially inner inout int integer intersect interval into is isnull join json lateral leading least left like limit localtime localtimestamp merge_action national natural nchar none normalize not notnull null nullif numeric offset on only or order out outer overlaps overlay placing position precision primary real references returning right row select session_user setof similar smallint some substring symmetric system_user table tablesample then time timestamp to trailing treat trim true union unique user using values varchar variadic verbose when where window with xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize xmltable`) {
		m[w] = true
	}
	return m
}()

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

// Size renders a byte count for progress lines: 512 bytes, 3.2 kB,
// 15.2 MB, 1.4 GB.
func Size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
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
