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
		Kind: "logical.caught_up",
		Doc:  "a subscription is enabled, every table of it copied and ready, and its slot on the publisher within max_lag_bytes of the publisher's current WAL position",
		Params: []params.Spec{
			{Name: "subscriber", Type: params.Node, Required: true, Doc: "inventory node the subscription is on (green's primary)"},
			{Name: "publisher", Type: params.Node, Required: true, Doc: "inventory node it subscribes to (blue's primary)"},
			{Name: "subscription", Type: params.String, Required: true, Doc: "the subscription's name; its slot on the publisher is the one it names"},
			{Name: "max_lag_bytes", Type: params.Bytes, Default: "16MB", Doc: "how far the slot's confirmed_flush_lsn may be behind the publisher's pg_current_wal_lsn()"},
		},
		New: func(v params.Values) (Check, error) {
			c := &LogicalCaughtUp{Subscriber: v.Node("subscriber"), Publisher: v.Node("publisher"),
				Subscription: v.String("subscription"), MaxLag: v.Int("max_lag_bytes")}
			if c.Subscription == "" {
				return nil, errors.New("subscription is empty")
			}
			return c, params.DistinctNodes(c.Subscriber, "subscriber", c.Publisher, "publisher")
		},
	})
}

// LogicalCaughtUp passes when a subscription keeps up with its
// publisher: enabled, its initial copy done (every table ready), and the
// WAL its subscriber has not yet confirmed within a bound. Before the
// cutover it bounds how long the held window's catch-up can take.
type LogicalCaughtUp struct {
	Subscriber, Publisher, Subscription string
	MaxLag                              int64
}

var _ Check = (*LogicalCaughtUp)(nil)

// Describe implements Check.
func (c *LogicalCaughtUp) Describe(*cluster.Target) string {
	return fmt.Sprintf("subscription %s on %s is enabled, every table of it ready (pg_subscription_rel), its slot on %s in use by its apply worker and within %s of pg_current_wal_lsn()",
		c.Subscription, c.Subscriber, c.Publisher, params.FormatBytes(c.MaxLag))
}

// Run implements Check.
func (c *LogicalCaughtUp) Run(ctx context.Context, t *cluster.Target) Result {
	return withWanted(c.run(ctx, t), c, t)
}

func (c *LogicalCaughtUp) run(ctx context.Context, t *cluster.Target) Result {
	sub, err := connectNode(ctx, t, c.Subscriber)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(sub)
	s, err := logical.ReadSubscription(ctx, sub, c.Subscription)
	if err != nil {
		return Errored(fmt.Errorf("%s: %s", c.Subscriber, queryProblem(ctx, err)))
	}
	if s == nil {
		return Failed(fmt.Sprintf("no subscription %s on %s", c.Subscription, c.Subscriber), c.Describe(t))
	}
	ts, err := logical.ReadTableSync(ctx, sub, c.Subscription)
	if err != nil {
		return Errored(fmt.Errorf("%s: %s", c.Subscriber, queryProblem(ctx, err)))
	}
	pub, err := connectNode(ctx, t, c.Publisher)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(pub)
	slot, err := logical.ReadSlot(ctx, pub, s.Slot)
	if err != nil {
		return Errored(fmt.Errorf("%s: %s", c.Publisher, queryProblem(ctx, err)))
	}
	return c.judge(s, ts, slot)
}

func (c *LogicalCaughtUp) judge(s *logical.Subscription, ts logical.TableSync, slot logical.Slot) Result {
	values := map[string]any{"enabled": s.Enabled, "slot_active": slot.Active, "tables": ts.Total, "ready": ts.Ready, "lag_bytes": slot.Lag(),
		"confirmed_flush_lsn": slot.Confirmed.String(), "publisher_lsn": slot.Current.String()}
	var problems []string
	if !s.Enabled {
		problems = append(problems, fmt.Sprintf("subscription %s is disabled", s.Name))
	}
	if len(ts.NotReady) > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d tables not ready: %s", len(ts.NotReady), ts.Total, logical.List(ts.NotReady)))
	}
	switch {
	case s.Slot == "":
		problems = append(problems, fmt.Sprintf("subscription %s has no slot (slot_name = NONE)", s.Name))
	case !slot.Exists:
		problems = append(problems, fmt.Sprintf("no slot %s on %s", s.Slot, c.Publisher))
	case !slot.Active:
		// An enabled subscription whose worker has not started yet (the
		// launcher starts it up to wal_retrieve_retry_interval after the
		// subscription is enabled again) would hold clients that long in
		// the window: the worker must be streaming before the pause.
		problems = append(problems, fmt.Sprintf("slot %s on %s is not in use: the apply worker of subscription %s is not streaming yet", s.Slot, c.Publisher, s.Name))
	case slot.Lag() > c.MaxLag:
		problems = append(problems, fmt.Sprintf("slot %s on %s confirmed %s, %s behind %s", s.Slot, c.Publisher, slot.Confirmed, logical.Size(slot.Lag()), slot.Current))
	}
	if len(problems) > 0 {
		r := Failed(fmt.Sprintf("on %s: %s", c.Subscriber, strings.Join(problems, "; ")), c.Describe(nil))
		r.Values = values
		return r
	}
	r := Passed(fmt.Sprintf("subscription %s on %s: %d tables ready, %s behind %s", s.Name, c.Subscriber, ts.Total, logical.Size(slot.Lag()), c.Publisher))
	r.Wanted, r.Values = c.Describe(nil), values
	return r
}
