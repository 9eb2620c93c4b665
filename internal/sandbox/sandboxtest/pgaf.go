package sandboxtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

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
