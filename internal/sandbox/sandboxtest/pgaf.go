package sandboxtest

import (
	"context"
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
