package sandboxtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
)

// NewPgaf brings up a sandbox managed by pg_auto_failover (a monitor and
// one keeper per node), pg1 the primary, for one test and brings it down
// when the test ends. Without pg_autoctl the test skips, unless CI is set.
func NewPgaf(t testing.TB, standbys int) *sandbox.Sandbox {
	t.Helper()
	available(t)
	_, err := sandbox.FindPgAutoctl("")
	require(t, "pg_auto_failover", err)
	var sb *sandbox.Sandbox
	// Two tries: packages run in parallel, and two sandboxes starting at
	// once can race for the same free ports.
	for try := 0; try < 2 && sb == nil; try++ {
		dir := tempDir(t, "switchover-pgaf-test-")
		ctx, cancel := context.WithTimeout(context.Background(), sandbox.PgafUpTimeout+10*time.Second)
		sb, err = sandbox.Up(ctx, sandbox.Options{Dir: dir, Standbys: standbys, Manager: sandbox.ManagerPgAutoFailover, Log: t.Logf})
		cancel()
	}
	if err != nil {
		t.Fatalf("sandbox up --manager pg_auto_failover: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := sb.Down(ctx); err != nil {
			t.Errorf("sandbox down: %v", err)
		}
	})
	return sb
}

// PgafKeeperFSM returns the PID of the process of node's keeper that runs
// its state machine ("pg_autoctl: node active"). Frozen (Freeze), the
// keeper acts on nothing the monitor assigns while its PostgreSQL runs on,
// as a keeper stalled on a loaded host would.
func PgafKeeperFSM(t testing.TB, sb *sandbox.Sandbox, node string) int {
	t.Helper()
	keeper := sb.PIDs()["pgaf-"+node]
	if keeper == 0 {
		t.Fatalf("the keeper of %s is not running", node)
	}
	for _, pid := range descendants(keeper) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(b), "node active") {
			return pid
		}
	}
	t.Fatalf("the keeper of %s (PID %d) has no \"node active\" process", node, keeper)
	return 0
}

// PgafKeeperProcesses returns the PIDs of every pg_autoctl process of
// node's keeper (its supervisor, state machine and PostgreSQL controller),
// and none of PostgreSQL's. Frozen (FreezePIDs), the keeper neither acts
// on what the monitor assigns nor stops or restarts its server, which
// serves its clients on, as on a host where the keeper gets no CPU.
func PgafKeeperProcesses(t testing.TB, sb *sandbox.Sandbox, node string) []int {
	t.Helper()
	keeper := sb.PIDs()["pgaf-"+node]
	if keeper == 0 {
		t.Fatalf("the keeper of %s is not running", node)
	}
	pids := []int{keeper}
	for _, pid := range descendants(keeper) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.HasPrefix(string(b), "pg_autoctl") {
			pids = append(pids, pid)
		}
	}
	if len(pids) < 3 {
		t.Fatalf("the keeper of %s (PID %d) has %d pg_autoctl processes, want its supervisor and two services", node, keeper, len(pids))
	}
	return pids
}

// SetPgafDemoteTimeout sets how long the monitor waits for an old
// primary's keeper to report it stopped before it promotes the candidate
// anyway (pgautofailover.primary_demote_timeout, 30s unless set), until
// the test ends.
func SetPgafDemoteTimeout(t testing.TB, sb *sandbox.Sandbox, d time.Duration) {
	t.Helper()
	conninfo := fmt.Sprintf("host=%s port=%d user=postgres dbname=pg_auto_failover sslmode=disable connect_timeout=5", sb.MonitorAddr(), sb.MonitorPort())
	set := func(stmt string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pg.Connect(ctx, conninfo, 0)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return err
		}
		_, err = conn.Exec(ctx, "SELECT pg_reload_conf()")
		return err
	}
	if err := set(fmt.Sprintf("ALTER SYSTEM SET pgautofailover.primary_demote_timeout = '%dms'", d.Milliseconds())); err != nil {
		t.Fatalf("setting the monitor's demote timeout: %v", err)
	}
	t.Cleanup(func() {
		if err := set("ALTER SYSTEM RESET pgautofailover.primary_demote_timeout"); err != nil {
			t.Errorf("resetting the monitor's demote timeout: %v", err)
		}
	})
}

// LogPgafEventsOnFailure logs the monitor's last events (its own account
// of every state it assigned and every state a node reported, with the
// time) when t fails: what a pg_auto_failover test needs to tell a slow
// keeper from a slow monitor.
func LogPgafEventsOnFailure(t testing.TB, sb *sandbox.Sandbox) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pg.Connect(ctx, sb.MonitorConninfo(), 0)
		if err != nil {
			t.Logf("the monitor's events: %v", err)
			return
		}
		defer conn.Close(context.Background())
		rows, err := conn.Query(ctx, `SELECT to_char(eventtime, 'HH24:MI:SS.MS'), nodename, reportedstate::text, goalstate::text, description
			FROM (SELECT * FROM pgautofailover.event ORDER BY eventid DESC LIMIT 40) e ORDER BY eventid`)
		if err != nil {
			t.Logf("the monitor's events: %v", err)
			return
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var at, node, reported, goal, desc string
			if err := rows.Scan(&at, &node, &reported, &goal, &desc); err != nil {
				t.Logf("the monitor's events: %v", err)
				return
			}
			fmt.Fprintf(&b, "\n  %s %s %s/%s: %s", at, node, reported, goal, desc)
		}
		t.Logf("the monitor's last events:%s", b.String())
	})
}
