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
		Kind: "logical.unsupported",
		Doc:  "a node's database holds nothing logical replication would silently leave behind: no large objects, no unlogged tables (materialized views and foreign tables are named, not refused)",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "inventory node whose database is published (blue's primary)"},
		},
		New: func(v params.Values) (Check, error) {
			c := &LogicalUnsupported{Node: v.Node("node")}
			if c.Node == "" {
				return nil, errors.New("node is empty")
			}
			return c, nil
		},
	})
}

// LogicalUnsupported passes when logical replication would carry the
// whole database: it does not carry large objects (pg_largeobject is a
// catalog) nor unlogged tables (they cannot be published), and a move
// would leave them behind without an error. Materialized views and
// foreign tables are not replicated either, but need no refusal: the
// first are refreshed on the subscriber, the second hold no data; they
// are named in the result.
type LogicalUnsupported struct {
	Node string
}

var _ Check = (*LogicalUnsupported)(nil)

// Describe implements Check.
func (c *LogicalUnsupported) Describe(*cluster.Target) string {
	return fmt.Sprintf("on %s: no large objects (pg_largeobject_metadata), no unlogged user tables", c.Node)
}

// Run implements Check.
func (c *LogicalUnsupported) Run(ctx context.Context, t *cluster.Target) Result {
	conn, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return withWanted(Errored(err), c, t)
	}
	defer closeConn(conn)
	o, err := logical.ReadOddities(ctx, conn)
	if err != nil {
		return withWanted(Errored(fmt.Errorf("%s: %s", c.Node, queryProblem(ctx, err))), c, t)
	}
	return c.judge(o)
}

func (c *LogicalUnsupported) judge(o logical.Oddities) Result {
	values := map[string]any{"large_objects": o.LargeObjects, "unlogged": nonNil(o.Unlogged),
		"materialized_views": nonNil(o.MaterializedViews), "foreign_tables": nonNil(o.ForeignTables)}
	notes := o.Notes()
	if refused := o.Refused(); len(refused) > 0 {
		r := Failed(fmt.Sprintf("on %s: %s", c.Node, strings.Join(refused, "; ")), c.Describe(nil)+": logical replication would leave them behind")
		r.Detail = strings.Join(notes, "\n")
		r.Values = values
		return r
	}
	r := Passed(fmt.Sprintf("no large objects and no unlogged tables on %s", c.Node))
	r.Wanted, r.Values = c.Describe(nil), values
	r.Detail = strings.Join(notes, "\n")
	return r
}
