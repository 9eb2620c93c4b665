package playbooks_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/runbook"
)

// exec runs statements on a sandbox node, one at a time.
func exec(t *testing.T, sb *sandbox.Sandbox, name string, stmts ...string) {
	t.Helper()
	c := connect(t, sb, name, "postgres")
	for _, s := range stmts {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.Exec(ctx, s)
		cancel()
		if err != nil {
			t.Fatalf("%s on %s: %v", s, name, err)
		}
	}
}

// query returns one text value from a sandbox node.
func query(t *testing.T, sb *sandbox.Sandbox, name, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A connection of its own, closed at once: eventuallyQuery polls
	// every 50ms, and connections kept to the end of the test filled the
	// node's max_connections, so that the run under test found it full.
	c, err := pg.Connect(ctx, sb.Conninfo(node(t, sb, name), "postgres"), 0)
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	defer c.Close(context.Background())
	var v string
	if err := c.QueryRow(ctx, sql).Scan(&v); err != nil {
		t.Fatalf("%s on %s: %v", sql, name, err)
	}
	return v
}

// eventuallyQuery polls sql on a node until it returns want (bounded).
func eventuallyQuery(t *testing.T, sb *sandbox.Sandbox, name, sql, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		if got = query(t, sb, name, sql); got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s on %s: %q, want %q", sql, name, got, want)
}

// setSync sets synchronous_standby_names on the primary and waits until its
// standbys show the sync states it gives.
func setSync(t *testing.T, sb *sandbox.Sandbox, primary, setting string) {
	t.Helper()
	exec(t, sb, primary, "ALTER SYSTEM SET synchronous_standby_names = '"+strings.ReplaceAll(setting, "'", "''")+"'", "SELECT pg_reload_conf()")
	eventuallyQuery(t, sb, primary, "SELECT (count(*) > 0)::text FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')", "true")
}

// streamingStandbys counts the standbys streaming from a node.
const streamingStandbys = `SELECT count(*)::text FROM pg_stat_replication WHERE state = 'streaming'`

// syncStates renders a node's pg_stat_replication: "pg1=sync pg3=async".
const syncStates = `SELECT coalesce(string_agg(application_name || '=' || sync_state, ' ' ORDER BY application_name), '') FROM pg_stat_replication`

// wantOnePrimary fails unless exactly one node is a primary, the one named.
func wantOnePrimary(t *testing.T, sb *sandbox.Sandbox, want string) {
	t.Helper()
	var primaries []string
	for _, s := range sb.Status(context.Background()) {
		if s.Err == nil && s.State.Role == pg.RolePrimary {
			primaries = append(primaries, s.Node.Name)
		}
	}
	if len(primaries) != 1 || primaries[0] != want {
		t.Fatalf("primaries at the end: %v, want only %s (%s)", primaries, want, topology(t, sb))
	}
}

// wantNothingLost fails unless the run's canary acknowledged commits and
// lost none of them.
func wantNothingLost(t *testing.T, ev *events) {
	t.Helper()
	f := ev.facts()
	acked, _ := strconv.Atoi(f["canary.acked"])
	if f["canary.lost"] != "0" || acked == 0 {
		t.Fatalf("canary: %s acknowledged, %q lost; want commits acknowledged and none lost\n%s", f["canary.acked"], f["canary.lost"], ev.text())
	}
	t.Logf("canary: %d commits acknowledged, none lost; write window %s ms", acked, f["canary.window_ms"])
}

// Synchronous replication survives the switch, both ways it is written:
// the new primary gets the old one's setting with the old primary in the
// candidate's place, before its promotion, and once the old primary and
// the other standby follow it, as many standbys confirm commits as before.
// A backup tool's physical slot on the old primary exists on the new one.
func TestStreamingSwitchoverKeepsSynchronousReplication(t *testing.T) {
	tests := []struct {
		before, after string
		states        string // pg_stat_replication on pg2 at the end
	}{
		{"FIRST 1 (pg2)", "FIRST 1 (pg1)", "pg1=sync pg3=async"},
		{"ANY 1 (pg2, pg3)", "ANY 1 (pg1, pg3)", "pg1=quorum pg3=quorum"},
	}
	for _, tc := range tests {
		t.Run(tc.before, func(t *testing.T) {
			sb := sandboxtest.New(t, 2)
			setSync(t, sb, "pg1", tc.before)
			exec(t, sb, "pg1", "SELECT pg_create_physical_replication_slot('backup', true)")

			ev, err := run(t, sb, streaming, false)
			if err != nil {
				t.Fatalf("switchover pg1 -> pg2 with %q: %v\n%s", tc.before, err, ev.text())
			}
			wantNothingLost(t, ev)
			wantOnePrimary(t, sb, "pg2")
			if got := query(t, sb, "pg2", "SELECT current_setting('synchronous_standby_names')"); got != tc.after {
				t.Errorf("synchronous_standby_names on pg2 = %q, want %q", got, tc.after)
			}
			if got := query(t, sb, "pg2", syncStates); got != tc.states {
				t.Errorf("pg_stat_replication on pg2: %q, want %q", got, tc.states)
			}
			f := ev.facts()
			if f[cluster.SyncBeforeFact] != tc.before || f[cluster.SyncAfterFact] != tc.after {
				t.Errorf("facts %s=%q %s=%q, want %q and %q", cluster.SyncBeforeFact, f[cluster.SyncBeforeFact], cluster.SyncAfterFact, f[cluster.SyncAfterFact], tc.before, tc.after)
			}
			if got := query(t, sb, "pg2", "SELECT string_agg(slot_name || ':' || slot_type || ':' || (restart_lsn IS NOT NULL)::text, ',') FROM pg_replication_slots WHERE slot_name = 'backup'"); got != "backup:physical:true" {
				t.Errorf("slot backup on pg2: %q, want a physical slot reserving WAL", got)
			}
			text := ev.text()
			for _, want := range []string{"pg.sync_kept pass", "pg.slots_recreated pass", "created physical slot backup on pg2"} {
				if !strings.Contains(text, want) {
					t.Errorf("the run does not say %q:\n%s", want, text)
				}
			}
			if got := writeThroughPooler(t, sb); got != node(t, sb, "pg2").Port {
				t.Errorf("after the switch the pooler wrote to port %d, want pg2", got)
			}
		})
	}
}

