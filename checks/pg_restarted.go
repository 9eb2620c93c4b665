package checks

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

// PGRestarted passes when every node it names was restarted during this
// run: a step recorded the restart (fact <node>.restarted_at, the start
// time of the server it restarted) and the server running now started
// then or later. It is the postcondition of a rolling restart, the one
// that tells a run cut off half-way through from a finished one: that every
// replica streams again holds before the restart as well as after it.
type PGRestarted struct {
	Nodes  []string
	Except []string
}

var _ Check = (*PGRestarted)(nil)

func init() {
	Register(Definition{
		Kind: "pg.restarted",
		Doc:  "every node named was restarted during this run: the run recorded its restart (fact <node>.restarted_at) and pg_postmaster_start_time() is that or later",
		Params: []params.Spec{
			{Name: "nodes", Type: params.Nodes, Doc: "the nodes that must have been restarted; empty means every node of the inventory"},
			{Name: "except", Type: params.Nodes, Doc: "nodes left out (e.g. the leader, which a rolling restart does last)"},
		},
		New: func(v params.Values) (Check, error) {
			return &PGRestarted{Nodes: dedupe(v.Nodes("nodes")), Except: dedupe(v.Nodes("except"))}, nil
		},
	})
}

// Describe implements Check.
func (c *PGRestarted) Describe(t *cluster.Target) string {
	names, err := c.names(t)
	if err != nil || len(names) == 0 {
		return "every node named was restarted during this run"
	}
	return fmt.Sprintf("%s restarted during this run (fact <node>.restarted_at, pg_postmaster_start_time() not earlier)", strings.Join(names, ", "))
}

func (c *PGRestarted) names(t *cluster.Target) ([]string, error) {
	all, err := nodeNames(t, c.Nodes)
	if err != nil {
		return nil, err
	}
	if len(c.Nodes) == 0 && t != nil && t.Cluster != nil {
		all = t.Cluster.NodeOrder()
	}
	var out []string
	for _, n := range all {
		if !slices.Contains(c.Except, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Run implements Check.
func (c *PGRestarted) Run(ctx context.Context, t *cluster.Target) Result {
	return withWanted(c.run(ctx, t), c, t)
}

func (c *PGRestarted) run(ctx context.Context, t *cluster.Target) Result {
	names, err := c.names(t)
	if err != nil {
		return Errored(err)
	}
	if len(names) == 0 {
		return Passed("no node to look at")
	}
	for _, n := range names {
		if _, err := t.Node(n); err != nil {
			return Errored(err)
		}
	}
	answers := askNodes(ctx, t, names, func(ctx context.Context, q pg.Querier) (time.Time, error) {
		var at time.Time
		err := q.QueryRow(ctx, "SELECT pg_postmaster_start_time()").Scan(&at)
		return at, err
	})
	var done, problems []string
	values := map[string]any{}
	var facts *cluster.Facts
	if t != nil {
		facts = t.Facts
	}
	for _, a := range answers {
		recorded, found, err := facts.Restarted(a.Node)
		switch {
		case err != nil:
			return Errored(err)
		case !found:
			problems = append(problems, fmt.Sprintf("%s: not restarted by this run (no fact %s)", a.Node, cluster.RestartedFact(a.Node)))
			continue
		case a.Err != nil:
			return Errored(a.Err)
		}
		started := cluster.StartTime(a.Val)
		values[a.Node] = started
		if a.Val.Before(recorded) {
			problems = append(problems, fmt.Sprintf("%s: restarted by this run at %s, but its PostgreSQL says it started at %s", a.Node, cluster.StartTime(recorded), started))
			continue
		}
		done = append(done, fmt.Sprintf("%s started %s", a.Node, started))
	}
	if len(problems) > 0 {
		r := Failed(strings.Join(problems, "; "), c.Describe(t))
		r.Values = values
		return r
	}
	r := Passed(strings.Join(done, "; "))
	r.Values = values
	return r
}
