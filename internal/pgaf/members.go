package pgaf

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/pg"
)

// Member is a node as the monitor lists it, with the formation and group
// it belongs to: what an inventory of the cluster is written from.
type Member struct {
	Formation string
	Group     int
	Name      string
	Host      string
	Port      int
}

// membersSQL lists the nodes whose keepers reported the cluster's system
// identifier: the nodes of one PostgreSQL cluster, whatever formation and
// group the monitor files them under.
const membersSQL = `SELECT formationid, groupid, nodename, nodehost, nodeport
  FROM pgautofailover.node
 WHERE sysidentifier = $1
 ORDER BY formationid, groupid, nodeid`

// MembersOf asks the monitor at conninfo for the nodes of the cluster whose
// system identifier is sysID (as pg.SystemIdentifier gives it).
func MembersOf(ctx context.Context, conninfo, sysID string) ([]Member, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	where := Where(conninfo)
	conn, err := pg.Connect(ctx, conninfo, DefaultTimeout)
	if err != nil {
		return nil, fmt.Errorf("pg_auto_failover monitor %s: %w", where, err)
	}
	defer conn.Close(context.Background())
	// The identifier is unsigned; PostgreSQL keeps it as a bigint.
	id, err := strconv.ParseUint(sysID, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("system identifier %q is not a number", sysID)
	}
	rows, err := conn.Query(ctx, membersSQL, int64(id))
	if err != nil {
		return nil, fmt.Errorf("pg_auto_failover monitor %s: read pgautofailover.node: %w", where, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Member, error) {
		var m Member
		var group, port int32
		err := r.Scan(&m.Formation, &group, &m.Name, &m.Host, &port)
		m.Group, m.Port = int(group), int(port)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("pg_auto_failover monitor %s: read pgautofailover.node: %w", where, err)
	}
	return out, nil
}
