package checks

import (
	"context"
	"fmt"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/logical"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "logical.extensions",
		Doc:  "every extension installed in one node's database is available to install on another (blue's on green)",
		Params: []params.Spec{
			{Name: "from", Type: params.Node, Required: true, Doc: "inventory node whose installed extensions are read (blue's primary)"},
			{Name: "to", Type: params.Node, Required: true, Doc: "inventory node whose pg_available_extensions must hold them (green's primary)"},
		},
		New: func(v params.Values) (Check, error) {
			c := &LogicalExtensions{From: v.Node("from"), To: v.Node("to")}
			return c, params.DistinctNodes(c.From, "from", c.To, "to")
		},
	})
}

// LogicalExtensions passes when green could install every extension blue
// has: the schema copy creates them, and a missing one (its package not
// installed for green's major version) fails the copy half-way.
type LogicalExtensions struct {
	From, To string
}

var _ Check = (*LogicalExtensions)(nil)

// Describe implements Check.
func (c *LogicalExtensions) Describe(*cluster.Target) string {
	return fmt.Sprintf("every extension of pg_extension on %s is in pg_available_extensions on %s", c.From, c.To)
}

// Run implements Check.
func (c *LogicalExtensions) Run(ctx context.Context, t *cluster.Target) Result {
	from, err := connectNode(ctx, t, c.From)
	if err != nil {
		return withWanted(Errored(err), c, t)
	}
	defer closeConn(from)
	installed, err := logical.InstalledExtensions(ctx, from)
	if err != nil {
		return withWanted(Errored(fmt.Errorf("%s: %s", c.From, queryProblem(ctx, err))), c, t)
	}
	to, err := connectNode(ctx, t, c.To)
	if err != nil {
		return withWanted(Errored(err), c, t)
	}
	defer closeConn(to)
	available, err := logical.AvailableExtensions(ctx, to)
	if err != nil {
		return withWanted(Errored(fmt.Errorf("%s: %s", c.To, queryProblem(ctx, err))), c, t)
	}
	missing := logical.MissingExtensions(installed, available)
	values := map[string]any{"installed": len(installed), "missing": nonNil(missing)}
	if len(missing) > 0 {
		r := Failed(fmt.Sprintf("extensions installed on %s that %s cannot install: %s", c.From, c.To, logical.List(missing)),
			c.Describe(t)+": install their packages for "+c.To+"'s major version on its host")
		r.Values = values
		return r
	}
	r := Passed(fmt.Sprintf("the %d extensions installed on %s are all available on %s", len(installed), c.From, c.To))
	r.Wanted, r.Values = c.Describe(t), values
	return r
}
