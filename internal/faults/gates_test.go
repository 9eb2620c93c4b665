package faults

// What would make PgBouncer's PAUSE or the old primary's stop wait is
// refused before a single client waits: a long query and a session idle in
// transaction through the pooler on the primary, session pooling, a hung
// archive_command. For each, plan and run stop at preflight (exit 3),
// PgBouncer is never paused, pg1 stays the one writable primary, and a
// writer through the pooler never stalls.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/pgbouncer"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
)

// appPauseWatch polls PgBouncer's SHOW DATABASES and remembers whether the
// app database was ever paused.
type appPauseWatch struct {
	stop, done chan struct{}
	mu         sync.Mutex
	samples    int
	paused     []string
	errs       []string
}

// watchAppPause starts the watch; check stops it.
func watchAppPause(sb *sandbox.Sandbox) *appPauseWatch {
	w := &appPauseWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var c *pgbouncer.Client
		defer func() { c.Close() }()
		for {
			var err error
			if c == nil {
				c, err = pgbouncer.Connect(ctx, sb.AdminConninfo())
			}
			var paused bool
			if err == nil {
				paused, err = appPaused(ctx, c)
			}
			w.mu.Lock()
			switch {
			case err != nil:
				w.errs = append(w.errs, err.Error())
				c.Close()
				c = nil
			case paused:
				w.paused = append(w.paused, time.Now().Format("15:04:05.000")+" paused")
			}
			w.samples++
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return w
}

// appPaused says whether SHOW DATABASES shows the app database paused.
func appPaused(ctx context.Context, c *pgbouncer.Client) (bool, error) {
	d, err := c.Database(ctx, "app")
	return d.Paused, err
}

// check stops the watch and fails the test if PgBouncer was ever paused.
func (w *appPauseWatch) check(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.paused) > 0 {
		t.Errorf("PgBouncer paused app during a refused run: %s", strings.Join(w.paused, "; "))
	}
	if len(w.errs) > 0 {
		t.Errorf("SHOW DATABASES failed %d times: %s", len(w.errs), w.errs[0])
	}
	if w.samples < 5 {
		t.Errorf("only %d SHOW DATABASES samples taken", w.samples)
	}
	t.Logf("%d SHOW DATABASES samples, app never paused", w.samples)
}

