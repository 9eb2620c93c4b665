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
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/transport"
)

// Helpers for the tests of pg_sessions.go, pg_prepared.go, pg_version.go,
// pg_settings.go, pg_archiver.go, pg_sync.go and maintenance.go. Tests that
// change a sandbox own it (sandboxtest.New) and do not call t.Parallel, so
// they bring up one sandbox at a time; read-only ones use the shared one.

// pgBWaitLimit bounds every wait for the cluster to settle.
const pgBWaitLimit = 10 * time.Second

// pgBTarget is what a runbook would give a check for the sandbox.
func pgBTarget(sb *sandbox.Sandbox) *cluster.Target {
	return &cluster.Target{Cluster: sb.Cluster(), Facts: &cluster.Facts{}}
}

// pgBRun runs a check once with a bounded context.
func pgBRun(t *testing.T, c Check, tg *cluster.Target) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Run(ctx, tg)
}

// pgBRunUntil runs a check until it reaches status or limit passes, and
// returns the last result.
func pgBRunUntil(t *testing.T, c Check, tg *cluster.Target, status Status, limit time.Duration) Result {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		r := pgBRun(t, c, tg)
		if r.Status == status || time.Now().After(deadline) {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pgBNode returns a sandbox node, failing the test when there is none.
func pgBNode(t *testing.T, sb *sandbox.Sandbox, name string) sandbox.Node {
	t.Helper()
	n, ok := sb.Node(name)
	if !ok {
		t.Fatalf("sandbox has no node %s", name)
	}
	return n
}

// pgBConn opens a superuser session on a sandbox node, closed when the
// test ends. Tests use it to hold locks and transactions open.
func pgBConn(t *testing.T, sb *sandbox.Sandbox, node string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, sb.Conninfo(pgBNode(t, sb, node), "postgres"), 30*time.Second)
	if err != nil {
		t.Fatalf("connect %s: %v", node, err)
	}
	t.Cleanup(func() { pgBClose(conn) })
	return conn
}

// pgBExec runs statements on an open session.
func pgBExec(t *testing.T, conn *pgx.Conn, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// pgBSQL runs statements on a sandbox node in a session of their own.
func pgBSQL(t *testing.T, sb *sandbox.Sandbox, node string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, sb.Conninfo(pgBNode(t, sb, node), "postgres"), 10*time.Second)
	if err != nil {
		t.Fatalf("connect %s: %v", node, err)
	}
	defer pgBClose(conn)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s on %s: %v", s, node, err)
		}
	}
}

// pgBQueryString runs a query returning one text value on a sandbox node,
// in a fresh session (so it sees a reloaded configuration).
func pgBQueryString(sb *sandbox.Sandbox, node sandbox.Node, query string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, sb.Conninfo(node, "postgres"), 5*time.Second)
	if err != nil {
		return "", err
	}
	defer pgBClose(conn)
	var s string
	err = conn.QueryRow(ctx, query).Scan(&s)
	return s, err
}

// pgBPid returns the backend pid of a session.
func pgBPid(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatalf("pg_backend_pid: %v", err)
	}
	return pid
}

