package checks

import (
	"context"
	"fmt"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

// PoolerRoutesTo checks the path clients use: through the pooler, the
// client-facing database reaches the given node, and that node accepts
// writes. It writes nothing: it asks the server where it is and whether it
// is in recovery or read-only.
type PoolerRoutesTo struct {
	Node string
}

var _ Check = (*PoolerRoutesTo)(nil)

func init() {
	Register(Definition{
		Kind: "pgbouncer.routes_to",
		Doc:  "through the pooler, clients reach the given node and it accepts writes",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the node clients must reach"},
		},
		New: func(v params.Values) (Check, error) { return &PoolerRoutesTo{Node: v.Node("node")}, nil },
	})
}

// Describe implements Check.
func (c *PoolerRoutesTo) Describe(t *cluster.Target) string {
	db := "the client database"
	if t != nil && t.Cluster != nil && t.Cluster.Pooler != nil {
		db = fmt.Sprintf("database %s", t.Cluster.Pooler.Database)
	}
	return fmt.Sprintf("through the pooler, %s reaches %s, writable", db, c.Node)
}

// Run implements Check. The server behind the pooler is identified by its
// postmaster start time, asked through the pooler and of the node directly:
// addresses and ports alone cannot tell nodes apart that all listen on 5432.
func (c *PoolerRoutesTo) Run(ctx context.Context, t *cluster.Target) Result {
	p := t.Cluster.Pooler
	if p == nil {
		return Passed("no pooler in the inventory: clients connect to the nodes directly")
	}
	if _, err := t.Node(c.Node); err != nil {
		return Errored(err)
	}
	ci, err := p.ClientConninfo()
	if err != nil {
		return Errored(err)
	}
	const ask = `SELECT pg_postmaster_start_time()::text, pg_is_in_recovery(), current_setting('transaction_read_only')`
	var viaStart, directStart, readOnly string
	var recovery, directRecovery bool
	via, err := pg.ConnectPooled(ctx, ci.Dial())
	if err != nil {
		return Failed(fmt.Sprintf("a client cannot connect through the pooler: %v", err), "a connection to "+p.Database)
	}
	defer closeConn(via)
	if err := via.QueryRow(ctx, ask).Scan(&viaStart, &recovery, &readOnly); err != nil {
		return Failed(fmt.Sprintf("a query through the pooler failed: %v", err), "an answer from "+c.Node)
	}
	direct, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(direct)
	var ro string
	if err := direct.QueryRow(ctx, ask).Scan(&directStart, &directRecovery, &ro); err != nil {
		return Errored(fmt.Errorf("%s: %w", c.Node, err))
	}
	r := Result{Values: map[string]any{"same_server": viaStart == directStart, "in_recovery": recovery, "read_only": readOnly}}
	who := c.Node
	if viaStart != directStart {
		who = "another server than " + c.Node
	}
	r.Observed = fmt.Sprintf("through the pooler: %s, in recovery %v, transaction_read_only %s", who, recovery, readOnly)
	r.Wanted = fmt.Sprintf("%s, not in recovery, writable", c.Node)
	r.Status = Pass
	if viaStart != directStart || recovery || readOnly == "on" {
		r.Status = Fail
	}
	return r
}
