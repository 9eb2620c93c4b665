package sandboxtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox"

	"github.com/switchover/switchover/internal/integration"
)

// require fails t under CI, or skips it, when what a sandbox needs is
// missing (err not nil).
func require(t testing.TB, what string, err error) {
	t.Helper()
	integration.Need(t)
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set and %s is missing: %v", what, err)
	}
	t.Skipf("no %s here: %v", what, err)
}

// tempDir returns a fresh path named prefix* for a sandbox, not yet
// created. Not t.TempDir(): its parent is private to us, and the servers
// may run as another user. Up creates the directory; Down removes it.
func tempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(dir)
	return dir
}

// downAtEnd brings sb down when the test ends, by PID, within a minute.
func downAtEnd(t testing.TB, sb *sandbox.Sandbox) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := sb.Down(ctx); err != nil {
			t.Errorf("sandbox down: %v", err)
		}
	})
}
