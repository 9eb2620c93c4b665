package faults

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/canary"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
	"github.com/switchover/switchover/runbook"
)

// windowCap is the clients' budget the window cases run with: short, so
// that a case that holds clients to the cap still ends quickly.
const windowCap = 6 * time.Second

// windowSlack is what a held client may wait beyond the cap: the guard's
// own repoint and RESUME, and a loaded machine.
const windowSlack = 3 * time.Second

// windowCase is one way the run meets trouble while PgBouncer holds its
// clients: the candidate's replay is paused, so the stop's postcondition
// (the candidate has the old primary's shutdown checkpoint) waits inside
// the window until something ends it.
type windowCase struct {
	name string
	sig  syscall.Signal // 0: no signal, the budget ends the window
	// wantExit is the run's exit status; -1 when it is killed.
	wantExit int
}

var windowCases = []windowCase{
	{"budget spent", 0, 4},
	{"SIGHUP inside the window", syscall.SIGHUP, 5},
	{"SIGTERM inside the window", syscall.SIGTERM, 5},
	{"SIGINT inside the window", syscall.SIGINT, 5},
	{"SIGKILL inside the window", syscall.SIGKILL, -1},
}

// TestClientsNeverHeldPastTheCap: whatever ends the window (the budget, a
// hang-up, an interrupt, a kill), clients wait in PgBouncer no longer than
// the cap, there is never more than one writable primary, and no
// acknowledged commit is lost. An independent writer through PgBouncer
// measures the longest any one of its commits waited for an answer.
func TestClientsNeverHeldPastTheCap(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	testbin.Build(t)
	for i, c := range windowCases {
		if !t.Run(c.name, func(t *testing.T) { runWindowCase(t, sb, i, c) }) {
			t.Logf("case %q failed", c.name)
		}
	}
}