// pooled opens a client session through PgBouncer, closed when the test ends.
func pooled(t *testing.T, sb *sandbox.Sandbox) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pg.ConnectPooled(ctx, sb.ClientConninfo()+" application_name=report-job")
	if err != nil {
		t.Fatalf("connect through the pooler: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// sqlOn runs statements on a node in a session of their own.
func sqlOn(t *testing.T, sb *sandbox.Sandbox, name string, stmts ...string) {
	t.Helper()
	c := sandboxtest.Connect(t, sb, name, "postgres")
	defer c.Close(context.Background())
	for _, s := range stmts {
		if _, err := c.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s on %s: %v", s, name, err)
		}
	}
}

// waitUntil polls cond until it holds or limit passes.
func waitUntil(t *testing.T, what string, limit time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last seen: %s)", what, limit, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// queryOn runs a query that returns one text value on a node.
func queryOn(t *testing.T, sb *sandbox.Sandbox, name, query string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pg.Connect(ctx, sb.Conninfo(sandboxtest.Node(t, sb, name), "postgres"), 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close(context.Background())
	var s string
	err = c.QueryRow(ctx, query).Scan(&s)
	return s, err
}

// wantRefused runs the streaming playbook as plan, then as run --yes, and
// checks both stopped at preflight naming what was refused, with nothing
// paused, no stall for a writer through PgBouncer, and pg1 still the one
// writable primary.
func wantRefused(t *testing.T, sb *sandbox.Sandbox, fault, check string, see []string, vars ...string) {
	t.Helper()
	before := sandboxtest.Topology(t, sb)
	paused := watchAppPause(sb)
	writer := sandboxtest.WatchStalls(t, sb)
	roles := sandboxtest.StartSampler(sb)
	for _, dry := range []bool{true, false} {
		how := "run --yes"
		if dry {
			how = "plan"
		}
		ev, err := playbookstest.Run(t, sb, playbook, dry, vars...)
		if !errors.Is(err, runbook.ErrPrecondition) {
			t.Fatalf("%s with %s: %v, want a precondition failure (exit 3)\n%s", how, fault, err, ev.Text())
		}
		if got := ev.ActionsRun(); len(got) != 0 {
			t.Fatalf("%s with %s: actions ran: %v, want none\n%s", how, fault, got, ev.Text())
		}
		text := ev.Text()
		for _, want := range append([]string{"preflight", check + " fail"}, see...) {
			if !strings.Contains(text, want) {
				t.Errorf("%s with %s: the output lacks %q:\n%s", how, fault, want, text)
			}
		}
		if !dry {
			recordFault(t, fault, ev, err, sb)
		}
	}
	roles.Finish().CheckKeptOnPrimary(t, sb)
	paused.check(t)
	// Normal here is a few milliseconds; the pause budget is 10s.
	writer.Check(t, time.Second)
	if got := sandboxtest.Topology(t, sb); got != before {
		t.Errorf("topology changed: %s, was %s", got, before)
	}
	if got := sandboxtest.WriteThroughPooler(t, sb); got != sandboxtest.Node(t, sb, "pg1").Port {
		t.Errorf("after the refused run the pooler wrote to port %d, want pg1 (%d)", got, sandboxtest.Node(t, sb, "pg1").Port)
	}
}

func TestGatesRefuseBeforeThePause(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	// Archiving on, with a command that succeeds, for the hung one later:
	// archive_mode takes a restart. pg2 is configured alike, so that it
	// would keep archiving once promoted (pg.archiving_kept).
	for _, name := range []string{"pg1", "pg2"} {
		sqlOn(t, sb, name, "ALTER SYSTEM SET archive_mode = on", "ALTER SYSTEM SET archive_command = 'true'")
		if err := pgCtlOn(sb, sandboxtest.Node(t, sb, name), "restart -w -t 50 -m fast -l "+sb.Dir+"/"+name+".log"); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "pg2 streams from the restarted pg1", 30*time.Second, func() (bool, string) {
		got, err := queryOn(t, sb, "pg2", "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')")
		return err == nil && got == "streaming", fmt.Sprintf("%q %v", got, err)
	})

	t.Run("a long query through the pooler on the primary", func(t *testing.T) {
		c := pooled(t, sb)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = c.Exec(context.Background(), "SELECT pg_sleep(60)")
		}()
		var pid string
		waitUntil(t, "the query has run longer than max_xact_age (5s)", 20*time.Second, func() (bool, string) {
			var err error
			pid, err = queryOn(t, sb, "pg1", "SELECT coalesce((SELECT pid::text FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND clock_timestamp() - xact_start > interval '5.5s'), '')")
			return err == nil && pid != "", fmt.Sprint(err)
		})
		wantRefused(t, sb, "long query through the pooler on the primary", "pg.no_long_transactions",
			[]string{"pid " + pid, `app "report-job"`, "query: SELECT pg_sleep(60)", "open longer than 5s"})
		sqlOn(t, sb, "pg1", "SELECT pg_cancel_backend("+pid+")")
		<-done
	})

	t.Run("a session idle in transaction through the pooler on the primary", func(t *testing.T) {
		c := pooled(t, sb)
		for _, s := range []string{"BEGIN", "SELECT 7 AS forgotten"} {
			if _, err := c.Exec(context.Background(), s); err != nil {
				t.Fatal(err)
			}
		}
		wantRefused(t, sb, "session idle in transaction through the pooler on the primary", "pg.no_long_transactions",
			[]string{"1 session idle in transaction on pg1", `app "report-job"`, "query: SELECT 7 AS forgotten"})
		if _, err := c.Exec(context.Background(), "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("PgBouncer in session pooling", func(t *testing.T) {
		admin, err := pgbouncer.Dial(context.Background(), sb.AdminConninfo())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(context.Background(), "SET pool_mode = 'session'"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := admin.Exec(context.Background(), "SET pool_mode = 'transaction'"); err != nil {
				t.Error(err)
			}
		}()
		wantRefused(t, sb, "PgBouncer in session pooling", "pgbouncer.pool_mode",
			[]string{"session mode (SHOW CONFIG: pool_mode, the default)", "PAUSE waits until every client of app has disconnected"})
	})

	t.Run("a hung archive_command on the primary", func(t *testing.T) {
		sqlOn(t, sb, "pg1", "ALTER SYSTEM SET archive_command = 'sleep 3600'", "SELECT pg_reload_conf()")
		t.Cleanup(func() {
			sqlOn(t, sb, "pg1", "ALTER SYSTEM SET archive_command = 'true'", "SELECT pg_reload_conf()")
			sandboxtest.EndArchiveCommand(t, sb, "pg1")
		})
		waitUntil(t, "pg1 reads archive_command 'sleep 3600'", 10*time.Second, func() (bool, string) {
			got, err := queryOn(t, sb, "pg1", "SELECT current_setting('archive_command')")
			return err == nil && got == "sleep 3600", fmt.Sprintf("%q %v", got, err)
		})
		sqlOn(t, sb, "pg1", "CREATE TABLE IF NOT EXISTS wal_filler (id int)", "INSERT INTO wal_filler VALUES (1)", "SELECT pg_switch_wal()")
		waitUntil(t, "a segment has waited 3s to be archived", 20*time.Second, func() (bool, string) {
			got, err := queryOn(t, sb, "pg1", "SELECT coalesce(extract(epoch FROM clock_timestamp() - min(modification)) > 3, false)::text FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'")
			return err == nil && got == "true", fmt.Sprintf("%q %v", got, err)
		})
		wantRefused(t, sb, "hung archive_command on the primary", "pg.archiver_healthy",
			[]string{"to be archived, more than max_ready_age 2s", "archive_command hangs or cannot keep up"},
			"archive_max_ready_age=2s")
	})

	// The same gates again just before PAUSE: a session left idle in
	// transaction while the checkpoint runs is found by pause-pooler's
	// preconditions, before PgBouncer is asked to pause. The canary and
	// the checkpoint had acted, so the engine reports it as a failure
	// after changes (exit 4) and rolls back, which leaves pg1 as it was.
	t.Run("a session idle in transaction that appears after preflight", func(t *testing.T) {
		var c *pgx.Conn
		var hookErr error
		hook := func(ev journal.Event) {
			if c != nil || hookErr != nil || !playbookstest.IsStep(ev, "checkpoint", journal.StateRunning) {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, hookErr = pg.ConnectPooled(ctx, sb.ClientConninfo()+" application_name=late-job")
			if hookErr == nil {
				_, hookErr = c.Exec(ctx, "BEGIN")
			}
			if hookErr == nil {
				_, hookErr = c.Exec(ctx, "SELECT 8 AS late")
			}
		}
		paused := watchAppPause(sb)
		writer := sandboxtest.WatchStalls(t, sb)
		roles := sandboxtest.StartSampler(sb)
		ev, err := playbookstest.RunHooked(t, sb, playbook, hook)
		roles.Finish().CheckKeptOnPrimary(t, sb)
		paused.check(t)
		writer.Check(t, time.Second)
		if c != nil {
			defer c.Close(context.Background())
		}
		if hookErr != nil || c == nil {
			t.Fatalf("the late session was not opened: %v; the run: %v\n%s", hookErr, err, ev.Text())
		}
		if !errors.Is(err, runbook.ErrAction) {
			t.Fatalf("run with a session idle in transaction from the checkpoint on: %v, want exit 4 (after the canary and the checkpoint)\n%s", err, ev.Text())
		}
		text := ev.Text()
		for _, want := range []string{"pg.no_long_transactions fail", `app "late-job"`, "SELECT 8 AS late"} {
			if !strings.Contains(text, want) {
				t.Errorf("the output lacks %q:\n%s", want, text)
			}
		}
		playbookstest.NoActionBut(t, ev, "sync-on-candidate", "start-canary", "checkpoint")
		wantRolledBack(t, sb, ev, fmt.Sprintf("pg1=primary/1 pg2=standby<%d/1", sandboxtest.Node(t, sb, "pg1").Port))
		recordFault(t, "session idle in transaction on the primary after preflight", ev, err, sb)
	})
}
