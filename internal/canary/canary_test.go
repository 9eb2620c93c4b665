package canary_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/canary"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestMain(m *testing.M) { sandboxtest.Main(m) }

// waitAcks waits until the writer's table on pg1 holds at least n more
// heartbeats than from, failing after 10s, and returns how many it holds.
// The writer sends a heartbeat only once the one before it was
// acknowledged, so all of them but the last are.
func waitAcks(ctx context.Context, t *testing.T, c *pgx.Conn, table string, from, n int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var have int
		err := c.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s", table)).Scan(&have)
		if err == nil && have >= from+n {
			return have
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d heartbeats after the first %d within 10s, want %d (%v)", table, have-from, from, n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connectPG1 connects to the app database on pg1, where the writer's table
// is, around the pooler.
func connectPG1(ctx context.Context, t *testing.T, sb *sandbox.Sandbox) *pgx.Conn {
	t.Helper()
	pg1, _ := sb.Node("pg1")
	c, err := pg.Connect(ctx, sb.Conninfo(pg1, "app"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Writes stopped for a known interval (the pooler paused) show as a write
// gap of that length, within a few milliseconds, and nothing is lost.
func TestCanaryMeasuresAPausedPooler(t *testing.T) {
	sb := sandboxtest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := canary.Start(ctx, canary.Options{Conninfo: sb.ClientConninfo(), RunID: "pause-test", Table: "canary_pause_test"})
	if err != nil {
		t.Fatal(err)
	}
	pg1 := connectPG1(ctx, t, sb)
	waitAcks(ctx, t, pg1, "canary_pause_test", 0, 10)
	admin, err := pg.ConnectAdmin(ctx, sb.AdminConninfo())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// PAUSE returns once no transaction runs through the pooler, and no
	// commit can be acknowledged until RESUME is through: the window holds
	// at least the time between the two (inner), and at most the time from
	// sending PAUSE to RESUME's answer (outer) plus one heartbeat interval.
	sent := time.Now()
	if _, err := admin.Exec(ctx, "PAUSE app"); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	// The pause the canary is to measure, not a wait for anything.
	time.Sleep(500 * time.Millisecond)
	resuming := time.Now()
	if _, err := admin.Exec(ctx, "RESUME app"); err != nil {
		t.Fatal(err)
	}
	inner, outer := resuming.Sub(paused), time.Since(sent)
	have := waitAcks(ctx, t, pg1, "canary_pause_test", 0, 0)
	waitAcks(ctx, t, pg1, "canary_pause_test", have, 10)
	r, err := w.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pooler held between %s and %s; canary: %d acked, %d errors, window %s", inner, outer, r.Acked, r.Errors, r.Window)
	// Commits on both sides of the pause, not a rate: a loaded machine
	// commits slower, and the gap below is what the test is about.
	if r.Acked < 10 {
		t.Fatalf("only %d commits acknowledged", r.Acked)
	}
	// The longest gap is the pause's: it opens when the last commit before
	// PAUSE is through (PAUSE answers as that commit's answer reaches the
	// writer, so the writer's clock may read it a moment after ours) and
	// closes after RESUME was sent. Its far ends are one heartbeat interval
	// and a commit away from the pause, which on a loaded machine is tens
	// of milliseconds, not hundreds.
	const race = 20 * time.Millisecond
	if r.WindowFrom.After(paused.Add(race)) || r.WindowTo.Before(resuming) {
		t.Fatalf("window from %s to %s does not cover the pause from %s to %s",
			r.WindowFrom.Format(time.StampMicro), r.WindowTo.Format(time.StampMicro), paused.Format(time.StampMicro), resuming.Format(time.StampMicro))
	}
	if r.Window < inner-race || r.Window > outer+200*time.Millisecond {
		t.Fatalf("window %s, but the pooler was paused for at least %s and at most %s", r.Window, inner, outer)
	}
	if r.Errors != 0 || len(r.Lost) != 0 {
		t.Fatalf("%d errors, lost %v; want none: a paused pooler makes clients wait, not fail", r.Errors, r.Lost)
	}
	if !r.WindowFrom.Before(r.WindowTo) || r.WindowTo.Sub(r.WindowFrom) != r.Window {
		t.Fatalf("window from %s to %s does not match %s", r.WindowFrom, r.WindowTo, r.Window)
	}
}

// An acknowledged heartbeat missing afterwards is reported lost.
func TestCanaryReportsALostCommit(t *testing.T) {
	sb := sandboxtest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := canary.Start(ctx, canary.Options{Conninfo: sb.ClientConninfo(), RunID: "lost-test", Table: "canary_lost_test"})
	if err != nil {
		t.Fatal(err)
	}
	c := connectPG1(ctx, t, sb)
	waitAcks(ctx, t, c, "canary_lost_test", 0, 10)
	var gone int64
	if err := c.QueryRow(ctx, "DELETE FROM canary_lost_test WHERE id = (SELECT min(id) FROM canary_lost_test) RETURNING id").Scan(&gone); err != nil {
		t.Fatal(err)
	}
	r, err := w.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Lost) != 1 || r.Lost[0] != gone {
		t.Fatalf("lost %v, want exactly [%d], the row deleted behind the canary's back", r.Lost, gone)
	}
	var exists bool
	if err := c.QueryRow(ctx, "SELECT to_regclass('canary_lost_test') IS NOT NULL").Scan(&exists); err != nil || exists {
		t.Fatalf("the canary's table is still there (%v, %v): it must be dropped", exists, err)
	}
}