func runWindowCase(t *testing.T, sb *sandbox.Sandbox, i int, c windowCase) {
	before, err := waitHealthy(t, sb)
	if err != nil {
		t.Fatalf("before the case: %v", err)
	}
	if before.primary != "pg1" {
		t.Fatalf("before the case: the primary is %s, want pg1 (an earlier case left it moved)", before.primary)
	}
	cand := connectNode(t, sb, "pg2")
	if _, err := cand.Exec(context.Background(), "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resumeReplay := func() {
		if !resumed {
			resumed = true
			if _, err := cand.Exec(context.Background(), "SELECT pg_wal_replay_resume()"); err != nil {
				t.Errorf("resume replay on pg2: %v", err)
			}
		}
	}
	t.Cleanup(resumeReplay)

	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	w, err := canary.Start(ctx, canary.Options{Conninfo: sb.ClientConninfo(), Table: fmt.Sprintf("faults_window_%d", i),
		RunID: fmt.Sprintf("window-%d-%d", i, time.Now().UnixNano())})
	cancel()
	if err != nil {
		t.Fatalf("independent writer: %v", err)
	}
	t.Cleanup(w.Close)
	smp := sandboxtest.StartSampler(sb)
	t.Cleanup(func() { smp.Finish() })

	work, jdir := t.TempDir(), t.TempDir()
	jd := "--journal-dir=" + jdir
	p := start(t, work, "run", playbook, "-i", sb.Inventory(), "--yes", jd,
		"--var", "primary=pg1", "--var", "candidate=pg2",
		"--var", "pause_max_hold="+windowCap.String(), "--var", "pause_max_wait=2s", "--var", "catch_up_within=60s")
	at, when := "stop-primary verifying", func(e testbin.Event) bool {
		return e.Event == "step" && e.Step == "stop-primary" && e.State == "verifying"
	}
	switch {
	case c.sig == syscall.SIGKILL:
		p.KillWhen(jdir, at, journalStall, 500*time.Millisecond, when)
	case c.sig != 0:
		p.SignalWhen(jdir, at, journalStall, 500*time.Millisecond, c.sig, when)
	}
	killed := time.Now()
	var res testbin.Result
	if c.sig == syscall.SIGKILL {
		// The guard resumes the clients; the run is finished by resume
		// once the candidate can catch up.
		waitPoolerNotPaused(t, sb, windowCap+windowSlack)
		t.Logf("PgBouncer resumed by the guard %s after the kill", time.Since(killed).Round(time.Millisecond))
		resumeReplay()
		res = runBinary(t, work, "resume", "--yes", "--settle", "rerun", jd)
		if res.Code != 0 {
			t.Errorf("resume after the kill: want exit 0, got %s", res)
		}
		if !strings.Contains(res.Output(), "guard") {
			t.Errorf("resume does not show what the run's guard did:\n%s", res.Output())
		}
		recs, err := runbook.ReadGuard(jdir, runIDOf(t, jdir))
		if err != nil || !guardActed(recs) {
			t.Errorf("the guard's record shows no action (%v): %+v", err, recs)
		}
	} else {
		res = p.Wait()
		if res.Code != c.wantExit {
			t.Errorf("run: want exit %d, got %s", c.wantExit, res)
		}
		if !strings.Contains(res.Output(), "rollback") {
			t.Errorf("run: no rollback in the output:\n%s", res.Output())
		}
		resumeReplay()
	}

	wantPrimary := "pg1"
	if c.sig == syscall.SIGKILL {
		wantPrimary = "pg2"
	}
	after, herr := waitHealthy(t, sb)
	if herr != nil {
		t.Errorf("after the case: %v", herr)
	} else if after.primary != wantPrimary {
		t.Errorf("after the case: primary %s, want %s", after.primary, wantPrimary)
	}
	if err := writeThroughPooler(sb); err != nil {
		t.Errorf("after the case: a write through PgBouncer: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2*pollTimeout)
	rep, err := w.Stop(ctx)
	cancel()
	if err != nil {
		t.Errorf("independent writer: %v", err)
	} else {
		t.Logf("independent writer: %d acked, %d errors, longest wait %s, longest gap %s", rep.Acked, rep.Errors, rep.LongestWait, rep.Window)
		if len(rep.Lost) > 0 {
			t.Errorf("%d acknowledged commits lost (ids %v)", len(rep.Lost), rep.Lost)
		}
		// With the old primary down when the process dies, the guard
		// resumes the pooler at the cap with no writable primary to send
		// clients to: PgBouncer then keeps them waiting for a server
		// until `switchover resume` promotes the candidate. That wait is
		// the pooler's own (query_wait_timeout), not the pause's; the
		// guard's part is proven by waitPoolerNotPaused above.
		if c.sig != syscall.SIGKILL && rep.LongestWait > windowCap+windowSlack {
			t.Errorf("a client waited %s, past the cap of %s (+%s)", rep.LongestWait, windowCap, windowSlack)
		}
	}
	seen := smp.Finish()
	if herr == nil {
		seen.CheckKept(t, sb, after.primary)
	} else {
		seen.Check(t)
	}
	if c.sig == syscall.SIGKILL {
		// Put pg1 back as the primary for the cases after this one.
		back := runBinary(t, work, "run", playbook, "-i", sb.Inventory(), "--yes", jd, "--var", "primary=pg2", "--var", "candidate=pg1")
		if back.Code != 0 {
			t.Errorf("switching back to pg1: %s", back)
		}
	}
}

// connectNode opens a superuser connection to a node, closed with the test.
func connectNode(t *testing.T, sb *sandbox.Sandbox, name string) *pgx.Conn {
	t.Helper()
	n, ok := sb.Node(name)
	if !ok {
		t.Fatalf("no node %s", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	defer cancel()
	c, err := pg.Connect(ctx, sb.Conninfo(n, "postgres")+" application_name=faults-window", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// waitPoolerNotPaused polls PgBouncer until no database is paused, for at
// most limit.
func waitPoolerNotPaused(t *testing.T, sb *sandbox.Sandbox, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		paused, err := poolerPaused(sb)
		if err == nil && !paused {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("PgBouncer still paused %s after the kill (err %v)", limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// poolerPaused reports whether PgBouncer holds any database paused.
func poolerPaused(sb *sandbox.Sandbox) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pg.ConnectAdmin(ctx, sb.AdminConninfo())
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SHOW DATABASES")
	if err != nil {
		return false, err
	}
	defer rows.Close()
	col := -1
	for i, f := range rows.FieldDescriptions() {
		if f.Name == "paused" {
			col = i
		}
	}
	if col < 0 {
		return false, fmt.Errorf("SHOW DATABASES has no paused column")
	}
	paused := false
	for rows.Next() {
		if string(rows.RawValues()[col]) == "1" {
			paused = true
		}
	}
	return paused, rows.Err()
}

func guardActed(recs []runbook.GuardRecord) bool {
	for _, r := range recs {
		if r.Event == "acted" && r.Error == "" {
			return true
		}
	}
	return false
}

// runIDOf is the id of the one run journaled under journalDir.
func runIDOf(t *testing.T, journalDir string) string {
	t.Helper()
	path := testbin.NewestJournal(t, journalDir)
	if path == "" {
		t.Fatalf("no journal under %s", journalDir)
	}
	base := path[strings.LastIndex(path, "/")+1:]
	return strings.TrimSuffix(base, ".jsonl")
}
