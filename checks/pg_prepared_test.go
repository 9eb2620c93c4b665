package checks

import (
	"slices"
	"testing"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestNoPreparedXactsOnShared(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	c := mustBuild(t, "pg.no_prepared_xacts", map[string]any{"node": "pg1"})
	r := runCheck(t, c, sandboxTarget(sb))
	assertResult(t, r, Pass, []string{"no prepared transactions on pg1"}, nil)
	if r.Values["count"] != 0 {
		t.Errorf("values count = %v, want 0", r.Values["count"])
	}
}

// TestNoPreparedXacts prepares a transaction on the primary of a sandbox
// of its own (restarted to allow prepared transactions) and expects the
// check to fail naming it until it is committed.
func TestNoPreparedXacts(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	tg := sandboxTarget(sb)
	// A standby must allow at least as many prepared transactions as its
	// primary, or it stops replaying: the standby first.
	for _, node := range []string{"pg2", "pg1"} {
		runSQL(t, sb, node, "ALTER SYSTEM SET max_prepared_transactions = 5")
		restartNode(t, sb, node)
	}
	waitStreaming(t, sb, "pg2")
	c := mustBuild(t, "pg.no_prepared_xacts", map[string]any{"node": "pg1"})
	assertResult(t, runCheck(t, c, tg), Pass, []string{"no prepared transactions on pg1"}, nil)

	conn := openSession(t, sb, "pg1")
	execAll(t, conn, "CREATE TABLE prepared (id int)",
		"BEGIN", "INSERT INTO prepared VALUES (1)", "PREPARE TRANSACTION 'gid-1'")
	r := runCheck(t, c, tg)
	assertResult(t, r, Fail, []string{`1 prepared transaction on pg1: "gid-1"`,
		`gid "gid-1"  owner postgres  database postgres  prepared `, "COMMIT PREPARED"}, nil)
	if r.Values["count"] != 1 || !slices.Equal(r.Values["gids"].([]string), []string{"gid-1"}) {
		t.Errorf("values = %v, want count 1 and gids [gid-1]", r.Values)
	}

	execAll(t, conn, "COMMIT PREPARED 'gid-1'")
	assertResult(t, runUntil(t, c, tg, Pass, settleLimit), Pass, nil, []string{"gid-1"})
}