// pgBWait polls cond until it holds, failing the test after limit with
// what cond last said.
func pgBWait(t *testing.T, what string, limit time.Duration, cond func() (bool, string)) {
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

// pgBSetting sets a parameter on a node with ALTER SYSTEM, reloads the
// configuration and waits until a new session sees want.
func pgBSetting(t *testing.T, sb *sandbox.Sandbox, node, name, value, want string) {
	t.Helper()
	pgBSQL(t, sb, node, fmt.Sprintf("ALTER SYSTEM SET %s = '%s'", name, strings.ReplaceAll(value, "'", "''")),
		"SELECT pg_reload_conf()")
	n := pgBNode(t, sb, node)
	pgBWait(t, fmt.Sprintf("%s on %s becomes %q", name, node, want), pgBWaitLimit, func() (bool, string) {
		got, err := pgBQueryString(sb, n, fmt.Sprintf("SELECT current_setting('%s')", name))
		return err == nil && got == want, fmt.Sprintf("%q, %v", got, err)
	})
}

// pgBQuote quotes a string for a POSIX shell.
func pgBQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// pgBRestart restarts a node of a sandbox the test owns with pg_ctl, as the
// servers' OS user, and waits until it accepts connections.
func pgBRestart(t *testing.T, sb *sandbox.Sandbox, node string) {
	t.Helper()
	n := pgBNode(t, sb, node)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := fmt.Sprintf("%s restart -D %s -w -t 50 -m fast -l %s",
		pgBQuote(filepath.Join(sb.BinDir, "pg_ctl")), pgBQuote(n.DataDir), pgBQuote(filepath.Join(sb.Dir, n.Name+".log")))
	out, err := transport.Local{User: sb.RunAs}.Run(ctx, cmd)
	if err != nil || out.ExitCode != 0 {
		t.Fatalf("restart %s: exit %d, %v: %s", node, out.ExitCode, err, out.Combined())
	}
	pgBWait(t, node+" accepts connections after the restart", pgBWaitLimit, func() (bool, string) {
		_, err := pgBQueryString(sb, n, "SELECT 'up'")
		return err == nil, fmt.Sprint(err)
	})
}

// pgBWaitStreaming waits until a standby streams again.
func pgBWaitStreaming(t *testing.T, sb *sandbox.Sandbox, node string) {
	t.Helper()
	n := pgBNode(t, sb, node)
	pgBWait(t, node+" streams", pgBWaitLimit, func() (bool, string) {
		got, err := pgBQueryString(sb, n, "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'no receiver')")
		return err == nil && got == "streaming", fmt.Sprintf("%q, %v", got, err)
	})
}

// pgBKinds are the kinds pg_sessions.go and its siblings register, with a
// valid value for each required parameter.
var pgBKinds = map[string]map[string]string{
	"pg.no_blocking_sessions": {"node": "pg2"},
	"pg.no_prepared_xacts":    {"node": "pg1"},
	"pg.same_major_version":   {},
	"pg.settings_match":       {"settings": "wal_level"},
	"pg.archiver_healthy":     {"node": "pg1"},
	"pg.sync_standbys":        {"primary": "pg1", "candidate": "pg2"},
	"cluster.maintenance":     {},
}

func TestPgBRegistration(t *testing.T) {
	t.Parallel()
	for kind, required := range pgBKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			def, ok := Lookup(kind)
			if !ok {
				t.Fatalf("%q is not registered", kind)
			}
			if strings.TrimSpace(def.Doc) == "" || strings.Contains(def.Doc, "\n") {
				t.Errorf("doc %q: want one non-empty line", def.Doc)
			}
			raw := map[string]params.Raw{}
			for _, p := range def.Params {
				if strings.TrimSpace(p.Doc) == "" {
					t.Errorf("parameter %q has no doc", p.Name)
				}
				if p.Type == params.Unknown {
					t.Errorf("parameter %q has no type", p.Name)
				}
				if p.Required {
					v, ok := required[p.Name]
					if !ok {
						t.Fatalf("no sample value for required parameter %q", p.Name)
					}
					raw[p.Name] = params.Raw{Scalar: v}
				}
			}
			vals, probs := params.Decode(def.Params, raw)
			if len(probs) > 0 {
				t.Fatalf("decode with required parameters: %v", probs)
			}
			c, err := def.New(vals)
			if err != nil {
				t.Fatalf("new with defaults: %v", err)
			}
			if d := c.Describe(nil); d == "" {
				t.Error("describe is empty")
			}
			// Without an inventory a check can only say so.
			r := c.Run(testCtx(t, 0), nil)
			if kind == "cluster.maintenance" {
				assertResult(t, r, Pass, []string{"no cluster manager"}, nil)
			} else {
				assertResult(t, r, Error, []string{"no inventory"}, nil)
			}
		})
	}
}
