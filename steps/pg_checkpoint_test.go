package steps

import (
	"context"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestPgCheckpoint(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	tg, p := sandboxTarget(sb)
	conn := nodeConn(t, sb, "pg1", "postgres")
	var before int64
	if err := conn.QueryRow(context.Background(), "SELECT checkpoints_req FROM pg_stat_bgwriter").Scan(&before); err != nil {
		t.Fatal(err)
	}
	out := mustApply(t, tg, p, "pg.checkpoint", map[string]string{"node": "pg1"})
	wantLine(t, out, "checkpoint on pg1 done in")
	// The checkpointer reports its statistics just after it signals the
	// checkpoint done, so the count may lag the command a moment.
	var after int64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := conn.QueryRow(context.Background(), "SELECT checkpoints_req FROM pg_stat_bgwriter").Scan(&after); err != nil {
			t.Fatal(err)
		}
		if after > before || time.Now().After(deadline) {
			break
		}
	}
	if after <= before {
		t.Errorf("pg_stat_bgwriter.checkpoints_req went from %d to %d in 5s, want it to grow", before, after)
	}
	// On a standby CHECKPOINT is a restartpoint; it works all the same.
	mustApply(t, tg, p, "pg.checkpoint", map[string]string{"node": "pg3"})
}
