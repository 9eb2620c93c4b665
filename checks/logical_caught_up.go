package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/kinds"
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
			{Name: "max_apply_time", Type: params.Duration, Default: "0s", Doc: "when more than 0: the publisher's flushed WAL position is taken and the slot read every few milliseconds until it confirms it; taking longer fails the check (the time the held window's catch-up would take)"},
		},
		New: func(v params.Values) (Check, error) {
			c := &LogicalCaughtUp{Subscriber: v.Node("subscriber"), Publisher: v.Node("publisher"),
				Subscription: v.String("subscription"), MaxLag: v.Int("max_lag_bytes"), MaxApplyTime: v.Duration("max_apply_time")}
			if c.MaxApplyTime < 0 {
				return nil, errors.New("max_apply_time is negative")
			}
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
// cutover it bounds how long the held window's catch-up can take: in
// bytes, and, with MaxApplyTime, in time, measured (logical.ProbeApply).
// A subscriber that started late (PostgreSQL's launcher starts an apply
// worker at most once in wal_retrieve_retry_interval) has a backlog of
// the commits made meanwhile; one a transaction, each synced, it can take
// longer to apply than its bytes suggest, while the application goes on
// committing. Measured before the pause, that backlog is waited out with
// no client held.
type LogicalCaughtUp struct {
	Subscriber, Publisher, Subscription string
	MaxLag                              int64
	MaxApplyTime                        time.Duration
}

// probeEvery is how often the apply probe reads the slot.
const probeEvery = 5 * time.Millisecond

var _ Check = (*LogicalCaughtUp)(nil)

// Describe implements Check.
func (c *LogicalCaughtUp) Describe(*cluster.Target) string {
	d := fmt.Sprintf("subscription %s on %s is enabled, every table of it ready (pg_subscription_rel), its slot on %s in use by its apply worker and within %s of pg_current_wal_lsn()",
		c.Subscription, c.Subscriber, c.Publisher, params.FormatBytes(c.MaxLag))
	if c.MaxApplyTime > 0 {
		d += fmt.Sprintf(", and confirming %s's flushed position within %s", c.Publisher, c.MaxApplyTime)
	}
	return d
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
	r := c.judge(s, ts, slot)
	if r.Status != kinds.Pass || c.MaxApplyTime <= 0 {
		return r
	}
	p, err := logical.ProbeApply(ctx, pub, s.Slot, c.MaxApplyTime, probeEvery)
	if err != nil {
		return Errored(fmt.Errorf("%s: %s", c.Publisher, queryProblem(ctx, err)))
	}
	return c.judgeApply(r, s, p)
}

// judgeApply adds the apply probe's verdict to a passing judge's.
func (c *LogicalCaughtUp) judgeApply(r Result, s *logical.Subscription, p logical.ApplyProbe) Result {
	r.Values["apply_ms"] = float64(p.Took.Microseconds()) / 1000
	r.Values["apply_target_lsn"] = p.Target.String()
	if !p.Done() {
		f := Failed(fmt.Sprintf("on %s: slot %s on %s confirmed %s, not yet %s, what %s had flushed %s before: the apply worker of subscription %s has a backlog, and clients would be held while it applies the rest",
			c.Subscriber, s.Slot, c.Publisher, p.Last, p.Target, c.Publisher, roundDuration(p.Took), s.Name), c.Describe(nil))
		f.Values = r.Values
		return f
	}
	r.Observed += fmt.Sprintf("; applied what %s had flushed in %s", c.Publisher, roundDuration(p.Took))
	return r
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
