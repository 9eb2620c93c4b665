package steps

import (
	"context"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pgbouncer"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// The resume sends RESUME on the admin connection the repoint left in the
// run's session, and on a fresh one when that connection broke since:
// either way the clients go on and nothing is left in the session.
//
// Not parallel: it pauses the shared pooler, as TestPgBouncerPauseResume
// does.
func TestResumeOnTheRepointsConnection(t *testing.T) {
	sb := sandboxtest.Shared(t)
	tg, p := sandboxTarget(sb)
	tg.Session = &cluster.Session{}
	t.Cleanup(func() {
		_ = build(t, "pgbouncer.resume", nil).Apply(context.Background(), tg)
		tg.Session.CloseAll()
	})
	pooler := tg.Cluster.Poolers[0]
	for _, broken := range []bool{false, true} {
		name := "kept connection"
		if broken {
			name = "kept connection broken"
		}
		t.Run(name, func(t *testing.T) {
			mustApply(t, tg, p, "pgbouncer.pause", map[string]string{"max_wait": "5s"})
			if !paused(t, sb) {
				t.Fatal("app is not paused after pgbouncer.pause")
			}
			ctx := testCtx(t, 10*time.Second)
			c, err := pgbouncer.Connect(ctx, pooler.Admin)
			if err != nil {
				t.Fatal(err)
			}
			if broken {
				c.Close()
			}
			keepAdmin(tg, pooler, c)
			out := mustApply(t, tg, p, "pgbouncer.resume", nil)
			wantLine(t, out, "pgbouncer resumed app")
			if paused(t, sb) {
				t.Fatal("app is still paused after pgbouncer.resume")
			}
			if _, ok := tg.Session.Take(sessionAdmin(pooler.Name)); ok {
				t.Error("the resume left the admin connection in the session")
			}
		})
	}
}
