package faults

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
	"github.com/switchover/switchover/runbook"
)

// TestKilledBeforeThePromotionNoClientWaitsPastTheCap: the run is killed
// inside stop-primary while a direct session keeps the old primary's
// smart shutdown waiting. At the cap no node takes writes: the old
// primary is half-stopped (it refuses new connections), the candidate not
// promoted. Resumed there, clients would wait in PgBouncer for a server
// for minutes (its query_wait_timeout). The guard refuses them at once
// instead: no commit of the independent writer through PgBouncer waits
// longer than the cap, and a client that connects after the kill gets an
// answer (an error) by the cap too. The resumed run then settles the cut
// off stop, finishes or rolls back, and enables the database: one
// writable primary, 0 lost, never two nodes acknowledging commits at once.
func TestKilledBeforeThePromotionNoClientWaitsPastTheCap(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	testbin.Build(t)
	before, err := waitHealthy(t, sb)
	if err != nil {
		t.Fatalf("before the case: %v", err)
	}
	primary, candidate := before.primary, "pg2"
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	direct, err := pg.Connect(ctx, sb.Conninfo(sandboxtest.Node(t, sb, primary), "postgres")+" application_name=faults-direct", 0)
	cancel()
	if err != nil {
		t.Fatalf("a direct session on %s: %v", primary, err)
	}
	t.Cleanup(func() { direct.Close(context.Background()) })

	w := startWriter(t, sb, "faults_killed_before_promotion")
	smp := sandboxtest.StartSampler(sb)
	t.Cleanup(func() { smp.Finish() })

	const hold = 6 * time.Second
	work, jdir := t.TempDir(), t.TempDir()
	jd := "--journal-dir=" + jdir
	p := start(t, work, "run", playbook, "-i", sb.Inventory(), "--yes", jd,
		"--var", "primary="+primary, "--var", "candidate="+candidate, "--var", "stop_mode=smart",
		"--var", "pause_max_hold="+hold.String(), "--var", "pause_max_wait=2s", "--var", "stop_timeout=3s")
	p.WaitJournal(jdir, "pause-pooler done", cmdTimeout, testbin.MainStep("pause-pooler", "done"))
	paused := time.Now()
	p.WaitJournal(jdir, "stop-primary running", cmdTimeout, testbin.MainStep("stop-primary", "running"))
	// Killed once the smart shutdown is under way: the old primary
	// refuses new connections and waits for the direct session.
	waitFor(t, primary+" shutting down", func(ctx context.Context) error {
		c, err := pg.Connect(ctx, sb.Conninfo(sandboxtest.Node(t, sb, primary), "postgres"), 0)
		if err == nil {
			c.Close(context.Background())
			return fmt.Errorf("%s still takes connections", primary)
		}
		if !strings.Contains(err.Error(), "shutting down") {
			return err
		}
		return nil
	})
	if !p.Kill() {
		t.Fatalf("the run ended before it could be killed: %s", p.Wait())
	}
	t.Logf("the run killed inside stop-primary %s after the pause", time.Since(paused).Round(time.Millisecond))

	// A client that connects after the kill: held by the pause, it must
	// have its answer by the cap.
	late := make(chan time.Duration, 1)
	go func() {
		t0 := time.Now()
		lctx, lcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer lcancel()
		if c, err := pg.ConnectPooled(lctx, sb.ClientConninfo()); err == nil {
			_, _ = c.Exec(lctx, "SELECT 1")
			c.Close(context.Background())
		}
		late <- time.Since(t0)
	}()
	var lateWait time.Duration
	select {
	case lateWait = <-late:
	case <-time.After(hold + 30*time.Second):
		t.Fatalf("a client that connected after the kill has no answer %s after the pause (cap %s)", time.Since(paused).Round(time.Millisecond), hold)
	}
	t.Logf("a client that connected after the kill had its answer in %s (%s after the pause)", lateWait.Round(time.Millisecond), time.Since(paused).Round(time.Millisecond))
	if over := time.Since(paused); over > hold+time.Second {
		t.Errorf("a client that connected after the kill was answered %s after the pause, past the cap %s", over.Round(time.Millisecond), hold)
	}
	run := runIDOf(t, jdir)
	var acted runbook.GuardRecord
	waitFor(t, "the guard's record of what it did", func(context.Context) error {
		recs, _ := runbook.ReadGuard(jdir, run)
		for _, r := range recs {
			if r.Event == "acted" {
				acted = r
				return nil
			}
		}
		return fmt.Errorf("%d records, none acted", len(recs))
	})
	t.Logf("guard: %s", acted.Message)
	if len(acted.Refused) == 0 || !strings.Contains(acted.Message, "no node takes writes") {
		t.Errorf("the guard did not refuse the clients for want of a node taking writes: %+v", acted)
	}
	if d := showDatabase(t, sb, "app"); d.Paused || !d.Disabled {
		t.Errorf("after the guard, PgBouncer shows app %+v; want it disabled, not paused", d)
	}

	// The direct session leaves; the resumed run settles the cut-off stop.
	direct.Close(context.Background())
	res := runBinary(t, work, "resume", "--yes", jd)
	if res.Code == 4 && cutOff.MatchString(res.Output()) {
		res = runBinary(t, work, "resume", "--yes", "--settle", "rerun", jd)
	}
	rolledBack := strings.Contains(res.Output(), "rollback")
	t.Logf("resume: exit %d\n%s", res.Code, lastLinesOf(res.Output(), 15))
	want := candidate
	switch {
	case res.Code == 0:
	case res.Code == 4 && rolledBack:
		want = primary
	default:
		t.Fatalf("resume: want exit 0, or 4 after a rollback: %s", res)
	}
	after, err := waitHealthy(t, sb)
	if err != nil {
		t.Fatalf("after the resume: %v", err)
	}
	if after.primary != want {
		t.Errorf("after the resume the primary is %s, want %s", after.primary, want)
	}
	if d := showDatabase(t, sb, "app"); d.Paused || d.Disabled {
		t.Errorf("after the resume PgBouncer shows app %+v; want it taking clients", d)
	}
	if err := writeThroughPooler(sb); err != nil {
		t.Errorf("after the resume: a write through PgBouncer: %v", err)
	}
	rep := stopWriter(t, w)
	t.Logf("writer through PgBouncer: %d acknowledged, %d errors %v, longest wait for an answer %s (cap %s)",
		rep.Acked, rep.Errors, rep.ErrorKinds, rep.LongestWait.Round(time.Millisecond), hold)
	if rep.LongestWait > hold+time.Second {
		t.Errorf("a commit of the writer through PgBouncer waited %s for its answer, past the cap %s", rep.LongestWait.Round(time.Millisecond), hold)
	}
	smp.Finish().CheckKept(t, sb, after.primary)
}
