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
	missing := func(what string, err error) { require(t, what, err) }
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
		dir := tempDir(t, "switchover-router-test-")
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
	downAtEnd(t, sb)
	return sb
}
