package steps

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/pgbouncer"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestPausedFact(t *testing.T) {
	t.Parallel()
	two := &cluster.Cluster{Poolers: []*cluster.Pooler{{Name: "a"}, {Name: "b"}}}
	tests := []struct {
		name   string
		c      *cluster.Cluster
		write  pauseStates
		fact   string
		aOurs  bool
		bOurs  bool
		before string // a fact already there, read instead of write when set
	}{
		{name: "all alike is one state", c: two, write: pauseStates{"a": pausedYes, "b": pausedYes}, fact: "yes", aOurs: true, bOurs: true},
		{name: "mixed is by name", c: two, write: pauseStates{"a": pausedNo, "b": pausedSent}, fact: "a=no,b=sent", bOurs: true},
		{name: "one left out", c: two, write: pauseStates{"b": pausedYes}, fact: "b=yes", bOurs: true},
		{name: "a journal of one pooler speaks for every pooler", c: two, before: "sent", fact: "sent", aOurs: true, bOurs: true},
		{name: "a name this inventory lacks is ignored", c: two, before: "c=yes,a=yes", fact: "c=yes,a=yes", aOurs: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg := &cluster.Target{Cluster: tt.c, Facts: &cluster.Facts{}}
			if tt.before != "" {
				tg.Facts.Set(PausedFact, tt.before)
			} else {
				writePaused(tg, tt.write)
			}
			if got, _ := tg.Facts.Get(PausedFact); got != tt.fact {
				t.Errorf("fact = %q, want %q", got, tt.fact)
			}
			st := readPaused(tg)
			if a, _ := pausedByRun(st, "a"); a != tt.aOurs {
				t.Errorf("a paused by this run = %v, want %v (states %v)", a, tt.aOurs, st)
			}
			if b, _ := pausedByRun(st, "b"); b != tt.bOurs {
				t.Errorf("b paused by this run = %v, want %v (states %v)", b, tt.bOurs, st)
			}
		})
	}
}

// poolerDatabases reads a sandbox pooler's SHOW DATABASES: each entry's
// server port and whether it is paused.
func poolerDatabases(t *testing.T, sb *sandbox.Sandbox, p sandbox.Pooler) map[string]string {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	c, err := pgbouncer.Connect(ctx, sb.PoolerAdminConninfo(p))
	if err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	defer c.Close()
	dbs, err := c.Databases(ctx)
	if err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	out := map[string]string{}
	for _, d := range dbs {
		v := d.Port
		if d.Paused {
			v += " paused"
		}
		out[d.Name] = v
	}
	return out
}

// wantNonePaused fails unless no pooler of the sandbox holds app.
func wantNonePaused(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	for _, p := range sb.Poolers() {
		if got := poolerDatabases(t, sb, p)["app"]; strings.HasSuffix(got, "paused") {
			t.Errorf("%s: app is %s, want it resumed", p.Name, got)
		}
	}
}

