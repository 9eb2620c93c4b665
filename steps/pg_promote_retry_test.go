package steps

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// TestAReloadWakesAStandbySleepingOutItsRetryInterval: what pg.promote
// relies on when it finds the startup process sleeping out
// wal_retrieve_retry_interval with a promotion pending (see retryWait): a
// reload wakes it at once. The interval here is a minute; the standby's
// primary has stopped, so the standby sleeps, tries again, and sleeps
// again, and each sleep is logged. Without the reload the next line would
// come a minute later.
func TestAReloadWakesAStandbySleepingOutItsRetryInterval(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	tg, p := sandboxTarget(sb)
	ctx := testCtx(t, 2*time.Minute)
	admin := nodeConn(t, sb, "pg2", "postgres")
	exec := func(q string) {
		t.Helper()
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	sleeps := func() int {
		b, err := os.ReadFile(filepath.Join(sb.Dir, "pg2.log"))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Count(b, []byte("waiting for WAL to become available"))
	}
	exec("ALTER SYSTEM SET wal_retrieve_retry_interval = '60s'")
	exec("SELECT pg_reload_conf()")
	mustApply(t, tg, p, "pg.stop", map[string]string{"node": "pg1"})
	eventually(t, 30*time.Second, "pg2's startup process sleeps out wal_retrieve_retry_interval", func() (bool, string) {
		var wait string
		err := admin.QueryRow(ctx, "SELECT coalesce((SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'startup'), '')").Scan(&wait)
		return err == nil && wait == retryWait && sleeps() > 0, fmt.Sprintf("%q %v", wait, err)
	})
	before := sleeps()
	woken := time.Now()
	exec("SELECT pg_reload_conf()")
	eventually(t, 10*time.Second, "pg2's startup process woken, tried again and sleeping again", func() (bool, string) {
		n := sleeps()
		return n > before, fmt.Sprintf("%d sleeps logged, %d before the reload", n, before)
	})
	t.Logf("woken and asleep again %s after the reload", time.Since(woken).Round(time.Millisecond))
}
