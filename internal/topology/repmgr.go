package topology

import (
	"context"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/repmgr"
)

// RepmgrView is repmgr's view of the cluster: repmgr.nodes as the primary
// holds it, repmgrd on each node, and where repmgr and PostgreSQL disagree.
type RepmgrView struct {
	repmgr.View
	// Primary is the node repmgr has registered as the active primary; ""
	// for none, or several.
	Primary string `json:"primary,omitempty"`
	// Disagreements are the nodes whose registration differs from what
	// PostgreSQL says, each with how; empty when they agree.
	Disagreements map[string]string `json:"disagreements,omitempty"`
	// Others are registered nodes the inventory does not have.
	Others []string `json:"nodes_not_in_inventory,omitempty"`
}

// askRepmgr reads repmgr's view once PostgreSQL's is known (the table is
// read on the node that answered as the only primary), puts each node's
// record beside it and names the disagreements on the nodes.
func askRepmgr(ctx context.Context, c *cluster.Cluster, t *Topology) {
	from := ""
	if len(t.Primaries) == 1 {
		from = t.Primaries[0]
	}
	v := &RepmgrView{View: *repmgr.Read(ctx, c, from)}
	t.Repmgr = v
	if v.Error != "" {
		return
	}
	v.Primary = v.View.Primary()
	var actual []repmgr.Actual
	known := map[string]bool{}
	for _, n := range t.Nodes {
		known[n.Name] = true
		if r, ok := v.Record(n.Name); ok {
			r := r
			n.Repmgr = &r
		}
		if d, ok := v.Daemon(n.Name); ok {
			d := d
			n.Repmgrd = &d
		}
		actual = append(actual, repmgr.Actual{Name: n.Name, Reachable: n.Reachable(), Primary: n.Role == RolePrimary, Upstream: n.UpstreamNode})
	}
	v.Disagreements = v.View.Disagreements(actual)
	for name, d := range v.Disagreements {
		if n := t.Node(name); n != nil {
			n.Disagrees = "repmgr: " + d
		}
	}
	for _, r := range v.Records {
		if !known[r.Name] {
			v.Others = append(v.Others, r.Name)
		}
	}
}
