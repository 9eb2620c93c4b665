package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// settingOf reads a setting of a sandbox node, and where it comes from.
func settingOf(t *testing.T, sb *sandbox.Sandbox, node, name string) (value, file string) {
	t.Helper()
	var f *string
	if err := nodeConn(t, sb, node, "postgres").QueryRow(testCtx(t, 5*time.Second),
		"SELECT setting, sourcefile FROM pg_settings WHERE name = $1", name).Scan(&value, &f); err != nil {
		t.Fatalf("read %s on %s: %v", name, node, err)
	}
	if f != nil {
		file = *f
	}
	return value, file
}

// On a PostgreSQL standby, ALTER SYSTEM and a reload set
// synchronous_standby_names (a standby ignores it); the rollback step puts
// back exactly what was there: ALTER SYSTEM RESET for a value that did not
// come from ALTER SYSTEM, the old value for one that did. Without a
// recorded change it does nothing.
func TestSetAndRestoreSyncStandbyNamesOnAStandby(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	tests := []struct {
		name      string
		was       string // set with ALTER SYSTEM on pg2 first; "" leaves the default
		wantAlter string
	}{
		{"the default", "", "false"},
		{"a value of its own", "ANY 1 (pg9)", "true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn := nodeConn(t, sb, "pg2", "postgres")
			if tc.was != "" {
				for _, q := range []string{alterSyncSQL(tc.was), "SELECT pg_reload_conf()"} {
					if _, err := conn.Exec(testCtx(t, 5*time.Second), q); err != nil {
						t.Fatal(err)
					}
				}
				eventually(t, 5*time.Second, "pg2 takes the value", func() (bool, string) {
					v, _ := settingOf(t, sb, "pg2", "synchronous_standby_names")
					return v == tc.was, v
				})
			}
			tg, p := sandboxTarget(sb)
			tg.Facts.Set(cluster.SyncAfterFact, "FIRST 1 (pg1)")
			out := mustApply(t, tg, p, "pg.set_sync_standby_names", map[string]string{"node": "pg2"})
			wantLine(t, out, "synchronous_standby_names on pg2", "'FIRST 1 (pg1)'")
			if v, file := settingOf(t, sb, "pg2", "synchronous_standby_names"); v != "FIRST 1 (pg1)" || !strings.HasSuffix(file, "postgresql.auto.conf") {
				t.Fatalf("pg2: synchronous_standby_names = %q from %q, want FIRST 1 (pg1) from postgresql.auto.conf", v, file)
			}
			if was, _ := tg.Facts.Get(cluster.SyncWasFact("pg2")); was != tc.was {
				t.Errorf("fact %s = %q, want %q", cluster.SyncWasFact("pg2"), was, tc.was)
			}
			if a, _ := tg.Facts.Get(cluster.SyncWasAlteredFact("pg2")); a != tc.wantAlter {
				t.Errorf("fact %s = %q, want %s", cluster.SyncWasAlteredFact("pg2"), a, tc.wantAlter)
			}
			// Again (a resumed run): nothing changes, the recorded old value stays.
			out = mustApply(t, tg, p, "pg.set_sync_standby_names", map[string]string{"node": "pg2"})
			wantLine(t, out, "already")
			if was, _ := tg.Facts.Get(cluster.SyncWasFact("pg2")); was != tc.was {
				t.Errorf("after a second apply, fact %s = %q, want %q", cluster.SyncWasFact("pg2"), was, tc.was)
			}

			out = mustApply(t, tg, p, "pg.restore_sync_standby_names", map[string]string{"node": "pg2"})
			wantLine(t, out, "again, as before the run")
			v, file := settingOf(t, sb, "pg2", "synchronous_standby_names")
			if v != tc.was || (tc.was == "" && file != "") {
				t.Fatalf("after the restore pg2 has %q from %q, want %q as before", v, file, tc.was)
			}
		})
	}
	tg, p := sandboxTarget(sb)
	out := mustApply(t, tg, p, "pg.restore_sync_standby_names", map[string]string{"node": "pg2"})
	wantLine(t, out, "did not change synchronous_standby_names on pg2: nothing to restore")
	if _, err := apply(t, tg, p, "pg.set_sync_standby_names", map[string]string{"node": "pg2"}); err == nil || !strings.Contains(err.Error(), "pg.sync_after") {
		t.Errorf("set without a recorded setting: %v, want an error naming pg.sync_after", err)
	}
}

