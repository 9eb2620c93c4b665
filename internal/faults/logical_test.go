package faults

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
)

// TestLogicalCutoverKilledAfterThePause: logical-cutover pg1 -> green1 is
// SIGKILLed as soon as PgBouncer holds its clients. Its guard resumes them
// on pg1, the one node that takes writes (or, when the kill landed after
// the fence took, refuses them at once), by the cap: no
// commit of an independent writer through PgBouncer waits longer. The
// resumed run finishes the cutover: PgBouncer routes to green1, writes
// land there, pg1 is read-only and follows green1, nothing the writer got
// acknowledged is lost, and the rows are the same on both sides.
func TestLogicalCutoverKilledAfterThePause(t *testing.T) {
	sb := sandboxtest.NewGreen(t, 1, "")
	testbin.Build(t)
	sandboxtest.FillForMove(t, sb)
	ev, err := playbookstest.Run(t, sb, "logical-prepare", false, "from=pg1", "to="+sandbox.GreenNode, "allow_replica_identity_full=true")
	if err != nil {
		t.Fatalf("prepare: %v\n%s", err, ev.Text())
	}
	w := sandboxtest.StartMoveWriter(t, sb)

	const hold = 6 * time.Second
	work, jdir := t.TempDir(), t.TempDir()
	jd := "--journal-dir=" + jdir
	p := start(t, work, "run", "logical-cutover", "-i", sb.Inventory(), "--yes", jd,
		"--var", "from=pg1", "--var", "to="+sandbox.GreenNode, "--var", "pause_max_hold="+hold.String())
	p.KillWhen(jdir, "pause-pooler done", journalStall, 0, testbin.MainStep("pause-pooler", "done"))
	paused := time.Now()
	evs := testbin.ReadJournalDir(t, jdir)
	t.Logf("killed; last journal event: %s", evs[len(evs)-1])

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
	t.Logf("guard, %s after the pause: %s", time.Since(paused).Round(time.Millisecond), acted.Message)
	// The run goes on to the fence at once: killed before it took,
	// the guard resumes the clients on pg1; after, no node takes writes
	// and it refuses them instead (resumed, they would wait for a server
	// far past the cap), and the resumed run enables them again.
	switch {
	case acted.Primary == "pg1" && len(acted.Refused) == 0:
		if d := showDatabase(t, sb, "app"); d.Paused || d.Disabled {
			t.Errorf("after the guard, PgBouncer shows app %+v; want it taking clients", d)
		}
	case len(acted.Refused) > 0 && strings.Contains(acted.Message, "no node takes writes"):
	default:
		t.Errorf("the guard neither resumed the clients on pg1 nor refused them for want of a writable node: %+v", acted)
	}
	if over := time.Since(paused); over > hold+10*time.Second {
		t.Errorf("the guard acted %s after the pause, past the cap %s", over.Round(time.Millisecond), hold)
	}

	res := runBinary(t, work, "resume", "--yes", jd)
	t.Logf("resume: exit %d\n%s", res.Code, lastLinesOf(res.Output(), 12))
	if d := showDatabase(t, sb, "app"); d.Paused || d.Disabled {
		t.Errorf("after the resume, PgBouncer shows app %+v; want it taking clients", d)
	}
	if res.Code != 0 {
		t.Fatalf("resume: want exit 0: %s", res)
	}
	green := sandboxtest.Node(t, sb, sandbox.GreenNode)
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	defer cancel()
	c, err := pg.ConnectPooled(ctx, sb.ClientConninfo())
	if err != nil {
		t.Fatalf("connect through PgBouncer after the resume: %v", err)
	}
	var port int
	err = c.QueryRow(ctx, "INSERT INTO orders (note) VALUES ('after the resume') RETURNING inet_server_port()").Scan(&port)
	c.Close(context.Background())
	if err != nil || port != green.Port {
		t.Fatalf("a write through PgBouncer after the resume: port %d, %v; want green1's %d", port, err, green.Port)
	}
	if got := sandboxtest.QueryApp(t, sb, "pg1", "SELECT current_setting('default_transaction_read_only')"); got != "on" {
		t.Errorf("pg1 after the resumed cutover: default_transaction_read_only %s, want on", got)
	}

	rep := stopWriter(t, w)
	t.Logf("writer through PgBouncer: %d acknowledged, %d lost, %d errors %v, longest wait for an answer %s (cap %s)",
		rep.Acked, len(rep.Lost), rep.Errors, rep.ErrorKinds, rep.LongestWait.Round(time.Millisecond), hold)
	if rep.LongestWait > hold+time.Second {
		t.Errorf("a commit of the writer through PgBouncer waited %s for its answer, past the cap %s", rep.LongestWait.Round(time.Millisecond), hold)
	}
	// The resumed run fenced pg1 with the clients no longer held: their
	// writes were refused (read-only) until the repoint, never lost.
	for _, k := range rep.ErrorKinds {
		if !strings.Contains(k, "read-only") && !strings.Contains(k, "terminat") && !strings.Contains(k, "closed") && !strings.Contains(k, "server conn crashed") {
			t.Errorf("the writer met an error other than the fence's: %s", k)
		}
	}
	sandboxtest.WantSameRows(t, sb, "pg1", sandbox.GreenNode)
}
