package checks

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestPGCaughtUpOnSharedSandbox(t *testing.T) {
	t.Parallel()
	tg := sandboxTarget(sandboxtest.Shared(t))
	for _, node := range []string{"pg2", "pg3"} {
		t.Run(node+" current", func(t *testing.T) {
			t.Parallel()
			c := mustBuild(t, "pg.caught_up", map[string]any{"node": node, "with": "pg1"})
			r := runUntil(t, c, tg, Pass, 5*time.Second)
			assertResult(t, r, Pass, []string{node + " replayed", "caught up", "received up to", "pg1's current WAL position"}, nil)
			hasValue(t, r, "bytes_behind", 0)
		})
	}
	t.Run("standby with standby", func(t *testing.T) {
		t.Parallel()
		c := mustBuild(t, "pg.caught_up", map[string]any{"node": "pg2", "with": "pg3"})
		r := runUntil(t, c, tg, Pass, 5*time.Second)
		assertResult(t, r, Pass, []string{"pg3's replay position (it is a standby)"}, nil)
	})
	t.Run("a primary has no replay", func(t *testing.T) {
		t.Parallel()
		r := runCheck(t, mustBuild(t, "pg.caught_up", map[string]any{"node": "pg1", "with": "pg2"}), tg)
		assertResult(t, r, Fail, []string{"pg1 is a primary"}, nil)
	})
	t.Run("shutdown checkpoint of a running primary", func(t *testing.T) {
		t.Parallel()
		// pg_controldata only reads pg1's control file: the check stays
		// read-only, and says pg1 was not shut down.
		c := mustBuild(t, "pg.caught_up", map[string]any{"node": "pg2", "with": "pg1", "target": "shutdown_checkpoint"})
		r := runCheck(t, c, tg)
		assertResult(t, r, Fail, []string{"pg1 is not shut down cleanly", `"in production"`}, nil)
	})
	t.Run("unknown node", func(t *testing.T) {
		t.Parallel()
		r := runCheck(t, mustBuild(t, "pg.caught_up", map[string]any{"node": "pg4", "with": "pg1"}), tg)
		assertResult(t, r, Error, []string{`"pg4" is not in the inventory`}, nil)
	})
}

func TestPGCaughtUpRejectsItself(t *testing.T) {
	t.Parallel()
	if _, err := build(t, "pg.caught_up", map[string]any{"node": "pg2", "with": "pg2"}); err == nil {
		t.Error("New accepted node and with both pg2")
	}
}

// bytesBehind matches the byte count in a failing result.
var bytesBehind = regexp.MustCompile(`: (\d+) bytes behind`)

// TestPGReplayPaused pauses replay on pg2 and writes on pg1: pg2 is no
// longer caught up, by a number of bytes, and pg.replication fails once its
// byte bound is below that.
func TestPGReplayPaused(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	tg := sandboxTarget(sb)
	pauseReplay(t, sb, "pg2")
	writeSome(t, sb, "pg1")

	r := runCheck(t, mustBuild(t, "pg.caught_up", map[string]any{"node": "pg2", "with": "pg1"}), tg)
	assertResult(t, r, Fail, []string{"pg2 replayed", "bytes behind", "replay is paused"}, nil)
	m := bytesBehind.FindStringSubmatch(r.Observed)
	if m == nil || m[1] == "0" {
		t.Errorf("observed %q: want a positive byte count", r.Observed)
	}

	// pg3 was not paused: it catches up.
	r = runUntil(t, mustBuild(t, "pg.caught_up", map[string]any{"node": "pg3", "with": "pg1"}), tg, Pass, 5*time.Second)
	assertResult(t, r, Pass, []string{"caught up"}, nil)

	r = runCheck(t, mustBuild(t, "pg.replication", map[string]any{"node": "pg2", "upstream": "pg1", "max_lag_bytes": "1"}), tg)
	assertResult(t, r, Fail, []string{"pg2 streams from pg1", "bytes behind, over 1 byte", "replay at most 1 byte and 30s"}, nil)
	if lag, _ := r.Values["lag_bytes"].(int64); lag <= 0 {
		t.Errorf("lag_bytes = %v, want > 0", r.Values["lag_bytes"])
	}

	// Under the default bound of 16MB the same lag passes.
	r = runCheck(t, mustBuild(t, "pg.replication", map[string]any{"node": "pg2", "upstream": "pg1"}), tg)
	assertResult(t, r, Pass, []string{"bytes behind"}, nil)
}

// TestPGCaughtUpShutdownCheckpoint stops pg1 cleanly: pg2, streaming, has
// replayed past its shutdown checkpoint; pg3, whose replay was paused
// before the stop, has not.
func TestPGCaughtUpShutdownCheckpoint(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	tg := sandboxTarget(sb)
	pauseReplay(t, sb, "pg3")
	writeSome(t, sb, "pg1")
	stopNode(t, sb, "pg1")

	// Through pg_controldata, as no fact is known.
	c2 := mustBuild(t, "pg.caught_up", map[string]any{"node": "pg2", "with": "pg1", "target": "shutdown_checkpoint"})
	r := runUntil(t, c2, tg, Pass, 5*time.Second)
	assertResult(t, r, Pass, []string{"pg2 replayed", "past the shutdown checkpoint of pg1", "from pg_controldata", "received up to"}, nil)
	hasValue(t, r, "shutdown_lsn_from", "pg_controldata")
	shutdownLSN, _ := r.Values["shutdown_lsn"].(string)
	if _, err := pg.ParseLSN(shutdownLSN); err != nil {
		t.Fatalf("shutdown_lsn %q: %v", shutdownLSN, err)
	}

	c3 := mustBuild(t, "pg.caught_up", map[string]any{"node": "pg3", "with": "pg1", "target": "shutdown_checkpoint"})
	r = runCheck(t, c3, tg)
	assertResult(t, r, Fail, []string{"pg3 replayed", "shutdown checkpoint of pg1 at " + shutdownLSN, "bytes behind", "replay is paused"}, nil)

	// With the fact a stop step records, pg_controldata is not needed.
	tg.Facts.Set(ShutdownLSNFact("pg1"), shutdownLSN)
	r = runCheck(t, c2, tg)
	assertResult(t, r, Pass, []string{"from fact pg1.shutdown_lsn"}, nil)
	hasValue(t, r, "shutdown_lsn", shutdownLSN)
	r = runCheck(t, c3, tg)
	assertResult(t, r, Fail, []string{"from fact pg1.shutdown_lsn", "bytes behind"}, nil)

	// The fact wins over pg_controldata: one far ahead fails pg2.
	tg.Facts.Set(ShutdownLSNFact("pg1"), "FF/0")
	r = runCheck(t, c2, tg)
	assertResult(t, r, Fail, []string{"shutdown checkpoint of pg1 at FF/0", "from fact"}, nil)

	// A fact that is not an LSN cannot be evaluated.
	tg.Facts.Set(ShutdownLSNFact("pg1"), "soon")
	r = runCheck(t, c2, tg)
	assertResult(t, r, Error, []string{"fact pg1.shutdown_lsn", "not an LSN"}, nil)

	// pg.reachable names the stopped node.
	r = runCheck(t, mustBuild(t, "pg.reachable", map[string]any{"node": "pg1"}), tg)
	assertResult(t, r, Error, []string{"pg1", nodeAddr(sandboxNode(t, sb, "pg1")), "connection refused"}, nil)
	if !strings.HasPrefix(r.Observed, "connect pg1") {
		t.Errorf("observed %q: want it to start with the node", r.Observed)
	}
}
