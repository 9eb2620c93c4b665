package checks

import (
	"context"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// pg.restarted tells a node this run restarted (its restart recorded, the
// server running now started then or later) from one it did not.
func TestPGRestarted(t *testing.T) {
	sb := sandboxtest.Shared(t)
	started := map[string]time.Time{}
	for _, name := range []string{"pg2", "pg3"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := superuserConn(ctx, sb, sandboxNode(t, sb, name), 10*time.Second)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		var at time.Time
		err = conn.QueryRow(ctx, "SELECT pg_postmaster_start_time()").Scan(&at)
		conn.Close(context.Background())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		started[name] = at.UTC()
	}
	stamp := func(at time.Time) string { return at.UTC().Format(time.RFC3339Nano) }
	check := mustBuild(t, "pg.restarted", map[string]any{"except": []string{"pg1"}})

	t.Run("no restart recorded", func(t *testing.T) {
		r := runCheck(t, check, sandboxTarget(sb))
		assertResult(t, r, Fail, []string{"pg2: not restarted by this run (no fact pg2.restarted_at)",
			"pg3: not restarted by this run (no fact pg3.restarted_at)"}, []string{"pg1"})
	})
	t.Run("one of two recorded", func(t *testing.T) {
		tg := sandboxTarget(sb)
		tg.Facts.Set(cluster.RestartedFact("pg2"), stamp(started["pg2"]))
		r := runCheck(t, check, tg)
		assertResult(t, r, Fail, []string{"pg3: not restarted by this run"}, []string{"pg2: not restarted"})
	})
	t.Run("both recorded, servers started then", func(t *testing.T) {
		tg := sandboxTarget(sb)
		for n, at := range started {
			tg.Facts.Set(cluster.RestartedFact(n), stamp(at))
		}
		r := runCheck(t, check, tg)
		assertResult(t, r, Pass, []string{"pg2 started " + stamp(started["pg2"]), "pg3 started " + stamp(started["pg3"])}, nil)
		hasValue(t, r, "pg3", stamp(started["pg3"]))
	})
	t.Run("a server started before the restart recorded", func(t *testing.T) {
		tg := sandboxTarget(sb)
		tg.Facts.Set(cluster.RestartedFact("pg2"), stamp(started["pg2"]))
		later := started["pg3"].Add(time.Hour)
		tg.Facts.Set(cluster.RestartedFact("pg3"), stamp(later))
		r := runCheck(t, check, tg)
		assertResult(t, r, Fail, []string{"pg3: restarted by this run at " + stamp(later) + ", but its PostgreSQL says it started at " + stamp(started["pg3"])}, []string{"pg2:"})
	})
	t.Run("a fact that is not a time", func(t *testing.T) {
		tg := sandboxTarget(sb)
		tg.Facts.Set(cluster.RestartedFact("pg2"), "yesterday")
		tg.Facts.Set(cluster.RestartedFact("pg3"), stamp(started["pg3"]))
		assertResult(t, runCheck(t, check, tg), Error, []string{`fact pg2.restarted_at is "yesterday"`}, nil)
	})
	t.Run("only the nodes named", func(t *testing.T) {
		tg := sandboxTarget(sb)
		tg.Facts.Set(cluster.RestartedFact("pg3"), stamp(started["pg3"]))
		only := mustBuild(t, "pg.restarted", map[string]any{"nodes": []string{"pg3"}})
		assertResult(t, runCheck(t, only, tg), Pass, []string{"pg3 started"}, []string{"pg2"})
	})
	t.Run("an unknown node", func(t *testing.T) {
		c := mustBuild(t, "pg.restarted", map[string]any{"nodes": []string{"pg9"}})
		assertResult(t, runCheck(t, c, sandboxTarget(sb)), Error, []string{"pg9"}, nil)
	})
}
