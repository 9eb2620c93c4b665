package checks

import (
	"slices"
	"testing"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestPgBNoPreparedXactsOnShared(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	c := mustBuild(t, "pg.no_prepared_xacts", map[string]any{"node": "pg1"})
	r := pgBRun(t, c, pgBTarget(sb))
	assertResult(t, r, Pass, []string{"no prepared transactions on pg1"}, nil)
	if r.Values["count"] != 0 {
		t.Errorf("values count = %v, want 0", r.Values["count"])
	}
}

// TestPgBNoPreparedXacts prepares a transaction on the primary of a sandbox
// of its own (restarted to allow prepared transactions) and expects the
// check to fail naming it until it is committed.
func TestPgBNoPreparedXacts(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	tg := pgBTarget(sb)
	// A standby must allow at least as many prepared transactions as its
	// primary, or it stops replaying: the standby first.
	for _, node := range []string{"pg2", "pg1"} {
		pgBSQL(t, sb, node, "ALTER SYSTEM SET max_prepared_transactions = 5")
		pgBRestart(t, sb, node)
	}
	pgBWaitStreaming(t, sb, "pg2")
	c := mustBuild(t, "pg.no_prepared_xacts", map[string]any{"node": "pg1"})
	assertResult(t, pgBRun(t, c, tg), Pass, []string{"no prepared transactions on pg1"}, nil)

	conn := pgBConn(t, sb, "pg1")
	pgBExec(t, conn, "CREATE TABLE pgb_prepared (id int)",
		"BEGIN", "INSERT INTO pgb_prepared VALUES (1)", "PREPARE TRANSACTION 'pgb-gid-1'")
	r := pgBRun(t, c, tg)
	assertResult(t, r, Fail, []string{`1 prepared transaction on pg1: "pgb-gid-1"`,
		`gid "pgb-gid-1"  owner postgres  database postgres  prepared `, "COMMIT PREPARED"}, nil)
	if r.Values["count"] != 1 || !slices.Equal(r.Values["gids"].([]string), []string{"pgb-gid-1"}) {
		t.Errorf("values = %v, want count 1 and gids [pgb-gid-1]", r.Values)
	}

	pgBExec(t, conn, "COMMIT PREPARED 'pgb-gid-1'")
	assertResult(t, pgBRunUntil(t, c, tg, Pass, pgBWaitLimit), Pass, nil, []string{"pgb-gid-1"})
}
