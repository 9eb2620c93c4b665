package steps

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestPgSQL(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	tg, p := sandboxTarget(sb)

	t.Run("prints at most 20 rows", func(t *testing.T) {
		out := mustApply(t, tg, p, "pg.sql", map[string]string{"node": "pg1", "sql": "SELECT g AS n, 'row ' || g AS label FROM generate_series(1, 25) g"})
		want := []string{"n | label", "1 | row 1"}
		if len(out) != 1+20+2 || out[0] != want[0] || out[1] != want[1] || out[20] != "20 | row 20" ||
			out[21] != "(25 rows)" || out[22] != "[5 more rows not shown]" {
			t.Errorf("printed %q, want a header, rows 1 to 20, (25 rows) and [5 more rows not shown]", out)
		}
	})

	t.Run("several statements, tags and NULL", func(t *testing.T) {
		out := mustApply(t, tg, p, "pg.sql", map[string]string{"node": "pg1",
			"sql": "CREATE TEMP TABLE t (a int); INSERT INTO t VALUES (1), (NULL); SELECT a FROM t ORDER BY a NULLS LAST"})
		want := []string{"CREATE TABLE", "INSERT 0 2", "a", "1", "NULL", "(2 rows)"}
		if strings.Join(out, "\n") != strings.Join(want, "\n") {
			t.Errorf("printed %q, want %q", out, want)
		}
	})

	t.Run("an SQL error names the node", func(t *testing.T) {
		_, err := apply(t, tg, p, "pg.sql", map[string]string{"node": "pg1", "sql": "SELECT 1/0"})
		wantErr(t, err, `sql on "pg1"`, "division by zero")
	})

	t.Run("a cut-off statement stops on the server too", func(t *testing.T) {
		s := build(t, "pg.sql", map[string]string{"node": "pg1", "sql": "SELECT pg_sleep(30) /* steps-test-cutoff */"})
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := s.Apply(ctx, tg)
		if err == nil || time.Since(start) > 5*time.Second {
			t.Fatalf("Apply = %v after %s; want an error within seconds", err, time.Since(start))
		}
		if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "statement timeout") {
			t.Errorf("error %q, want a deadline or statement timeout", err)
		}
		conn := nodeConn(t, sb, "pg1", "postgres")
		eventually(t, 10*time.Second, "the cut-off statement is gone from pg_stat_activity", func() (bool, string) {
			var n int
			err := conn.QueryRow(context.Background(),
				"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%steps-test-cutoff%' AND pid <> pg_backend_pid()").Scan(&n)
			return err == nil && n == 0, "still running"
		})
	})

	t.Run("unknown node", func(t *testing.T) {
		_, err := apply(t, tg, p, "pg.sql", map[string]string{"node": "pg9", "sql": "SELECT 1"})
		wantErr(t, err, `node "pg9" is not in the inventory`)
	})
}
