package checks

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestNoLongTransactionsOnShared(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	c := mustBuild(t, "pg.no_long_transactions", map[string]any{"node": "pg1"})
	r := runUntil(t, c, sandboxTarget(sb), Pass, settleLimit)
	assertResult(t, r, Pass, []string{"no session on pg1 has a transaction open longer than 5s or is idle in transaction"}, nil)
}

// pooledSession opens a client session through the sandbox's PgBouncer,
// closed when the test ends.
func pooledSession(t *testing.T, sb *sandbox.Sandbox) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pg.ConnectPooled(ctx, sb.ClientConninfo()+" application_name=app-worker")
	if err != nil {
		t.Fatalf("connect through pgbouncer: %v", err)
	}
	t.Cleanup(func() { closeConn(conn) })
	return conn
}

// serverPID finds the server process that runs a query text on a node.
func serverPID(t *testing.T, sb *sandbox.Sandbox, node, like string) int {
	t.Helper()
	var pid int
	waitFor(t, "a session running "+like, settleLimit, func() (bool, string) {
		s, err := queryString(sb, sandboxNode(t, sb, node),
			fmt.Sprintf("SELECT coalesce(min(pid), 0)::text FROM pg_stat_activity WHERE query LIKE '%s' AND pid <> pg_backend_pid()", like))
		if err == nil {
			fmt.Sscan(s, &pid)
		}
		return pid > 0, fmt.Sprintf("%q, %v", s, err)
	})
	return pid
}

// TestNoLongTransactions opens, on the primary of a sandbox of its own,
// what holds up a PgBouncer PAUSE: a long query and a session idle in
// transaction through the pooler, and one straight to the server; the
// check names each, and leaves out switchover's own.
func TestNoLongTransactions(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	tg := sandboxTarget(sb)
	c := mustBuild(t, "pg.no_long_transactions", map[string]any{"node": "pg1", "max_xact_age": "1s"})
	assertResult(t, runUntil(t, c, tg, Pass, settleLimit), Pass, nil, nil)

	t.Run("a long query through the pooler", func(t *testing.T) {
		conn := pooledSession(t, sb)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = conn.Exec(ctx, "SELECT pg_sleep(60)")
		}()
		pid := serverPID(t, sb, "pg1", "SELECT pg_sleep(60)")
		r := runUntil(t, c, tg, Fail, settleLimit)
		assertResult(t, r, Fail, []string{"1 transaction open longer than 1s on pg1", fmt.Sprintf("pid %d", pid), `app "app-worker"`,
			"client 127.0.0.1:", "active", "query: SELECT pg_sleep(60)", "PAUSE waits for every transaction to end"}, []string{"session idle in transaction on"})
		runSQL(t, sb, "pg1", fmt.Sprintf("SELECT pg_cancel_backend(%d)", pid))
		cancel()
		<-done
		assertResult(t, runUntil(t, c, tg, Pass, settleLimit), Pass, nil, nil)
	})

	t.Run("idle in transaction through the pooler, however young", func(t *testing.T) {
		conn := pooledSession(t, sb)
		execAll(t, conn, "BEGIN", "SELECT 42 AS held")
		pid := serverPID(t, sb, "pg1", "SELECT 42 AS held")
		r := runCheck(t, c, tg)
		assertResult(t, r, Fail, []string{"1 session idle in transaction on pg1", fmt.Sprintf("pid %d", pid), "idle in transaction  xact",
			"query: SELECT 42 AS held"}, []string{"transaction open longer than"})
		if r.Values["idle_in_transaction"] != 1 {
			t.Errorf("values = %v, want idle_in_transaction 1", r.Values)
		}
		execAll(t, conn, "ROLLBACK")
		assertResult(t, runUntil(t, c, tg, Pass, settleLimit), Pass, nil, nil)
	})

	t.Run("idle in transaction straight to the server", func(t *testing.T) {
		conn := openSession(t, sb, "pg1")
		execAll(t, conn, "SET application_name = 'psql'", "BEGIN", "SELECT 'direct'")
		pid := backendPID(t, conn)
		r := runCheck(t, c, tg)
		assertResult(t, r, Fail, []string{fmt.Sprintf("pid %d", pid), `app "psql"`, "idle in transaction"}, nil)
		execAll(t, conn, "COMMIT")
	})

	t.Run("switchover's own session does not count", func(t *testing.T) {
		conn := openSession(t, sb, "pg1") // application_name switchover
		execAll(t, conn, "BEGIN", "SELECT 'own'")
		assertResult(t, runCheck(t, c, tg), Pass, nil, nil)
		execAll(t, conn, "COMMIT")
	})

	t.Run("a transaction that ends within the second look does not count", func(t *testing.T) {
		conn := openSession(t, sb, "pg1")
		execAll(t, conn, "SET application_name = 'batch'", "BEGIN", "SELECT 'short'")
		go func() {
			time.Sleep(50 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _ = conn.Exec(ctx, "COMMIT")
		}()
		r := runCheck(t, c, tg)
		assertResult(t, r, Pass, nil, nil)
	})
}

func TestNoLongTransactionsJudge(t *testing.T) {
	t.Parallel()
	c := &NoLongTransactions{Node: "pg1", MaxXactAge: 5 * time.Second}
	long := pg.OpenXact{PID: 11, User: "app", Application: "api", Client: "10.0.0.5:41000", State: "active",
		XactAge: 42 * time.Second, Query: "SELECT\n  pg_sleep(60) -- " + strings.Repeat("x", 100)}
	idle := pg.OpenXact{PID: 12, User: "app", Application: "cron", Client: "local", State: "idle in transaction",
		XactAge: time.Second, Query: "UPDATE t SET x = 1"}
	tests := []struct {
		name     string
		sessions []pg.OpenXact
		status   Status
		want     []string
	}{
		{"none", nil, Pass, []string{"no session on pg1"}},
		{"long", []pg.OpenXact{long}, Fail, []string{"1 transaction open longer than 5s on pg1 (pid 11)",
			`pid 11  user app  app "api"  client 10.0.0.5:41000  active  xact 42s  query: SELECT pg_sleep(60) -- xxx`, "..."}},
		{"both", []pg.OpenXact{long, idle}, Fail, []string{"1 transaction open longer than 5s and 1 session idle in transaction on pg1 (pid 11, 12)",
			"client local  idle in transaction"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assertResult(t, c.judge(len(tc.sessions), secondLook, tc.sessions), tc.status, tc.want, nil)
		})
	}
	if got := c.Describe(nil); !strings.Contains(got, "pg1") || !strings.Contains(got, "idle in transaction") {
		t.Errorf("describe = %q", got)
	}
}
