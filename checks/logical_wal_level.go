package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/logical"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "logical.wal_level",
		Doc:  "a node can take part in logical replication: wal_level = logical and free slots and WAL senders as a publisher, free logical replication and background workers as a subscriber",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "inventory node to look at (blue's primary, or green's)"},
			{Name: "as", Type: params.String, Default: "both", Enum: []string{"publisher", "subscriber", "both"},
				Doc: "the part it plays: publisher, subscriber, or both (each cluster is both in a move with a way back: blue publishes, then subscribes to green after the cutover)"},
			{Name: "subscriptions", Type: params.Int, Default: "1",
				Doc: "how many subscriptions it must have room for, on either side"},
		},
		New: func(v params.Values) (Check, error) {
			c := &LogicalWALLevel{Node: v.Node("node"), As: v.String("as"), Subscriptions: int(v.Int("subscriptions"))}
			switch {
			case c.Node == "":
				return nil, errors.New("node is empty")
			case c.Subscriptions < 1:
				return nil, fmt.Errorf("subscriptions is %d: want 1 or more", c.Subscriptions)
			}
			return c, nil
		},
	})
}

// LogicalWALLevel passes when a node can publish and/or subscribe. A
// publisher needs wal_level = logical, which only a restart brings, so it
// is found here, long before the window, with a slot and a WAL sender free
// per subscription. A subscriber needs an apply worker per subscription
// and, for the initial copy, max_sync_workers_per_subscription more
// background workers; short of them the copy crawls or never starts.
type LogicalWALLevel struct {
	Node          string
	As            string // publisher, subscriber or both
	Subscriptions int
}

var _ Check = (*LogicalWALLevel)(nil)

// Describe implements Check.
func (c *LogicalWALLevel) Describe(*cluster.Target) string {
	return fmt.Sprintf("on %s, as %s of %d subscription(s): wal_level, max_replication_slots, max_wal_senders, max_logical_replication_workers, max_worker_processes, max_sync_workers_per_subscription and what of them is in use", c.Node, c.As, c.Subscriptions)
}

// Run implements Check.
func (c *LogicalWALLevel) Run(ctx context.Context, t *cluster.Target) Result {
	return withWanted(c.run(ctx, t), c, t)
}

func (c *LogicalWALLevel) run(ctx context.Context, t *cluster.Target) Result {
	conn, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(conn)
	capa, err := logical.ReadCapacity(ctx, conn)
	if err != nil {
		return Errored(fmt.Errorf("%s: %s", c.Node, queryProblem(ctx, err)))
	}
	return c.judge(capa)
}

func (c *LogicalWALLevel) judge(capa logical.Capacity) Result {
	var problems []string
	if c.As != "subscriber" {
		problems = append(problems, capa.PublisherProblems(c.Subscriptions)...)
	}
	if c.As != "publisher" {
		problems = append(problems, capa.SubscriberProblems(c.Subscriptions)...)
	}
	values := map[string]any{"wal_level": capa.WALLevel, "max_replication_slots": capa.MaxReplicationSlots, "slots_used": capa.UsedSlots,
		"max_wal_senders": capa.MaxWALSenders, "wal_senders_used": capa.UsedWALSenders, "max_logical_replication_workers": capa.MaxLogicalWorkers,
		"max_worker_processes": capa.MaxWorkerProcesses, "max_sync_workers_per_subscription": capa.MaxSyncWorkers}
	wanted := fmt.Sprintf("%s ready to be a logical replication %s of %d subscription(s)", c.Node, c.As, c.Subscriptions)
	if len(problems) == 0 {
		r := Passed(fmt.Sprintf("%s: %s", c.Node, capa))
		r.Wanted, r.Values = wanted, values
		return r
	}
	r := Failed(fmt.Sprintf("%s: %s", c.Node, strings.Join(problems, "; ")), wanted)
	r.Values = values
	return r
}
