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
		Kind: "logical.schema_same",
		Doc:  "two nodes' databases have the same schema, as the newer pg_dump reads both (DDL is not replicated: a difference breaks the apply or the cutover); the differing objects are named, with the first differing lines",
		Params: []params.Spec{
			{Name: "from", Type: params.Node, Required: true, Doc: "inventory node of one side (blue's primary)"},
			{Name: "to", Type: params.Node, Required: true, Doc: "inventory node of the other side (green's primary); its bin_dir's pg_dump dumps both, on its host"},
		},
		New: func(v params.Values) (Check, error) {
			c := &LogicalSchemaSame{From: v.Node("from"), To: v.Node("to")}
			return c, params.DistinctNodes(c.From, "from", c.To, "to")
		},
	})
}

// LogicalSchemaSame passes when blue's and green's schemas are the same.
// Logical replication carries rows, not DDL: a column added on blue only
// stops the apply at its first row; one dropped on green only does the
// same; an index missing on green makes the cutover's catch-up crawl. At
// the cutover, any difference is refused.
//
// Both schemas are dumped by the to node's pg_dump on its host (a pg_dump
// reads servers of its own major version and older), schema only, without
// publications, subscriptions, owners, privileges and tablespaces, and
// without switchover's own schema and DDL guard; comments, SET lines and
// blank lines do not count. Across major versions the servers deparse
// views, defaults and constraints themselves, so two versions may show
// the same definition in two spellings: that is a difference here, to be
// looked at by a person.
type LogicalSchemaSame struct {
	From, To string
}

var _ Check = (*LogicalSchemaSame)(nil)

// Describe implements Check.
func (c *LogicalSchemaSame) Describe(t *cluster.Target) string {
	return fmt.Sprintf("the schema of %s is the schema of %s (%s; compared without comments, SET lines and switchover's own objects)", c.To, c.From, logical.DumpDescription(t, c.From, c.To))
}

// Run implements Check.
func (c *LogicalSchemaSame) Run(ctx context.Context, t *cluster.Target) Result {
	s, err := logical.CompareSchemas(ctx, t, c.From, c.To)
	if err != nil {
		return withWanted(Errored(err), c, t)
	}
	return schemaVerdict(s.Diff, c.From, c.To, fmt.Sprintf("the same schema on %s and %s", c.From, c.To))
}

// schemaVerdict turns a schema comparison into a result.
func schemaVerdict(d logical.Difference, from, to, wanted string) Result {
	values := map[string]any{"missing": nonNil(d.OnlyFrom), "extra": nonNil(d.OnlyTo), "changed": nonNil(d.Changed)}
	if d.Empty() {
		r := Passed(fmt.Sprintf("the schemas of %s and %s are the same", from, to))
		r.Wanted, r.Values = wanted, values
		return r
	}
	r := Failed("the schemas differ: "+d.Summary(from, to),
		wanted+": DDL is not replicated; make the same change on both, in a session with SET "+logical.AllowDDLSetting+" = on while the DDL guard is installed")
	r.Detail = d.Excerpt
	r.Values = values
	return r
}
