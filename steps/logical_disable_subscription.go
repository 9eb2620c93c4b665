package steps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/logical"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "logical.disable_subscription",
		Doc:  "disables a subscription (ALTER SUBSCRIPTION ... DISABLE) and waits for its apply worker to stop; nothing when it is disabled already",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "inventory node the subscription is on"},
			{Name: "subscription", Type: params.String, Required: true, Doc: "the subscription's name"},
		},
		New: func(v params.Values) (Step, error) {
			s := &LogicalDisableSubscription{Node: v.Node("node"), Subscription: v.String("subscription")}
			if s.Node == "" {
				return nil, errors.New("node is empty")
			}
			return s, needName("subscription", s.Subscription)
		},
	})
}

// LogicalDisableSubscription is a step that stops a subscription
// applying, keeping it and its slot for the way back. At the cutover it
// comes before the reverse subscription is made: PostgreSQL before 16 has
// no origin = none, so two enabled subscriptions in a ring would send
// every change round and round.
type LogicalDisableSubscription struct {
	Node, Subscription string
}

var _ Step = (*LogicalDisableSubscription)(nil)

// Describe implements Step.
func (s *LogicalDisableSubscription) Describe(t *cluster.Target) Effect {
	return Effect{Node: nodeWhere(t, s.Node),
		Command: fmt.Sprintf("ALTER SUBSCRIPTION %s DISABLE; pg_terminate_backend() of its workers still in pg_stat_subscription, and wait until none is left", logical.Ident(s.Subscription)),
		Changes: fmt.Sprintf("%s stops applying changes from its publisher; the subscription and its slot stay (the slot keeps WAL on the publisher until dropped)", s.Node)}
}

// Apply implements Step.
func (s *LogicalDisableSubscription) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error {
		return fmt.Errorf("disable subscription %s on %q: %w", s.Subscription, s.Node, err)
	}
	conn, err := logicalConn(ctx, t, s.Node)
	if err != nil {
		return fail(err)
	}
	defer closeConn(conn)
	start := time.Now()
	changed, err := logical.SetEnabled(ctx, conn, s.Subscription, false)
	if err != nil {
		return fail(err)
	}
	if err := logical.WaitWorkerGone(ctx, conn, s.Subscription, 5*time.Millisecond); err != nil {
		return fail(err)
	}
	if !changed {
		t.Unchanged(fmt.Sprintf("subscription %s on %s is disabled already", s.Subscription, s.Node))
		return nil
	}
	t.Print(fmt.Sprintf("subscription %s on %s disabled, its apply worker gone, in %s", s.Subscription, s.Node, since(start)))
	return nil
}
