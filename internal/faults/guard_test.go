package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/patroni/patronitest"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/steps"
)

// guardCap is the budget the guard is given in these cases: the clients
// it finds held must be let go, one way or the other, by then.
const guardCap = 2 * time.Second

// TestGuardSendsClientsOnlyWhereWritesAreSafe runs a run's guard, as it
// runs when the run's process has died while PgBouncer held its clients,
// against a real cluster and PgBouncer with an independent writer held in
// the pause. Where the cluster's manager settles the primary (here a
// Patroni API), the one node that takes writes is not enough: the guard
// sends the clients there only when the manager agrees it is the primary.
// When no node can be trusted with writes (the manager names another
// leader, or two nodes take writes), it does not hold the clients past the
// cap either: it closes the database to them (every held client gets an
// error at once, no commit is acknowledged anywhere) until the run's
// resume enables it again.
func TestGuardSendsClientsOnlyWhereWritesAreSafe(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	fake := patronitest.New(t)
	fake.Mu.Lock()
	fake.Members = fake.Members[:2] // pg1 and pg2, as the sandbox has
	fake.Mu.Unlock()
	setLeader := func(name string) {
		fake.Mu.Lock()
		defer fake.Mu.Unlock()
		for i := range fake.Members {
			m := &fake.Members[i]
			m.Role, m.State, m.Lag = patroni.RoleReplica, patroni.StateStreaming, 0
			if m.Name == name {
				m.Role, m.State, m.Lag = patroni.RoleLeader, patroni.StateRunning, nil
			}
		}
	}
	withPatroni := func() *cluster.Cluster {
		c := sb.Cluster()
		c.Manager = &cluster.Manager{Kind: "patroni", URLs: []string{fake.URL()}}
		return c
	}

	t.Run("Patroni agrees pg1 leads: the clients go on to pg1", func(t *testing.T) {
		setLeader("pg1")
		w := startWriter(t, sb, "guard_agrees")
		rec, held := guardOnHeldClients(t, sb, withPatroni())
		if rec.Primary != "pg1" || len(rec.Refused) > 0 || rec.Error != "" {
			t.Fatalf("the guard did %+v; want the pooler resumed on pg1", rec)
		}
		t.Logf("a held query went on after %s: %s", held.after.Round(time.Millisecond), held.result)
		if held.err != nil {
			t.Errorf("the held query failed: %v", held.err)
		}
		stopWriter(t, w)
	})

	t.Run("Patroni names pg2 the leader while pg1 takes writes: clients refused", func(t *testing.T) {
		setLeader("pg2")
		w := startWriter(t, sb, "guard_disagrees")
		rec, held := guardOnHeldClients(t, sb, withPatroni())
		checkRefused(t, sb, rec, held, "Patroni shows it replica")
		restoreRefused(t, sb, rec)
		stopWriter(t, w)
	})

	t.Run("two nodes take writes: clients refused", func(t *testing.T) {
		w := startWriter(t, sb, "guard_two")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		pg2 := connectNode(t, sb, "pg2")
		if _, err := pg2.Exec(ctx, "SELECT pg_promote(true, 30)"); err != nil {
			t.Fatalf("promote pg2 by hand: %v", err)
		}
		rec, held := guardOnHeldClients(t, sb, sb.Cluster())
		checkRefused(t, sb, rec, held, "more than one node takes writes (pg1, pg2)")
		restoreRefused(t, sb, rec)
		// pg2 took no write of the writer's: everything acknowledged is
		// on pg1, where the pooler still routes.
		stopWriter(t, w)
	})
}

// heldQuery is what became of a query a client sent while it was held.
type heldQuery struct {
	after  time.Duration // from the guard's start to the query's end
	result string
	err    error
}

