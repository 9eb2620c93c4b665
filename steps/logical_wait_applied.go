package steps

import (
	"context"
	"fmt"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/logical"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "logical.wait_applied",
		Doc:  "once clients are held: takes the publisher's WAL position (fact logical.<subscription>.applied_lsn) and waits until the subscription's slot has confirmed it, so every change committed on the publisher is applied and flushed on the subscriber",
		Params: []params.Spec{
			{Name: "subscriber", Type: params.Node, Required: true, Doc: "inventory node the subscription is on (green's primary)"},
			{Name: "publisher", Type: params.Node, Required: true, Doc: "inventory node it subscribes to (blue's primary, clients held)"},
			{Name: "subscription", Type: params.String, Required: true, Doc: "the subscription's name"},
			{Name: "every", Type: params.Duration, Default: "5ms", Doc: "time between two reads of the slot (one connection, kept)"},
			{Name: "within", Type: params.Duration, Default: "10s", Doc: "how long the subscriber may take to apply the rest; clients are held meanwhile"},
		},
		New: func(v params.Values) (Step, error) {
			s := &LogicalWaitApplied{Subscriber: v.Node("subscriber"), Publisher: v.Node("publisher"), Subscription: v.String("subscription"),
				Every: v.Duration("every"), Within: v.Duration("within")}
			return s, subscriptionWait(s.Subscriber, s.Publisher, s.Subscription, s.Every, s.Within)
		},
	})
}

// LogicalWaitApplied is the cutover's catch-up: with clients held, every
// change committed on the publisher must be on the subscriber before
// clients go there. It takes a position L on the publisher past every
// commit made so far (the WAL insert position, read in a transaction whose
// commit flushes the WAL up to itself: the WAL sender decodes flushed WAL
// only, and would otherwise wait for the WAL writer), then reads the
// subscription's slot on the publisher until its confirmed_flush_lsn is L
// or more, on one connection, every few milliseconds.
//
// That position is the apply's, not a keepalive's: a subscription made by
// logical.subscribe streams no transaction in progress, so its WAL sender
// sends each transaction whole, at its commit, in commit order, and
// reports a position only once every transaction committed before it is
// sent; the apply worker confirms a position only once every transaction
// before it is applied and flushed on the subscriber. A marker row written
// after the pause would prove no more, and would need a table of ours in
// the user's publication.
//
// How long it takes is how long the subscriber takes to confirm: with its
// subscription's synchronous_commit off (PostgreSQL's default) the apply
// worker confirms a transaction only once the subscriber's WAL writer has
// flushed it, a few hundred milliseconds of the held window; with local
// (logical.subscribe's synchronous_commit, given before the cutover) it
// confirms at once.
type LogicalWaitApplied struct {
	Subscriber, Publisher, Subscription string
	Every, Within                       time.Duration
}

var _ Step = (*LogicalWaitApplied)(nil)

// AppliedFact is the fact under which logical.wait_applied records the
// publisher's position it waited for.
func AppliedFact(subscription string) string { return "logical." + subscription + ".applied_lsn" }

// Describe implements Step.
func (s *LogicalWaitApplied) Describe(t *cluster.Target) Effect {
	return Effect{Node: nodeWhere(t, s.Publisher),
		Command: fmt.Sprintf("on %s: %s; then every %s for up to %s: SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = <slot of %s on %s>, until it reaches that position",
			s.Publisher, logical.MarkSQL, s.Every, s.Within, s.Subscription, s.Subscriber),
		Changes: fmt.Sprintf("none (one empty transaction on %s, to flush its WAL)", s.Publisher)}
}

// Apply implements Step.
func (s *LogicalWaitApplied) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error {
		return fmt.Errorf("wait for %q to apply what %q committed: %w", s.Subscriber, s.Publisher, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.Within)
	defer cancel()
	sub, err := logicalConn(ctx, t, s.Subscriber)
	if err != nil {
		return fail(err)
	}
	sc, err := logical.ReadSubscription(ctx, sub, s.Subscription)
	closeConn(sub)
	switch {
	case err != nil:
		return fail(err)
	case sc == nil:
		return fail(fmt.Errorf("no subscription %s on %s", s.Subscription, s.Subscriber))
	case !sc.Enabled:
		return fail(fmt.Errorf("subscription %s on %s is disabled: it applies nothing", s.Subscription, s.Subscriber))
	case sc.Slot == "":
		return fail(fmt.Errorf("subscription %s on %s has no slot", s.Subscription, s.Subscriber))
	}
	pub, err := logicalConn(ctx, t, s.Publisher)
	if err != nil {
		return fail(err)
	}
	defer closeConn(pub)
	start := time.Now()
	target, err := logical.Mark(ctx, pub)
	if err != nil {
		return fail(err)
	}
	t.Facts.Set(AppliedFact(s.Subscription), target.String())
	at, err := logical.WaitConfirmed(ctx, pub, sc.Slot, target, s.Every)
	if err != nil {
		return fail(err)
	}
	t.Print(fmt.Sprintf("%s applied everything %s committed up to %s (slot %s at %s) in %s", s.Subscriber, s.Publisher, target, sc.Slot, at, since(start)))
	return nil
}
