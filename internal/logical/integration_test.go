package logical_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/logical"
	"github.com/switchover/switchover/internal/logical/logicaltest"
	"github.com/switchover/switchover/internal/pg"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestLogicalFenceKeepsApplying: a node fenced with logical.Fence refuses
// its clients' writes, and a subscription on it still applies its
// publisher's changes, both new rows of a table already copied and the
// initial copy of a table added after the fence.
func TestLogicalFenceKeepsApplying(t *testing.T) {
	p := logicaltest.New(t)
	p.Exec(t, "blue", "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'before')")
	p.Exec(t, "green", "CREATE TABLE t (id int PRIMARY KEY, v text)")
	ctx := ctxFor(t, 2*time.Minute)
	blue, green := p.Connect(t, "blue"), p.Connect(t, "green")
	if _, err := logical.Publish(ctx, blue, "pub"); err != nil {
		t.Fatal(err)
	}
	if err := logical.Subscribe(ctx, green, logical.SubscribeOptions{Name: "sub", Conninfo: p.Conninfo("blue"), Publication: "pub", CopyData: true, Version: 150000}); err != nil {
		t.Fatal(err)
	}
	p.Eventually(t, "green", "SELECT count(*) FROM t", "1", time.Minute)

	client := p.Connect(t, "green") // a client session open before the fence
	ended, err := logical.Fence(ctx, green, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ended < 1 {
		t.Errorf("fence ended %d client sessions, want the open one at least", ended)
	}
	if _, err := client.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the client session open before the fence still answers")
	}
	direct := p.Connect(t, "green")
	if _, err := direct.Exec(ctx, "INSERT INTO t VALUES (100, 'direct')"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("a client's write on the fenced node: %v, want read-only refusal", err)
	}
	p.Exec(t, "blue", "INSERT INTO t VALUES (2, 'after the fence')", "UPDATE t SET v = 'changed' WHERE id = 1")
	p.Eventually(t, "green", "SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM t", "1=changed,2=after the fence", 30*time.Second)

	// A table published after the fence is copied there too.
	p.Exec(t, "blue", "CREATE TABLE u (id int PRIMARY KEY)", "INSERT INTO u SELECT generate_series(1, 100)")
	done, err := logical.Privileged(ctx, green)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := green.Exec(ctx, "CREATE TABLE u (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	done()
	if _, err := logical.Publish(ctx, blue, "pub"); err != nil {
		t.Fatal(err)
	}
	done, _ = logical.Privileged(ctx, green)
	if _, err := green.Exec(ctx, "ALTER SUBSCRIPTION sub REFRESH PUBLICATION"); err != nil {
		t.Fatal(err)
	}
	done()
	p.Eventually(t, "green", "SELECT count(*) FROM u", "100", 30*time.Second)

	if fenced, err := logical.Fenced(ctx, green); err != nil || !fenced {
		t.Fatalf("fenced = %v, %v", fenced, err)
	}
	if changed, err := logical.Unfence(ctx, green, pg.Fence{logical.FenceSetting: nil}, 5*time.Second); err != nil || !changed {
		t.Fatalf("unfence = %v, %v", changed, err)
	}
	p.Exec(t, "green", "INSERT INTO t VALUES (200, 'unfenced')")
	if changed, err := logical.Unfence(ctx, green, pg.Fence{}, 5*time.Second); err != nil || changed {
		t.Fatalf("second unfence = %v, %v, want nothing to do", changed, err)
	}
}

// TestLogicalDDLGuard: the guard refuses DDL, with its message, but lets
// through switchover's own schema (the claim's CREATE ... IF NOT EXISTS)
// and sessions that set switchover.allow_ddl; installed twice it changes
// nothing; removed, DDL goes through again.
func TestLogicalDDLGuard(t *testing.T) {
	p := logicaltest.New(t)
	ctx := ctxFor(t, time.Minute)
	conn := p.Connect(t, "blue")
	for i, want := range []bool{true, false} {
		changed, err := logical.InstallGuard(ctx, conn)
		if err != nil || changed != want {
			t.Fatalf("install %d: changed %v, %v; want %v", i+1, changed, err, want)
		}
	}
	client := p.Connect(t, "blue")
	for _, stmt := range []string{"CREATE TABLE newt (id int)", "ALTER TABLE pg_catalog.pg_class ADD COLUMN x int", "DROP SCHEMA public CASCADE", "CREATE INDEX ON pg_catalog.pg_class (relname)", "CREATE SCHEMA other"} {
		_, err := client.Exec(ctx, stmt)
		if err == nil || !strings.Contains(err.Error(), logical.GuardMessage) {
			t.Errorf("%s: %v, want the guard's refusal", stmt, err)
		}
	}
	if got := p.Query(t, "blue", "SELECT count(*) FROM pg_class WHERE relname = 'newt'"); got != "0" {
		t.Errorf("a refused CREATE TABLE left %s tables", got)
	}
	// What the claim runs at every run's start.
	for _, stmt := range []string{"CREATE SCHEMA IF NOT EXISTS switchover", "CREATE TABLE IF NOT EXISTS switchover.run_claim (cluster text PRIMARY KEY)", "CREATE TABLE IF NOT EXISTS switchover.run_claim (cluster text PRIMARY KEY)"} {
		if _, err := client.Exec(ctx, stmt); err != nil {
			t.Errorf("%s: %v", stmt, err)
		}
	}
	if _, err := client.Exec(ctx, "SET switchover.allow_ddl = on; CREATE TABLE allowed (id int); RESET switchover.allow_ddl"); err != nil {
		t.Errorf("DDL with switchover.allow_ddl = on: %v", err)
	}
	if removed, err := logical.RemoveGuard(ctx, conn); err != nil || !removed {
		t.Fatalf("remove: %v, %v", removed, err)
	}
	if _, err := client.Exec(ctx, "CREATE TABLE newt (id int)"); err != nil {
		t.Errorf("DDL after the guard is removed: %v", err)
	}
	if removed, err := logical.RemoveGuard(ctx, conn); err != nil || removed {
		t.Fatalf("remove again: %v, %v, want nothing to do", removed, err)
	}
}

// TestProbeApplyWaitsOutABacklog: a subscriber applying with
// synchronous_commit local, handed a backlog of a thousand and one one-row commits
// (some 100 kB of WAL, far below any byte bound), has not confirmed the
// publisher's flushed position within 20ms of being enabled; probed with
// time to spare it has, with every row there.
func TestProbeApplyWaitsOutABacklog(t *testing.T) {
	p := logicaltest.New(t)
	p.Exec(t, "blue", "CREATE TABLE t (id int PRIMARY KEY)")
	p.Exec(t, "green", "CREATE TABLE t (id int PRIMARY KEY)", "ALTER SYSTEM SET wal_retrieve_retry_interval = '100ms'", "SELECT pg_reload_conf()")
	ctx := ctxFor(t, 2*time.Minute)
	blue, green := p.Connect(t, "blue"), p.Connect(t, "green")
	if _, err := logical.Publish(ctx, blue, "pub"); err != nil {
		t.Fatal(err)
	}
	if err := logical.Subscribe(ctx, green, logical.SubscribeOptions{Name: "sub", Conninfo: p.Conninfo("blue"), Publication: "pub", SynchronousCommit: "local", Version: 150000}); err != nil {
		t.Fatal(err)
	}
	p.Eventually(t, "blue", "SELECT active FROM pg_replication_slots WHERE slot_name = 'sub'", "true", time.Minute)
	if pr, err := logical.ProbeApply(ctx, blue, "sub", 30*time.Second, 5*time.Millisecond); err != nil || !pr.Done() {
		t.Fatalf("probe of a subscriber with nothing to apply: %+v, %v", pr, err)
	}

	if _, err := logical.SetEnabled(ctx, green, "sub", false); err != nil {
		t.Fatal(err)
	}
	if err := logical.WaitWorkerGone(ctx, green, "sub", 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// Committed asynchronously, then flushed by one synchronous commit.
	p.Exec(t, "blue", "SET synchronous_commit = off",
		"DO $$BEGIN FOR i IN 1..1000 LOOP INSERT INTO t VALUES (i); COMMIT; END LOOP; END$$",
		"SET synchronous_commit = on", "INSERT INTO t VALUES (1001)")
	if _, err := logical.SetEnabled(ctx, green, "sub", true); err != nil {
		t.Fatal(err)
	}
	pr, err := logical.ProbeApply(ctx, blue, "sub", 20*time.Millisecond, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Done() || pr.Last >= pr.Target {
		t.Fatalf("probe 20ms after a backlog of 1000 commits was handed over: %+v, want not confirmed yet", pr)
	}
	backlog := int64(pr.Target - pr.Last)
	pr, err = logical.ProbeApply(ctx, blue, "sub", time.Minute, 5*time.Millisecond)
	if err != nil || !pr.Done() || pr.Last < pr.Target {
		t.Fatalf("probe with a minute to spare: %+v, %v", pr, err)
	}
	if got := p.Query(t, "green", "SELECT count(*) FROM t"); got != "1001" {
		t.Errorf("green has %s rows once the probe passed, want 1001", got)
	}
	t.Logf("a backlog of 1000 commits (%d bytes of WAL) applied in %s", backlog, pr.Took.Round(time.Millisecond))
}
