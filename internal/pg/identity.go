package pg

import (
	"context"
	"fmt"
	"strconv"
)

// ControlSystemIdentifier is the pg_control field that names the cluster a
// data directory belongs to: initdb draws it once, and every standby cloned
// from the cluster keeps it. Two data directories with different
// identifiers are not of one cluster, whatever the inventory says.
const ControlSystemIdentifier = "Database system identifier"

// SystemIdentifier asks a running server for the system identifier of its
// cluster (pg_control_system()), as the decimal text pg_controldata prints,
// so the two can be compared.
func SystemIdentifier(ctx context.Context, q Querier) (string, error) {
	var id int64
	if err := q.QueryRow(ctx, `SELECT system_identifier FROM pg_control_system()`).Scan(&id); err != nil {
		return "", fmt.Errorf("read pg_control_system(): %w", err)
	}
	// The identifier is an unsigned 64-bit number that PostgreSQL shows as
	// a bigint: one with the top bit set comes back negative.
	return strconv.FormatUint(uint64(id), 10), nil
}
