package checks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// TestNoBlockingSessions holds locks and transactions open on a standby
// of a sandbox of its own, the way a background script did on Chargify's new
// primary, and expects the check to name the session.
func TestNoBlockingSessions(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	tg := sandboxTarget(sb)
	check := mustBuild(t, "pg.no_blocking_sessions", map[string]any{"node": "pg2"})
	pg2 := sandboxNode(t, sb, "pg2")

	t.Run("a quiet standby passes", func(t *testing.T) {
		r := runUntil(t, check, tg, Pass, settleLimit)
		assertResult(t, r, Pass, []string{"no session on pg2"}, nil)
		if r.Values["count"] != 0 {
			t.Errorf("values count = %v, want 0", r.Values["count"])
		}
	})

	// The table exists on the standby once the primary's WAL is replayed.
	runSQL(t, sb, "pg1", "CREATE TABLE locked (id int)")
	waitFor(t, "locked replayed on pg2", settleLimit, func() (bool, string) {
		got, err := queryString(sb, pg2, "SELECT coalesce(to_regclass('public.locked')::text, 'missing')")
		return err == nil && got == "locked", fmt.Sprintf("%q, %v", got, err)
	})

	t.Run("a lock on a table fails, naming the session and the table", func(t *testing.T) {
		holder := openSession(t, sb, "pg2")
		pid := backendPID(t, holder)
		execAll(t, holder, "BEGIN", "LOCK TABLE locked IN ACCESS SHARE MODE")
		r := runCheck(t, check, tg)
		assertResult(t, r, Fail, []string{fmt.Sprintf("1 session on pg2 holds a lock or has a transaction open longer than 5s (pid %d)", pid),
			fmt.Sprintf("pid %d  user postgres", pid), "relation locked AccessShareLock", "LOCK TABLE locked"}, nil)
		if r.Values["count"] != 1 || !slices.Equal(r.Values["pids"].([]int), []int{pid}) {
			t.Errorf("values = %v, want count 1 and pids [%d]", r.Values, pid)
		}
		if n := strings.Count(r.Detail, "\n") + 1; n != 1 {
			t.Errorf("detail has %d lines, want one per session:\n%s", n, r.Detail)
		}
		execAll(t, holder, "ROLLBACK")
		assertResult(t, runUntil(t, check, tg, Pass, settleLimit), Pass, nil, nil)
	})

	t.Run("an advisory lock fails until its session closes", func(t *testing.T) {
		holder := openSession(t, sb, "pg2")
		execAll(t, holder, "SELECT pg_advisory_lock(7)")
		pid := backendPID(t, holder)
		r := runCheck(t, check, tg)
		assertResult(t, r, Fail, []string{fmt.Sprintf("pid %d", pid), "advisory"}, nil)
		closeConn(holder)
		assertResult(t, runUntil(t, check, tg, Pass, settleLimit), Pass, nil, []string{"advisory"})
	})

	t.Run("a lock held only for a moment does not fail", func(t *testing.T) {
		holder := openSession(t, sb, "pg2")
		execAll(t, holder, "SELECT pg_advisory_lock(8)")
		released := make(chan struct{})
		go func() {
			defer close(released)
			time.Sleep(50 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _ = holder.Exec(ctx, "SELECT pg_advisory_unlock(8)")
		}()
		r := runCheck(t, check, tg)
		<-released
		assertResult(t, r, Pass, nil, nil)
	})

	t.Run("a transaction open longer than max_xact_age fails", func(t *testing.T) {
		holder := openSession(t, sb, "pg2")
		execAll(t, holder, "BEGIN", "SELECT 1")
		pid := backendPID(t, holder)
		// The default 5s allows a transaction this young.
		assertResult(t, runCheck(t, check, tg), Pass, nil, []string{fmt.Sprintf("pid %d", pid)})
		strict := mustBuild(t, "pg.no_blocking_sessions", map[string]any{"node": "pg2", "max_xact_age": "200ms"})
		// The check's own clock: the transaction's age as pg2 sees it.
		waitFor(t, fmt.Sprintf("the transaction of pid %d older than 200ms on pg2", pid), settleLimit, func() (bool, string) {
			got, err := queryString(sb, pg2, fmt.Sprintf("SELECT coalesce((clock_timestamp() - xact_start > interval '200ms')::text, 'no transaction') FROM pg_stat_activity WHERE pid = %d", pid))
			return err == nil && got == "true", fmt.Sprintf("older: %q, %v", got, err)
		})
		r := runCheck(t, strict, tg)
		assertResult(t, r, Fail, []string{fmt.Sprintf("pid %d", pid), "idle in transaction", "longer than 200ms", "no locks"}, nil)
		execAll(t, holder, "ROLLBACK")
		assertResult(t, runUntil(t, strict, tg, Pass, settleLimit), Pass, nil, nil)
	})
}

// TestPGConnectErrors expects the pg checks to report a node missing from
// the inventory, or one they cannot connect to, as an error that names the
// node and never shows the password.
func TestPGConnectErrors(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	host, port, _ := strings.Cut(addr, ":")
	tg := &cluster.Target{Facts: &cluster.Facts{}, Cluster: &cluster.Cluster{Name: "test", Nodes: map[string]*cluster.Node{
		"pg1": {Name: "pg1", Conninfo: fmt.Sprintf("host=%s port=%s user=postgres password=s3cret-pw dbname=postgres sslmode=disable connect_timeout=2", host, port)},
		"pg2": {Name: "pg2", Conninfo: fmt.Sprintf("postgres://postgres:s3cret-pw@%s/postgres?sslmode=disable&connect_timeout=2", addr)},
	}}}
	tests := []struct {
		kind string
		raw  map[string]any
		want []string
	}{
		{"pg.no_blocking_sessions", map[string]any{"node": "pg1"}, []string{"connect pg1 (" + addr + "): connection refused"}},
		{"pg.no_blocking_sessions", map[string]any{"node": "pg9"}, []string{`node "pg9" is not in the inventory`}},
		{"pg.no_prepared_xacts", map[string]any{"node": "pg2"}, []string{"connect pg2 (" + addr + "): connection refused"}},
		{"pg.no_prepared_xacts", map[string]any{"node": "pg9"}, []string{`node "pg9" is not in the inventory`}},
		{"pg.archiver_healthy", map[string]any{"node": "pg1"}, []string{"connect pg1"}},
		{"pg.archiver_healthy", map[string]any{"node": "pg9"}, []string{`node "pg9" is not in the inventory`}},
		{"pg.same_major_version", map[string]any{}, []string{"connect pg1", "connect pg2"}},
		{"pg.same_major_version", map[string]any{"nodes": []string{"pg1", "pg9"}}, []string{"connect pg1", `node "pg9" is not in the inventory`}},
		{"pg.settings_match", map[string]any{"settings": []string{"wal_level"}}, []string{"connect pg1", "connect pg2"}},
		{"pg.sync_standbys", map[string]any{"primary": "pg1", "candidate": "pg2"}, []string{"connect pg1"}},
		{"pg.sync_standbys", map[string]any{"primary": "pg9", "candidate": "pg2"}, []string{`node "pg9" is not in the inventory`}},
		{"pg.sync_after", map[string]any{"primary": "pg1", "candidate": "pg2"}, []string{"connect pg1"}},
		{"pg.logical_slots", map[string]any{"node": "pg1", "candidate": "pg2"}, []string{"connect pg1"}},
		{"pg.consumer_slots", map[string]any{"node": "pg2"}, []string{"connect pg2"}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %v", tc.kind, tc.raw), func(t *testing.T) {
			t.Parallel()
			c := mustBuild(t, tc.kind, tc.raw)
			r := c.Run(testCtx(t, 0), tg)
			assertResult(t, r, Error, tc.want, []string{"s3cret-pw"})
		})
	}
}

