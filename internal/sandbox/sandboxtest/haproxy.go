package sandboxtest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
)

// NewRouter brings up a sandbox with HAProxy in front instead of
// PgBouncer (sandbox up --router haproxy), under manager ("" or
// sandbox.ManagerPatroni), for one test, and brings it down when the test
// ends. Without haproxy (or Patroni, when asked) the test skips, unless
// CI is set.
func NewRouter(t testing.TB, standbys int, manager string) *sandbox.Sandbox {
	t.Helper()
	available(t)
	missing := func(what string, err error) {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and %s is missing: %v", what, err)
		}
		t.Skipf("no %s here: %v", what, err)
	}
	if _, err := exec.LookPath("haproxy"); err != nil {
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr != nil {
			missing("haproxy", err)
		}
	}
	if manager == sandbox.ManagerPatroni {
		if _, _, err := sandbox.FindPatroni(); err != nil {
			missing("Patroni", err)
		}
	}
	var sb *sandbox.Sandbox
	var err error
	for try := 0; try < 2; try++ { // two sandboxes starting at once can race for the same free ports
		var dir string
		if dir, err = os.MkdirTemp("", "switchover-router-test-"); err != nil {
			t.Fatal(err)
		}
		os.Remove(dir) // Up creates it, with the right owner
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		sb, err = sandbox.Up(ctx, sandbox.Options{Dir: dir, Standbys: standbys, Manager: manager, Router: sandbox.RouterHAProxy, Log: t.Logf})
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("sandbox up --router haproxy: %v", err)
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
