package steps

import (
	"context"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestPgTerminateSessions(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	tg, p := sandboxTarget(sb)
	ctx := testCtx(t, time.Minute)

	// A background job on the standby holds an advisory lock (seeds/003).
	holder := nodeConn(t, sb, "pg2", "postgres")
	if _, err := holder.Exec(ctx, "SET application_name = 'lock-holder'"); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_lock(4242)"); err != nil {
		t.Fatal(err)
	}
	// An idle session with no lock is left alone.
	bystander := nodeConn(t, sb, "pg2", "postgres")

	out := mustApply(t, tg, p, "pg.terminate_sessions", map[string]string{"node": "pg2"})
	wantLine(t, out, "terminated: pid", `app "lock-holder"`, "advisory")
	wantLine(t, out, "1 session terminated on pg2")
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := holder.Exec(qctx, "SELECT 1"); err == nil {
		t.Error("the lock holder's connection still works after it was terminated")
	}
	if _, err := bystander.Exec(qctx, "SELECT 1"); err != nil {
		t.Errorf("a session holding nothing was disturbed: %v", err)
	}

	out = mustApply(t, tg, p, "pg.terminate_sessions", map[string]string{"node": "pg2", "max_xact_age": "1s"})
	wantLine(t, out, "no session on pg2 holds a lock", "nothing to do")
}
