package steps

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pgbouncer"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// paused asks PgBouncer whether the app database is paused.
func paused(t *testing.T, sb *sandbox.Sandbox) bool {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	c, err := pgbouncer.Connect(ctx, sb.AdminConninfo())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, err := c.Database(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	return d.Paused
}

func TestPgBouncerPauseResume(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	tg, p := sandboxTarget(sb)
	// Whatever fails below, the shared pooler is left resumed.
	t.Cleanup(func() {
		_ = build(t, "pgbouncer.resume", nil).Apply(context.Background(), tg)
	})

	t.Run("resume sends nothing when this run paused nothing", func(t *testing.T) {
		out := mustApply(t, tg, p, "pgbouncer.resume", nil)
		wantLine(t, out, "RESUME app not sent", "this run never paused it", PausedFact)
	})

	t.Run("resume when not paused is fine", func(t *testing.T) {
		own, op := sandboxTarget(sb)
		own.Facts.Set(PausedFact, pausedYes) // as if this run's pause had been lifted behind its back
		out := mustApply(t, own, op, "pgbouncer.resume", nil)
		wantLine(t, out, "app was not paused; nothing to resume")
	})

	t.Run("a pause made by someone else is left as it is", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		admin, err := pgAdmin(ctx, sb)
		if err != nil {
			t.Fatal(err)
		}
		defer closeConn(admin)
		if _, err := admin.Exec(ctx, "PAUSE app"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := admin.Exec(context.Background(), "RESUME app"); err != nil {
				t.Errorf("RESUME app by hand: %v", err)
			}
		}()
		own, op := sandboxTarget(sb)
		// This run's PAUSE is refused: it paused nothing, so neither its
		// rollback nor its finally section resumes anything.
		_, err = apply(t, own, op, "pgbouncer.pause", map[string]string{"max_wait": "2s"})
		wantErr(t, err, "pause pgbouncer (PAUSE app)", "app is paused already (SHOW DATABASES: app paused)", "this run paused nothing")
		if v, _ := own.Facts.Get(PausedFact); v != pausedNo {
			t.Errorf("fact %s = %q after a refused PAUSE, want %q", PausedFact, v, pausedNo)
		}
		out := mustApply(t, own, op, "pgbouncer.resume", nil)
		wantLine(t, out, "nothing to resume", "PAUSE was refused")
		// A run that never tried to pause: the same.
		fresh, fp := sandboxTarget(sb)
		out = mustApply(t, fresh, fp, "pgbouncer.resume", nil)
		wantLine(t, out, "RESUME app not sent", "never paused it")
		if !paused(t, sb) {
			t.Fatal("app was resumed by a run that did not pause it")
		}
	})

	t.Run("pause and resume", func(t *testing.T) {
		out := mustApply(t, tg, p, "pgbouncer.pause", map[string]string{"max_wait": "5s"})
		wantLine(t, out, "pgbouncer paused app in")
		if !paused(t, sb) {
			t.Fatal("SHOW DATABASES says app is not paused after pgbouncer.pause")
		}
		if v, _ := tg.Facts.Get(PausedFact); v != pausedYes {
			t.Errorf("fact %s = %q after PAUSE, want %q", PausedFact, v, pausedYes)
		}
		// A client now waits instead of failing, and goes on after RESUME.
		done := make(chan error, 1)
		go func() {
			var one int
			done <- clientQuery(sb, 20*time.Second, "SELECT 1", &one)
		}()
		select {
		case err := <-done:
			t.Fatalf("a client query went through a paused pooler: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
		out = mustApply(t, tg, p, "pgbouncer.resume", nil)
		wantLine(t, out, "pgbouncer resumed app")
		if v, _ := tg.Facts.Get(PausedFact); v != pausedNo {
			t.Errorf("fact %s = %q after RESUME, want %q", PausedFact, v, pausedNo)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the waiting client failed after RESUME: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("the waiting client did not go on within 15s of RESUME")
		}
	})

	t.Run("pause gives up on an open transaction and resumes", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		holder, err := clientConn(ctx, sb)
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
		start := time.Now()
		out, err := apply(t, tg, p, "pgbouncer.pause", map[string]string{"max_wait": "500ms"})
		wantErr(t, err, "pause pgbouncer (PAUSE app)", "did not finish within 500ms", "RESUME app issued", "clients resumed on the old primary")
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("pause took %s to give up, want about 500ms", took)
		}
		wantLine(t, out, "RESUME app issued")
		if paused(t, sb) {
			t.Error("SHOW DATABASES says app is still paused")
		}
		// New clients get through, while the old transaction is still open.
		var port int
		if err := clientQuery(sb, 10*time.Second, "SELECT inet_server_port()", &port); err != nil {
			t.Fatalf("a new client query through pgbouncer after the failed pause: %v", err)
		}
		if pg1, _ := sb.Node("pg1"); port != pg1.Port {
			t.Errorf("the client reached port %d, want pg1's %d", port, pg1.Port)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Errorf("the open transaction could not commit after the failed pause: %v", err)
		}
	})
}