// A logical slot on the primary cannot move to the candidate on
// PostgreSQL 15: plan and run refuse (exit 3) naming the slot and its lag,
// with nothing changed; allowed with allow_logical_slot_loss, the run goes
// through and reports the slot lost.
func TestStreamingSwitchoverRefusesToLoseALogicalSlot(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	exec(t, sb, "pg1", "ALTER SYSTEM SET wal_level = logical")
	restartNode(t, sb, "pg1")
	exec(t, sb, "pg1", "SELECT pg_create_logical_replication_slot('s', 'test_decoding')")
	writeThroughPooler(t, sb) // the slot's consumer falls behind
	waitReplayed(t, sb, "pg2")
	before := topology(t, sb)

	// A synchronous_standby_names for the new primary that names only the
	// candidate itself is refused at preflight too, naming the setting.
	ev, err := run(t, sb, streaming, true, "sync_standby_names_after=FIRST 1 (pg2)", "allow_logical_slot_loss=true")
	if !errors.Is(err, runbook.ErrPrecondition) || !strings.Contains(ev.text(), "pg.sync_after fail") ||
		!strings.Contains(ev.text(), `pg2 would get "FIRST 1 (pg2)"`) || !strings.Contains(ev.text(), "wait forever") {
		t.Fatalf("plan with sync_standby_names_after naming only the candidate: %v, want exit 3 naming the setting\n%s", err, ev.text())
	}

	for _, dry := range []bool{true, false} {
		ev, err := run(t, sb, streaming, dry)
		if !errors.Is(err, runbook.ErrPrecondition) {
			t.Fatalf("dry=%v with a logical slot: %v, want a precondition failure (exit 3)\n%s", dry, err, ev.text())
		}
		text := ev.text()
		for _, want := range []string{"pg.logical_slots fail", "s (logical, test_decoding on postgres, inactive, confirmed ", " behind", "PostgreSQL 17+", "allow_logical_slot_loss"} {
			if !strings.Contains(text, want) {
				t.Errorf("dry=%v: the refusal does not say %q:\n%s", dry, want, text)
			}
		}
		if got := ev.actionsRun(); len(got) != 0 {
			t.Fatalf("dry=%v: actions ran: %v, want none", dry, got)
		}
		if got := topology(t, sb); got != before {
			t.Fatalf("dry=%v: topology changed: %s, was %s", dry, got, before)
		}
		if got := query(t, sb, "pg2", "SELECT current_setting('synchronous_standby_names')"); got != "" {
			t.Fatalf("dry=%v: synchronous_standby_names on pg2 became %q", dry, got)
		}
	}

	ev, err = run(t, sb, streaming, false, "allow_logical_slot_loss=true")
	if err != nil {
		t.Fatalf("switchover allowed to lose the slot: %v\n%s", err, ev.text())
	}
	wantNothingLost(t, ev)
	wantOnePrimary(t, sb, "pg2")
	if lost := ev.facts()[cluster.LogicalSlotsLostFact]; !strings.HasPrefix(lost, "s (logical") {
		t.Errorf("fact %s = %q, want the slot s", cluster.LogicalSlotsLostFact, lost)
	}
	if !strings.Contains(ev.text(), "allowed to be lost") {
		t.Errorf("the run does not report the slot lost:\n%s", ev.text())
	}
	if got := query(t, sb, "pg2", "SELECT count(*)::text FROM pg_replication_slots WHERE slot_type = 'logical'"); got != "0" {
		t.Errorf("logical slots on pg2: %s (PostgreSQL 15 cannot have moved one)", got)
	}
}

