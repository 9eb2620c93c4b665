package runbook

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/switchover/switchover/internal/claim"
	"github.com/switchover/switchover/runbook/journal"
)

// memClaim is a cluster's claim and fleet records in memory.
type memClaim struct {
	mu     sync.Mutex
	holder string
	done   map[string]claim.Done
	// heldAtDoneRead says whether the claim was held when the record
	// was read, and at the write.
	heldAtRead, heldAtMark bool
}

func (c *memClaim) Check(_ context.Context, mine string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holder != "" && c.holder != mine {
		return &claim.HeldError{Cluster: "main", Holder: claim.Holder{RunID: c.holder}}
	}
	return nil
}

func (c *memClaim) Take(_ context.Context, h Holder, resuming string, takeOver bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holder != "" && c.holder != h.RunID && c.holder != resuming && !takeOver {
		return &claim.HeldError{Cluster: "main", Holder: claim.Holder{RunID: c.holder}}
	}
	c.holder = h.RunID
	return nil
}

func (c *memClaim) Release(_ context.Context, runID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holder == runID {
		c.holder = ""
	}
	return nil
}

func (c *memClaim) FleetDone(_ context.Context, fleet string) (*claim.Done, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.heldAtRead = c.holder != ""
	if d, ok := c.done[fleet]; ok {
		return &d, nil
	}
	return nil, nil
}

func (c *memClaim) MarkFleetDone(_ context.Context, d claim.Done) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.heldAtMark = c.holder == d.RunID
	if _, ok := c.done[d.Fleet]; !ok {
		c.done[d.Fleet] = d
	}
	return nil
}

// A run of a fleet records, under its claim, that the fleet switched the
// cluster; a second run of that fleet is refused (exit 6) without acting,
// whatever its journal directory; a run of another fleet, or of none, is
// not.
func TestFleetRecordInTheCluster(t *testing.T) {
	t.Parallel()
	mc := &memClaim{done: map[string]claim.Done{}}
	l := &callLog{}
	run := func(fleet string) (*Result, error, *recorder) {
		rec := &recorder{}
		o := options(t, rec)
		o.Claim, o.Fleet = mc, fleet
		res, err := Run(context.Background(), newPlan(act(l, "promote")), o)
		return res, err, rec
	}
	res, err, rec := run("monthly")
	if err != nil || res.Outcome != journal.OutcomeDone {
		t.Fatalf("first run: %v, %+v", err, res)
	}
	if d, ok := mc.done["monthly"]; !ok || d.RunID != res.RunID || !mc.heldAtMark || !mc.heldAtRead {
		t.Fatalf("record %+v (held at read %v, at mark %v), want run %s's, under its claim", d, mc.heldAtRead, mc.heldAtMark, res.RunID)
	}
	if evs := rec.ofType(journal.EventRunStarted); evs[0].Run.Fleet != "monthly" {
		t.Errorf("run.started names fleet %q", evs[0].Run.Fleet)
	}
	noted := false
	for _, e := range rec.ofType(journal.EventNote) {
		noted = noted || strings.Contains(e.Message, "recorded in the cluster: fleet monthly switched it")
	}
	if !noted {
		t.Errorf("no note of the record: %+v", rec.ofType(journal.EventNote))
	}

	res2, err, _ := run("monthly")
	var fd *FleetDoneError
	if !errors.Is(err, ErrLocked) || !errors.As(err, &fd) || fd.Done.RunID != res.RunID {
		t.Fatalf("second run of the fleet: %v, want a FleetDoneError naming %s", err, res.RunID)
	}
	if res2.Outcome != journal.OutcomePrecondition || l.count("promote") != 1 || mc.holder != "" {
		t.Errorf("second run: outcome %s, promote ran %d times, claim held by %q; want refused, once, released", res2.Outcome, l.count("promote"), mc.holder)
	}
	if _, err, _ := run("other-fleet"); err != nil {
		t.Errorf("a run of another fleet: %v", err)
	}
	if _, err, _ := run(""); err != nil {
		t.Errorf("a run of no fleet: %v", err)
	}
	if l.count("promote") != 3 {
		t.Errorf("promote ran %d times, want 3", l.count("promote"))
	}
}
