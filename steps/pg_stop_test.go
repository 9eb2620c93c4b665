package steps

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// TestPgStopStart stops and starts a standby and a primary, twice each:
// the second time changes nothing and succeeds.
func TestPgStopStart(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.New(t, 1)
	tg, p := sandboxTarget(sb)

	t.Run("stop a standby records its shutdown checkpoint", func(t *testing.T) {
		out := mustApply(t, tg, p, "pg.stop", map[string]string{"node": "pg2"})
		wantLine(t, out, "pg2 shut down cleanly (pg_controldata: shut down in recovery)")
		cd := readControlData(t, sb, "pg2")
		if cd["Database cluster state"] != "shut down in recovery" {
			t.Errorf("pg_controldata says %q, want shut down in recovery", cd["Database cluster state"])
		}
		fact, ok := tg.Facts.Get("pg2.shutdown_lsn")
		if !ok || fact != mustLSN(t, cd["Latest checkpoint location"]).String() {
			t.Errorf("fact pg2.shutdown_lsn = %q, %v; want pg_controldata's %q", fact, ok, cd["Latest checkpoint location"])
		}
		wantLine(t, out, "shutdown checkpoint of pg2 at "+fact, "pg2.shutdown_lsn")
	})

	t.Run("stop a stopped server does nothing", func(t *testing.T) {
		before, _ := tg.Facts.Get("pg2.shutdown_lsn")
		out := mustApply(t, tg, p, "pg.stop", map[string]string{"node": "pg2"})
		wantLine(t, out, "pg2 is already stopped cleanly", "nothing to do")
		if after, _ := tg.Facts.Get("pg2.shutdown_lsn"); after != before {
			t.Errorf("fact pg2.shutdown_lsn changed from %s to %s", before, after)
		}
	})

	t.Run("start it again", func(t *testing.T) {
		out := mustApply(t, tg, p, "pg.start", map[string]string{"node": "pg2"})
		wantLine(t, out, "pg2 started")
		waitStreams(t, sb, "pg2", "pg1")
	})

	t.Run("start a running server does nothing", func(t *testing.T) {
		out := mustApply(t, tg, p, "pg.start", map[string]string{"node": "pg2"})
		wantLine(t, out, "pg2 is already running", "nothing to do")
	})

	t.Run("stop the primary in smart mode, start it with its own log", func(t *testing.T) {
		out := mustApply(t, tg, p, "pg.stop", map[string]string{"node": "pg1", "mode": "smart", "wait": "30s"})
		wantLine(t, out, "pg1 shut down cleanly (pg_controldata: shut down)")
		if _, ok := tg.Facts.Get("pg1.shutdown_lsn"); !ok {
			t.Error("no fact pg1.shutdown_lsn")
		}
		log := filepath.Join(sb.Dir, "pg1", "restart.log")
		mustApply(t, tg, p, "pg.start", map[string]string{"node": "pg1", "log": log})
		st, err := inspect(sb, "pg1")
		if err != nil || st.Role != pg.RolePrimary {
			t.Fatalf("after start pg1 is %+v, %v; want a primary", st, err)
		}
		waitStreams(t, sb, "pg2", "pg1")
	})

	t.Run("stop the primary at its shutdown checkpoint, then start it", func(t *testing.T) {
		out := mustApply(t, tg, p, "pg.stop", map[string]string{"node": "pg1", "done_at": "checkpoint"})
		wantLine(t, out, "pg1 wrote its shutdown checkpoint (control file: shut down): it takes no connection and writes no more WAL")
		// Read once the postmaster is gone (pg_controldata of a file still
		// being written proves nothing): the facts the stop read from the
		// control file's first bytes are pg_controldata's.
		waitGone(t, sb, "pg1")
		cd := readControlData(t, sb, "pg1")
		if cd["Database cluster state"] != "shut down" {
			t.Fatalf("pg_controldata says %q, want shut down", cd["Database cluster state"])
		}
		fact, ok := tg.Facts.Get("pg1.shutdown_lsn")
		if !ok || fact != mustLSN(t, cd["Latest checkpoint location"]).String() {
			t.Errorf("fact pg1.shutdown_lsn = %q, %v; want pg_controldata's %q", fact, ok, cd["Latest checkpoint location"])
		}
		wantLine(t, out, fmt.Sprintf("shutdown checkpoint of pg1 at %s on timeline %s", fact, cd["Latest checkpoint's TimeLineID"]))
		mustApply(t, tg, p, "pg.start", map[string]string{"node": "pg1"})
		waitStreams(t, sb, "pg2", "pg1")
	})

	t.Run("a failing stop command says so and what it printed", func(t *testing.T) {
		_, err := apply(t, tg, p, "pg.stop", map[string]string{"node": "pg2", "command": "echo 'unit not found' >&2; exit 5"})
		wantErr(t, err, `stop "pg2"`, "stop command exited 5: unit not found")
		if st, err := inspect(sb, "pg2"); err != nil || st.Role != pg.RoleStandby {
			t.Errorf("pg2 is %+v, %v; want it still running as a standby", st, err)
		}
	})
}

