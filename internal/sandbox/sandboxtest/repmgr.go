package sandboxtest

import (
	"context"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
)

// NewRepmgr brings up a sandbox managed by repmgr (every node registered,
// a repmgrd per node), pg1 the primary, for one test, and brings it down
// when the test ends. Without repmgr the test skips, unless CI is set.
func NewRepmgr(t testing.TB, standbys int) *sandbox.Sandbox {
	t.Helper()
	available(t)
	bin, _ := sandbox.FindBinDir("")
	_, _, err := sandbox.FindRepmgr(bin)
	require(t, "repmgr", err)
	dir := tempDir(t, "switchover-test-repmgr-")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb, err := sandbox.Up(ctx, sandbox.Options{Dir: dir, Standbys: standbys, Manager: sandbox.ManagerRepmgr, Log: t.Logf})
	if err != nil {
		t.Fatalf("sandbox up --manager repmgr: %v", err)
	}
	downAtEnd(t, sb)
	return sb
}
