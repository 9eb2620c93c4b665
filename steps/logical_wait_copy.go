package steps

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/logical"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "logical.wait_copy",
		Doc:  "waits for a subscription's initial copy: every table ready, then its slot within max_lag_bytes of the publisher; prints the progress (tables ready, bytes copied, lag) about once a second",
		Params: []params.Spec{
			{Name: "subscriber", Type: params.Node, Required: true, Doc: "inventory node the subscription is on (green's primary)"},
			{Name: "publisher", Type: params.Node, Required: true, Doc: "inventory node it copies from (blue's primary)"},
			{Name: "subscription", Type: params.String, Required: true, Doc: "the subscription's name"},
			{Name: "max_lag_bytes", Type: params.Bytes, Default: "16MB", Doc: "how far behind the publisher's current WAL position the slot may be once the copy is done"},
			{Name: "within", Type: params.Duration, Default: "6h", Doc: "how long the copy may take (the step's timeout must allow it)"},
			{Name: "every", Type: params.Duration, Default: "1s", Doc: "how often the progress is read and printed"},
		},
		New: func(v params.Values) (Step, error) {
			s := &LogicalWaitCopy{Subscriber: v.Node("subscriber"), Publisher: v.Node("publisher"), Subscription: v.String("subscription"),
				MaxLag: v.Int("max_lag_bytes"), Within: v.Duration("within"), Every: v.Duration("every")}
			return s, subscriptionWait(s.Subscriber, s.Publisher, s.Subscription, s.Every, s.Within)
		},
	})
}

// LogicalWaitCopy is a step that waits for the initial copy of a
// subscription and says how it goes: how many tables are ready of how
// many, how many bytes are copied of the published tables' size on the
// publisher (the ready tables' sizes, and what the copy workers have read
// so far of the others, pg_stat_progress_copy), and then how far the slot
// is behind. The figures go to the output as lines (events of the run)
// and, at the end, to facts.
type LogicalWaitCopy struct {
	Subscriber, Publisher, Subscription string
	MaxLag                              int64
	Within, Every                       time.Duration
}

var _ Step = (*LogicalWaitCopy)(nil)

// CopyFact is the fact under which logical.wait_copy records what a
// subscription's copy came to (tables, bytes, time).
func CopyFact(subscription, what string) string { return "logical." + subscription + ".copy_" + what }

// Describe implements Step.
func (s *LogicalWaitCopy) Describe(t *cluster.Target) Effect {
	return Effect{Node: nodeWhere(t, s.Subscriber),
		Command: fmt.Sprintf("every %s for up to %s: on %s pg_subscription_rel of %s and pg_stat_progress_copy; on %s the tables' sizes and the slot's confirmed_flush_lsn against pg_current_wal_lsn(), until every table is ready and the lag is within %s",
			s.Every, s.Within, s.Subscriber, s.Subscription, s.Publisher, params.FormatBytes(s.MaxLag)),
		Changes: ""}
}

// Apply implements Step.
func (s *LogicalWaitCopy) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error {
		return fmt.Errorf("wait for the copy of %s on %q: %w", s.Subscription, s.Subscriber, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.Within)
	defer cancel()
	sub, err := logicalConn(ctx, t, s.Subscriber)
	if err != nil {
		return fail(err)
	}
	defer closeConn(sub)
	pub, err := logicalConn(ctx, t, s.Publisher)
	if err != nil {
		return fail(err)
	}
	defer closeConn(pub)
	sc, err := logical.ReadSubscription(ctx, sub, s.Subscription)
	if err != nil {
		return fail(err)
	}
	if sc == nil {
		return fail(fmt.Errorf("no subscription %s on %s", s.Subscription, s.Subscriber))
	}
	if !sc.Enabled {
		return fail(fmt.Errorf("subscription %s is disabled: it copies nothing", s.Subscription))
	}
	sizes, err := logical.TableBytes(ctx, pub)
	if err != nil {
		return fail(err)
	}
	var total int64
	for _, b := range sizes {
		total += b
	}
	start := time.Now()
	var last string
	err = poll(ctx, s.Every, func(ctx context.Context) (bool, string, error) {
		ts, err := logical.ReadTableSync(ctx, sub, s.Subscription)
		if err != nil {
			return false, "", err
		}
		copying, err := logical.CopiedBytes(ctx, sub)
		if err != nil {
			return false, "", err
		}
		slot, err := logical.ReadSlot(ctx, pub, sc.Slot)
		if err != nil {
			return false, "", err
		}
		waiting := map[string]bool{}
		for _, n := range ts.NotReadyNames() {
			waiting[n] = true
		}
		var done int64
		for name, b := range sizes {
			if !waiting[name] {
				done += b
			}
		}
		done = min(done+copying, total)
		line := fmt.Sprintf("copy of %s: %d/%d tables ready, %s of %s copied, slot %s behind %s",
			s.Subscription, ts.Ready, ts.Total, logical.Size(done), logical.Size(total), logical.Size(slot.Lag()), s.Publisher)
		if line != last {
			t.Print(line)
			last = line
		}
		ok := ts.Total > 0 && ts.Ready == ts.Total && slot.Exists && slot.Lag() <= s.MaxLag
		if ok {
			t.Facts.Set(CopyFact(s.Subscription, "tables"), strconv.Itoa(ts.Total))
			t.Facts.Set(CopyFact(s.Subscription, "bytes"), strconv.FormatInt(total, 10))
			t.Facts.Set(CopyFact(s.Subscription, "seconds"), strconv.FormatFloat(time.Since(start).Seconds(), 'f', 1, 64))
		}
		return ok, line, nil
	})
	if err != nil {
		return fail(err)
	}
	t.Print(fmt.Sprintf("copy of %s done: every table ready, in %s", s.Subscription, since(start)))
	return nil
}
