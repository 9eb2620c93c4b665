package logical

import (
	"context"
	"fmt"
)

// SmallestTables names the n smallest published tables of the database q
// is connected to, smallest first: a sample that counts fast. n <= 0 is
// every table.
func SmallestTables(ctx context.Context, q Querier, n int) ([]string, error) {
	v, err := version(ctx, q)
	if err != nil {
		return nil, err
	}
	tables, err := ReadTables(ctx, q)
	if err != nil {
		return nil, err
	}
	published := map[string]bool{}
	for _, name := range PublishedTables(tables, v) {
		published[name] = true
	}
	var sample []Table
	for _, t := range tables {
		if published[t.String()] {
			sample = append(sample, t)
		}
	}
	sortBySize(sample)
	if n > 0 && len(sample) > n {
		sample = sample[:n]
	}
	out := make([]string, len(sample))
	for i, t := range sample {
		out[i] = t.String()
	}
	return out, nil
}

func sortBySize(ts []Table) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && (ts[j].Bytes < ts[j-1].Bytes || ts[j].Bytes == ts[j-1].Bytes && ts[j].String() < ts[j-1].String()); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

// Count counts the rows of a table, by qualified name (already quoted,
// as the other functions here give it).
func Count(ctx context.Context, q Querier, table string) (int64, error) {
	var n int64
	if err := q.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	return n, nil
}

// ResolveTable turns a table name as a runbook writes it (orders,
// public.orders, "Mixed"."Case") into the qualified name this package
// uses; an error when the database q is connected to has no such table.
func ResolveTable(ctx context.Context, q Querier, name string) (string, error) {
	var schema, rel *string
	err := q.QueryRow(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass($1)`, name).Scan(&schema, &rel)
	if err != nil || schema == nil {
		return "", fmt.Errorf("no table %s", name)
	}
	return QualifiedName(*schema, *rel), nil
}