func TestPgBouncerNoPooler(t *testing.T) {
	t.Parallel()
	var p printed
	tg := p.target(inventory())
	for _, tc := range []struct {
		kind string
		raw  map[string]string
	}{
		{"pgbouncer.pause", nil},
		{"pgbouncer.resume", nil},
		{"pgbouncer.repoint", map[string]string{"to": "pg1"}},
	} {
		if err := build(t, tc.kind, tc.raw).Apply(context.Background(), tg); err != nil {
			t.Errorf("%s without a pooler: %v, want nothing done and no error", tc.kind, err)
		}
	}
	if got := strings.Join(p.lines, "\n"); strings.Count(got, "no pooler in the inventory: clients connect to the nodes directly") != 3 {
		t.Errorf("printed %q, want the no-pooler note three times", got)
	}
	c := inventory()
	c.Poolers = []*cluster.Pooler{{Name: "pool", Kind: "pgpool"}}
	err := build(t, "pgbouncer.resume", nil).Apply(context.Background(), p.target(c))
	wantErr(t, err, `the inventory's pooler is "pgpool", not pgbouncer`)
}

func TestRepointConfig(t *testing.T) {
	t.Parallel()
	to := hostPort{Host: "10.0.0.2", Port: "5433"}
	tests := []struct {
		name     string
		text, db string
		want     string
		moved    []string // old -> new, one per moved entry
		left     []string
		wantErr  string
	}{
		{
			name:  "changes host and port only",
			text:  "[databases]\napp = host=10.0.0.1 port=5432 dbname=app pool_size=20\nother = host=10.0.0.3 dbname=other\n\n[pgbouncer]\nlisten_port = 6432\n",
			db:    "app",
			want:  "[databases]\napp = host=10.0.0.2 port=5433 dbname=app pool_size=20\nother = host=10.0.0.3 dbname=other\n\n[pgbouncer]\nlisten_port = 6432\n",
			moved: []string{"app = host=10.0.0.1 port=5432 dbname=app pool_size=20 -> app = host=10.0.0.2 port=5433 dbname=app pool_size=20"},
			left:  []string{"other = host=10.0.0.3 dbname=other"},
		},
		{
			name: "every entry on the primary moves, the default port counts as 5432, a standby's entry stays",
			text: "[databases]\nreports = host=10.0.0.1 dbname=reports\napp = host=10.0.0.1 port=5432 dbname=app\napp_ro = host=10.0.0.1 port=5434 dbname=app\n* = host=10.0.0.1\n",
			db:   "app",
			want: "[databases]\nreports = host=10.0.0.2 dbname=reports port=5433\napp = host=10.0.0.2 port=5433 dbname=app\napp_ro = host=10.0.0.1 port=5434 dbname=app\n* = host=10.0.0.2 port=5433\n",
			moved: []string{
				"app = host=10.0.0.1 port=5432 dbname=app -> app = host=10.0.0.2 port=5433 dbname=app",
				"reports = host=10.0.0.1 dbname=reports -> reports = host=10.0.0.2 dbname=reports port=5433",
				"* = host=10.0.0.1 -> * = host=10.0.0.2 port=5433",
			},
			left: []string{"app_ro = host=10.0.0.1 port=5434 dbname=app"},
		},
		{
			name:  "adds a missing port, keeps quoting, comments and CRLF",
			text:  "; comment\r\n[databases]\r\n; app = host=old\r\napp=dbname=app host = 'db one'   user=x\r\n",
			db:    "app",
			want:  "; comment\r\n[databases]\r\n; app = host=old\r\napp=dbname=app host = 10.0.0.2   user=x port=5433\r\n",
			moved: []string{"app=dbname=app host = 'db one'   user=x -> app=dbname=app host = 10.0.0.2   user=x port=5433"},
		},
		{
			name:  "the entry last in the file without a newline",
			text:  "[pgbouncer]\napp = not a database\n[Databases]\n\"app\" = port=1 host=h",
			db:    "app",
			want:  "[pgbouncer]\napp = not a database\n[Databases]\n\"app\" = port=5433 host=10.0.0.2",
			moved: []string{"\"app\" = port=1 host=h -> \"app\" = port=5433 host=10.0.0.2"},
		},
		{name: "no such entry", text: "[databases]\nother = host=h\n", db: "app", wantErr: "[databases] has no entry app"},
		{name: "twice", text: "[databases]\napp = host=a\napp = host=b\n", db: "app", wantErr: "more than one entry app"},
		{name: "unterminated quote", text: "[databases]\napp = host='a\n", db: "app", wantErr: "unterminated quoted value"},
		{name: "another entry unreadable", text: "[databases]\napp = host=a\nx = host='b\n", db: "app", wantErr: "entry x: unterminated quoted value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := repointConfig(tt.text, tt.db, to)
			if tt.wantErr != "" {
				wantErr(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var moved, left []string
			for _, m := range got.Moved {
				moved = append(moved, m.Old+" -> "+m.New)
			}
			for _, m := range got.Left {
				left = append(left, m.Old)
			}
			if got.Text != tt.want || !slices.Equal(moved, tt.moved) || !slices.Equal(left, tt.left) {
				t.Errorf("repointConfig =\n%q\nmoved %q\nleft %q\nwant\n%q\nmoved %q\nleft %q", got.Text, moved, left, tt.want, tt.moved, tt.left)
			}
		})
	}
}

// poolerEntry reads the app line of the sandbox's pgbouncer.ini.
func poolerEntry(t *testing.T, sb *sandbox.Sandbox) string {
	t.Helper()
	b, err := os.ReadFile(sb.PoolerConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "app = ") {
			return l
		}
	}
	t.Fatalf("%s has no app entry", sb.PoolerConfig())
	return ""
}
