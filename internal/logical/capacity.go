package logical

import (
	"context"
	"fmt"
)

// Capacity is what a node has for logical replication: the settings that
// bound it, and how much of each is taken.
type Capacity struct {
	WALLevel string
	// A publisher's side: a slot and a WAL sender per subscription.
	MaxReplicationSlots int
	UsedSlots           int // every slot, physical or logical
	MaxWALSenders       int
	UsedWALSenders      int
	// A subscriber's side: an apply worker per subscription, and table
	// synchronisation workers during the initial copy, all background
	// workers.
	MaxLogicalWorkers    int // max_logical_replication_workers
	MaxWorkerProcesses   int
	MaxSyncWorkers       int // max_sync_workers_per_subscription
	UsedLogicalWorkers   int // apply and table synchronisation workers running
	UsedBackgroundWorker int // every background worker running, those among them
}

// ReadCapacity reads a node's capacity for logical replication.
func ReadCapacity(ctx context.Context, q Querier) (Capacity, error) {
	var c Capacity
	err := q.QueryRow(ctx, `SELECT current_setting('wal_level'),
  current_setting('max_replication_slots')::int, (SELECT count(*) FROM pg_replication_slots)::int,
  current_setting('max_wal_senders')::int, (SELECT count(*) FROM pg_stat_replication)::int,
  current_setting('max_logical_replication_workers')::int, current_setting('max_worker_processes')::int,
  current_setting('max_sync_workers_per_subscription')::int,
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('logical replication worker', 'logical replication apply worker', 'logical replication tablesync worker', 'logical replication parallel worker'))::int,
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type NOT IN ('client backend', 'walsender', 'checkpointer', 'background writer', 'walwriter', 'autovacuum launcher', 'startup', 'walreceiver', 'archiver', 'logger', 'autovacuum worker'))::int`).
		Scan(&c.WALLevel, &c.MaxReplicationSlots, &c.UsedSlots, &c.MaxWALSenders, &c.UsedWALSenders,
			&c.MaxLogicalWorkers, &c.MaxWorkerProcesses, &c.MaxSyncWorkers, &c.UsedLogicalWorkers, &c.UsedBackgroundWorker)
	if err != nil {
		return c, fmt.Errorf("read the logical replication settings: %w", err)
	}
	return c, nil
}

// PublisherProblems says what keeps a node from publishing to
// subscriptions more subscriptions: wal_level, and a free slot and WAL
// sender for each. Nothing when it can.
func (c Capacity) PublisherProblems(subscriptions int) []string {
	var out []string
	if c.WALLevel != "logical" {
		out = append(out, fmt.Sprintf("wal_level is %s, not logical: ALTER SYSTEM SET wal_level = logical, then a restart of the server (a reload is not enough)", c.WALLevel))
	}
	if free := c.MaxReplicationSlots - c.UsedSlots; free < subscriptions {
		out = append(out, fmt.Sprintf("%d of max_replication_slots = %d are free, %d wanted (a slot per subscription; raising it needs a restart)", max(free, 0), c.MaxReplicationSlots, subscriptions))
	}
	if free := c.MaxWALSenders - c.UsedWALSenders; free < subscriptions {
		out = append(out, fmt.Sprintf("%d of max_wal_senders = %d are free, %d wanted (a WAL sender per subscription, another per table copied at once; raising it needs a restart)", max(free, 0), c.MaxWALSenders, subscriptions))
	}
	return out
}

// SubscriberProblems says what keeps a node from running subscriptions
// more subscriptions, each copying its tables with up to
// max_sync_workers_per_subscription workers at once.
func (c Capacity) SubscriberProblems(subscriptions int) []string {
	var out []string
	want := subscriptions * (1 + max(c.MaxSyncWorkers, 0))
	if free := c.MaxLogicalWorkers - c.UsedLogicalWorkers; free < subscriptions {
		out = append(out, fmt.Sprintf("%d of max_logical_replication_workers = %d are free, at least %d wanted (an apply worker per subscription; raising it needs a restart)", max(free, 0), c.MaxLogicalWorkers, subscriptions))
	}
	if c.MaxSyncWorkers < 1 {
		out = append(out, fmt.Sprintf("max_sync_workers_per_subscription is %d: no table would ever be copied", c.MaxSyncWorkers))
	}
	// The launcher and every logical worker are background workers.
	if free := c.MaxWorkerProcesses - c.UsedBackgroundWorker; free < want {
		out = append(out, fmt.Sprintf("%d of max_worker_processes = %d are free, %d wanted (an apply worker and max_sync_workers_per_subscription = %d copy workers per subscription; raising it needs a restart)", max(free, 0), c.MaxWorkerProcesses, want, c.MaxSyncWorkers))
	}
	return out
}

// String renders the capacity on one line.
func (c Capacity) String() string {
	return fmt.Sprintf("wal_level %s, slots %d/%d, wal senders %d/%d, logical workers %d/%d, background workers %d/%d, sync workers per subscription %d",
		c.WALLevel, c.UsedSlots, c.MaxReplicationSlots, c.UsedWALSenders, c.MaxWALSenders,
		c.UsedLogicalWorkers, c.MaxLogicalWorkers, c.UsedBackgroundWorker, c.MaxWorkerProcesses, c.MaxSyncWorkers)
}
