package topology

import (
	"context"
	"fmt"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pgaf"
)

// PgafView is the cluster as a pg_auto_failover monitor shows it.
type PgafView struct {
	Monitor   string `json:"monitor,omitempty"` // host:port of the monitor
	Formation string `json:"formation"`
	Group     int    `json:"group"`
	Error     string `json:"error,omitempty"`
	// Primary is the one node the monitor assigns a primary's state; ""
	// for none (or several).
	Primary string `json:"primary,omitempty"`
	// Unsettled says why the group is not settled ("" when it is: every
	// node in its assigned state, one primary, the others secondaries).
	Unsettled string     `json:"unsettled,omitempty"`
	Nodes     []PgafNode `json:"nodes,omitempty"`
	// Others are nodes the inventory does not have.
	Others []string `json:"nodes_not_in_inventory,omitempty"`
}

// PgafNode is one node in the monitor's view; the JSON names are those
// `switchover status --json` prints for each node, and are stable.
type PgafNode struct {
	Name     string     `json:"name,omitempty"`
	Reported pgaf.State `json:"reported_state"`
	Goal     pgaf.State `json:"goal_state"`
	Health   int        `json:"health"`
}

// String is the node for one line: "primary", or "report_lsn->secondary"
// while it moves.
func (n *PgafNode) String() string {
	if n.Reported == n.Goal {
		return string(n.Reported)
	}
	return fmt.Sprintf("%s->%s", n.Reported, n.Goal)
}

// askPgaf reads the monitor's view of the inventory's formation and group.
func askPgaf(ctx context.Context, m *cluster.Manager) *PgafView {
	v := &PgafView{Formation: m.Formation, Group: m.Group, Monitor: pgaf.Where(m.Monitor)}
	c, err := pgaf.New(m)
	if err != nil {
		v.Error = oneLine(err.Error())
		return v
	}
	st, err := c.View(ctx)
	if err != nil {
		v.Error = oneLine(err.Error())
		return v
	}
	v.Formation, v.Primary, v.Unsettled = st.Formation, st.Primary(), st.Unsettled()
	for _, n := range st.Nodes {
		v.Nodes = append(v.Nodes, PgafNode{Name: n.Name, Reported: n.Reported, Goal: n.Goal, Health: n.Health})
	}
	return v
}

// pgafView puts each node's state in the monitor's view beside what
// PostgreSQL said and says where they disagree: a node the monitor calls
// the primary that PostgreSQL calls a standby, or a primary in PostgreSQL
// the monitor does not assign a primary's state.
func pgafView(_ context.Context, t *Topology, _ *addressBook) {
	v := t.Pgaf
	if v == nil || v.Error != "" {
		return
	}
	known := map[string]bool{}
	for _, n := range t.Nodes {
		known[n.Name] = true
		var m *PgafNode
		for i := range v.Nodes {
			if v.Nodes[i].Name == n.Name {
				m = &v.Nodes[i]
			}
		}
		if m == nil {
			n.Disagrees = "the pg_auto_failover monitor lists no node " + n.Name
			continue
		}
		pn := *m
		pn.Name = "" // the node names it
		n.Pgaf = &pn
		// A node on its way between states may be either for a moment
		// (the candidate is promoted before the monitor assigns it a
		// primary's state, the old primary demoted after): only a node
		// settled in its state can disagree.
		switch {
		case !n.Reachable() || m.Reported != m.Goal:
		case m.Goal.IsPrimary() && n.Role == RoleStandby:
			n.Disagrees = fmt.Sprintf("the monitor shows it %s, PostgreSQL is in recovery", m)
		case !m.Goal.IsPrimary() && n.Role == RolePrimary && !outOfRecoveryInPassing(m.Goal):
			n.Disagrees = fmt.Sprintf("the monitor shows it %s, PostgreSQL is out of recovery", m)
		}
	}
	for _, m := range v.Nodes {
		if !known[m.Name] {
			v.Others = append(v.Others, m.Name)
		}
	}
}

// outOfRecoveryInPassing reports whether a node in this state may be out
// of recovery while a promotion goes on: the candidate promoted but not
// yet taking writes, or the old primary not yet stopped.
func outOfRecoveryInPassing(s pgaf.State) bool {
	switch s {
	case pgaf.StateStopReplication, pgaf.StateDraining, "demote_timeout", pgaf.StatePreparePromotion:
		return true
	}
	return false
}
