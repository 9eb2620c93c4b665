package steps

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// tableExists reports whether a table of that name is on the sandbox's
// primary, in the database the direct canary writes to.
func tableExists(t *testing.T, sb *sandbox.Sandbox, name string) bool {
	t.Helper()
	conn := nodeConn(t, sb, "pg1", "postgres")
	var n int
	ctx := testCtx(t, 10*time.Second)
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_class WHERE relname = $1 AND relkind = 'r'", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// waitHeartbeats waits until the canary of run id has written more than
// after heartbeats (by the highest id) into table on the primary, failing
// after 10s. A writer sends a heartbeat only once the one before it was
// acknowledged, so every heartbeat but the last is acknowledged. It returns
// the highest id seen.
func waitHeartbeats(t *testing.T, sb *sandbox.Sandbox, table, id string, after int64) int64 {
	t.Helper()
	conn := nodeConn(t, sb, "pg1", "postgres")
	deadline := time.Now().Add(10 * time.Second)
	for {
		var last int64
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := conn.QueryRow(ctx, fmt.Sprintf("SELECT coalesce(max(id), 0) FROM %s WHERE run_id = $1", table), id).Scan(&last)
		cancel()
		if err == nil && last > after {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: no heartbeat after id %d in %s within 10s; last: id %d, %v", id, after, table, last, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCanaryTwoRunsAtOnce: two runs' canaries write at the same time, each
// into a table named for its run; each counts its own heartbeats, finds
// none lost, and drops only its own table. (With one shared table, the first
// to stop dropped the other's heartbeats.)
func TestCanaryTwoRunsAtOnce(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	runs := []string{"20261121T102530Z-aaaaaa", "20261121T102530Z-bbbbbb"}
	var tgs []*cluster.Target
	var ps []*printed
	for _, id := range runs {
		tg, p := sandboxTarget(sb)
		tg.RunID = id
		tg.Session = &cluster.Session{}
		t.Cleanup(tg.Session.CloseAll)
		mustApply(t, tg, p, "canary.start", map[string]string{"via": "direct", "interval": "5ms"})
		tgs, ps = append(tgs, tg), append(ps, p)
	}
	tables := make([]string, len(runs))
	for i, tg := range tgs {
		tables[i], _ = tg.Facts.Get("canary.table")
		if !tableExists(t, sb, tables[i]) {
			t.Fatalf("run %s: no table %q on the primary", runs[i], tables[i])
		}
	}
	if tables[0] == tables[1] {
		t.Fatalf("two runs share the canary table %s", tables[0])
	}
	for i := range tgs {
		waitHeartbeats(t, sb, tables[i], runs[i], 24) // a few dozen each
	}
	for i, tg := range tgs {
		out := mustApply(t, tg, ps[i], "canary.stop", nil)
		wantLine(t, out, "0 lost")
		if tableExists(t, sb, tables[i]) {
			t.Errorf("run %s: table %s is still there after canary.stop", runs[i], tables[i])
		}
		if i == 0 && !tableExists(t, sb, tables[1]) {
			t.Errorf("the first run's canary.stop dropped the second run's table %s", tables[1])
		}
		if acked, _ := tg.Facts.Get("canary.acked"); acked == "" || acked == "0" {
			t.Errorf("run %s: %s heartbeats acknowledged", runs[i], acked)
		}
	}
}

// TestCanaryResumedRunGoesOn: a canary started again by a resumed run (same
// run id, its table left by the interrupted writer) goes on after the ids
// already there instead of colliding with them.
func TestCanaryResumedRunGoesOn(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	const id = "20261121T102530Z-cccccc"
	first, p1 := sandboxTarget(sb)
	first.RunID, first.Session = id, &cluster.Session{}
	mustApply(t, first, p1, "canary.start", map[string]string{"via": "direct"})
	table, _ := first.Facts.Get("canary.table")
	waitHeartbeats(t, sb, table, id, 10)
	first.Session.CloseAll() // the interrupted process: its writer stops, its table stays
	// The highest id the interrupted writer left.
	left := waitHeartbeats(t, sb, table, id, 0)

	again, p2 := sandboxTarget(sb)
	again.RunID, again.Session = id, &cluster.Session{}
	t.Cleanup(again.Session.CloseAll)
	mustApply(t, again, p2, "canary.start", map[string]string{"via": "direct"})
	// Heartbeats after the ids left: the resumed writer goes on after them.
	waitHeartbeats(t, sb, table, id, left+10)
	out := mustApply(t, again, p2, "canary.stop", nil)
	wantLine(t, out, "0 client errors")
	wantLine(t, out, "0 lost")
}
