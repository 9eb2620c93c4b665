package sandboxtest

import (
	"context"
	"os"
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
	if _, _, err := sandbox.FindRepmgr(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and repmgr is missing: %v", err)
		}
		t.Skipf("no repmgr here: %v", err)
	}
	// Not t.TempDir(): its parent is private to us, and the servers run
	// as another user. Up creates the directory; Down removes it.
	dir, err := os.MkdirTemp("", "switchover-test-repmgr-")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb, err := sandbox.Up(ctx, sandbox.Options{Dir: dir, Standbys: standbys, Manager: sandbox.ManagerRepmgr, Log: t.Logf})
	if err != nil {
		t.Fatalf("sandbox up --manager repmgr: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := sb.Down(ctx); err != nil {
			t.Errorf("sandbox down: %v", err)
		}
	})
	return sb
}