// guardOnHeldClients pauses the sandbox's PgBouncer as a run does, sends a
// query through it that waits in the pause, and runs the guard of a run
// whose process is gone, with guardCap to go. It returns what the guard
// recorded it did, and what became of the held query.
func guardOnHeldClients(t *testing.T, sb *sandbox.Sandbox, c *cluster.Cluster) (runbook.GuardRecord, heldQuery) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := pgx.Connect(ctx, sb.ClientConninfo())
	if err != nil {
		t.Fatalf("connect through the pooler: %v", err)
	}
	defer client.Close(context.Background())
	admin, err := pg.ConnectAdmin(ctx, sb.AdminConninfo())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "PAUSE app"); err != nil {
		t.Fatalf("PAUSE app: %v", err)
	}
	t.Cleanup(func() { _ = adminCommand(sb, "RESUME app") })
	start := time.Now()
	done := make(chan heldQuery, 1)
	go func() {
		var s string
		// the simple protocol: no statement prepared on a server connection
		// the pooler may have closed meanwhile
		err := client.QueryRow(ctx, "SELECT 'reached ' || CASE WHEN pg_is_in_recovery() THEN 'a standby' ELSE 'a primary' END",
			pgx.QueryExecModeSimpleProtocol).Scan(&s)
		done <- heldQuery{after: time.Since(start), result: s, err: err}
	}()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "runs"), 0o700); err != nil {
		t.Fatal(err)
	}
	runID := fmt.Sprintf("guard-%d", time.Now().UnixNano())
	spec := runbook.GuardSpec{RunID: runID, JournalDir: dir, Until: start.Add(guardCap), Cluster: c}
	gerr := runbook.Guard(ctx, spec, strings.NewReader("")) // the run's end of the pipe is closed: its process is gone
	var held heldQuery
	select {
	case held = <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("a query held in the pause had not ended 5s after the guard acted (cap %s)", guardCap)
	}
	recs, err := runbook.ReadGuard(dir, runID)
	if err != nil {
		t.Fatal(err)
	}
	var acted *runbook.GuardRecord
	for i := range recs {
		t.Logf("guard: %s %s %s %s", recs[i].Event, recs[i].Why, recs[i].Message, recs[i].Error)
		if recs[i].Event == "acted" {
			acted = &recs[i]
		}
	}
	if acted == nil {
		t.Fatalf("the guard recorded no action (err %v)", gerr)
	}
	if (gerr != nil) != (acted.Error != "") {
		t.Errorf("the guard returned %v but recorded error %q", gerr, acted.Error)
	}
	return *acted, held
}

// checkRefused asserts the guard refused the clients, saying why, with
// the held query ended by an error, not held past the cap, and the
// database closed to new clients: nothing can reach a server.
func checkRefused(t *testing.T, sb *sandbox.Sandbox, rec runbook.GuardRecord, held heldQuery, why string) {
	t.Helper()
	if rec.Error != "" || rec.Primary != "" || len(rec.Refused["pgbouncer"]) != 1 || rec.Refused["pgbouncer"][0] != "app" {
		t.Fatalf("the guard did %+v; want app refused on pgbouncer, no primary", rec)
	}
	if !strings.Contains(rec.Message, why) {
		t.Errorf("the guard says %q; want it to say why: %q", rec.Message, why)
	}
	t.Logf("the held query ended after %s: %v", held.after.Round(time.Millisecond), held.err)
	if held.err == nil {
		t.Errorf("the held query went on (%s) though no node could be trusted with writes", held.result)
	}
	if held.after > guardCap+time.Second {
		t.Errorf("the held query ended %s after the guard started, past the cap %s", held.after, guardCap)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dbs := showDatabase(t, sb, "app")
	if !dbs.Disabled || dbs.Paused {
		t.Errorf("PgBouncer shows app %+v; want it disabled, not paused", dbs)
	}
	c, err := pgx.Connect(ctx, sb.ClientConninfo())
	if err == nil {
		c.Close(context.Background())
		t.Error("a new client connected through PgBouncer while the guard refused them")
	} else if !strings.Contains(err.Error(), `database "app" is disabled`) {
		t.Errorf("a new client was refused with %v; want PgBouncer's refusal of a disabled database", err)
	}
}

// restoreRefused runs the resume of the run, as `switchover resume` does
// with the guard's record: it enables what the guard closed.
func restoreRefused(t *testing.T, sb *sandbox.Sandbox, rec runbook.GuardRecord) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	facts := &cluster.Facts{}
	facts.Restore(steps.PausedFact, "no")
	facts.Restore(steps.RefusedFact, rec.Refused.String())
	var out []string
	target := &cluster.Target{RunID: "guard-restore", Cluster: sb.Cluster(), Facts: facts, Output: func(s string) { out = append(out, s) }}
	if err := (&steps.PgBouncerResume{}).Apply(ctx, target); err != nil {
		t.Fatalf("resume after the guard refused clients: %v", err)
	}
	t.Logf("resume: %s", strings.Join(out, "; "))
	if d := showDatabase(t, sb, "app"); d.Disabled || d.Paused {
		t.Errorf("after the resume PgBouncer shows app %+v; want it enabled and not paused", d)
	}
	if v, _ := facts.Get(steps.RefusedFact); v != "" {
		t.Errorf("after the resume fact %s is %q; want it cleared", steps.RefusedFact, v)
	}
}

// showDatabase is PgBouncer's SHOW DATABASES row of name.
func showDatabase(t *testing.T, sb *sandbox.Sandbox, name string) pg.PoolerDatabase {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pg.ConnectAdmin(ctx, sb.AdminConninfo())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	all, err := pg.ShowDatabases(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("PgBouncer has no database %s", name)
	return pg.PoolerDatabase{}
}

// adminCommand sends one command to the sandbox's PgBouncer admin console;
// a RESUME of something not paused is not an error.
func adminCommand(sb *sandbox.Sandbox, command string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pg.ConnectAdmin(ctx, sb.AdminConninfo())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err = conn.Exec(ctx, command); err != nil && strings.Contains(err.Error(), "not paused") {
		return nil
	}
	return err
}
