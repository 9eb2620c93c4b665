package faults

// Faults injected into real sandboxes before and during a switchover: each
// test says where the run must stop, what it must have done, what the
// cluster must look like afterwards, and that there were never two primaries.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
)

// pgCtlOn runs pg_ctl on a node's data directory as the servers' user.
func pgCtlOn(sb *sandbox.Sandbox, n sandbox.Node, args string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := sandboxtest.Shell(sb).Run(ctx, fmt.Sprintf("%s %s -D %s", filepath.Join(sb.BinDir, "pg_ctl"), args, n.DataDir))
	if err == nil && out.ExitCode != 0 {
		err = fmt.Errorf("exit %d: %s", out.ExitCode, out.Combined())
	}
	if err != nil {
		return fmt.Errorf("pg_ctl %s on %s: %w", args, n.Name, err)
	}
	return nil
}

// startNode starts a stopped node and waits until it accepts connections.
func startNode(t *testing.T, sb *sandbox.Sandbox, name string) {
	t.Helper()
	n := sandboxtest.Node(t, sb, name)
	if err := pgCtlOn(sb, n, "start -w -t 50 -l "+filepath.Join(n.DataDir, "faults-test.log")); err != nil {
		t.Fatal(err)
	}
}

// wantRolledBack asserts the state a rollback must leave: pg1 the primary
// on timeline 1 taking the writes made through PgBouncer.
func wantRolledBack(t *testing.T, sb *sandbox.Sandbox, ev *playbookstest.Events, topo string) {
	t.Helper()
	text := ev.Text()
	for _, want := range []string{"section.started", "restart-old-primary done", "resume-pooler-on-old-primary done"} {
		if !strings.Contains(text, want) {
			t.Errorf("events lack %q:\n%s", want, text)
		}
	}
	if got := sandboxtest.WriteThroughPooler(t, sb); got != sandboxtest.Node(t, sb, "pg1").Port {
		t.Fatalf("after the rollback the pooler wrote to port %d, want pg1 (%d)", got, sandboxtest.Node(t, sb, "pg1").Port)
	}
	if got := sandboxtest.Topology(t, sb); !strings.HasPrefix(got, topo) {
		t.Fatalf("after the rollback: %s, want %s…", got, topo)
	}
}

