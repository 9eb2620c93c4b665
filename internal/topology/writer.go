package topology

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/manager"
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
	k, ok := manager.Lookup(c.Manager.Kind)
	if !ok || k.Settled == nil {
		w.Node = node
		return w
	}
	mctx, cancel := context.WithTimeout(ctx, writerTimeout)
	defer cancel()
	if w.Why = k.Settled(mctx, c.Manager, node); w.Why == "" {
		w.Node, w.Agrees = node, k.Agrees
	}
	return w
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
