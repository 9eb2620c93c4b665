// Package manager is what the tool knows of each kind of cluster manager
// an inventory may name, in one place: how messages call it, whether it
// moves the primary on its own, and how to ask it which node it has
// settled as the primary. Each kind is one entry of the registry (kinds)
// beside the client package that speaks to it (internal/patroni,
// internal/repmgr, internal/pgaf); its steps register with the kind they
// need (steps.Definition.Manager), and follow its switchover through the
// loop all managers' steps share.
package manager

import (
	"context"
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/oneline"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/pgaf"
)

// Kind is one kind of cluster manager.
type Kind struct {
	Kind cluster.ManagerKind
	// Name is how messages call it.
	Name string
	// Settled asks the manager whether it has settled node, which takes
	// writes, as its primary: "" when it has, else why it has not, for
	// messages. nil for a manager that does not move the primary on its
	// own a moment after a primary goes (repmgr's daemon waits a while
	// and the repmgr playbook pauses it): there PostgreSQL's answer
	// decides where clients go, as in a cluster without a manager.
	Settled func(ctx context.Context, m *cluster.Manager, node string) string
	// Agrees says, for messages, what the manager shows of a node it has
	// settled as the primary.
	Agrees string
}

// kinds are the cluster managers the tool knows, in the order messages
// list them. A new manager is a client package and an entry here.
var kinds = []Kind{
	{Kind: cluster.ManagerPatroni, Name: "Patroni", Settled: patroniSettled,
		Agrees: "Patroni shows it the running leader"},
	{Kind: cluster.ManagerRepmgr, Name: "repmgr"},
	{Kind: cluster.ManagerPgAutoFailover, Name: "the pg_auto_failover monitor", Settled: pgafSettled,
		Agrees: "the pg_auto_failover monitor has settled it as the primary"},
}

// Lookup returns the kind of manager an inventory calls k.
func Lookup(k cluster.ManagerKind) (Kind, bool) {
	for _, m := range kinds {
		if m.Kind == k {
			return m, true
		}
	}
	return Kind{}, false
}

// Known lists the kinds an inventory may name, quoted, for messages:
// `"patroni", "repmgr" or "pg_auto_failover"`.
func Known() string {
	q := make([]string, len(kinds))
	for i, m := range kinds {
		q[i] = fmt.Sprintf("%q", m.Kind)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// patroniSettled: node holds the leader lock and its PostgreSQL runs.
func patroniSettled(ctx context.Context, m *cluster.Manager, node string) string {
	st, err := askPatroni(ctx, m)
	if err != nil {
		return fmt.Sprintf("%s takes writes, but Patroni could not be asked whether it is the leader: %s", node, oneline.Of(err.Error()))
	}
	pm, ok := st.Member(node)
	switch {
	case !ok:
		return fmt.Sprintf("%s takes writes, but Patroni lists no member %s", node, node)
	case pm.SettledLeader():
		return ""
	}
	return fmt.Sprintf("%s takes writes, but Patroni shows it %s, %s, not the running leader", node, pm.Role, pm.State)
}

func askPatroni(ctx context.Context, m *cluster.Manager) (*patroni.State, error) {
	c, err := patroni.New(m)
	if err != nil {
		return nil, err
	}
	return c.Cluster(ctx)
}

// pgafSettled: the monitor assigns node, and no other node, a primary's
// state, and node has reached that state.
func pgafSettled(ctx context.Context, m *cluster.Manager, node string) string {
	v, err := askPgaf(ctx, m)
	if err != nil {
		return fmt.Sprintf("%s takes writes, but the pg_auto_failover monitor could not be asked whether it is the primary: %s", node, oneline.Of(err.Error()))
	}
	if v.Primary() != node {
		return fmt.Sprintf("%s takes writes, but the monitor does not assign it alone a primary's state (%s)", node, v)
	}
	if n, _ := v.Node(node); n.Reported != n.Goal {
		return fmt.Sprintf("%s takes writes, but has not reached the state the monitor assigned it (%s)", node, v)
	}
	return ""
}

func askPgaf(ctx context.Context, m *cluster.Manager) (*pgaf.View, error) {
	c, err := pgaf.New(m)
	if err != nil {
		return nil, err
	}
	return c.View(ctx)
}