// 1. The replication link from the candidate to the primary is cut: the run
// stops at preflight, nothing acted, nothing changed.
func TestFaultReplicationLinkCut(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	cand := sandboxtest.Connect(t, sb, "pg2", "postgres")
	ctx := context.Background()
	for _, sql := range []string{"ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 connect_timeout=1'", "SELECT pg_reload_conf()"} {
		if _, err := cand.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var streaming bool
		if err := cand.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')").Scan(&streaming); err != nil {
			t.Fatal(err)
		}
		if !streaming {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pg2 still streams 20s after its primary_conninfo went to port 1")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before, pooler := sandboxtest.Topology(t, sb), sandboxtest.PoolerTarget(t, sb)
	// The sampler every fault test relies on must see these two
	// primaries: direct writers commit on both in overlapping time.
	roles := sandboxtest.StartSampler(sb)
	t.Cleanup(func() { roles.Finish() })

	ev, err := playbookstest.Run(t, sb, playbook, false, "catch_up_within=2s")
	if !errors.Is(err, runbook.ErrPrecondition) {
		t.Fatalf("run with pg2 cut off from pg1: %v, want a precondition failure (exit 3)\n%s", err, ev.Text())
	}
	if got := ev.ActionsRun(); len(got) != 0 {
		t.Fatalf("actions ran: %v, want none", got)
	}
	if !strings.Contains(ev.Text(), "preflight failed") || !strings.Contains(ev.Text(), "pg2") {
		t.Fatalf("the failure is not preflight's about pg2:\n%s", ev.Text())
	}
	if got := sandboxtest.Topology(t, sb); got != before {
		t.Fatalf("topology changed: %s, was %s", got, before)
	}
	if got := sandboxtest.PoolerTarget(t, sb); got != pooler {
		t.Fatalf("the pooler changed: %s, was %s", got, pooler)
	}
	if got := sandboxtest.WriteThroughPooler(t, sb); got != sandboxtest.Node(t, sb, "pg1").Port {
		t.Fatalf("the pooler wrote to port %d, want pg1", got)
	}
	recordFault(t, "replication link candidate-primary cut", ev, err, sb)
}

// 2. A session takes an advisory lock on the candidate after preflight:
// the recheck before the destructive steps stops the run (pause-pooler's
// precondition, or stop-primary's postcondition), the rollback leaves pg1
// the primary, pg2 is never promoted.
func TestFaultBlockingSessionAppearsAfterPreflight(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	var holder *pgConn
	var hookErr error
	hook := func(ev journal.Event) {
		if holder != nil || !playbookstest.IsStep(ev, "checkpoint", journal.StateRunning) {
			return
		}
		holder, hookErr = openLocked(sb, sandboxtest.Node(t, sb, "pg2"))
	}
	roles := sandboxtest.StartSampler(sb)
	ev, err := playbookstest.RunHooked(t, sb, playbook, hook)
	roles.Finish().CheckKeptOnPrimary(t, sb)
	if holder != nil {
		defer holder.close()
	}
	if hookErr != nil || holder == nil {
		t.Fatalf("the blocking session was not opened: %v", hookErr)
	}
	// Earlier steps had acted (the canary, the checkpoint): the engine
	// reports a failure after changes as an action failure (exit 4).
	if !errors.Is(err, runbook.ErrAction) {
		t.Fatalf("run with a lock taken on pg2 mid-run: %v, want an action failure (exit 4)\n%s", err, ev.Text())
	}
	text := ev.Text()
	if !strings.Contains(text, "pg.no_blocking_sessions fail") || !strings.Contains(text, "advisory") {
		t.Fatalf("the failure does not name the blocking session:\n%s", text)
	}
	playbookstest.NoActionBut(t, ev, "sync-on-candidate", "start-canary", "checkpoint", "pause-pooler", "stop-primary")
	wantRolledBack(t, sb, ev, fmt.Sprintf("pg1=primary/1 pg2=standby<%d/1", sandboxtest.Node(t, sb, "pg1").Port))
	recordFault(t, "blocking session on the candidate after preflight", ev, err, sb)
}

// pgConn is a session the test holds open on a node.
type pgConn struct{ close func() }

// openLocked opens a session on n that holds an advisory lock.
func openLocked(sb *sandbox.Sandbox, n sandbox.Node) (*pgConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pg.Connect(ctx, sb.Conninfo(n, "app"), 0)
	if err != nil {
		return nil, err
	}
	if _, err := c.Exec(ctx, "SELECT pg_advisory_lock(4242)"); err != nil {
		c.Close(context.Background())
		return nil, err
	}
	return &pgConn{close: func() { c.Close(context.Background()) }}, nil
}

// 3. The old primary does not stop in time (a smart shutdown waits for a
// client that stays): pg.stop fails with the server still shutting down;
// the rollback finishes that shutdown fast and starts pg1 again as the
// primary, serving writes through PgBouncer.
func TestFaultOldPrimaryDoesNotStopInTime(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	client := sandboxtest.Connect(t, sb, "pg1", "app") // stays connected: a smart shutdown waits for it
	if err := client.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	roles := sandboxtest.StartSampler(sb)
	ev, err := playbookstest.Run(t, sb, playbook, false, "stop_mode=smart", "stop_timeout=2s")
	roles.Finish().CheckKeptOnPrimary(t, sb)
	if !errors.Is(err, runbook.ErrAction) {
		t.Fatalf("run with a smart stop that cannot finish: %v, want an action failure (exit 4)\n%s", err, ev.Text())
	}
	text := ev.Text() + ev.Output()
	for _, want := range []string{"stop-primary failed", "still running after 2s", "is running but shutting down", "finishing the shutdown fast", "pg1 started"} {
		if !strings.Contains(text, want) {
			t.Errorf("events lack %q:\n%s", want, text)
		}
	}
	playbookstest.NoActionBut(t, ev, "sync-on-candidate", "start-canary", "checkpoint", "pause-pooler", "drain-router", "stop-primary")
	wantRolledBack(t, sb, ev, "pg1=primary/1 pg2=standby")
	recordFault(t, "old primary does not stop in time (smart, 2s)", ev, err, sb)
}

// 4. The candidate goes down between the old primary's stop and its
// promotion: pg.promote fails; the candidate's control file shows it never
// finished a promotion, so the rollback starts pg1 again as the primary.
// Started again, pg2 comes back as a standby: no split brain.
func TestFaultPromotionImpossible(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	var hookErr error
	stopped := false
	hook := func(ev journal.Event) {
		if stopped || !playbookstest.IsStep(ev, "stop-primary", journal.StateDone) {
			return
		}
		stopped = true
		hookErr = pgCtlOn(sb, sandboxtest.Node(t, sb, "pg2"), "stop -m fast -w -t 30")
	}
	roles := sandboxtest.StartSampler(sb)
	ev, err := playbookstest.RunHooked(t, sb, playbook, hook)
	roles.Finish().CheckKeptOnPrimary(t, sb)
	if hookErr != nil || !stopped {
		t.Fatalf("pg2 was not stopped after stop-primary: %v\n%s", hookErr, ev.Text())
	}
	if !errors.Is(err, runbook.ErrAction) {
		t.Fatalf("run with pg2 stopped before its promotion: %v, want an action failure (exit 4)\n%s", err, ev.Text())
	}
	text := ev.Text()
	for _, want := range []string{"promote failed", "pg.not_primary pass", "shut down in recovery"} {
		if !strings.Contains(text, want) {
			t.Errorf("events lack %q:\n%s", want, text)
		}
	}
	playbookstest.NoActionBut(t, ev, "sync-on-candidate", "start-canary", "checkpoint", "pause-pooler", "drain-router", "stop-primary", "promote")
	wantRolledBack(t, sb, ev, "pg1=primary/1 pg2=down")

	startNode(t, sb, "pg2")
	pg1 := sandboxtest.Node(t, sb, "pg1")
	want := fmt.Sprintf("pg1=primary/1 pg2=standby<%d/1 pg3=standby<%d/1", pg1.Port, pg1.Port)
	waitTopology(t, sb, want)
	recordFault(t, "promotion fails (candidate stopped first)", ev, err, sb)
}

// waitTopology waits until the topology is want (standbys reconnect to a
// restarted primary after a while).
func waitTopology(t *testing.T, sb *sandbox.Sandbox, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := sandboxtest.Topology(t, sb)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topology %s, want %s", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// primaryNow reports whether n answers and is out of recovery.
func primaryNow(sb *sandbox.Sandbox, n sandbox.Node) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	c, err := pg.Connect(ctx, sb.Conninfo(n, "postgres"), 0)
	if err != nil {
		return false
	}
	defer c.Close(context.Background())
	var recovery bool
	if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovery); err != nil {
		return false
	}
	return !recovery
}

