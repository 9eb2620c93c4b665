package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "pg.no_prepared_xacts",
		Doc:  "a node has no prepared (two-phase) transactions waiting for COMMIT PREPARED or ROLLBACK PREPARED",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "inventory node to look at, usually the primary"},
		},
		New: newNoPreparedXacts,
	})
}

// NoPreparedXacts passes when pg_prepared_xacts on Node is empty. A prepared
// transaction keeps its locks across a shutdown and a promotion until its
// coordinator commits or rolls it back, so it can block the new primary as
// surely as a live session; and a coordinator that talks to the old primary
// will not find it.
type NoPreparedXacts struct {
	Node string
}

var _ Check = (*NoPreparedXacts)(nil)

func newNoPreparedXacts(v params.Values) (Check, error) {
	c := &NoPreparedXacts{Node: v.Node("node")}
	if c.Node == "" {
		return nil, errors.New("node is empty")
	}
	return c, nil
}

// Describe implements Check.
func (c *NoPreparedXacts) Describe(*cluster.Target) string {
	return fmt.Sprintf("no prepared transactions on %s (pg_prepared_xacts is empty)", c.Node)
}

// preparedXact is one row of pg_prepared_xacts.
type preparedXact struct {
	GID      string
	Owner    string
	Database string
	Age      time.Duration
}

// Run implements Check.
func (c *NoPreparedXacts) Run(ctx context.Context, t *cluster.Target) Result {
	conn, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(conn)
	rows, err := conn.Query(ctx, `SELECT gid, coalesce(owner::text, ''), coalesce(database::text, ''),
		extract(epoch FROM clock_timestamp() - prepared)::float8
	FROM pg_prepared_xacts ORDER BY prepared, gid`)
	if err != nil {
		return Errored(fmt.Errorf("list prepared transactions on %s: %s", c.Node, queryProblem(ctx, err)))
	}
	var xacts []preparedXact
	for rows.Next() {
		var x preparedXact
		var age float64
		if err := rows.Scan(&x.GID, &x.Owner, &x.Database, &age); err != nil {
			rows.Close()
			return Errored(fmt.Errorf("list prepared transactions on %s: %s", c.Node, queryProblem(ctx, err)))
		}
		x.Age = time.Duration(age * float64(time.Second))
		xacts = append(xacts, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Errored(fmt.Errorf("list prepared transactions on %s: %s", c.Node, queryProblem(ctx, err)))
	}
	gids := make([]string, len(xacts))
	lines := make([]string, len(xacts))
	for i, x := range xacts {
		gids[i] = x.GID
		lines[i] = fmt.Sprintf("gid %q  owner %s  database %s  prepared %s ago", x.GID, x.Owner, x.Database, roundDuration(x.Age))
	}
	values := map[string]any{"count": len(xacts), "gids": gids}
	if len(xacts) == 0 {
		r := Passed(fmt.Sprintf("no prepared transactions on %s", c.Node))
		r.Values = values
		return r
	}
	quoted := make([]string, len(gids))
	for i, g := range gids {
		quoted[i] = fmt.Sprintf("%q", g)
	}
	r := Failed(fmt.Sprintf("%s on %s: %s", plural(len(xacts), "prepared transaction"), c.Node, strings.Join(quoted, ", ")),
		fmt.Sprintf("no prepared transactions on %s: each holds its locks until COMMIT PREPARED or ROLLBACK PREPARED", c.Node))
	r.Detail = strings.Join(lines, "\n")
	r.Values = values
	return r
}
