package playbooks_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/canary"
	"github.com/switchover/switchover/internal/pgbouncer"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
)

// The logical playbooks' names.
const (
	logicalPrepare = "logical-prepare"
	logicalCutover = "logical-cutover"
	logicalCleanup = "logical-cleanup"
)

// stopMoveWriter stops the independent writer and fails the test unless
// it lost nothing and met no error; it returns what it measured.
func stopMoveWriter(t *testing.T, w *canary.Writer) canary.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := w.Stop(ctx)
	if err != nil {
		t.Fatalf("independent writer: %v", err)
	}
	if len(r.Lost) > 0 || r.Errors > 0 {
		t.Fatalf("independent writer through PgBouncer: %d acknowledged, %d lost %v, %d errors %v", r.Acked, len(r.Lost), r.Lost, r.Errors, r.ErrorKinds)
	}
	return r
}

// cutover runs logical-cutover from -> to under pgbench and an independent
// writer through PgBouncer, and checks what a DBA is promised: the run
// done, nothing lost, no client error, every row and sequence on to, and
// clients writing on to.
func cutover(t *testing.T, sb *sandbox.Sandbox, from, to string) {
	t.Helper()
	bench := sandboxtest.StartPgbench(t, sb, 4, 6*time.Second)
	w := sandboxtest.StartMoveWriter(t, sb)
	time.Sleep(time.Second) // some load before the cutover, as in production
	ev, err := playbookstest.Run(t, sb, logicalCutover, false, "from="+from, "to="+to)
	if err != nil {
		t.Fatalf("logical-cutover %s -> %s: %v\n%s", from, to, err, ev.Text())
	}
	playbookstest.WantNothingLost(t, ev)
	f := ev.Facts()
	if f["canary.errors"] != "0" {
		t.Errorf("the run's canary met %s client errors", f["canary.errors"])
	}
	tx := bench.Wait(t, 2*time.Minute)
	r := stopMoveWriter(t, w)
	t.Logf("cutover %s -> %s: canary window %s ms; independent writer: %d acknowledged, 0 lost, 0 errors, longest gap %s, longest wait %s; pgbench: %s transactions, 0 failed",
		from, to, f["canary.window_ms"], r.Acked, r.Window.Round(100*time.Microsecond), r.LongestWait.Round(100*time.Microsecond), tx)
	// Well under the hold cap, and under PostgreSQL's
	// wal_retrieve_retry_interval (5s): a cutover that paused before the
	// subscription's apply worker streamed again (it starts up to that
	// long after being enabled on the way back) held clients some 4.6s.
	if r.Window > 3*time.Second {
		t.Errorf("clients waited %s, want well under the hold cap; the run:\n%s", r.Window, ev.Text())
	}
	if got := sandboxtest.PoolerTarget(t, sb); !strings.Contains(got, fmt.Sprintf("port=%d ", sandboxtest.Node(t, sb, to).Port)) {
		t.Errorf("PgBouncer routes app to %s, want %s", got, to)
	}
	if got := sandboxtest.QueryApp(t, sb, from, "SELECT current_setting('default_transaction_read_only')"); got != "on" {
		t.Errorf("%s's default_transaction_read_only is %s after the cutover, want on (read-only for direct clients)", from, got)
	}
	if got := sandboxtest.QueryApp(t, sb, to, "SELECT current_setting('default_transaction_read_only')"); got != "off" {
		t.Errorf("%s's default_transaction_read_only is %s after the cutover, want off", to, got)
	}
	sandboxtest.WantSameRows(t, sb, from, to)
	sandboxtest.WantSequencesAhead(t, sb, from, to)
}

