package checks

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/transport"
)

// Helpers for the tests of the PostgreSQL checks. Read-only tests use the
// shared sandbox. Tests that change a sandbox own one: newSandbox for those
// that run in parallel, sandboxtest.New for those that do not.

// settleLimit bounds every wait for the cluster to settle.
const settleLimit = 10 * time.Second

// ownSandboxes bounds how many sandboxes of their own parallel tests keep
// up at once, besides the shared one: the machines that run them have few
// cores.
var ownSandboxes = make(chan struct{}, 2)

// newSandbox brings up a sandbox with two standbys for a test that changes
// it, waiting for a free slot first.
func newSandbox(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	ownSandboxes <- struct{}{}
	// Cleanups run last in, first out: the sandbox is down before its slot
	// is given back.
	t.Cleanup(func() { <-ownSandboxes })
	return sandboxtest.New(t, 2)
}

// sandboxTarget is what a runbook would give a check for the sandbox.
func sandboxTarget(sb *sandbox.Sandbox) *cluster.Target {
	return &cluster.Target{Cluster: sb.Cluster(), Facts: &cluster.Facts{}}
}

// runCheck runs a check once with a bounded context.
func runCheck(t *testing.T, c Check, tg *cluster.Target) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Run(ctx, tg)
}

// runUntil runs a check until it reaches status or limit passes, the way a
// runbook's within: does, and returns the last result.
func runUntil(t *testing.T, c Check, tg *cluster.Target, status Status, limit time.Duration) Result {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		r := runCheck(t, c, tg)
		if r.Status == status || time.Now().After(deadline) {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor polls cond until it holds, failing the test after limit with
// what cond last said.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, said := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, limit, said)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sandboxNode returns a sandbox node, failing the test when there is none.
func sandboxNode(t *testing.T, sb *sandbox.Sandbox, name string) sandbox.Node {
	t.Helper()
	n, ok := sb.Node(name)
	if !ok {
		t.Fatalf("sandbox has no node %s", name)
	}
	return n
}

// nodeAddr is a node's address as its connection string gives it.
func nodeAddr(n sandbox.Node) string { return fmt.Sprintf("127.0.0.1:%d", n.Port) }

// superuserConn connects to a sandbox node as the superuser, each
// statement bounded by limit.
func superuserConn(ctx context.Context, sb *sandbox.Sandbox, n sandbox.Node, limit time.Duration) (*pgx.Conn, error) {
	return pg.Connect(ctx, sb.Conninfo(n, "postgres"), limit)
}

// openSession opens a superuser session on a sandbox node, closed when the
// test ends. Tests use it to hold locks and transactions open.
func openSession(t *testing.T, sb *sandbox.Sandbox, node string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := superuserConn(ctx, sb, sandboxNode(t, sb, node), 30*time.Second)
	if err != nil {
		t.Fatalf("connect %s: %v", node, err)
	}
	t.Cleanup(func() { closeConn(conn) })
	return conn
}

// execAll runs statements on an open session.
func execAll(t *testing.T, conn *pgx.Conn, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// runSQL runs statements on a sandbox node in a session of their own.
func runSQL(t *testing.T, sb *sandbox.Sandbox, node string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := superuserConn(ctx, sb, sandboxNode(t, sb, node), 10*time.Second)
	if err != nil {
		t.Fatalf("connect %s: %v", node, err)
	}
	defer closeConn(conn)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s on %s: %v", s, node, err)
		}
	}
}

// queryString runs a query returning one text value on a sandbox node,
// in a fresh session (so it sees a reloaded configuration).
func queryString(sb *sandbox.Sandbox, node sandbox.Node, query string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := superuserConn(ctx, sb, node, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer closeConn(conn)
	var s string
	err = conn.QueryRow(ctx, query).Scan(&s)
	return s, err
}

// nodeState inspects a sandbox node.
func nodeState(t *testing.T, sb *sandbox.Sandbox, node string) (pg.State, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := superuserConn(ctx, sb, sandboxNode(t, sb, node), 5*time.Second)
	if err != nil {
		return pg.State{}, err
	}
	defer closeConn(conn)
	return pg.Inspect(ctx, conn)
}

// backendPID returns the backend pid of a session.
func backendPID(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatalf("pg_backend_pid: %v", err)
	}
	return pid
}

// alterSystem sets a parameter on a node with ALTER SYSTEM, reloads the
// configuration and waits until a new session sees want.
func alterSystem(t *testing.T, sb *sandbox.Sandbox, node, name, value, want string) {
	t.Helper()
	runSQL(t, sb, node, fmt.Sprintf("ALTER SYSTEM SET %s = '%s'", name, strings.ReplaceAll(value, "'", "''")),
		"SELECT pg_reload_conf()")
	n := sandboxNode(t, sb, node)
	waitFor(t, fmt.Sprintf("%s on %s becomes %q", name, node, want), settleLimit, func() (bool, string) {
		got, err := queryString(sb, n, fmt.Sprintf("SELECT current_setting('%s')", name))
		return err == nil && got == want, fmt.Sprintf("%q, %v", got, err)
	})
}

// pgCtl runs pg_ctl with args on a sandbox node's data directory, as the
// servers' OS user, failing the test when it does not exit 0.
func pgCtl(t *testing.T, sb *sandbox.Sandbox, n sandbox.Node, args string, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := fmt.Sprintf("%s %s -D %s", transport.ShellQuote(filepath.Join(sb.BinDir, "pg_ctl")), args, transport.ShellQuote(n.DataDir))
	out, err := transport.Local{User: sb.RunAs}.Run(ctx, cmd)
	if err != nil || out.ExitCode != 0 {
		t.Fatalf("pg_ctl %s on %s: exit %d, %v: %s", args, n.Name, out.ExitCode, err, out.Combined())
	}
}

// stopNode stops a sandbox node cleanly.
func stopNode(t *testing.T, sb *sandbox.Sandbox, node string) {
	t.Helper()
	pgCtl(t, sb, sandboxNode(t, sb, node), "stop -m fast -w -t 30", 40*time.Second)
}

// restartNode restarts a node of a sandbox the test owns and waits until it
// accepts connections.
func restartNode(t *testing.T, sb *sandbox.Sandbox, node string) {
	t.Helper()
	n := sandboxNode(t, sb, node)
	pgCtl(t, sb, n, "restart -w -t 50 -m fast -l "+transport.ShellQuote(filepath.Join(sb.Dir, n.Name+".log")), time.Minute)
	waitFor(t, node+" accepts connections after the restart", settleLimit, func() (bool, string) {
		_, err := queryString(sb, n, "SELECT 'up'")
		return err == nil, fmt.Sprint(err)
	})
}

// waitStreaming waits until a standby streams again.
func waitStreaming(t *testing.T, sb *sandbox.Sandbox, node string) {
	t.Helper()
	n := sandboxNode(t, sb, node)
	waitFor(t, node+" streams", settleLimit, func() (bool, string) {
		got, err := queryString(sb, n, "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'no receiver')")
		return err == nil && got == "streaming", fmt.Sprintf("%q, %v", got, err)
	})
}

// pauseReplay pauses replay on a standby and waits until the server says
// it is paused or pausing.
func pauseReplay(t *testing.T, sb *sandbox.Sandbox, node string) {
	t.Helper()
	runSQL(t, sb, node, "SELECT pg_wal_replay_pause()")
	waitFor(t, node+" replay paused", 5*time.Second, func() (bool, string) {
		st, err := nodeState(t, sb, node)
		return err == nil && st.ReplayPause, fmt.Sprintf("%+v, %v", st, err)
	})
}

// writeSome writes on a node (the primary), so WAL moves on.
func writeSome(t *testing.T, sb *sandbox.Sandbox, node string) {
	t.Helper()
	runSQL(t, sb, node,
		"CREATE TABLE IF NOT EXISTS canary (id serial PRIMARY KEY, note text)",
		"INSERT INTO canary (note) SELECT 'row ' || g FROM generate_series(1, 100) g")
}

// hasValue fails the test when a result lacks a value or holds another.
func hasValue(t *testing.T, r Result, key string, want any) {
	t.Helper()
	got, ok := r.Values[key]
	if !ok {
		t.Errorf("values lack %q: %v", key, r.Values)
		return
	}
	if want != nil && fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("values[%q] = %v, want %v", key, got, want)
	}
}
