package checks

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestNoShutdownBlockersOnShared(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	c := mustBuild(t, "pg.no_shutdown_blockers", map[string]any{"node": "pg1"})
	r := runCheck(t, c, sandboxTarget(sb))
	assertResult(t, r, Pass, []string{"no base backup runs on pg1 and no logical walsender streams from it"}, nil)
}

// startClient starts a client program of PostgreSQL's against a sandbox
// node and stops it, by its pid, when the test ends.
func startClient(t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit", bin, cmd.Process.Pid)
		}
	})
	return cmd
}

// TestNoShutdownBlockers runs a slow base backup, then a logical
// replication consumer, against the primary of a sandbox of its own.
func TestNoShutdownBlockers(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	tg := sandboxTarget(sb)
	pg1 := sandboxNode(t, sb, "pg1")
	c := mustBuild(t, "pg.no_shutdown_blockers", map[string]any{"node": "pg1"})
	assertResult(t, runCheck(t, c, tg), Pass, nil, nil)

	t.Run("a base backup in progress", func(t *testing.T) {
		dir := t.TempDir()
		backup := startClient(t, filepath.Join(sb.BinDir, "pg_basebackup"), "-h", "127.0.0.1", "-p", fmt.Sprint(pg1.Port),
			"-U", "postgres", "-D", filepath.Join(dir, "backup"), "-X", "none", "--max-rate=32k", "--no-sync")
		r := runUntil(t, c, tg, Fail, settleLimit)
		assertResult(t, r, Fail, []string{"on pg1: 1 base backup in progress", `app "pg_basebackup"`, "streamed", "let the base backup finish"}, nil)
		if r.Values["base_backups"] != 1 {
			t.Errorf("values = %v, want base_backups 1", r.Values)
		}
		_ = backup.Process.Kill()
		assertResult(t, runUntil(t, c, tg, Pass, settleLimit), Pass, nil, nil)
	})

	t.Run("a logical walsender", func(t *testing.T) {
		runSQL(t, sb, "pg1", "ALTER SYSTEM SET wal_level = logical")
		restartNode(t, sb, "pg1")
		runSQL(t, sb, "pg1", "SELECT pg_create_logical_replication_slot('consumer', 'test_decoding')")
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := superuserConn(ctx, sb, pg1, 10*time.Second)
			if err != nil {
				return
			}
			defer closeConn(conn)
			_, _ = conn.Exec(ctx, "SELECT pg_drop_replication_slot('consumer') FROM pg_replication_slots WHERE slot_name = 'consumer' AND NOT active")
		})
		recv := startClient(t, filepath.Join(sb.BinDir, "pg_recvlogical"), "-h", "127.0.0.1", "-p", fmt.Sprint(pg1.Port),
			"-U", "postgres", "-d", "postgres", "-S", "consumer", "--start", "-f", os.DevNull)
		r := runUntil(t, c, tg, Fail, settleLimit)
		assertResult(t, r, Fail, []string{"1 logical walsender", "slot consumer (plugin test_decoding, database postgres)", "not confirmed",
			"a clean stop waits until each consumer confirms"}, nil)
		_ = recv.Process.Kill()
		r = runUntil(t, c, tg, Pass, settleLimit)
		assertResult(t, r, Pass, nil, nil)
	})
}

func TestNoShutdownBlockersJudge(t *testing.T) {
	t.Parallel()
	c := &NoShutdownBlockers{Node: "pg1"}
	r := c.judge([]string{"base backup: pid 7"}, []string{"logical walsender: pid 8"})
	assertResult(t, r, Fail, []string{"1 base backup in progress", "1 logical walsender", "pid 7", "pid 8"}, nil)
	if n := strings.Count(r.Detail, "\n") + 1; n != 2 {
		t.Errorf("detail has %d lines, want 2", n)
	}
	assertResult(t, c.judge(nil, nil), Pass, nil, nil)
}
