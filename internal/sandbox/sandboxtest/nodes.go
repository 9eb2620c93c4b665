package sandboxtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/transport"
)

// Node returns the sandbox's node called name; there being none fails the
// test.
func Node(t testing.TB, sb *sandbox.Sandbox, name string) sandbox.Node {
	t.Helper()
	n, ok := sb.Node(name)
	if !ok {
		t.Fatalf("no node %s", name)
	}
	return n
}

// Connect opens a session on database db of a node, closed when the test
// ends.
func Connect(t testing.TB, sb *sandbox.Sandbox, name, db string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pg.Connect(ctx, sb.Conninfo(Node(t, sb, name), db), 0)
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Shell runs commands on this host as the sandbox servers' user, as pg_ctl
// on their data directories must be run.
func Shell(sb *sandbox.Sandbox) transport.Executor { return transport.Local{User: sb.RunAs} }

// Exec runs statements on a node, one at a time.
func Exec(t testing.TB, sb *sandbox.Sandbox, name string, stmts ...string) {
	t.Helper()
	c := Connect(t, sb, name, "postgres")
	for _, s := range stmts {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.Exec(ctx, s)
		cancel()
		if err != nil {
			t.Fatalf("%s on %s: %v", s, name, err)
		}
	}
}

// Query returns one text value from a node.
func Query(t testing.TB, sb *sandbox.Sandbox, name, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A connection of its own, closed at once: EventuallyQuery polls
	// every 50ms, and connections kept to the end of the test filled the
	// node's max_connections, so that the run under test found it full.
	c, err := pg.Connect(ctx, sb.Conninfo(Node(t, sb, name), "postgres"), 0)
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	defer c.Close(context.Background())
	var v string
	if err := c.QueryRow(ctx, sql).Scan(&v); err != nil {
		t.Fatalf("%s on %s: %v", sql, name, err)
	}
	return v
}

// EventuallyQuery polls sql on a node until it returns want (bounded).
func EventuallyQuery(t testing.TB, sb *sandbox.Sandbox, name, sql, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		if got = Query(t, sb, name, sql); got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s on %s: %q, want %q", sql, name, got, want)
}

// SetSync sets synchronous_standby_names on the primary and waits until its
// standbys show the sync states it gives.
func SetSync(t testing.TB, sb *sandbox.Sandbox, primary, setting string) {
	t.Helper()
	Exec(t, sb, primary, "ALTER SYSTEM SET synchronous_standby_names = '"+strings.ReplaceAll(setting, "'", "''")+"'", "SELECT pg_reload_conf()")
	EventuallyQuery(t, sb, primary, "SELECT (count(*) > 0)::text FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')", "true")
}

// RestartNode restarts a node (fast) and waits until it answers.
func RestartNode(t testing.TB, sb *sandbox.Sandbox, name string) {
	t.Helper()
	n := Node(t, sb, name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := Shell(sb).Run(ctx, fmt.Sprintf("%s/pg_ctl restart -D %s -m fast -w -t 50 -l %s/%s.log", sb.BinDir, n.DataDir, sb.Dir, name))
	if err != nil || out.ExitCode != 0 {
		t.Fatalf("restart %s: %v %s", name, err, out.Combined())
	}
}

// WaitReplayed waits (≤10s) until a standby has replayed all it received.
func WaitReplayed(t testing.TB, sb *sandbox.Sandbox, standby string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var lag int64 = -1
		for _, s := range sb.Status(context.Background()) {
			if s.Node.Name == standby && s.Err == nil {
				lag = s.LagBytes
			}
		}
		if lag == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not catch up within 10s", standby)
}

// Topology returns each node's role and upstream, e.g. "pg1=primary/1
// pg2=standby<54321/1": a test compares it before and after a run.
func Topology(t testing.TB, sb *sandbox.Sandbox) string {
	t.Helper()
	var parts []string
	for _, s := range sb.Status(context.Background()) {
		if s.Err != nil {
			parts = append(parts, s.Node.Name+"=down")
			continue
		}
		role := string(s.State.Role)
		if s.State.Role == pg.RoleStandby {
			role += "<" + s.State.Upstream[strings.LastIndex(s.State.Upstream, ":")+1:]
		}
		parts = append(parts, fmt.Sprintf("%s=%s/%d", s.Node.Name, role, s.State.Timeline))
	}
	return strings.Join(parts, " ")
}

// WantOnePrimary fails unless exactly one node is a primary, the one named.
func WantOnePrimary(t testing.TB, sb *sandbox.Sandbox, want string) {
	t.Helper()
	var primaries []string
	for _, s := range sb.Status(context.Background()) {
		if s.Err == nil && s.State.Role == pg.RolePrimary {
			primaries = append(primaries, s.Node.Name)
		}
	}
	if len(primaries) != 1 || primaries[0] != want {
		t.Fatalf("primaries at the end: %v, want only %s (%s)", primaries, want, Topology(t, sb))
	}
}

// PoolerTarget is the host:port in the pooler's database entry.
func PoolerTarget(t testing.TB, sb *sandbox.Sandbox) string {
	t.Helper()
	b, err := os.ReadFile(sb.PoolerConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "app") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// WriteThroughPooler commits one row through PgBouncer and says which
// server took it (its port).
func WriteThroughPooler(t testing.TB, sb *sandbox.Sandbox) int {
	t.Helper()
	// Polled: a write through the pooler is the condition, and a loaded
	// machine may take PgBouncer a moment to reach the server. What a
	// failed attempt met is logged, with PgBouncer's last lines.
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for attempt := 1; ; attempt++ {
		port, err := writeOnce(sb)
		if err == nil {
			if last != nil {
				t.Logf("a write through the pooler took %d attempts; the first failed: %v", attempt, last)
			}
			return port
		}
		if last == nil {
			last = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("write through the pooler, %d attempts in 30s: %v (first: %v)\nPgBouncer's last lines:\n%s", attempt, err, last, tailOf(filepath.Join(filepath.Dir(sb.PoolerConfig()), "pgbouncer.log"), 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// writeOnce writes one row through the pooler and returns the port of the
// server it landed on.
func writeOnce(sb *sandbox.Sandbox) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pg.ConnectPooled(ctx, sb.ClientConninfo())
	if err != nil {
		return 0, fmt.Errorf("connect through the pooler: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE TABLE IF NOT EXISTS probe (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())"); err != nil {
		return 0, fmt.Errorf("write through the pooler: %w", err)
	}
	var port int
	if err := c.QueryRow(ctx, "INSERT INTO probe DEFAULT VALUES RETURNING inet_server_port()").Scan(&port); err != nil {
		return 0, fmt.Errorf("write through the pooler: %w", err)
	}
	return port, nil
}

// tailOf is the last n lines of a file, or why it cannot be read.
func tailOf(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