// A run that rolls back before the promotion leaves the candidate's
// synchronous_standby_names as it found it (here a value of its own, set
// with ALTER SYSTEM), and the old primary serving writes. (pg3 confirms
// the old primary's commits: pg2, its replay paused, does not reconnect
// to the restarted pg1 until replay resumes.)
func TestStreamingSwitchoverRollbackRestoresTheCandidatesSetting(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	setSync(t, sb, "pg1", "ANY 1 (pg2, pg3)")
	exec(t, sb, "pg2", "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (pg3)'", "SELECT pg_reload_conf()")
	eventuallyQuery(t, sb, "pg2", "SELECT current_setting('synchronous_standby_names')", "ANY 1 (pg3)")
	exec(t, sb, "pg2", "SELECT pg_wal_replay_pause()")
	writeThroughPooler(t, sb) // WAL the paused candidate will not replay

	ev, err := run(t, sb, streaming, false, "catch_up_within=3s")
	if !errors.Is(err, runbook.ErrAction) {
		t.Fatalf("run with replay paused on pg2: %v, want an action failure (exit 4)\n%s", err, ev.text())
	}
	text := ev.text()
	for _, want := range []string{"sync-on-candidate done", "restart-old-primary done", "restore-sync-on-candidate done", "'ANY 1 (pg3)' again, as before the run"} {
		if !strings.Contains(text, want) {
			t.Errorf("events lack %q:\n%s", want, text)
		}
	}
	wantNothingLost(t, ev)
	wantOnePrimary(t, sb, "pg1")
	got := query(t, sb, "pg2", "SELECT setting || ' from ' || coalesce(sourcefile, source) FROM pg_settings WHERE name = 'synchronous_standby_names'")
	if !strings.HasPrefix(got, "ANY 1 (pg3) from ") || !strings.HasSuffix(got, "postgresql.auto.conf") {
		t.Errorf("pg2 after the rollback: %s, want ANY 1 (pg3) from postgresql.auto.conf as before", got)
	}
	if got := writeThroughPooler(t, sb); got != node(t, sb, "pg1").Port {
		t.Errorf("after the rollback the pooler wrote to port %d, want pg1", got)
	}
}

// restartNode restarts a sandbox node (fast) and waits until it answers.
func restartNode(t *testing.T, sb *sandbox.Sandbox, name string) {
	t.Helper()
	n := node(t, sb, name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := sbExec(sb).Run(ctx, fmt.Sprintf("%s/pg_ctl restart -D %s -m fast -w -t 50 -l %s/%s.log", sb.BinDir, n.DataDir, sb.Dir, name))
	if err != nil || out.ExitCode != 0 {
		t.Fatalf("restart %s: %v %s", name, err, out.Combined())
	}
}

// WAL archiving is a promise like synchronous replication. With pg1
// archiving and pg2 never given its archive settings (the common case),
// plan and run refuse at the promises step, naming both and the restart
// pg2 needs, with nothing changed and no client held. Once pg2 is
// configured to archive, the switchover runs, and its verify step sees
// the new primary's first file (its timeline's history file) archived.
func TestStreamingSwitchoverKeepsArchiving(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	archive := filepath.Join(sb.Dir, "archive")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	out, err := sbExec(sb).Run(ctx, "mkdir -p "+archive)
	cancel()
	if err != nil || out.ExitCode != 0 {
		t.Fatalf("mkdir %s: %v %s", archive, err, out.Combined())
	}
	archiveOn := []string{"ALTER SYSTEM SET archive_mode = on",
		fmt.Sprintf("ALTER SYSTEM SET archive_command = 'test ! -f %[1]s/%%f && cp %%p %[1]s/%%f'", archive)}
	exec(t, sb, "pg1", archiveOn...)
	restartNode(t, sb, "pg1")
	eventuallyQuery(t, sb, "pg1", streamingStandbys, "1")

	wantRefused(t, sb, "the candidate would not archive", "pg.archiving_kept", []string{
		"pg1 archives its WAL (archive_mode=on, archive_command set), but pg2 would archive nothing once promoted (archive_mode=off",
		"then restart pg2 (archive_mode needs a restart)"})

	exec(t, sb, "pg2", archiveOn...)
	restartNode(t, sb, "pg2")
	eventuallyQuery(t, sb, "pg1", streamingStandbys, "1")
	w := watchStalls(t, sb)
	roles := sandboxtest.StartSampler(sb)
	ev, err := run(t, sb, streaming, false)
	roles.Finish().CheckKeptOnPrimary(t, sb)
	w.check(t, 5*time.Second)
	if err != nil {
		t.Fatalf("switchover with both nodes archiving: %v\n%s", err, ev.text())
	}
	wantNothingLost(t, ev)
	wantOnePrimary(t, sb, "pg2")
	if text := ev.text(); !strings.Contains(text, "pg2 archives its WAL (archive_mode=on, archive_command set): 00000002.history, its timeline's history file, is archived") {
		t.Errorf("the verify step does not say pg2's history file is archived:\n%s", text)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := sbExec(sb).Run(ctx, "test -f "+filepath.Join(archive, "00000002.history")); err != nil || out.ExitCode != 0 {
		t.Errorf("00000002.history is not in the archive %s: %v %s", archive, err, out.Combined())
	}
}
