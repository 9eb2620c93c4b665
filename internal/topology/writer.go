package topology

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/pg"
)

// Writer is where clients may be sent when nobody is there to decide (a
// run's guard, after the run's process ended while clients were held): the
// one node that takes writes and, in a cluster whose manager moves the
// primary on its own, the node the manager has settled as its primary.
// A node that takes writes is not enough there: while Patroni or a
// pg_auto_failover monitor demotes the old primary it still takes writes
// for a moment, and what it takes then is lost when the candidate is
// promoted.
type Writer struct {
	// Node is the node clients may go to; "" when none may.
	Node string
	// Writable are the nodes that answered as a primary taking writes (out
	// of recovery, not read-only), by name.
	Writable []string
	// Why says why no node may take clients; "" when Node is set.
	Why string
	// Agrees says which manager agrees Node is the primary, for messages:
	// "Patroni holds it the running leader"; "" without a manager that
	// moves the primary.
	Agrees string
}

// writerTimeout bounds each question FindWriter asks.
const writerTimeout = 2 * time.Second

// FindWriter asks every node whether it takes writes and, when the cluster
// has a manager that moves the primary on its own, the manager which node
// it has settled as the primary. repmgr's daemon only fails over a
// primary that has been gone for a while, and the repmgr playbook pauses
// it, so there PostgreSQL's answer decides, as in a cluster without a
// manager.
func FindWriter(ctx context.Context, c *cluster.Cluster) Writer {
	w := Writer{Writable: WritableNodes(ctx, c)}
	if len(w.Writable) != 1 {
		w.Why = "no node takes writes"
		if len(w.Writable) > 1 {
			w.Why = "more than one node takes writes (" + strings.Join(w.Writable, ", ") + ")"
		}
		return w
	}
	node := w.Writable[0]
	if c.Manager == nil {
		w.Node = node
		return w
	}
	mctx, cancel := context.WithTimeout(ctx, writerTimeout)
	defer cancel()
	switch c.Manager.Kind {
	case cluster.ManagerPatroni:
		w.Why = patroniWriter(mctx, c.Manager, node)
	case cluster.ManagerPgAutoFailover:
		w.Why = pgafWriter(mctx, c.Manager, node)
	}
	if w.Why == "" {
		w.Node = node
		switch c.Manager.Kind {
		case cluster.ManagerPatroni:
			w.Agrees = "Patroni shows it the running leader"
		case cluster.ManagerPgAutoFailover:
			w.Agrees = "the pg_auto_failover monitor has settled it as the primary"
		}
	}
	return w
}

// patroniWriter says why node may not take clients in Patroni's view, or
// "" when Patroni agrees it is the primary: it holds the leader lock and
// its PostgreSQL runs.
func patroniWriter(ctx context.Context, m *cluster.Manager, node string) string {
	v := askPatroni(ctx, m)
	if v.Error != "" {
		return fmt.Sprintf("%s takes writes, but Patroni could not be asked whether it is the leader: %s", node, v.Error)
	}
	for _, pm := range v.Members {
		if pm.Name != node {
			continue
		}
		if pm.leader && pm.State == patroni.StateRunning {
			return ""
		}
		return fmt.Sprintf("%s takes writes, but Patroni shows it %s, %s, not the running leader", node, pm.Role, pm.State)
	}
	return fmt.Sprintf("%s takes writes, but Patroni lists no member %s", node, node)
}

// pgafWriter says why node may not take clients in the pg_auto_failover
// monitor's view, or "" when the monitor has assigned it, and no other
// node, a primary's state, and it has reached that state.
func pgafWriter(ctx context.Context, m *cluster.Manager, node string) string {
	v := askPgaf(ctx, m)
	if v.Error != "" {
		return fmt.Sprintf("%s takes writes, but the pg_auto_failover monitor could not be asked whether it is the primary: %s", node, v.Error)
	}
	var seen []string
	for _, n := range v.Nodes {
		seen = append(seen, n.Name+" "+n.String())
	}
	if v.Primary != node {
		return fmt.Sprintf("%s takes writes, but the monitor does not assign it alone a primary's state (%s)", node, strings.Join(seen, ", "))
	}
	for _, n := range v.Nodes {
		if n.Name == node && n.Reported != n.Goal {
			return fmt.Sprintf("%s takes writes, but has not reached the state the monitor assigned it (%s)", node, strings.Join(seen, ", "))
		}
	}
	return ""
}

// WritableNodes returns the nodes that answer as a primary taking writes
// (out of recovery, not read-only), in name order; a node that does not
// answer within a second is not one.
func WritableNodes(ctx context.Context, c *cluster.Cluster) []string {
	var mu sync.Mutex
	var out []string
	var wg sync.WaitGroup
	for name, n := range c.Nodes {
		wg.Add(1)
		go func(name, conninfo string) {
			defer wg.Done()
			qctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			conn, err := pg.Connect(qctx, conninfo, time.Second)
			if err != nil {
				return
			}
			defer pg.Release(conn)
			var inRecovery, readOnly bool
			if err := conn.QueryRow(qctx, "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')::bool").Scan(&inRecovery, &readOnly); err != nil {
				return
			}
			if !inRecovery && !readOnly {
				mu.Lock()
				out = append(out, name)
				mu.Unlock()
			}
		}(name, n.Conninfo)
	}
	wg.Wait()
	sort.Strings(out)
	return out
}
