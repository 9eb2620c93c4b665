package sandboxtest

import (
	"testing"

	"github.com/switchover/switchover/internal/sandbox"
)

// NewGreen brings up a sandbox (pg1 primary, the given number of
// standbys, PgBouncer) with a green server beside it, green1, empty and run
// from greenBinDir ("" is blue's PostgreSQL), every server with wal_level =
// logical, for one test, and brings it all down when the test ends. Reach
// green with sb.GreenConninfo(db), or Query and Exec on node
// sandbox.GreenNode.
func NewGreen(t testing.TB, standbys int, greenBinDir string) *sandbox.Sandbox {
	t.Helper()
	available(t)
	sb, err := upWith(sandbox.Options{Standbys: standbys, Green: true, GreenBinDir: greenBinDir})
	if err != nil {
		t.Fatalf("sandbox up --green: %v", err)
	}
	downAtEnd(t, sb)
	return sb
}
