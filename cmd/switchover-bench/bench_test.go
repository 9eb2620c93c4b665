package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/claim"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/runbook"
)

// TestPoolerRoundTrip runs one round trip pg1 -> pg2 -> pg1 of the shipped
// playbook through the engine on a sandbox, as the benchmark's pooler mode
// does, and checks what it measured: the canary wrote through PgBouncer,
// lost nothing, saw no client error, and every step of the playbook was
// timed. Then the hand repoint of the patronictl comparison moves the
// pooler's writes away and back. One standby is enough for the harness and keeps it short.
func TestPoolerRoundTrip(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	rb, err := loadPlaybook(Playbook)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	b := &bench{o: Options{Runs: 1}, out: &out, log: &out, journal: t.TempDir(), rb: rb, sb: sb}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var all []*switchover
	for i, d := range [][2]string{{"pg1", "pg2"}, {"pg2", "pg1"}} {
		var claimed <-chan string
		wctx, stopWatch := context.WithCancel(ctx)
		if i == 0 {
			claimed = watchClaim(wctx, sb.Cluster())
		}
		s, err := b.switchover(ctx, rb, modePooler, sb.Inventory(), 1, d[0], d[1])
		stopWatch()
		if err != nil {
			t.Fatalf("%s -> %s: %v", d[0], d[1], err)
		}
		if claimed != nil {
			// The benchmark's run is the user's run: it held the
			// cluster's claim, let it go at its end, and its guard
			// watched the pause.
			run := <-claimed
			if run == "" {
				t.Errorf("%s -> %s: the benchmark's run never held the cluster's claim", d[0], d[1])
			} else if recs, err := runbook.ReadGuard(b.journal, run); err != nil || len(recs) == 0 {
				t.Errorf("%s -> %s: run %s started no guard (%d records, %v)", d[0], d[1], run, len(recs), err)
			}
			if err := (&claim.Store{Cluster: sb.Cluster()}).Check(ctx, ""); err != nil {
				t.Errorf("%s -> %s: after the run: %v", d[0], d[1], err)
			}
		}
		if !strings.Contains(s.endpoint, "pooler") {
			t.Errorf("%s -> %s: the canary wrote through %q, not the pooler", d[0], d[1], s.endpoint)
		}
		if s.lost != 0 || s.errors != 0 {
			t.Errorf("%s -> %s: %d commits lost, %d client errors; want none through the pooler", d[0], d[1], s.lost, s.errors)
		}
		if s.acked == 0 || s.windowMS <= 0 {
			t.Errorf("%s -> %s: the canary measured %d commits and a %v ms window", d[0], d[1], s.acked, s.windowMS)
		}
		for _, step := range []string{"preflight", "pause-pooler", "promote", "repoint-pooler", "resume-pooler", "rejoin-old-primary", "verify"} {
			if s.steps[step] <= 0 {
				t.Errorf("%s -> %s: step %s not timed (steps: %v)", d[0], d[1], step, s.steps)
			}
		}
		if s.totalMS <= 0 || s.precondMS <= 0 || s.precondMS >= s.totalMS {
			t.Errorf("%s -> %s: %v ms in all, %v ms in preconditions", d[0], d[1], s.totalMS, s.precondMS)
		}
		all = append(all, s)
	}
	pooler := statsOf(all, modePooler)
	if len(pooler.window) != 2 || pooler.lost != 0 {
		t.Errorf("the round trip's figures: %+v", pooler)
	}

	// The patronictl comparison's hand repoint, on the same PgBouncer: to
	// the standby, where a write through the pooler is refused, and back.
	if err := repointPoolerByHand(ctx, sb, "pg2"); err != nil {
		t.Fatalf("repoint by hand to pg2: %v", err)
	}
	if err := tryWrite(ctx, sb.ClientConninfo()); err == nil {
		t.Errorf("a write through the pooler committed after the hand repoint to the standby pg2")
	}
	if err := repointPoolerByHand(ctx, sb, "pg1"); err != nil {
		t.Fatalf("repoint by hand to pg1: %v", err)
	}
	if err := waitWritable(ctx, sb.ClientConninfo(), 10*time.Second); err != nil {
		t.Errorf("after the hand repoint back to pg1: %v", err)
	}
}

// watchClaim polls the cluster's claim until ctx ends, and then sends the
// id of the run it saw holding it ("" when none did).
func watchClaim(ctx context.Context, c *cluster.Cluster) <-chan string {
	out := make(chan string, 1)
	go func() {
		run := ""
		defer func() { out <- run }()
		for ctx.Err() == nil {
			var held *claim.HeldError
			if err := (&claim.Store{Cluster: c}).Check(ctx, ""); errors.As(err, &held) {
				run = held.Holder.RunID
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return out
}