func mustLSN(t *testing.T, s string) pg.LSN {
	t.Helper()
	l, err := pg.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestPgStopTimesOutThenStartFinishesTheShutdown: a smart stop that a
// client keeps from finishing fails at its deadline and leaves the server
// shutting down (refusing new connections); pg.start then finishes the
// shutdown fast and starts it again, as the rollback needs.
func TestPgStopTimesOutThenStartFinishesTheShutdown(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.New(t, 1)
	tg, p := sandboxTarget(sb)
	nodeConn(t, sb, "pg1", "postgres") // stays connected: a smart shutdown waits for it

	_, err := apply(t, tg, p, "pg.stop", map[string]string{"node": "pg1", "mode": "smart", "wait": "1s"})
	wantErr(t, err, `stop "pg1"`, "still running after 1s", "still shutting down (smart mode)")
	if _, err := inspect(sb, "pg1"); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("after the timed-out smart stop pg1 answers: %v; want it refusing connections, shutting down", err)
	}

	out := mustApply(t, tg, p, "pg.start", map[string]string{"node": "pg1"})
	wantLine(t, out, "pg1 is running but shutting down", "finishing the shutdown fast")
	wantLine(t, out, "pg1 started")
	st, err := inspect(sb, "pg1")
	if err != nil || st.Role != pg.RolePrimary {
		t.Fatalf("after start pg1 is %+v, %v; want a primary", st, err)
	}
	if cd := readControlData(t, sb, "pg1"); cd["Database cluster state"] != "in production" {
		t.Errorf("pg_controldata says %q, want in production", cd["Database cluster state"])
	}
}

// waitGone waits, 30s at most, until node's postmaster.pid is gone.
func waitGone(t *testing.T, sb *sandbox.Sandbox, node string) {
	t.Helper()
	n := sandboxtest.Node(t, sb, node)
	pid := filepath.Join(n.DataDir, "postmaster.pid")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(pid); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there 30s after the stop", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPgStopAtCheckpointWithoutPerl: on a host without perl, the stop at
// the shutdown checkpoint watches the control file with the shell's loop
// (od and sleep on every turn) and ends there just the same. Not parallel:
// it narrows PATH for the commands it runs.
func TestPgStopAtCheckpointWithoutPerl(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	tg, p := sandboxTarget(sb)
	// The commands run as the database user, who may not enter t.TempDir.
	bin, err := os.MkdirTemp("", "switchover-noperl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bin) })
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"od", "sleep", "cat", "ls", "grep", "date", "rm", "mv", "cp"} {
		where, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if err := os.Symlink(where, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	path := os.Getenv("PATH")
	os.Setenv("PATH", bin)
	out, err := apply(t, tg, p, "pg.stop", map[string]string{"node": "pg1", "done_at": "checkpoint"})
	os.Setenv("PATH", path)
	if err != nil {
		t.Fatal(err)
	}
	wantLine(t, out, "pg1 wrote its shutdown checkpoint (control file: shut down)")
	waitGone(t, sb, "pg1")
	cd := readControlData(t, sb, "pg1")
	fact, ok := tg.Facts.Get("pg1.shutdown_lsn")
	if cd["Database cluster state"] != "shut down" || !ok || fact != mustLSN(t, cd["Latest checkpoint location"]).String() {
		t.Errorf("pg_controldata says %q at %q; fact pg1.shutdown_lsn = %q, %v: want shut down, the same location",
			cd["Database cluster state"], cd["Latest checkpoint location"], fact, ok)
	}
}