func TestNoBlockingSessionsNewAndDescribe(t *testing.T) {
	t.Parallel()
	c := mustBuild(t, "pg.no_blocking_sessions", map[string]any{"node": "pg2"})
	if got, want := c.Describe(nil), "no session on pg2 holds a lock or keeps a transaction open longer than 5s"; got != want {
		t.Errorf("describe = %q, want %q", got, want)
	}
	if _, err := build(t, "pg.no_blocking_sessions", map[string]any{"node": ""}); err == nil {
		t.Error("an empty node was accepted")
	}
}

// TestPGHonoursDeadline points the pg checks at a server that accepts
// connections and never answers: each must give up with an error when its
// context ends, not wait for the connect timeout.
func TestPGHonoursDeadline(t *testing.T) {
	t.Parallel()
	addr := silentServer(t)
	host, port, _ := strings.Cut(addr, ":")
	conninfo := fmt.Sprintf("host=%s port=%s user=postgres dbname=postgres sslmode=disable connect_timeout=30", host, port)
	tg := &cluster.Target{Facts: &cluster.Facts{}, Cluster: &cluster.Cluster{Name: "test", Nodes: map[string]*cluster.Node{
		"pg1": {Name: "pg1", Conninfo: conninfo},
		"pg2": {Name: "pg2", Conninfo: conninfo},
	}}}
	for kind, raw := range map[string]map[string]any{
		"pg.no_blocking_sessions": {"node": "pg2"},
		"pg.no_prepared_xacts":    {"node": "pg1"},
		"pg.archiver_healthy":     {"node": "pg1"},
		"pg.same_major_version":   {},
		"pg.settings_match":       {"settings": []string{"wal_level"}},
		"pg.sync_standbys":        {"primary": "pg1", "candidate": "pg2"},
		"pg.sync_after":           {"primary": "pg1", "candidate": "pg2"},
		"pg.logical_slots":        {"node": "pg1", "candidate": "pg2"},
		"pg.consumer_slots":       {"node": "pg1"},
	} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			c := mustBuild(t, kind, raw)
			start := time.Now()
			r := c.Run(testCtx(t, 300*time.Millisecond), tg)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %s with a 300ms deadline", took)
			}
			assertResult(t, r, Error, []string{"connect pg", "no connection before the time limit"}, nil)
		})
	}
}

// TestLookAgain: the second look ends as soon as nothing the first found
// is left, keeps looking until secondLook otherwise, and stops at an error.
func TestLookAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	first := []int{1, 2}
	eq := func(a, b int) bool { return a == b }
	lists := [][]int{{1, 2}, {2}, {}}
	calls := 0
	_, took, err := lookAgain(ctx, first, eq, func() ([]int, error) {
		calls++
		return lists[calls-1], nil
	})
	if err != nil || calls != 3 || took >= secondLook {
		t.Errorf("gone at the third look: %d looks, %s, %v; want 3 looks, under %s", calls, took, err, secondLook)
	}
	calls = 0
	_, took, err = lookAgain(ctx, first, eq, func() ([]int, error) { calls++; return []int{1}, nil })
	if err != nil || took < secondLook || calls < 2 {
		t.Errorf("never gone: %d looks over %s, %v; want several over %s at least", calls, took, err, secondLook)
	}
	boom := errors.New("boom")
	calls = 0
	if _, _, err := lookAgain(ctx, first, eq, func() ([]int, error) { calls++; return []int{1}, boom }); !errors.Is(err, boom) || calls != 1 {
		t.Errorf("an error: %d looks, %v; want it at the first", calls, err)
	}
}
