package checks

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pgbouncer"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestPoolerPoolModeOnShared(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	c := mustBuild(t, "pgbouncer.pool_mode", nil)
	r := runCheck(t, c, sandboxTarget(sb))
	assertResult(t, r, Pass, []string{"PgBouncer pools app in transaction mode (SHOW CONFIG: pool_mode, the default)"}, nil)
	if !strings.Contains(c.Describe(sandboxTarget(sb)), "database app") {
		t.Errorf("describe = %q", c.Describe(sandboxTarget(sb)))
	}
}

// adminRun runs a command on the sandbox's PgBouncer admin console.
func adminRun(t *testing.T, sb *sandbox.Sandbox, command string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgbouncer.Dial(ctx, sb.AdminConninfo())
	if err != nil {
		t.Fatalf("connect to the admin console: %v", err)
	}
	defer closeConn(conn)
	if _, err := conn.Exec(ctx, command); err != nil {
		t.Fatalf("pgbouncer %s: %v", command, err)
	}
}

// TestPoolerPoolMode switches a sandbox's PgBouncer to session pooling,
// first as its default, then for the database alone, and expects the
// check to refuse each, saying where it read the mode.
func TestPoolerPoolMode(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	tg := sandboxTarget(sb)
	c := mustBuild(t, "pgbouncer.pool_mode", nil)

	adminRun(t, sb, "SET pool_mode = 'session'")
	r := runCheck(t, c, tg)
	assertResult(t, r, Fail, []string{"PgBouncer pools app in session mode (SHOW CONFIG: pool_mode, the default)",
		"PAUSE waits until every client of app has disconnected", "set pool_mode = transaction",
		"a runbook that does not pause the pooler"}, nil)
	adminRun(t, sb, "SET pool_mode = 'statement'")
	assertResult(t, runCheck(t, c, tg), Pass, []string{"statement mode"}, nil)
	adminRun(t, sb, "SET pool_mode = 'transaction'")

	ini, err := os.ReadFile(sb.PoolerConfig())
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(ini), "dbname=app\n", "dbname=app pool_mode=session\n", 1)
	if text == string(ini) {
		t.Fatalf("no app entry to change in %s", sb.PoolerConfig())
	}
	if err := os.WriteFile(sb.PoolerConfig(), []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	adminRun(t, sb, "RELOAD")
	r = runUntil(t, c, tg, Fail, settleLimit)
	assertResult(t, r, Fail, []string{"session mode (SHOW DATABASES: app pool_mode)"}, nil)
	if r.Values["pool_mode"] != "session" {
		t.Errorf("values = %v, want pool_mode session", r.Values)
	}
}

func TestPoolModeJudge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modes  []poolMode
		status Status
		want   string
	}{
		{"user wins", []poolMode{{"session", "SHOW USERS: app pool_mode"}, {"transaction", "db"}, {"transaction", "cfg"}}, Fail, "session mode (SHOW USERS"},
		{"database over default", []poolMode{{"", "u"}, {"transaction", "SHOW DATABASES: app pool_mode"}, {"session", "cfg"}}, Pass, "transaction mode (SHOW DATABASES"},
		{"unknown mode", []poolMode{{"", "u"}, {"", "d"}, {"bogus", "cfg"}}, Fail, `mode "bogus"`},
		{"nothing", []poolMode{{"", "u"}, {"", "d"}, {"", "cfg"}}, Error, "no pool_mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := judgePoolMode("app", tc.modes)
			if r.Status != tc.status || !strings.Contains(r.Observed, tc.want) {
				t.Errorf("judge = %s %q, want %s holding %q", r.Status, r.Observed, tc.status, tc.want)
			}
		})
	}
}