// The setting given to the standby before its promotion is in force at
// once after it: the first commit on the new primary waits for the named
// synchronous standby (the stopped old primary), and goes through once
// that one streams again.
func TestSyncStandbyNamesSetBeforePromotionHoldsTheFirstCommit(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	tg, p := sandboxTarget(sb)
	tg.Facts.Set(cluster.SyncAfterFact, "FIRST 1 (pg1)")
	mustApply(t, tg, p, "pg.set_sync_standby_names", map[string]string{"node": "pg2"})
	mustApply(t, tg, p, "pg.stop", map[string]string{"node": "pg1", "mode": "fast", "wait": "30s"})
	mustApply(t, tg, p, "pg.promote", map[string]string{"node": "pg2", "wait": "30s"})

	writer := nodeConn(t, sb, "pg2", "postgres")
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		_, err := writer.Exec(ctx, "CREATE TABLE first_commit (id int)")
		done <- err
	}()
	watch := nodeConn(t, sb, "pg2", "postgres")
	eventually(t, 10*time.Second, "the first commit on pg2 waits for a synchronous standby", func() (bool, string) {
		var n int
		err := watch.QueryRow(testCtx(t, 5*time.Second), "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'").Scan(&n)
		return err == nil && n == 1, fmt.Sprintf("%d waiting, %v", n, err)
	})
	select {
	case err := <-done:
		t.Fatalf("the commit returned (%v) with no synchronous standby streaming", err)
	default:
	}
	mustApply(t, tg, p, "pg.follow", map[string]string{"node": "pg1", "upstream": "pg2"})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the commit after pg1 rejoined: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the commit still waits 30s after pg1 streams again")
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("the writer's context ran out")
	}
}

// pg.recreate_slots creates the recorded slots with WAL reserved, and
// leaves one that exists as it is.
func TestRecreateSlots(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	tg, p := sandboxTarget(sb)
	tg.Facts.Set(cluster.SlotsToRecreateFact, "backup,archiver")
	out := mustApply(t, tg, p, "pg.recreate_slots", map[string]string{"node": "pg1"})
	wantLine(t, out, "created physical slot backup on pg1, reserving WAL from")
	wantLine(t, out, "created physical slot archiver on pg1")
	var n int
	if err := nodeConn(t, sb, "pg1", "postgres").QueryRow(testCtx(t, 5*time.Second),
		"SELECT count(*) FROM pg_replication_slots WHERE slot_name IN ('backup', 'archiver') AND slot_type = 'physical' AND restart_lsn IS NOT NULL").Scan(&n); err != nil || n != 2 {
		t.Fatalf("slots with WAL reserved on pg1: %d, %v; want 2", n, err)
	}
	out = mustApply(t, tg, p, "pg.recreate_slots", map[string]string{"node": "pg1"})
	wantLine(t, out, "slot backup exists on pg1 already")

	empty, p2 := sandboxTarget(sb)
	empty.Facts.Set(cluster.SlotsToRecreateFact, "")
	wantLine(t, mustApply(t, empty, p2, "pg.recreate_slots", map[string]string{"node": "pg1"}), "nothing to create")
	none, p3 := sandboxTarget(sb)
	if _, err := apply(t, none, p3, "pg.recreate_slots", map[string]string{"node": "pg1"}); err == nil || !strings.Contains(err.Error(), "pg.consumer_slots") {
		t.Errorf("without recorded slots: %v, want an error naming pg.consumer_slots", err)
	}
}
