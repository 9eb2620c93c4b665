package pg_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// TestFenceAndLift fences the shared sandbox's primary and lifts the
// fence: while fenced, a new session's write is refused (read-only), an
// explicit read-write transaction's commit is not acknowledged, and a
// session opened before (one that chose its own synchronous_commit) is
// ended; lifted, postgresql.auto.conf holds what it held before, to the
// value, and writes commit again.
func TestFenceAndLift(t *testing.T) {
	sb := sandboxtest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pg1, _ := sb.Node("pg1")
	conninfo := sb.Conninfo(pg1, "postgres")
	admin, err := pg.Connect(ctx, conninfo, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	exec := func(sql string) {
		t.Helper()
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// What the fence replaces: a synchronous standby set with ALTER SYSTEM,
	// default_transaction_read_only not set there at all.
	const prior = "ANY 1 (pg2, pg3)"
	exec("ALTER SYSTEM SET synchronous_standby_names = " + pg.QuoteLiteral(prior))
	exec("SELECT pg_reload_conf()")
	exec("CREATE TABLE IF NOT EXISTS fence_test (id int)")
	t.Cleanup(func() {
		c, err := pg.Connect(context.Background(), conninfo, 5*time.Second)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer c.Close(context.Background())
		for _, sql := range []string{"ALTER SYSTEM RESET synchronous_standby_names", "ALTER SYSTEM RESET default_transaction_read_only", "SELECT pg_reload_conf()"} {
			if _, err := c.Exec(context.Background(), sql); err != nil {
				t.Errorf("cleanup: %s: %v", sql, err)
			}
		}
	})

	f, err := pg.ReadFence(ctx, admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := f["synchronous_standby_names"]; p == nil || *p != prior {
		t.Fatalf("ReadFence: synchronous_standby_names %v, want %q", p, prior)
	}
	if p, ok := f["default_transaction_read_only"]; !ok || p != nil {
		t.Fatalf("ReadFence: default_transaction_read_only %v (recorded %v), want recorded as not set", p, ok)
	}
	again, err := pg.ParseFence(f.String())
	if err != nil || *again["synchronous_standby_names"] != prior {
		t.Fatalf("ParseFence(%s) = %v, %v", f, again, err)
	}

	before, err := pg.Connect(ctx, conninfo, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close(ctx)
	if _, err := before.Exec(ctx, "SET synchronous_commit = local"); err != nil {
		t.Fatal(err)
	}
	ended, err := pg.ApplyFence(ctx, admin, 2*time.Second)
	if err != nil {
		t.Fatalf("ApplyFence: %v", err)
	}
	if ended < 1 {
		t.Errorf("ApplyFence ended %d sessions, want at least the one opened before", ended)
	}
	if _, err := before.Exec(ctx, "INSERT INTO fence_test VALUES (1)"); err == nil {
		t.Errorf("a session opened before the fence, with synchronous_commit = local, still committed")
	}
	if fenced, err := pg.Fenced(ctx, admin); err != nil || !fenced {
		t.Errorf("Fenced = %v, %v; want true", fenced, err)
	}

	c, err := pg.Connect(ctx, conninfo, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, "INSERT INTO fence_test VALUES (2)")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "25006" {
		t.Errorf("a write in a new session on the fenced primary: %v, want refused as read-only (25006)", err)
	}
	// Read-write on purpose: the commit waits for a standby that never
	// comes, and is not acknowledged.
	wctx, wcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = c.Exec(wctx, "BEGIN READ WRITE; INSERT INTO fence_test VALUES (3); COMMIT")
	wcancel()
	if err == nil {
		t.Errorf("an explicit read-write transaction was acknowledged on the fenced primary")
	}

	lifted, err := pg.LiftFence(ctx, admin, f, 2*time.Second)
	if err != nil || !lifted {
		t.Fatalf("LiftFence = %v, %v; want lifted", lifted, err)
	}
	var sync, ro string
	if err := admin.QueryRow(ctx, `SELECT current_setting('synchronous_standby_names'), coalesce((SELECT setting FROM pg_file_settings WHERE name = 'default_transaction_read_only' AND sourcefile LIKE '%postgresql.auto.conf'), '<not set>')`).Scan(&sync, &ro); err != nil {
		t.Fatal(err)
	}
	if sync != prior || ro != "<not set>" {
		t.Errorf("after the lift: synchronous_standby_names %q, default_transaction_read_only in postgresql.auto.conf %s; want %q and not set", sync, ro, prior)
	}
	if again, err := pg.LiftFence(ctx, admin, f, 2*time.Second); err != nil || again {
		t.Errorf("LiftFence again = %v, %v; want nothing to lift", again, err)
	}
	c2, err := pg.Connect(ctx, conninfo, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	if _, err := c2.Exec(ctx, "INSERT INTO fence_test VALUES (4)"); err != nil {
		t.Errorf("a write after the lift: %v", err)
	}
}
