package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/pgbouncer"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
)

// A hung archive_command, two ways, with both nodes archiving through a
// command that waits while a file of its node's exists (a hang the test
// ends by removing the file, so that no process of it outlives the test).
//
// Hung a moment before the run, on a few young segments: the backlog is
// under archive_max_ready and younger than archive_max_ready_age, so
// only watching the archiver shows it. plan and run refuse it at
// preflight (exit 3), nothing changed.
//
// Hung once the pause is in place (a segment switched just before the
// stop): the old primary writes its shutdown checkpoint, then its
// postmaster waits for the archiver. The stop counts as done once the
// checkpoint is written, the candidate is proven to have it, the run
// promotes it and rejoins the old primary (an immediate stop of the
// postmaster that still lingers 2s later): exit 0, 0 lost, one primary, an independent
// writer through PgBouncer held a few seconds at most, and the
// unarchived files are named.
func TestStreamingSwitchoverWithAHungArchiver(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	flag := func(node string) string { return filepath.Join(sb.Dir, "archive-hangs-"+node) }
	for _, name := range []string{"pg1", "pg2"} {
		cmd := fmt.Sprintf("while [ -e %s ]; do sleep 0.1; done; true", flag(name))
		sandboxtest.Exec(t, sb, name, "ALTER SYSTEM SET archive_mode = on", "ALTER SYSTEM SET archive_command = '"+cmd+"'")
		sandboxtest.RestartNode(t, sb, name)
	}
	t.Cleanup(func() {
		for _, name := range []string{"pg1", "pg2"} {
			_ = os.Remove(flag(name))
		}
	})
	sandboxtest.EventuallyQuery(t, sb, "pg1", streamingStandbys, "1")
	switchWAL := func() {
		sandboxtest.Exec(t, sb, "pg1", "CREATE TABLE IF NOT EXISTS wal_filler (id int)", "INSERT INTO wal_filler VALUES (1)", "SELECT pg_switch_wal()")
	}

	t.Run("hung a moment before the run", func(t *testing.T) {
		if err := os.WriteFile(flag("pg1"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		switchWAL()
		sandboxtest.EventuallyQuery(t, sb, "pg1", "SELECT count(*)::text FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'", "1")
		for _, dry := range []bool{true, false} {
			ev, err := playbookstest.Run(t, sb, playbook, dry)
			if !errors.Is(err, runbook.ErrPrecondition) {
				t.Fatalf("dry run %v with a hung archiver: %v, want a precondition failure (exit 3)\n%s", dry, err, ev.Text())
			}
			text := ev.Text()
			for _, want := range []string{"pg.archiver_healthy fail", "1 WAL segment waits to be archived and none was archived in the ", "archive_command hangs"} {
				if !strings.Contains(text, want) {
					t.Errorf("dry run %v does not say %q:\n%s", dry, want, text)
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		admin, err := pgbouncer.Connect(ctx, sb.AdminConninfo())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		if d, err := admin.Database(ctx, "app"); err != nil || d.Paused || d.Disabled {
			t.Errorf("after the refused runs, PgBouncer's app: %+v, %v; want neither paused nor disabled", d, err)
		}
		if err := os.Remove(flag("pg1")); err != nil {
			t.Fatal(err)
		}
		sandboxtest.EventuallyQuery(t, sb, "pg1", "SELECT count(*)::text FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'", "0")
	})

	t.Run("hung at the stop", func(t *testing.T) {
		var hookErr error
		hooked := false
		hook := func(ev journal.Event) {
			if hooked || !playbookstest.IsStep(ev, "stop-primary", journal.StateRunning) {
				return
			}
			hooked = true
			if hookErr = os.WriteFile(flag("pg1"), nil, 0o644); hookErr != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := pg.Connect(ctx, sb.Conninfo(sandboxtest.Node(t, sb, "pg1"), "postgres"), 5*time.Second)
			if err != nil {
				hookErr = err
				return
			}
			defer c.Close(context.Background())
			for _, q := range []string{"CREATE TABLE IF NOT EXISTS wal_filler (id int)", "INSERT INTO wal_filler VALUES (1)", "SELECT pg_switch_wal()"} {
				if _, hookErr = c.Exec(ctx, q); hookErr != nil {
					return
				}
			}
		}
		w := sandboxtest.WatchStalls(t, sb)
		roles := sandboxtest.StartSampler(sb)
		ev, err := playbookstest.RunHooked(t, sb, playbook, hook)
		roles.Finish().CheckKeptOnPrimary(t, sb)
		w.Check(t, 10*time.Second)
		if hookErr != nil || !hooked {
			t.Fatalf("the archiver was not hung at the stop (hooked %v): %v", hooked, hookErr)
		}
		if err != nil {
			t.Fatalf("switchover with the archiver hung at the stop: %v\n%s", err, ev.Text())
		}
		playbookstest.WantNothingLost(t, ev)
		sandboxtest.WantOnePrimary(t, sb, "pg2")
		text := ev.Text()
		for _, want := range []string{
			"pg1 wrote its shutdown checkpoint (control file: shut down): it takes no connection and writes no more WAL",
			"pg1's postmaster still runs 2s after its shutdown checkpoint",
			"WAL file", "waiting to be archived (pg_wal/archive_status)",
			"Stopping it immediately",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("the run does not say %q:\n%s", want, text)
			}
		}
		sandboxtest.EventuallyQuery(t, sb, "pg2", streamingStandbys, "1")
	})
}
