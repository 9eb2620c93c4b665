package sandboxtest

import (
	"context"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
)

// FleetDir returns a fresh path for a fleet sandbox (sandbox up
// --clusters), not yet created, for a test that brings one up itself. A
// fleet the test leaves there is brought down when it ends. It skips t
// (or fails it under CI) when no sandbox can run here.
func FleetDir(t testing.TB) string {
	t.Helper()
	available(t)
	dir := tempDir(t, "switchover-fleet-test-")
	t.Cleanup(func() {
		if !sandbox.IsFleet(dir) {
			return
		}
		f, err := sandbox.LoadFleet(dir)
		if err != nil {
			t.Errorf("fleet sandbox left in %s: %v", dir, err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := f.Down(ctx); err != nil {
			t.Errorf("fleet sandbox down: %v", err)
		}
	})
	return dir
}
