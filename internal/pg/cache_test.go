package pg_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestCacheReusesHealthyConnectionsOnly(t *testing.T) {
	sb := sandboxtest.Shared(t)
	pg1, _ := sb.Node("pg1")
	ci := sb.Conninfo(pg1, "postgres")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &pg.Cache{}
	defer c.Close()
	pid := func(label string) int {
		t.Helper()
		conn, err := c.Get(ctx, ci, 2*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		var p int
		var timeout string
		if err := conn.QueryRow(ctx, "SELECT pg_backend_pid(), current_setting('statement_timeout')").Scan(&p, &timeout); err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		if timeout != "2s" {
			t.Errorf("%s: statement_timeout %s, want 2s", label, timeout)
		}
		pg.Release(conn)
		return p
	}
	first := pid("first")
	if again := pid("second"); again != first {
		t.Fatalf("a released healthy connection was not reused: backend %d then %d", first, again)
	}

	// A connection given back inside a transaction is closed, not reused.
	conn, err := c.Get(ctx, ci, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	pg.Release(conn)
	if !conn.IsClosed() {
		t.Fatal("a connection released inside a transaction was kept")
	}

	// A cached connection whose backend is gone is replaced transparently.
	victim := pid("before the kill")
	killer, err := pg.Connect(ctx, ci, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(ctx)
	if _, err := killer.Exec(ctx, "SELECT pg_terminate_backend($1)", victim); err != nil {
		t.Fatal(err)
	}
	// pg_terminate_backend only signals the backend: wait until it is gone.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var there bool
		err := killer.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", victim).Scan(&there)
		if err == nil && !there {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend %d still there 10s after pg_terminate_backend (%v)", victim, err)
		}
	}
	if after := pid("after the kill"); after == victim {
		t.Fatalf("got the terminated backend %d back", victim)
	}

	// After Close, released connections are closed.
	conn, err = c.Get(ctx, ci, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	pg.Release(conn)
	if !conn.IsClosed() {
		t.Fatal("a connection released after Close was kept open")
	}
}
