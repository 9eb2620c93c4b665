package checks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "pg.reachable",
		Doc:  "a node accepts a SQL connection and answers a query",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "inventory node to connect to, with its connection string"},
		},
		New: newPGReachable,
	})
}

// PGReachable passes when a node answers SQL: it connects with the node's
// connection string and runs SELECT 1. A port that accepts TCP is not
// enough: a server still starting up, or one refusing our user, is not
// reachable in the sense a switchover needs.
type PGReachable struct {
	Node string
}

var _ Check = (*PGReachable)(nil)

func newPGReachable(v params.Values) (Check, error) {
	c := &PGReachable{Node: v.Node("node")}
	if c.Node == "" {
		return nil, errors.New("node is empty")
	}
	return c, nil
}

// Describe implements Check.
func (c *PGReachable) Describe(*cluster.Target) string {
	return fmt.Sprintf("%s accepts a connection and answers SELECT 1", c.Node)
}

// Run implements Check.
func (c *PGReachable) Run(ctx context.Context, t *cluster.Target) Result {
	return withWanted(c.run(ctx, t), c, t)
}

// run evaluates the check once; Run fills in what it wanted when it
// ended in an error before saying so.
func (c *PGReachable) run(ctx context.Context, t *cluster.Target) Result {
	start := time.Now()
	conn, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(conn)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return Errored(fmt.Errorf("%s: SELECT 1: %w", c.Node, err))
	}
	elapsed := time.Since(start)
	st, err := pg.Inspect(ctx, conn)
	if err != nil {
		return Errored(fmt.Errorf("%s answered SELECT 1 but not the inspection: %w", c.Node, err))
	}
	r := Passed(fmt.Sprintf("%s answered in %s: %s, PostgreSQL %s", c.Node, roundDuration(elapsed),
		st.Role, serverVersion(st.Version)))
	r.Wanted = fmt.Sprintf("%s answers SQL", c.Node)
	r.Values = map[string]any{
		"role":               string(st.Role),
		"version":            serverVersion(st.Version),
		"server_version_num": st.Version,
		"connect_time":       elapsed.String(),
	}
	return r
}
