package steps

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// TestPgRewindDiverged makes the old primary write after the standby was
// promoted (a split brain, on purpose), then rewinds it and has it follow:
// what it wrote alone is gone.
func TestPgRewindDiverged(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.New(t, 1)
	tg, p := sandboxTarget(sb)
	ctx := testCtx(t, 3*time.Minute)

	mustApply(t, tg, p, "pg.promote", map[string]string{"node": "pg2"})
	conn1 := nodeConn(t, sb, "pg1", "app")
	if _, err := conn1.Exec(ctx, "CREATE TABLE lost (id int); INSERT INTO lost SELECT generate_series(1, 1000)"); err != nil {
		t.Fatal(err)
	}
	closeConn(conn1)
	mustApply(t, tg, p, "pg.stop", map[string]string{"node": "pg1"})

	out := mustApply(t, tg, p, "pg.rewind", map[string]string{"node": "pg1", "source": "pg2"})
	wantLine(t, out, "checkpoint on pg2 done")
	wantLine(t, out, "servers diverged at WAL location")
	wantLine(t, out, "pg1 rewound onto pg2's timeline")

	out = mustApply(t, tg, p, "pg.follow", map[string]string{"node": "pg1", "upstream": "pg2"})
	wantLine(t, out, "pg1 streams from pg2", "through slot pg1, on timeline 2")
	conn := nodeConn(t, sb, "pg1", "app")
	_, err := conn.Exec(ctx, "SELECT count(*) FROM lost")
	if pe := (*pgconn.PgError)(nil); err == nil || !asPgError(err, &pe) || pe.Code != "42P01" {
		t.Errorf("after the rewind, reading the table only the old primary wrote: %v; want undefined_table", err)
	}
}

func asPgError(err error, pe **pgconn.PgError) bool {
	var e *pgconn.PgError
	for err != nil {
		if x, ok := err.(*pgconn.PgError); ok {
			e = x
			break
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			break
		}
		err = u.Unwrap()
	}
	*pe = e
	return e != nil
}

var _ = context.Background