// 5. Two nodes claim to be the primary: the run refuses before any action
// and names both.
func TestFaultTwoPrimariesAtPreflight(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	pg3 := sandboxtest.Node(t, sb, "pg3")
	stopNode(t, sb, "pg3")
	out, err := sandboxtest.Shell(sb).Run(context.Background(), "rm "+filepath.Join(pg3.DataDir, "standby.signal"))
	if err != nil || out.ExitCode != 0 {
		t.Fatalf("rm standby.signal: %v %s", err, out.Combined())
	}
	startNode(t, sb, "pg3")
	if !primaryNow(sb, pg3) {
		t.Fatalf("pg3 is not a primary: %s", sandboxtest.Topology(t, sb))
	}
	before, pooler := sandboxtest.Topology(t, sb), sandboxtest.PoolerTarget(t, sb)
	// The sampler every fault test relies on must see these two
	// primaries: direct writers commit on both in overlapping time.
	roles := sandboxtest.StartSampler(sb)
	t.Cleanup(func() { roles.Finish() })

	ev, err := playbookstest.Run(t, sb, playbook, false, "catch_up_within=2s")
	if !errors.Is(err, runbook.ErrPrecondition) {
		t.Fatalf("run with pg1 and pg3 both primaries: %v, want a precondition failure (exit 3)\n%s", err, ev.Text())
	}
	if got := ev.ActionsRun(); len(got) != 0 {
		t.Fatalf("actions ran: %v, want none", got)
	}
	var topo string
	for _, l := range strings.Split(ev.Text(), "\n") {
		if strings.Contains(l, "pg.topology fail") {
			topo = l
		}
	}
	if !strings.Contains(topo, "pg1") || !strings.Contains(topo, "pg3") {
		t.Fatalf("pg.topology's failure does not name pg1 and pg3 (%q):\n%s", topo, ev.Text())
	}
	if got := sandboxtest.Topology(t, sb); got != before {
		t.Fatalf("topology changed: %s, was %s", got, before)
	}
	if got := sandboxtest.PoolerTarget(t, sb); got != pooler {
		t.Fatalf("the pooler changed: %s, was %s", got, pooler)
	}
	recordFault(t, "two primaries at preflight", ev, err, sb)
	for deadline := time.Now().Add(10 * time.Second); roles.Acknowledged("pg1") < 5 || roles.Acknowledged("pg3") < 5; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the sampler's direct writers did not commit on both primaries within 10s: pg1 %d, pg3 %d",
				roles.Acknowledged("pg1"), roles.Acknowledged("pg3"))
		}
	}
	if seen := roles.Finish(); len(seen.Splits) == 0 {
		t.Errorf("the sampler saw pg1 and pg3 commit, but never in overlapping time: %d commits", len(seen.Commits))
	} else {
		t.Logf("the sampler sees the two primaries: %d overlapping commits, first %s", len(seen.Splits), seen.Splits[0])
	}
}
