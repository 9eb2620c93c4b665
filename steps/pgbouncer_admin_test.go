package steps

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pgbouncer"
	"github.com/switchover/switchover/internal/sandbox"
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
	tg, p := sessionTarget(t, sb)
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

// TestRepointOnThePausesConnection: the pause leaves its admin connection
// in the session, and the repoint sends its RELOAD on it (not connecting
// while clients are held), then leaves it to the resume; when that
// connection broke since, the repoint opens one of its own.
func TestRepointOnThePausesConnection(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.New(t, 1)
	for i, broken := range []bool{false, true} {
		name, to := "kept connection", "pg2"
		if broken {
			name, to = "kept connection broken", "pg1"
		}
		t.Run(name, func(t *testing.T) {
			tg, p := sessionTarget(t, sb)
			pooler := tg.Cluster.Poolers[0]
			mustApply(t, tg, p, "pgbouncer.pause", map[string]string{"max_wait": "5s"})
			v, ok := tg.Session.Take(sessionAdmin(pooler.Name))
			if !ok {
				t.Fatal("the pause left no admin connection in the session")
			}
			left := v.(*pgbouncer.Client)
			if broken {
				left.Close()
			}
			tg.Session.Put(sessionAdmin(pooler.Name), left)
			out := mustApply(t, tg, p, "pgbouncer.repoint", map[string]string{"to": to})
			wantLine(t, out, "pgbouncer routes app to "+to)
			node, _ := sb.Node(to)
			if e := poolerEntry(t, sb); !strings.Contains(e, "port="+strconv.Itoa(node.Port)+" ") {
				t.Errorf("round %d: app's entry is %q, want %s's port %d", i, e, to, node.Port)
			}
			v, ok = tg.Session.Take(sessionAdmin(pooler.Name))
			if !ok {
				t.Fatal("the repoint left no admin connection for the resume")
			}
			if same := v.(*pgbouncer.Client) == left; same == broken {
				t.Errorf("broken %v: the repoint left the pause's connection: %v, want %v", broken, same, !broken)
			}
			tg.Session.Put(sessionAdmin(pooler.Name), v)
			mustApply(t, tg, p, "pgbouncer.resume", nil)
			if paused(t, sb) {
				t.Fatal("app is still paused after pgbouncer.resume")
			}
		})
	}
}

// sessionTarget is sandboxTarget with a session of its own, as a run has,
// resumed and closed when the test ends.
func sessionTarget(t *testing.T, sb *sandbox.Sandbox) (*cluster.Target, *printed) {
	tg, p := sandboxTarget(sb)
	tg.Session = &cluster.Session{}
	t.Cleanup(func() {
		_ = build(t, "pgbouncer.resume", nil).Apply(context.Background(), tg)
		tg.Session.CloseAll()
	})
	return tg, p
}
