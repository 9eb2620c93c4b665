package pgbouncer_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/pgbouncer"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// console records what the client sends and answers as told.
type console struct {
	sent     []string
	queryErr error
	execErr  error
}

func (c *console) Query(_ context.Context, sql string, _ ...any) (pgx.Rows, error) {
	c.sent = append(c.sent, sql)
	return nil, c.queryErr
}

func (c *console) Exec(_ context.Context, sql string, _ ...any) (pgconn.CommandTag, error) {
	c.sent = append(c.sent, sql)
	return pgconn.CommandTag{}, c.execErr
}

func TestCommandsSent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	con := &console{}
	c := pgbouncer.New(con)
	for _, f := range []func() error{
		func() error { return c.Pause(ctx, "app") },
		func() error { return c.Pause(ctx, "") },
		func() error { return c.Resume(ctx, "app") },
		func() error { return c.Kill(ctx, "app") },
		func() error { return c.Disable(ctx, "app") },
		func() error { return c.Enable(ctx, "app") },
		func() error { return c.Reload(ctx) },
	} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	want := "PAUSE app; PAUSE; RESUME app; KILL app; DISABLE app; ENABLE app; RELOAD"
	if got := strings.Join(con.sent, "; "); got != want {
		t.Errorf("sent %q, want %q", got, want)
	}
	for name, err := range map[string]error{"KILL": c.Kill(ctx, ""), "DISABLE": c.Disable(ctx, ""), "ENABLE": c.Enable(ctx, "")} {
		if err == nil || err.Error() != name+" needs a database" {
			t.Errorf("%s of no database: error = %v", name, err)
		}
	}
}

func TestCommandErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	refused := &pgconn.PgError{Severity: "ERROR", Code: "08P01", Message: "database app is not paused"}
	c := pgbouncer.New(&console{execErr: refused})
	err := c.Resume(ctx, "app")
	if err == nil || err.Error() != "RESUME app: ERROR: database app is not paused (SQLSTATE 08P01)" {
		t.Errorf("error = %v", err)
	}
	if !pgbouncer.NotPaused(err) {
		t.Error("NotPaused misses the refusal through the command's error")
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe != refused {
		t.Error("the command's error does not wrap PgBouncer's")
	}
}

func TestStateOfOldPgBouncer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	unknown := &pgconn.PgError{Severity: "ERROR", Code: "08P01", Message: "invalid command 'SHOW STATE', use SHOW HELP;"}
	st, err := pgbouncer.New(&console{queryErr: unknown}).State(ctx)
	if err != nil || st != (pgbouncer.State{}) {
		t.Errorf("State = %+v, %v; want not Known and no error", st, err)
	}
	down := errors.New("connection reset")
	if _, err := pgbouncer.New(&console{queryErr: down}).State(ctx); !errors.Is(err, down) || !strings.HasPrefix(err.Error(), "SHOW STATE: ") {
		t.Errorf("State error = %v", err)
	}
}

// TestConsole asks a real PgBouncer: what it shows, and that each command
// does what the steps rely on.
func TestConsole(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.New(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgbouncer.Connect(ctx, sb.AdminConninfo())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.User() != "postgres" {
		t.Errorf("User = %q, want postgres", c.User())
	}
	pg1, ok := sb.Node("pg1")
	if !ok {
		t.Fatal("the sandbox has no pg1")
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	entry := func() pgbouncer.Database {
		t.Helper()
		d, err := c.Database(ctx, "app")
		must(err)
		return d
	}
	d := entry()
	if d.Port != strconv.Itoa(pg1.Port) || d.Host == "" || d.Database != "app" || d.Paused || d.Disabled {
		t.Errorf("app entry = %+v, want it on pg1 (port %d), neither paused nor disabled", d, pg1.Port)
	}

	cfg, err := c.Config(ctx)
	must(err)
	if cfg["pool_mode"] != "transaction" {
		t.Errorf("SHOW CONFIG pool_mode = %q, want transaction", cfg["pool_mode"])
	}
	_, err = c.Users(ctx)
	must(err)
	_, err = c.State(ctx)
	must(err)

	must(c.Pause(ctx, "app"))
	if !entry().Paused {
		t.Error("app is not paused after PAUSE app")
	}
	must(c.Resume(ctx, "app"))
	if err := c.Resume(ctx, "app"); !pgbouncer.NotPaused(err) {
		t.Errorf("RESUME of a database not paused: error = %v, want PgBouncer's refusal", err)
	}

	must(c.Disable(ctx, "app"))
	if !entry().Disabled {
		t.Error("app is not disabled after DISABLE app")
	}
	must(c.Kill(ctx, "app"))
	if !entry().Paused {
		t.Error("KILL app did not leave app paused")
	}
	must(c.Resume(ctx, "app"))
	must(c.Enable(ctx, "app"))
	if d := entry(); d.Paused || d.Disabled {
		t.Errorf("app entry after RESUME and ENABLE = %+v", d)
	}
	must(c.Reload(ctx))
}
