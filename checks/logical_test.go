package checks

import (
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/logical"
	"github.com/switchover/switchover/internal/pg"
)

// The verdicts of the logical.* checks from what they read; the checks
// against real servers run in steps' TestLogicalMove, beside the steps.

func TestLogicalWALLevelJudge(t *testing.T) {
	t.Parallel()
	c := &LogicalWALLevel{Node: "blue", As: "publisher", Subscriptions: 1}
	r := c.judge(logical.Capacity{WALLevel: "replica", MaxReplicationSlots: 10, MaxWALSenders: 10})
	if r.Status != Fail || !strings.Contains(r.Observed, "wal_level is replica") || !strings.Contains(r.Observed, "restart") {
		t.Errorf("replica: %s %s", r.Status, r.Observed)
	}
	c.As = "subscriber"
	if r := c.judge(logical.Capacity{WALLevel: "replica", MaxLogicalWorkers: 4, MaxWorkerProcesses: 8, MaxSyncWorkers: 2}); r.Status != Pass {
		t.Errorf("a subscriber needs no wal_level: %s %s", r.Status, r.Observed)
	}
}

func TestLogicalCaughtUpJudge(t *testing.T) {
	t.Parallel()
	c := &LogicalCaughtUp{Subscriber: "green", Publisher: "blue", Subscription: "s", MaxLag: 1 << 20}
	sub := &logical.Subscription{Name: "s", Enabled: true, Slot: "s"}
	ready := logical.TableSync{Total: 2, Ready: 2}
	if r := c.judge(sub, ready, logical.Slot{Name: "s", Exists: true, Active: true, Confirmed: 100, Current: 200}); r.Status != Pass {
		t.Errorf("caught up: %s %s", r.Status, r.Observed)
	}
	// Enabled again, its worker not started yet: what was applied is
	// close, but nothing would apply while clients are held.
	if r := c.judge(sub, ready, logical.Slot{Name: "s", Exists: true, Confirmed: 100, Current: 200}); r.Status != Fail || !strings.Contains(r.Observed, "apply worker of subscription s is not streaming yet") {
		t.Errorf("worker not started: %s %s", r.Status, r.Observed)
	}
	r := c.judge(&logical.Subscription{Name: "s", Slot: "s"}, logical.TableSync{Total: 2, Ready: 1, NotReady: []string{"public.big (copying)"}},
		logical.Slot{Name: "s", Exists: true, Active: true, Confirmed: 0, Current: pg.LSN(64 << 20)})
	for _, want := range []string{"subscription s is disabled", "1 of 2 tables not ready: public.big (copying)", "64.0 MB behind"} {
		if r.Status != Fail || !strings.Contains(r.Observed, want) {
			t.Errorf("want %q in %s %s", want, r.Status, r.Observed)
		}
	}
}

// TestLogicalCaughtUpApplyProbe: a slot within bytes of its publisher
// whose subscriber did not confirm the probe's position in time fails,
// saying where it was and what clients would wait for; one that did
// passes, saying how long it took.
func TestLogicalCaughtUpApplyProbe(t *testing.T) {
	t.Parallel()
	c := &LogicalCaughtUp{Subscriber: "green", Publisher: "blue", Subscription: "s", MaxLag: 16 << 20, MaxApplyTime: 250 * time.Millisecond}
	sub := &logical.Subscription{Name: "s", Enabled: true, Slot: "s"}
	passed := func() Result {
		return c.judge(sub, logical.TableSync{Total: 1, Ready: 1}, logical.Slot{Name: "s", Exists: true, Active: true, Confirmed: 100, Current: 300 << 10})
	}
	r := c.judgeApply(passed(), sub, logical.ApplyProbe{Target: 300 << 10, Last: 100, Took: 251 * time.Millisecond})
	for _, want := range []string{"slot s on blue confirmed 0/64, not yet 0/4B000", "flushed 251ms before", "has a backlog", "clients would be held"} {
		if r.Status != Fail || !strings.Contains(r.Observed, want) {
			t.Errorf("want %q in %s %s", want, r.Status, r.Observed)
		}
	}
	if r.Values["apply_ms"] != 251.0 {
		t.Errorf("apply_ms = %v, want 251", r.Values["apply_ms"])
	}
	r = c.judgeApply(passed(), sub, logical.ApplyProbe{Target: 300 << 10, Last: 300 << 10, Took: 12 * time.Millisecond})
	if r.Status != Pass || !strings.HasSuffix(r.Observed, "applied what blue had flushed in 12ms") {
		t.Errorf("applied in time: %s %s", r.Status, r.Observed)
	}
	if !strings.Contains(c.Describe(nil), "confirming blue's flushed position within 250ms") {
		t.Errorf("describe: %s", c.Describe(nil))
	}
}

func TestLogicalUnsupportedJudge(t *testing.T) {
	t.Parallel()
	c := &LogicalUnsupported{Node: "blue"}
	r := c.judge(logical.Oddities{MaterializedViews: []string{"public.mv"}})
	if r.Status != Pass || !strings.Contains(r.Detail, "public.mv") {
		t.Errorf("a materialized view: %s %s / %s", r.Status, r.Observed, r.Detail)
	}
	r = c.judge(logical.Oddities{LargeObjects: 3, Unlogged: []string{"public.cache"}})
	if r.Status != Fail || !strings.Contains(r.Observed, "3 large objects") || !strings.Contains(r.Observed, "public.cache") {
		t.Errorf("large objects and unlogged: %s %s", r.Status, r.Observed)
	}
}
