package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/logical"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "logical.replica_identity",
		Doc:  "every table a move publishes identifies its rows for logical replication: a primary key or REPLICA IDENTITY USING INDEX; FULL, or none, only when allowed; NOTHING never",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "inventory node whose database is published (blue's primary)"},
			{Name: "allow_full", Type: params.Bool, Default: "false",
				Doc: "accept tables with REPLICA IDENTITY FULL, and tables with no primary key (logical.replica_identity_full sets them FULL): each update or delete of theirs is a sequential scan on the subscriber"},
		},
		New: func(v params.Values) (Check, error) {
			c := &LogicalReplicaIdentity{Node: v.Node("node"), AllowFull: v.Bool("allow_full")}
			if c.Node == "" {
				return nil, errors.New("node is empty")
			}
			return c, nil
		},
	})
}

// LogicalReplicaIdentity passes when every user table (outside the
// catalogs and switchover's own schema) has a primary key or a replica
// identity index. Once a table without either is published, the
// publisher refuses its UPDATEs and DELETEs: the application fails on
// blue. REPLICA IDENTITY FULL carries the whole old row and works, at the
// price of a sequential scan on the subscriber per change, so it passes
// only with AllowFull, as do tables without a key, which then must be set
// FULL before they are published (logical.replica_identity_full).
type LogicalReplicaIdentity struct {
	Node      string
	AllowFull bool
}

var _ Check = (*LogicalReplicaIdentity)(nil)

// Describe implements Check.
func (c *LogicalReplicaIdentity) Describe(*cluster.Target) string {
	d := fmt.Sprintf("on %s: every user table has a primary key or REPLICA IDENTITY USING INDEX", c.Node)
	if c.AllowFull {
		return d + ", or REPLICA IDENTITY FULL, or none (to be set FULL); never NOTHING"
	}
	return d
}

// Run implements Check.
func (c *LogicalReplicaIdentity) Run(ctx context.Context, t *cluster.Target) Result {
	conn, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return withWanted(Errored(err), c, t)
	}
	defer closeConn(conn)
	tables, err := logical.ReadTables(ctx, conn)
	if err != nil {
		return withWanted(Errored(fmt.Errorf("%s: %s", c.Node, queryProblem(ctx, err))), c, t)
	}
	return c.judge(tables)
}

func (c *LogicalReplicaIdentity) judge(tables []logical.Table) Result {
	refused, full := logical.IdentityVerdict(tables, c.AllowFull)
	values := map[string]any{"tables": len(tables), "refused": nonNil(refused), "full": nonNil(full)}
	wanted := c.Describe(nil)
	if len(refused) == 0 {
		seen := fmt.Sprintf("%d user tables on %s, each with a primary key or a replica identity index", len(tables), c.Node)
		if len(full) > 0 {
			seen = fmt.Sprintf("%d user tables on %s; replicated with the whole old row (allow_full): %s", len(tables), c.Node, logical.List(full))
		}
		r := Passed(seen)
		r.Wanted, r.Values = wanted, values
		return r
	}
	r := Failed(fmt.Sprintf("%d of %d user tables on %s cannot be replicated as they are: %s", len(refused), len(tables), c.Node, logical.List(refused)),
		wanted+": add a primary key (or ALTER TABLE ... REPLICA IDENTITY USING INDEX on a unique index of NOT NULL columns); or allow_full: true, to replicate the whole old row of each change (slow on large tables)")
	r.Detail = strings.Join(refused, "\n")
	r.Values = values
	return r
}