// TestLogicalMoveRoundTrip: blue (pg1) to green (green1) and back by the
// shipped playbooks, under pgbench through PgBouncer (TPC-B like, and
// inserts into a table with a bigserial sequence) and an independent
// writer: prepare refused for a table without a primary key, then
// accepted with allow_replica_identity_full; a DDL made since the prepare
// refused at the cutover with nothing held; the cutover and the way back
// each done with nothing lost, no client error, the same rows on both
// sides and every sequence on the new side at least the old one's; the
// cleanup twice, the second dropping nothing. Then three cutovers one
// right after the other, each holding clients well under a second.
func TestLogicalMoveRoundTrip(t *testing.T) {
	sb := sandboxtest.NewGreen(t, 1, "")
	sandboxtest.FillForMove(t, sb)

	// Refused, with nothing changed, for pgbench_history.
	ev, err := playbookstest.Run(t, sb, logicalPrepare, false, "from=pg1", "to="+sandbox.GreenNode)
	if !errors.Is(err, runbook.ErrPrecondition) || !strings.Contains(ev.Text(), "public.pgbench_history (no primary key") {
		t.Fatalf("prepare with pgbench_history and no allow_replica_identity_full: %v, want refused naming it\n%s", err, ev.Text())
	}
	playbookstest.NoActionBut(t, ev)

	// Accepted with it, under load.
	bench := sandboxtest.StartPgbench(t, sb, 2, 4*time.Second)
	ev, err = playbookstest.Run(t, sb, logicalPrepare, false, "from=pg1", "to="+sandbox.GreenNode, "allow_replica_identity_full=true")
	if err != nil {
		t.Fatalf("prepare: %v\n%s", err, ev.Text())
	}
	bench.Wait(t, 2*time.Minute)
	if !strings.Contains(ev.Output(), "public.pgbench_history on pg1: REPLICA IDENTITY FULL") || !strings.Contains(ev.Output(), "tables ready") {
		t.Errorf("prepare said:\n%s", ev.Output())
	}
	if got := sandboxtest.QueryApp(t, sb, sandbox.GreenNode, "SELECT current_setting('default_transaction_read_only')"); got != "on" {
		t.Errorf("green1 after the prepare: default_transaction_read_only %s, want on", got)
	}

	// DDL since the prepare: refused with nothing held.
	sandboxtest.ExecApp(t, sb, "pg1", "SET switchover.allow_ddl = on", "ALTER TABLE orders ADD COLUMN channel text")
	ev, err = playbookstest.Run(t, sb, logicalCutover, false, "from=pg1", "to="+sandbox.GreenNode)
	if !errors.Is(err, runbook.ErrPrecondition) || !strings.Contains(ev.Text(), "TABLE public.orders") {
		t.Fatalf("cutover after DDL on pg1: %v, want refused naming orders\n%s", err, ev.Text())
	}
	playbookstest.NoActionBut(t, ev)
	if d := showApp(t, sb); d.Paused {
		t.Fatalf("PgBouncer shows app paused after a refused cutover: %+v", d)
	}
	sandboxtest.ExecApp(t, sb, "pg1", "SET switchover.allow_ddl = on", "ALTER TABLE orders DROP COLUMN channel")

	cutover(t, sb, "pg1", sandbox.GreenNode)
	cutover(t, sb, sandbox.GreenNode, "pg1")

	// Round trips one right after the other, as a rehearsal goes: each
	// cutover first restarts its subscription's apply worker (the
	// subscription the way before enabled again, or synchronous_commit
	// set), and PostgreSQL's launcher starts a worker at most once in
	// wal_retrieve_retry_interval (5s). The pause must wait until the
	// worker streams: one that did not held clients that long while the
	// last change waited to be applied.
	// The launcher's wait made longer than the test's bound on the
	// window, so that a pause that did not wait for the worker fails it
	// every time, not only when the runs happen to fall within 5s.
	for _, node := range []string{"pg1", sandbox.GreenNode} {
		sandboxtest.Exec(t, sb, node, "ALTER SYSTEM SET wal_retrieve_retry_interval = '8s'", "SELECT pg_reload_conf()")
	}
	for i, dir := range [][2]string{{"pg1", sandbox.GreenNode}, {sandbox.GreenNode, "pg1"}, {"pg1", sandbox.GreenNode}} {
		ev, err = playbookstest.Run(t, sb, logicalCutover, false, "from="+dir[0], "to="+dir[1])
		if err != nil {
			t.Fatalf("logical-cutover %s -> %s, round trip %d at once: %v\n%s", dir[0], dir[1], i+1, err, ev.Text())
		}
		playbookstest.WantNothingLost(t, ev)
		window, err := strconv.ParseFloat(ev.Facts()["canary.window_ms"], 64)
		if err != nil || window > 3000 {
			t.Errorf("logical-cutover %s -> %s at once: canary window %q ms, want well under 3s\n%s", dir[0], dir[1], ev.Facts()["canary.window_ms"], ev.Text())
		}
		t.Logf("logical-cutover %s -> %s at once: canary window %.1f ms", dir[0], dir[1], window)
	}

	for i := 0; i < 2; i++ {
		ev, err = playbookstest.Run(t, sb, logicalCleanup, false, "blue=pg1", "green="+sandbox.GreenNode)
		if err != nil {
			t.Fatalf("cleanup %d: %v\n%s", i+1, err, ev.Text())
		}
		if dropped := strings.Contains(ev.Output(), "dropped"); dropped != (i == 0) {
			t.Errorf("cleanup %d said:\n%s", i+1, ev.Output())
		}
	}
	for _, node := range []string{"pg1", sandbox.GreenNode} {
		if got := sandboxtest.QueryApp(t, sb, node, "SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_type = 'logical') + (SELECT count(*) FROM pg_subscription) + (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_event_trigger)"); got != "0" {
			t.Errorf("%s keeps %s logical slots, subscriptions, publications or event triggers after the cleanup", node, got)
		}
	}
}

// showApp is PgBouncer's SHOW DATABASES entry of app.
func showApp(t *testing.T, sb *sandbox.Sandbox) pgbouncer.Database {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgbouncer.Connect(ctx, sb.AdminConninfo())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, err := c.Database(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	return d
}
