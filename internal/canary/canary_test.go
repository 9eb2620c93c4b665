package canary_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/canary"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestMain(m *testing.M) { sandboxtest.Main(m) }

func waitAcks(t *testing.T, d time.Duration) { t.Helper(); time.Sleep(d) }

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
	waitAcks(t, 300*time.Millisecond)
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
	time.Sleep(500 * time.Millisecond)
	resuming := time.Now()
	if _, err := admin.Exec(ctx, "RESUME app"); err != nil {
		t.Fatal(err)
	}
	inner, outer := resuming.Sub(paused), time.Since(sent)
	waitAcks(t, 300*time.Millisecond)
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
	waitAcks(t, 200*time.Millisecond)
	pg1, _ := sb.Node("pg1")
	c, err := pg.Connect(ctx, sb.Conninfo(pg1, "app"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
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
