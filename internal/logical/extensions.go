package logical

import (
	"context"
	"fmt"
)

// Extension is an extension installed in a database.
type Extension struct {
	Name, Version string
}

// InstalledExtensions lists the extensions installed in the database q is
// connected to (plpgsql among them), by name.
func InstalledExtensions(ctx context.Context, q Querier) ([]Extension, error) {
	rows, err := q.Query(ctx, `SELECT extname, extversion FROM pg_extension ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list the installed extensions: %w", err)
	}
	defer rows.Close()
	var out []Extension
	for rows.Next() {
		var e Extension
		if err := rows.Scan(&e.Name, &e.Version); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// AvailableExtensions is the set of extensions a server could install
// (pg_available_extensions: their control files are on its host).
func AvailableExtensions(ctx context.Context, q Querier) (map[string]bool, error) {
	names, err := collect(ctx, q, `SELECT name FROM pg_available_extensions`)
	if err != nil {
		return nil, fmt.Errorf("list the available extensions: %w", err)
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

// MissingExtensions names the extensions of installed that available
// lacks, with their versions where installed.
func MissingExtensions(installed []Extension, available map[string]bool) []string {
	var out []string
	for _, e := range installed {
		if !available[e.Name] {
			out = append(out, fmt.Sprintf("%s (%s)", e.Name, e.Version))
		}
	}
	return out
}
