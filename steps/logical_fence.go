package steps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/logical"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind:        "logical.fence",
		Destructive: true,
		Doc:         "makes a node read-only for its clients (ALTER SYSTEM SET default_transaction_read_only = on, reload) and ends their sessions; subscriptions' apply workers and WAL senders go on",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "inventory node to fence (blue's primary at the cutover; green's on the way back)"},
		},
		New: func(v params.Values) (Step, error) {
			s := &LogicalFence{Node: v.Node("node")}
			if s.Node == "" {
				return nil, errors.New("node is empty")
			}
			return s, nil
		},
	})
	Register(Definition{
		Kind: "logical.unfence",
		Doc:  "lifts logical.fence: default_transaction_read_only back to what postgresql.auto.conf had before (fact <node>.logical_fence), reload; nothing when the node is not fenced",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "inventory node to unfence"},
		},
		New: func(v params.Values) (Step, error) {
			s := &LogicalUnfence{Node: v.Node("node")}
			if s.Node == "" {
				return nil, errors.New("node is empty")
			}
			return s, nil
		},
	})
}

// LogicalFenceFact is the fact that records what logical.fence replaced
// on a node (see pg.Fence); "" once lifted.
func LogicalFenceFact(node string) string { return node + ".logical_fence" }

// LogicalFence is a step of the cutover: once clients are held at the
// pooler, the side they leave is made read-only for anyone who reaches it
// directly, so no write lands there that the other side would never see.
// The apply worker of a subscription on the fenced node still applies,
// and its WAL senders still send: the fence is default_transaction_read_only,
// which binds statements, not the apply (TestLogicalFenceKeepsApplying).
// Unlike pg.ApplyFence it leaves synchronous_standby_names alone: the
// apply worker of a subscription with synchronous_commit = on would wait
// forever for its never-coming standby. Client sessions open are ended
// (their own SET default_transaction_read_only = off would outlive the
// reload); switchover's own session is spared, and so are background
// workers and WAL senders. What the setting was before is journaled for
// logical.unfence.
type LogicalFence struct {
	Node string
}

var _ Step = (*LogicalFence)(nil)

// Describe implements Step.
func (s *LogicalFence) Describe(t *cluster.Target) Effect {
	return Effect{Node: nodeWhere(t, s.Node), Command: logical.FenceSQL,
		Changes: fmt.Sprintf("every new transaction on %s is read-only unless it says otherwise, and its client sessions are ended; subscriptions there keep applying", s.Node)}
}

// Apply implements Step.
func (s *LogicalFence) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("fence %q: %w", s.Node, err) }
	conn, err := logicalConn(ctx, t, s.Node)
	if err != nil {
		return fail(err)
	}
	defer closeConn(conn)
	var prior pg.Fence
	if was, ok := t.Facts.Get(LogicalFenceFact(s.Node)); ok && was != "" {
		prior, _ = pg.ParseFence(was)
	}
	f, err := logical.ReadFence(ctx, conn, prior)
	if err != nil {
		return fail(err)
	}
	t.Facts.Set(LogicalFenceFact(s.Node), f.String())
	start := time.Now()
	ended, err := logical.Fence(ctx, conn, fenceWait)
	if err != nil {
		return fail(err)
	}
	t.Print(fmt.Sprintf("%s fenced in %s: new transactions are read-only, %s ended", s.Node, since(start),
		plural(ended, "1 client session", fmt.Sprintf("%d client sessions", ended))))
	return nil
}

// LogicalUnfence is a step that lifts logical.fence: the setting is put
// back as the fact recorded it (or reset, when the node had none in
// postgresql.auto.conf, or no fact is known); a value someone set since
// the fence is left as it is.
type LogicalUnfence struct {
	Node string
}

var _ Step = (*LogicalUnfence)(nil)

// Describe implements Step.
func (s *LogicalUnfence) Describe(t *cluster.Target) Effect {
	return Effect{Node: nodeWhere(t, s.Node),
		Command: fmt.Sprintf("when postgresql.auto.conf sets default_transaction_read_only = on: ALTER SYSTEM SET (or RESET) default_transaction_read_only as fact %s recorded; SELECT pg_reload_conf()", LogicalFenceFact(s.Node)),
		Changes: fmt.Sprintf("clients can write on %s again", s.Node)}
}

// Apply implements Step.
func (s *LogicalUnfence) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("unfence %q: %w", s.Node, err) }
	f := pg.Fence{}
	if was, ok := t.Facts.Get(LogicalFenceFact(s.Node)); ok && was != "" {
		var err error
		if f, err = pg.ParseFence(was); err != nil {
			return fail(err)
		}
	}
	conn, err := logicalConn(ctx, t, s.Node)
	if err != nil {
		return fail(err)
	}
	defer closeConn(conn)
	changed, err := logical.Unfence(ctx, conn, f, fenceWait)
	if err != nil {
		return fail(err)
	}
	t.Facts.Set(LogicalFenceFact(s.Node), "")
	if !changed {
		t.Unchanged(fmt.Sprintf("%s is not fenced", s.Node))
		return nil
	}
	t.Print(fmt.Sprintf("%s unfenced: clients can write there again", s.Node))
	return nil
}
