package faults

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

const pgafPlaybook = "pg-auto-failover-switchover"

// pgafFaults kill the pg-auto-failover-switchover playbook while the
// monitor carries on without us. The resume must find the promotion done
// or under way and follow it rather than ask again, resume the pooler and
// finish: one primary, the candidate, the monitor settled.
var pgafFaults = []fault{
	{"pg_auto_failover: SIGKILL after switchover", "switchover", "done", 0},
}

// pgafFullFaults are the longer variants, run with SWITCHOVER_FULL=1.
// Killed while the monitor drains the old primary, the run's guard can
// find the old primary still writable and resume the pooler onto it while
// the monitor goes on to demote it: commits acknowledged there are lost.
// That is an open defect (the guard must follow the monitor, not only
// PostgreSQL, while a switchover is under way); these cases show it.
var pgafFullFaults = []fault{
	// The promotion is asked and the monitor is draining the primary:
	// the run dies while clients are held and the monitor goes on alone.
	{"pg_auto_failover: SIGKILL 300ms into switchover", "switchover", "running", 300 * time.Millisecond},
	{"pg_auto_failover: SIGKILL after pause-pooler", "pause-pooler", "done", 0},
	{"pg_auto_failover: SIGKILL inside switchover", "switchover", "running", 0},
}

// TestKillAndResumePgaf runs the pg_auto_failover faults against one
// sandbox managed by a real monitor and keepers, alternating the
// direction; after each, the monitor must show every node settled with
// the primary PostgreSQL shows.
func TestKillAndResumePgaf(t *testing.T) {
	sb := sandboxtest.NewPgaf(t, 1)
	binary(t)
	cases := pgafFaults
	if os.Getenv("SWITCHOVER_FULL") != "" {
		cases = append(append([]fault{}, pgafFaults...), pgafFullFaults...)
	}
	for i, f := range cases {
		t.Run(f.name, func(t *testing.T) {
			runCase(t, sb, pgafPlaybook, 200+i, f)
			after, err := waitHealthy(t, sb)
			if err != nil {
				t.Fatalf("after the case: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := sb.WaitPgafSettled(ctx, after.primary, 90*time.Second); err != nil {
				t.Errorf("after the case, PostgreSQL's primary is %s, but: %v", after.primary, err)
			}
			v, err := sb.PgafView(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("after: %s; the monitor shows %s", after.roles, v)
		})
	}
}
