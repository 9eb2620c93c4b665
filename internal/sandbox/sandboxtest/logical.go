package sandboxtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/canary"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
)

// What the tests of a blue/green move share: blue's database app filled
// with pgbench's tables and a table with a sequence, writers through
// PgBouncer into tables that are replicated, and the comparison of both
// sides.

// LogicalWritesTable is the table the independent writer of a move's test
// writes into: made before the move's prepare, so that it is copied and
// published with the rest (a writer that made its own table during the
// move would be DDL, refused by the guard).
const LogicalWritesTable = "independent_writes"

// LogicalTables are the tables FillForMove makes in blue's database app.
var LogicalTables = []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history", "orders", LogicalWritesTable}

// FillForMove fills blue's database app for a move: pgbench's tables
// (pgbench -i, pgbench_history without a primary key), orders with a
// bigserial sequence and some rows, and the independent writer's table.
func FillForMove(t testing.TB, sb *sandbox.Sandbox) {
	t.Helper()
	pg1 := Node(t, sb, "pg1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(sb.BinDir, "pgbench"), "-i", "-s", "1", "-q",
		"-h", "127.0.0.1", "-p", fmt.Sprint(pg1.Port), "-U", "postgres", "app").CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench -i on pg1: %v\n%s", err, out)
	}
	ExecApp(t, sb, "pg1",
		"CREATE TABLE orders (id bigserial PRIMARY KEY, note text NOT NULL, at timestamptz NOT NULL DEFAULT now())",
		"INSERT INTO orders (note) SELECT 'seed' FROM generate_series(1, 500)",
		"CREATE TABLE "+LogicalWritesTable+" (id bigint NOT NULL, run_id text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (run_id, id))")
}

// appConninfo is a superuser connection string to database app of a
// node, blue's or green's.
func appConninfo(t testing.TB, sb *sandbox.Sandbox, name string) string {
	return sb.Conninfo(Node(t, sb, name), "app")
}

// ExecApp runs statements on database app of a node, one at a time.
func ExecApp(t testing.TB, sb *sandbox.Sandbox, name string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pg.Connect(ctx, appConninfo(t, sb, name), 0)
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	defer c.Close(context.Background())
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s on %s: %v", s, name, err)
		}
	}
}

// QueryApp returns one text value from database app of a node.
func QueryApp(t testing.TB, sb *sandbox.Sandbox, name, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pg.Connect(ctx, appConninfo(t, sb, name), 0)
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

// StartMoveWriter starts an independent writer through PgBouncer into
// LogicalWritesTable, with a commit acknowledged before it returns; its
// Stop checks every acknowledged commit on the server PgBouncer then
// routes to, and deletes its rows.
func StartMoveWriter(t testing.TB, sb *sandbox.Sandbox) *canary.Writer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := canary.Start(ctx, canary.Options{Conninfo: sb.ClientConninfo(), Table: LogicalWritesTable, Existing: true,
		Interval: 5 * time.Millisecond, RunID: fmt.Sprintf("writer-%d", time.Now().UnixNano())})
	if err != nil {
		t.Fatalf("writer through PgBouncer: %v", err)
	}
	t.Cleanup(w.Close)
	deadline := time.Now().Add(30 * time.Second)
	for w.Acked() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the writer through PgBouncer had no commit acknowledged within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return w
}

// Pgbench is pgbench running through PgBouncer: TPC-B like transactions
// and inserts into orders (its sequence moves on each side in turn).
type Pgbench struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan error
}

// StartPgbench runs pgbench with clients through PgBouncer for d.
func StartPgbench(t testing.TB, sb *sandbox.Sandbox, clients int, d time.Duration) *Pgbench {
	t.Helper()
	script := filepath.Join(t.TempDir(), "orders.sql")
	if err := os.WriteFile(script, []byte("INSERT INTO orders (note) VALUES ('pgbench');\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &Pgbench{done: make(chan error, 1)}
	p.cmd = exec.Command(filepath.Join(sb.BinDir, "pgbench"), "-n", "-c", fmt.Sprint(clients), "-T", fmt.Sprint(int(d.Seconds())),
		"-b", "tpcb-like@3", "-f", script+"@1", "-h", "127.0.0.1", "-p", fmt.Sprint(sb.PortBase), "-U", "postgres", "app")
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("pgbench: %v", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
		}
	})
	return p
}

// Wait waits for pgbench to end (bounded) and fails the test unless it
// ended well: exit 0, no failed transaction, no client aborted. It
// returns the transactions pgbench committed.
func (p *Pgbench) Wait(t testing.TB, within time.Duration) string {
	t.Helper()
	var err error
	select {
	case err = <-p.done:
	case <-time.After(within):
		_ = p.cmd.Process.Kill()
		t.Fatalf("pgbench did not end within %s:\n%s", within, p.out.String())
	}
	out := p.out.String()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("pgbench: %v", err)
	}
	if err != nil || strings.Contains(out, "aborted") || !strings.Contains(out, "number of failed transactions: 0 ") {
		t.Fatalf("pgbench through PgBouncer met errors (%v):\n%s", err, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "number of transactions actually processed: ") {
			return strings.TrimPrefix(l, "number of transactions actually processed: ")
		}
	}
	return "?"
}

// WantSameRows waits (bounded) until every table of LogicalTables has as
// many rows on node a as on node b, and fails the test otherwise.
func WantSameRows(t testing.TB, sb *sandbox.Sandbox, a, b string) {
	t.Helper()
	var counts func(node string) string
	counts = func(node string) string {
		var parts []string
		for _, table := range LogicalTables {
			parts = append(parts, fmt.Sprintf("(SELECT count(*) FROM %s)::text", table))
		}
		return QueryApp(t, sb, node, "SELECT "+strings.Join(parts, " || ',' || "))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ca, cb := counts(a), counts(b)
		if ca == cb {
			t.Logf("rows of %s: %s on %s and on %s", strings.Join(LogicalTables, ","), ca, a, b)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rows of %s: %s on %s, %s on %s", strings.Join(LogicalTables, ","), ca, a, cb, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WantSequencesAhead fails the test unless every sequence of database app
// on node to stands at or after the same sequence on node from.
func WantSequencesAhead(t testing.TB, sb *sandbox.Sandbox, from, to string) {
	t.Helper()
	const q = "SELECT coalesce(string_agg(schemaname || '.' || sequencename || '=' || coalesce(last_value, 0), ',' ORDER BY 1), '') FROM pg_sequences"
	f, g := parseSequences(QueryApp(t, sb, from, q)), parseSequences(QueryApp(t, sb, to, q))
	if len(f) == 0 {
		t.Fatalf("no sequence on %s", from)
	}
	for name, v := range f {
		if w, ok := g[name]; !ok || w < v {
			t.Errorf("sequence %s: %d on %s, %d on %s (present: %v): want %s's at least %s's", name, v, from, w, to, ok, to, from)
		}
	}
	t.Logf("sequences on %s %v, on %s %v", from, f, to, g)
}

func parseSequences(s string) map[string]int64 {
	out := map[string]int64{}
	for _, kv := range strings.Split(s, ",") {
		name, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		var n int64
		fmt.Sscan(v, &n)
		out[name] = n
	}
	return out
}