// TestPgBouncerPoolers runs the pooler steps on two real PgBouncers in
// front of one cluster: paused together, all or none, and repointed
// together, entry by entry.
func TestPgBouncerPoolers(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.NewPoolers(t, 2, 2)
	tg, p := sandboxTarget(sb)
	t.Cleanup(func() { _ = build(t, "pgbouncer.resume", nil).Apply(context.Background(), tg) })
	pgbs := sb.Poolers()
	pg1, _ := sb.Node("pg1")
	pg2, _ := sb.Node("pg2")
	pg3, _ := sb.Node("pg3")

	t.Run("both paused and resumed together", func(t *testing.T) {
		own, op := sandboxTarget(sb)
		out := mustApply(t, own, op, "pgbouncer.pause", map[string]string{"max_wait": "5s"})
		for _, pb := range pgbs {
			wantLine(t, out, "pgbouncer "+pb.Name+" paused app in")
			if got := poolerDatabases(t, sb, pb)["app"]; !strings.HasSuffix(got, "paused") {
				t.Errorf("%s: app is %q after the pause, want it paused", pb.Name, got)
			}
		}
		if v, _ := own.Facts.Get(PausedFact); v != pausedYes {
			t.Errorf("fact %s = %q, want %q", PausedFact, v, pausedYes)
		}
		out = mustApply(t, own, op, "pgbouncer.resume", nil)
		for _, pb := range pgbs {
			wantLine(t, out, "pgbouncer "+pb.Name+" resumed app")
		}
		wantNonePaused(t, sb)
	})

	t.Run("a transaction open on one pooler: none left paused", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		holder, err := pg.ConnectPooled(ctx, sb.PoolerClientConninfo(pgbs[1]))
		if err != nil {
			t.Fatal(err)
		}
		defer closeConn(holder)
		tx, err := holder.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.Background())
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatal(err)
		}
		own, op := sandboxTarget(sb)
		out, err := apply(t, own, op, "pgbouncer.pause", map[string]string{"max_wait": "500ms"})
		wantErr(t, err, "PAUSE failed on "+pgbs[1].Name+": running transactions did not finish within 500ms",
			"every pooler resumed", "nothing paused")
		if strings.Contains(err.Error(), "failed on "+pgbs[0].Name) {
			t.Errorf("error %q blames %s, whose PAUSE completed or was cut short", err, pgbs[0].Name)
		}
		wantLine(t, out, "all or none")
		wantNonePaused(t, sb)
		if v, _ := own.Facts.Get(PausedFact); v != pausedNo {
			t.Errorf("fact %s = %q, want %q", PausedFact, v, pausedNo)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Errorf("the open transaction could not commit after the failed pause: %v", err)
		}
	})

	t.Run("one admin console closed: nothing paused at all", func(t *testing.T) {
		c := sb.Cluster()
		c.Poolers[1].Admin = strings.Replace(c.Poolers[1].Admin, fmt.Sprintf("port=%d", pgbs[1].Port), "port=1", 1)
		own := quietTarget(c)
		err := build(t, "pgbouncer.pause", map[string]string{"max_wait": "2s"}).Apply(testCtx(t, time.Minute), own)
		wantErr(t, err, pgbs[1].Name+": connect to the admin console", "nothing paused")
		wantNonePaused(t, sb)
		if v, _ := own.Facts.Get(PausedFact); v != "" {
			t.Errorf("fact %s = %q, want none: nothing was sent", PausedFact, v)
		}
		if _, _, held := own.Facts.Hold(); held {
			t.Error("a hold was begun though no PAUSE was sent")
		}
	})

	t.Run("every entry on the primary moves, the read-only entry stays", func(t *testing.T) {
		// A second database on the primary in each pooler.
		for _, pb := range pgbs {
			b, err := os.ReadFile(pb.Config())
			if err != nil {
				t.Fatal(err)
			}
			text := strings.Replace(string(b), "[databases]\n", fmt.Sprintf("[databases]\nreports = host=127.0.0.1 port=%d dbname=postgres\n", pg1.Port), 1)
			if err := os.WriteFile(pb.Config(), []byte(text), 0o640); err != nil {
				t.Fatal(err)
			}
		}
		for _, to := range []sandbox.Node{pg2, pg1} {
			out := mustApply(t, tg, p, "pgbouncer.repoint", map[string]string{"to": to.Name})
			for _, pb := range pgbs {
				got := poolerDatabases(t, sb, pb)
				want := fmt.Sprint(to.Port)
				if got["app"] != want || got["reports"] != want || got[sandbox.ReadOnlyDatabase] != fmt.Sprint(pg3.Port) {
					t.Errorf("%s after the repoint to %s: app at %s, reports at %s, app_ro at %s; want app and reports at %s, app_ro at pg3's %d",
						pb.Name, to.Name, got["app"], got["reports"], got[sandbox.ReadOnlyDatabase], want, pg3.Port)
				}
				wantLine(t, out, "pgbouncer "+pb.Name+": left alone: app_ro = host=127.0.0.1 port="+fmt.Sprint(pg3.Port))
				wantLine(t, out, "pgbouncer "+pb.Name+" routes app, reports to "+to.Name)
			}
		}
	})
}

// quietTarget is a target on c whose output the test does not read.
func quietTarget(c *cluster.Cluster) *cluster.Target {
	var p printed
	return p.target(c)
}

func TestCanaryThroughAPooler(t *testing.T) {
	t.Parallel()
	c := inventory()
	c.Poolers = []*cluster.Pooler{
		{Name: "a", Kind: "pgbouncer", Admin: "host=10.0.1.1 port=6432 dbname=pgbouncer user=app", Database: "app"},
		{Name: "b", Kind: "pgbouncer", Admin: "host=10.0.1.2 port=6432 dbname=pgbouncer user=app", Database: "app"},
	}
	tg := quietTarget(c)
	tests := []struct {
		pooler, wantHost, wantHow, wantErr string
	}{
		{pooler: "", wantHost: "host=10.0.1.1", wantHow: "pooler a"},
		{pooler: "b", wantHost: "host=10.0.1.2", wantHow: "pooler b"},
		{pooler: "c", wantErr: `pooler "c" is not in the inventory (it has: a, b)`},
	}
	for _, tt := range tests {
		t.Run("pooler="+tt.pooler, func(t *testing.T) {
			t.Parallel()
			_, shown, how, err := (&CanaryStart{Via: "auto", Pooler: tt.pooler}).endpoint(tg)
			if tt.wantErr != "" {
				wantErr(t, err, tt.wantErr)
				return
			}
			if err != nil || !strings.Contains(shown, tt.wantHost) || !strings.Contains(shown, "dbname=app") || how != tt.wantHow {
				t.Errorf("endpoint = %q by %q, %v; want %s through %q", shown, how, err, tt.wantHost, tt.wantHow)
			}
		})
	}
}
