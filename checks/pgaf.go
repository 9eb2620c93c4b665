package checks

import (
	"context"
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pgaf"
)

func init() {
	Register(Definition{
		Kind:    "pgaf.settled",
		Manager: cluster.ManagerPgAutoFailover,
		Doc:     "the pg_auto_failover monitor shows every node of the group in the state it assigned, healthy and running, one primary and the others secondaries; every node the monitor lists is in the inventory",
		New:     func(params.Values) (Check, error) { return &PgafSettled{}, nil },
	})
	Register(Definition{
		Kind:    "pgaf.primary",
		Manager: cluster.ManagerPgAutoFailover,
		Doc:     "the pg_auto_failover monitor assigns the node, and only it, a primary's state; PostgreSQL agrees: the node is out of recovery and no other node is",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the expected primary (its pg_auto_failover node name)"},
		},
		New: func(v params.Values) (Check, error) { return &PgafPrimary{Node: v.Node("node")}, nil },
	})
}

// pgafWhere names the monitor a check asks, for Describe.
func pgafWhere(t *cluster.Target) string {
	c, err := pgaf.ForTarget(t)
	if err != nil {
		return "the pg_auto_failover monitor"
	}
	return fmt.Sprintf("the monitor at %s (formation %s, group %d)", c.Where(), c.Formation(), c.Group())
}

// pgafValues are a view's observations for the journal.
func pgafValues(v *pgaf.View) map[string]any {
	nodes := map[string]any{}
	for _, n := range v.Nodes {
		nodes[n.Name] = map[string]any{"reported": n.Reported, "goal": n.Goal, "health": n.Health, "pg_running": n.PgRunning}
	}
	return map[string]any{"monitor": v.Monitor, "primary": v.Primary(), "nodes": nodes}
}

// PgafSettled passes when the monitor has nothing under way: every node
// has reached the state the monitor assigned it, one primary and the rest
// secondaries. A monitor in the middle of a transition (a node joining,
// an election, a node in maintenance) would act on its own while a
// switchover runs, and a switchover asked of it then is refused or
// overtaken; after a switchover, settled is the end the monitor itself
// waits for.
type PgafSettled struct{}

var _ Check = (*PgafSettled)(nil)

// Describe implements Check.
func (c *PgafSettled) Describe(t *cluster.Target) string {
	return fmt.Sprintf("%s: every node's reported state is its assigned state, healthy; one primary, the others secondary", pgafWhere(t))
}

// Run implements Check.
func (c *PgafSettled) Run(ctx context.Context, t *cluster.Target) Result {
	client, err := pgaf.ForTarget(t)
	if err != nil {
		return Errored(err)
	}
	v, err := client.View(ctx)
	if err != nil {
		return Result{Status: Error, Observed: "the monitor did not answer, so whether it is settled is unknown: " + err.Error()}
	}
	wanted := "every node in its assigned state, healthy, one primary and the others secondary"
	why := v.Unsettled()
	var others []string
	for _, n := range v.Nodes {
		if t.Cluster.Nodes[n.Name] == nil {
			others = append(others, n.Name)
		}
	}
	r := Passed(fmt.Sprintf("the monitor at %s shows %s settled (%s)", v.Monitor, v.Primary(), v))
	switch {
	case why != "":
		r = Failed(fmt.Sprintf("the monitor at %s is not settled: %s (%s)", v.Monitor, why, v), wanted)
	case len(others) > 0:
		r = Failed(fmt.Sprintf("the monitor at %s lists %s, which the inventory does not have (%s)", v.Monitor, strings.Join(others, ", "), v),
			wanted+", every one in the inventory")
	}
	r.Values = pgafValues(v)
	return r
}

// PgafPrimary passes when the monitor assigns Node, and no other node, a
// primary's state, and PostgreSQL agrees. The monitor's view is what its
// keepers last reported; a server promoted or started behind its back
// shows only in PostgreSQL, and two servers taking writes is the worst a
// switchover can leave.
type PgafPrimary struct {
	Node string
}

var _ Check = (*PgafPrimary)(nil)

// Describe implements Check.
func (c *PgafPrimary) Describe(t *cluster.Target) string {
	return fmt.Sprintf("%s assigns %s, and no other node, a primary's state, and PostgreSQL agrees (%s out of recovery, no other node)", pgafWhere(t), c.Node, c.Node)
}

// Run implements Check.
func (c *PgafPrimary) Run(ctx context.Context, t *cluster.Target) Result {
	client, err := pgaf.ForTarget(t)
	if err != nil {
		return Errored(err)
	}
	v, err := client.View(ctx)
	if err != nil {
		return Result{Status: Error, Observed: "the monitor did not answer, so which node is the primary is unknown: " + err.Error()}
	}
	wanted := fmt.Sprintf("the monitor assigning %s, and only it, a primary's state, and PostgreSQL agreeing", c.Node)
	var names []string
	for _, p := range v.Primaries() {
		names = append(names, p.Name)
	}
	var r Result
	switch {
	case len(names) == 0:
		r = Failed(fmt.Sprintf("the monitor at %s assigns no node a primary's state: a failover or switchover is under way (%s)", v.Monitor, v), wanted)
	case len(names) > 1:
		r = Failed(fmt.Sprintf("the monitor at %s assigns %s a primary's state (%s)", v.Monitor, strings.Join(names, " and "), v), wanted)
	case names[0] != c.Node:
		r = Failed(fmt.Sprintf("the monitor at %s names %s the primary, not %s (%s)", v.Monitor, names[0], c.Node, v), wanted)
	default:
		seen, disagree := pgafAgrees(ctx, t, v, c.Node)
		if disagree != "" {
			r = Failed(disagree, wanted)
		} else {
			r = Passed(fmt.Sprintf("the monitor at %s names %s the primary (%s), and PostgreSQL agrees", v.Monitor, c.Node, v))
		}
		r.Detail = strings.Join(seen, "\n")
	}
	r.Values = pgafValues(v)
	return r
}

// pgafAgrees holds the monitor's view against PostgreSQL's (see
// managerAgrees).
func pgafAgrees(ctx context.Context, t *cluster.Target, v *pgaf.View, primary string) (seen []string, disagree string) {
	var members []string
	for _, n := range v.Nodes {
		members = append(members, n.Name)
	}
	return managerAgrees(ctx, t, members, primary, fmt.Sprintf("the monitor names %s the primary", primary))
}
