package repmgr

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/pg"
)

// Registration is a node as repmgr registered it, with how repmgr reaches
// it and where its repmgr.conf is: what an inventory of the cluster is
// written from.
type Registration struct {
	Name   string
	Type   string // primary, standby, witness
	Active bool
	// Conninfo is how repmgr reaches the node; it may hold a password.
	Conninfo string
	// ConfigFile is the node's repmgr.conf on its host, "" when repmgr
	// did not record it.
	ConfigFile string
}

// HasSchema reports whether the database q is connected to holds repmgr's
// schema.
func HasSchema(ctx context.Context, q pg.Querier) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT to_regclass('repmgr.nodes') IS NOT NULL`).Scan(&ok)
	return ok, err
}

// Registrations reads repmgr.nodes on q, a connection to the database of
// repmgr's schema, in node id order.
func Registrations(ctx context.Context, q pg.Querier) ([]Registration, error) {
	rows, err := q.Query(ctx, `SELECT node_name, type, active, conninfo, coalesce(config_file, '') FROM repmgr.nodes ORDER BY node_id`)
	if err != nil {
		return nil, fmt.Errorf("read repmgr.nodes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Registration, error) {
		var g Registration
		err := r.Scan(&g.Name, &g.Type, &g.Active, &g.Conninfo, &g.ConfigFile)
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("read repmgr.nodes: %w", err)
	}
	return out, nil
}
