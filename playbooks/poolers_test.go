package playbooks_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/pgbouncer"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	topo "github.com/switchover/switchover/internal/topology"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
)

// writeThrough commits one row through a sandbox pooler and says which
// server took it.
func writeThrough(t *testing.T, sb *sandbox.Sandbox, p sandbox.Pooler) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pg.ConnectPooled(ctx, sb.PoolerClientConninfo(p))
	if err != nil {
		t.Fatalf("connect through %s: %v", p.Name, err)
	}
	defer c.Close(ctx)
	var port int
	if err := c.QueryRow(ctx, "SELECT inet_server_port() FROM (SELECT txid_current()) AS written").Scan(&port); err != nil {
		t.Fatalf("write through %s: %v", p.Name, err)
	}
	return port
}

// poolerState reads a sandbox pooler's SHOW DATABASES: "app=PORT app_ro=PORT",
// " paused" after an entry that is.
func poolerState(t *testing.T, sb *sandbox.Sandbox, p sandbox.Pooler) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgbouncer.Connect(ctx, sb.PoolerAdminConninfo(p))
	if err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	defer c.Close()
	dbs, err := c.Databases(ctx)
	if err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	var parts []string
	for _, d := range dbs {
		if d.Name != "app" && d.Name != sandbox.ReadOnlyDatabase {
			continue
		}
		s := d.Name + "=" + d.Port
		if d.Paused {
			s += " paused"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// Two PgBouncers in front of the cluster, switched over by the streaming
// playbook. First one of them cannot pause (a client holds a transaction
// open on it): none is left paused, nothing is stopped, pg1 stays the
// primary. Then the switchover goes through: both route to pg2, the
// read-only entry stays on the standby it named, no acknowledged commit is
// lost.
func TestStreamingSwitchoverTwoPoolers(t *testing.T) {
	sb := sandboxtest.NewPoolers(t, 1, 2)
	pgbs := sb.Poolers()
	pg1, pg2 := sandboxtest.Node(t, sb, "pg1"), sandboxtest.Node(t, sb, "pg2")
	before := fmt.Sprintf("app=%d %s=%d", pg1.Port, sandbox.ReadOnlyDatabase, pg2.Port)
	for _, p := range pgbs {
		if got := poolerState(t, sb, p); got != before {
			t.Fatalf("%s before: %s, want %s", p.Name, got, before)
		}
	}

	// A transaction opened through the second pooler as the pause starts:
	// its PAUSE cannot complete within pause_max_wait.
	var holder pgx.Tx
	var holderConn *pgx.Conn
	var hookErr error
	hook := func(ev journal.Event) {
		if holderConn != nil || !playbookstest.IsStep(ev, "pause-pooler", journal.StateRunning) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if holderConn, hookErr = pg.ConnectPooled(ctx, sb.PoolerClientConninfo(pgbs[1])); hookErr != nil {
			return
		}
		if holder, hookErr = holderConn.Begin(ctx); hookErr == nil {
			_, hookErr = holder.Exec(ctx, "SELECT txid_current()")
		}
	}
	ev, err := playbookstest.RunHooked(t, sb, playbookstest.Streaming, hook, "pause_max_wait=1s", "pause_attempts=1")
	if holderConn != nil {
		defer holderConn.Close(context.Background())
	}
	if hookErr != nil || holder == nil {
		t.Fatalf("the transaction on %s was not opened: %v", pgbs[1].Name, hookErr)
	}
	if !errors.Is(err, runbook.ErrAction) {
		t.Fatalf("run with a transaction open on %s: %v, want an action failure (exit 4)\n%s", pgbs[1].Name, err, ev.Text())
	}
	if text := ev.Text(); !strings.Contains(text, "PAUSE failed on "+pgbs[1].Name) || !strings.Contains(text, "every pooler resumed") {
		t.Fatalf("the failure does not say which pooler could not pause and that every one was resumed:\n%s", text)
	}
	playbookstest.NoActionBut(t, ev, "sync-on-candidate", "start-canary", "checkpoint", "pause-pooler")
	// The plan's preflight already named the entry the repoint leaves alone.
	if text := ev.Text(); !strings.Contains(text, "pgbouncer.entries pass") || !strings.Contains(text, "left alone: "+sandbox.ReadOnlyDatabase) {
		t.Errorf("preflight does not say which entries move and which are left alone:\n%s", text)
	}
	sandboxtest.WantOnePrimary(t, sb, "pg1")
	for _, p := range pgbs {
		if got := poolerState(t, sb, p); got != before {
			t.Errorf("%s after the failed pause: %s, want %s, none paused", p.Name, got, before)
		}
	}
	if err := holder.Commit(context.Background()); err != nil {
		t.Errorf("the transaction held on %s could not commit after the failed pause: %v", pgbs[1].Name, err)
	}
	for _, p := range pgbs {
		if got := writeThrough(t, sb, p); got != pg1.Port {
			t.Errorf("after the failed pause a write through %s landed on port %d, want pg1's %d", p.Name, got, pg1.Port)
		}
	}

	ev, err = playbookstest.Run(t, sb, playbookstest.Streaming, false)
	if err != nil {
		t.Fatalf("switchover pg1 -> pg2 with two poolers: %v\n%s", err, ev.Text())
	}
	playbookstest.WantNothingLost(t, ev)
	sandboxtest.WantOnePrimary(t, sb, "pg2")
	after := fmt.Sprintf("app=%d %s=%d", pg2.Port, sandbox.ReadOnlyDatabase, pg2.Port)
	for _, p := range pgbs {
		if got := poolerState(t, sb, p); got != after {
			t.Errorf("%s after the switchover: %s, want %s", p.Name, got, after)
		}
		if got := writeThrough(t, sb, p); got != pg2.Port {
			t.Errorf("after the switchover a write through %s landed on port %d, want pg2's %d", p.Name, got, pg2.Port)
		}
	}
	if text := ev.Text(); !strings.Contains(text, "left alone: "+sandbox.ReadOnlyDatabase) {
		t.Errorf("the repoint does not name the entry it left alone:\n%s", text)
	}
	// The cluster model (what status shows) sees both poolers on pg2.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	top := topo.Inspect(ctx, sb.Cluster(), topo.Options{})
	if len(top.Poolers) != 2 || top.Pooler != top.Poolers[0] {
		t.Fatalf("status sees %d poolers, want 2, the first also as pooler", len(top.Poolers))
	}
	for _, p := range top.Poolers {
		ro := ""
		for _, r := range p.Databases {
			if r.Name == sandbox.ReadOnlyDatabase {
				ro = r.Node
			}
		}
		if p.Error != "" || p.Node != "pg2" || p.Paused || ro != "pg2" {
			t.Errorf("status of %s: %+v; want app on pg2, not paused, app_ro on pg2", p.Name, p)
		}
	}
}
