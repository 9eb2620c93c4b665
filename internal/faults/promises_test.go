package faults

// Promises the switchover keeps under a fault: the candidate's own
// synchronous_standby_names restored by a rollback forced by replay
// paused on it, and WAL archiving, refused while the candidate would not
// archive once promoted.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
)

// streamingStandbys counts the standbys streaming from a node.
const streamingStandbys = `SELECT count(*)::text FROM pg_stat_replication WHERE state = 'streaming'`

// A run that rolls back before the promotion leaves the candidate's
// synchronous_standby_names as it found it (here a value of its own, set
// with ALTER SYSTEM), and the old primary serving writes. (pg3 confirms
// the old primary's commits: pg2, its replay paused, does not reconnect
// to the restarted pg1 until replay resumes.)
func TestStreamingSwitchoverRollbackRestoresTheCandidatesSetting(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	sandboxtest.SetSync(t, sb, "pg1", "ANY 1 (pg2, pg3)")
	sandboxtest.Exec(t, sb, "pg2", "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (pg3)'", "SELECT pg_reload_conf()")
	sandboxtest.EventuallyQuery(t, sb, "pg2", "SELECT current_setting('synchronous_standby_names')", "ANY 1 (pg3)")
	sandboxtest.Exec(t, sb, "pg2", "SELECT pg_wal_replay_pause()")
	sandboxtest.WriteThroughPooler(t, sb) // WAL the paused candidate will not replay

	ev, err := playbookstest.Run(t, sb, playbook, false, "catch_up_within=3s")
	if !errors.Is(err, runbook.ErrAction) {
		t.Fatalf("run with replay paused on pg2: %v, want an action failure (exit 4)\n%s", err, ev.Text())
	}
	text := ev.Text()
	for _, want := range []string{"sync-on-candidate done", "restart-old-primary done", "restore-sync-on-candidate done", "'ANY 1 (pg3)' again, as before the run"} {
		if !strings.Contains(text, want) {
			t.Errorf("events lack %q:\n%s", want, text)
		}
	}
	playbookstest.WantNothingLost(t, ev)
	sandboxtest.WantOnePrimary(t, sb, "pg1")
	got := sandboxtest.Query(t, sb, "pg2", "SELECT setting || ' from ' || coalesce(sourcefile, source) FROM pg_settings WHERE name = 'synchronous_standby_names'")
	if !strings.HasPrefix(got, "ANY 1 (pg3) from ") || !strings.HasSuffix(got, "postgresql.auto.conf") {
		t.Errorf("pg2 after the rollback: %s, want ANY 1 (pg3) from postgresql.auto.conf as before", got)
	}
	if got := sandboxtest.WriteThroughPooler(t, sb); got != sandboxtest.Node(t, sb, "pg1").Port {
		t.Errorf("after the rollback the pooler wrote to port %d, want pg1", got)
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
	out, err := sandboxtest.Shell(sb).Run(ctx, "mkdir -p "+archive)
	cancel()
	if err != nil || out.ExitCode != 0 {
		t.Fatalf("mkdir %s: %v %s", archive, err, out.Combined())
	}
	archiveOn := []string{"ALTER SYSTEM SET archive_mode = on",
		fmt.Sprintf("ALTER SYSTEM SET archive_command = 'test ! -f %[1]s/%%f && cp %%p %[1]s/%%f'", archive)}
	sandboxtest.Exec(t, sb, "pg1", archiveOn...)
	sandboxtest.RestartNode(t, sb, "pg1")
	sandboxtest.EventuallyQuery(t, sb, "pg1", streamingStandbys, "1")

	wantRefused(t, sb, "the candidate would not archive", "pg.archiving_kept", []string{
		"pg1 archives its WAL (archive_mode=on, archive_command set), but pg2 would archive nothing once promoted (archive_mode=off",
		"then restart pg2 (archive_mode needs a restart)"})

	sandboxtest.Exec(t, sb, "pg2", archiveOn...)
	sandboxtest.RestartNode(t, sb, "pg2")
	sandboxtest.EventuallyQuery(t, sb, "pg1", streamingStandbys, "1")
	w := sandboxtest.WatchStalls(t, sb)
	roles := sandboxtest.StartSampler(sb)
	ev, err := playbookstest.Run(t, sb, playbook, false)
	roles.Finish().CheckKeptOnPrimary(t, sb)
	w.Check(t, 5*time.Second)
	if err != nil {
		t.Fatalf("switchover with both nodes archiving: %v\n%s", err, ev.Text())
	}
	playbookstest.WantNothingLost(t, ev)
	sandboxtest.WantOnePrimary(t, sb, "pg2")
	if text := ev.Text(); !strings.Contains(text, "pg2 archives its WAL (archive_mode=on, archive_command set): 00000002.history, its timeline's history file, is archived") {
		t.Errorf("the verify step does not say pg2's history file is archived:\n%s", text)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := sandboxtest.Shell(sb).Run(ctx, "test -f "+filepath.Join(archive, "00000002.history")); err != nil || out.ExitCode != 0 {
		t.Errorf("00000002.history is not in the archive %s: %v %s", archive, err, out.Combined())
	}
}
