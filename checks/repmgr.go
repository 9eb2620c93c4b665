package checks

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/repmgr"
	"github.com/switchover/switchover/internal/topology"
)

func init() {
	Register(Definition{
		Kind:    "repmgr.agrees",
		Manager: cluster.ManagerRepmgr,
		Doc:     "repmgr's metadata (repmgr.nodes on the primary) registers as the active primary the node PostgreSQL runs as the only primary, and every standby with the upstream it streams from",
		New:     func(params.Values) (Check, error) { return &RepmgrAgrees{}, nil },
	})
	Register(Definition{
		Kind:    "repmgr.daemon_paused",
		Manager: cluster.ManagerRepmgr,
		Doc:     "repmgrd is paused on every node (repmgr.repmgrd_is_paused()), so it neither promotes a standby nor makes one follow on its own",
		New:     func(params.Values) (Check, error) { return &RepmgrPaused{}, nil },
	})
}

// RepmgrAgrees passes when repmgr's registration matches PostgreSQL: one
// active primary, the node out of recovery, and each standby registered
// under the node it streams from. repmgrd acts on the registration: a
// registration that names the old primary after a switchover makes it look
// for a primary that is gone, and repmgr's own commands (standby follow,
// switchover) act on the wrong node.
type RepmgrAgrees struct{}

var _ Check = (*RepmgrAgrees)(nil)

// Describe implements Check.
func (c *RepmgrAgrees) Describe(t *cluster.Target) string {
	return fmt.Sprintf("repmgr.nodes (database %s, read on the primary) registers the running primary as primary and each standby under the node it streams from", repmgr.Database(managerOf(t)))
}

func managerOf(t *cluster.Target) *cluster.Manager {
	if t == nil || t.Cluster == nil {
		return nil
	}
	return t.Cluster.Manager
}

// Run implements Check.
func (c *RepmgrAgrees) Run(ctx context.Context, t *cluster.Target) Result {
	if m := managerOf(t); m == nil || m.Kind != cluster.ManagerRepmgr {
		return Errored(fmt.Errorf("repmgr.agrees: the inventory's manager is not repmgr"))
	}
	top := topology.Inspect(ctx, t.Cluster, topology.Options{StateOnly: true,
		Connect: func(ctx context.Context, name string, _ *cluster.Node) (*pgx.Conn, error) {
			return connectNode(ctx, t, name)
		}})
	v := top.Repmgr
	wanted := "repmgr's registered primary and upstreams those PostgreSQL runs"
	if v == nil || v.Error != "" {
		what := "no view"
		if v != nil {
			what = v.Error
		}
		return Result{Status: Error, Observed: "repmgr's view could not be read: " + what, Wanted: wanted}
	}
	var seen, problems []string
	for _, n := range top.Nodes {
		switch {
		case !n.Reachable():
			problems = append(problems, fmt.Sprintf("%s does not answer, so whether repmgr has it right is unknown: %s", n.Name, n.Error))
		case n.Role == topology.RolePrimary:
			seen = append(seen, n.Name+": PostgreSQL primary")
		default:
			seen = append(seen, fmt.Sprintf("%s: PostgreSQL standby from %s", n.Name, orDash(n.UpstreamNode)))
		}
	}
	seen = append(seen, fmt.Sprintf("repmgr.nodes on %s: %s", v.From, v.View.String()))
	if len(top.Primaries) != 1 {
		problems = append(problems, fmt.Sprintf("PostgreSQL runs %d primaries (%s), so repmgr cannot agree", len(top.Primaries), strings.Join(top.Primaries, ", ")))
	}
	if v.Primary == "" {
		problems = append(problems, "repmgr has no single active primary registered")
	}
	problems = append(problems, repmgr.Describe(v.Disagreements)...)
	if len(v.Others) > 0 {
		seen = append(seen, "registered but not in the inventory: "+strings.Join(v.Others, ", "))
	}
	values := map[string]any{"repmgr_primary": v.Primary, "read_on": v.From, "disagreements": len(v.Disagreements)}
	if len(problems) > 0 {
		r := Failed(strings.Join(problems, "; "), wanted+"; bring them into agreement with repmgr primary register --force / standby register --force (repmgr.register_after_switchover)")
		r.Detail, r.Values = strings.Join(seen, "\n"), values
		return r
	}
	r := Passed(fmt.Sprintf("repmgr registers %s as the primary and every standby under the node it streams from, as PostgreSQL runs them", v.Primary))
	r.Detail, r.Values = strings.Join(seen, "\n"), values
	return r
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// RepmgrPaused passes when repmgrd is paused on every node. repmgrd that
// is not paused sees the primary stop during the switchover and promotes
// a standby of its own choosing, or makes the standbys follow one.
type RepmgrPaused struct{}

var _ Check = (*RepmgrPaused)(nil)

// Describe implements Check.
func (c *RepmgrPaused) Describe(t *cluster.Target) string {
	return "SELECT repmgr.repmgrd_is_paused() is true on every node"
}

// Run implements Check.
func (c *RepmgrPaused) Run(ctx context.Context, t *cluster.Target) Result {
	m := managerOf(t)
	if m == nil || m.Kind != cluster.ManagerRepmgr {
		return Errored(fmt.Errorf("repmgr.daemon_paused: the inventory's manager is not repmgr"))
	}
	return repmgrdPaused(ctx, t.Cluster)
}

// repmgrdPaused is the verdict of repmgr.daemon_paused, and of
// cluster.maintenance for a repmgr cluster.
func repmgrdPaused(ctx context.Context, c *cluster.Cluster) Result {
	v := repmgr.Read(ctx, c, "")
	var paused, running, seen []string
	var unknown []string
	for _, d := range v.Daemons {
		switch {
		case d.Error != "":
			unknown = append(unknown, fmt.Sprintf("%s: %s", d.Node, d.Error))
			seen = append(seen, d.Node+": unknown")
		case d.Paused:
			paused = append(paused, d.Node)
			seen = append(seen, fmt.Sprintf("%s: paused (repmgrd running %t)", d.Node, d.Running))
		default:
			running = append(running, d.Node)
			seen = append(seen, fmt.Sprintf("%s: not paused (repmgrd running %t)", d.Node, d.Running))
		}
	}
	values := map[string]any{"manager": "repmgr", "paused": len(paused), "not_paused": len(running)}
	wanted := "repmgrd paused on every node (repmgr service pause)"
	switch {
	case len(running) > 0:
		r := Failed(fmt.Sprintf("repmgrd is not paused on %s: it would promote or follow on its own during the switchover; pause it (repmgr service pause) or add a repmgr.pause step", strings.Join(running, ", ")), wanted)
		r.Detail, r.Values = strings.Join(seen, "\n"), values
		return r
	case len(unknown) > 0:
		r := Result{Status: Error, Observed: "whether repmgrd is paused is unknown on " + strings.Join(unknown, "; "), Wanted: wanted}
		r.Detail, r.Values = strings.Join(seen, "\n"), values
		return r
	}
	r := Passed(fmt.Sprintf("repmgrd is paused on every node (%s)", strings.Join(paused, ", ")))
	r.Detail, r.Values = strings.Join(seen, "\n"), values
	return r
}
