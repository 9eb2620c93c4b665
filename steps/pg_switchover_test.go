package steps

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// TestSwitchover does a whole switchover by hand with the steps, the way
// the shipped playbook does it, then rejoins the old primary and the other
// standby to the new primary.
func TestSwitchover(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.New(t, 2)
	tg, p := sandboxTarget(sb)
	pg1, _ := sb.Node("pg1")
	pg2, _ := sb.Node("pg2")

	// A committed row the new primary must have.
	conn1 := nodeConn(t, sb, "pg1", "app")
	ctx := testCtx(t, 5*time.Minute)
	if _, err := conn1.Exec(ctx, "CREATE TABLE ledger (id int PRIMARY KEY, note text); INSERT INTO ledger VALUES (1, 'before')"); err != nil {
		t.Fatal(err)
	}
	closeConn(conn1)

	mustApply(t, tg, p, "pg.checkpoint", map[string]string{"node": "pg1"})
	mustApply(t, tg, p, "pgbouncer.pause", map[string]string{"max_wait": "5s"})
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = build(t, "pgbouncer.resume", nil).Apply(context.Background(), tg)
		}
	})
	mustApply(t, tg, p, "pg.stop", map[string]string{"node": "pg1"})
	fact, ok := tg.Facts.Get("pg1.shutdown_lsn")
	if !ok {
		t.Fatal("pg.stop recorded no pg1.shutdown_lsn")
	}
	shutdown := mustLSN(t, fact)
	eventually(t, 30*time.Second, "pg2 replays past pg1's shutdown checkpoint "+fact, func() (bool, string) {
		st, err := inspect(sb, "pg2")
		if err != nil {
			return false, err.Error()
		}
		return st.ReplayLSN > shutdown, fmt.Sprintf("replayed %s", st.ReplayLSN)
	})

	out := mustApply(t, tg, p, "pg.promote", map[string]string{"node": "pg2", "wait": "30s"})
	wantLine(t, out, "pg2 is a primary now, on timeline 2")
	if st, err := inspect(sb, "pg2"); err != nil || st.Role != pg.RolePrimary {
		t.Fatalf("pg2 after promote: %+v, %v; want a primary", st, err)
	}

	out = mustApply(t, tg, p, "pgbouncer.repoint", map[string]string{"to": "pg2"})
	wantLine(t, out, fmt.Sprintf("old: app = host=127.0.0.1 port=%d dbname=app", pg1.Port))
	wantLine(t, out, fmt.Sprintf("new: app = host=127.0.0.1 port=%d dbname=app", pg2.Port))
	wantLine(t, out, fmt.Sprintf("pgbouncer routes app to pg2 (127.0.0.1:%d)", pg2.Port))
	if got, want := poolerEntry(t, sb), fmt.Sprintf("app = host=127.0.0.1 port=%d dbname=app", pg2.Port); got != want {
		t.Errorf("pgbouncer.ini has %q, want %q", got, want)
	}
	mustApply(t, tg, p, "pgbouncer.resume", nil)
	resumed = true

	// A write through the pooler lands on the new primary, which has the
	// row committed before the switch.
	var port int
	if err := clientQuery(sb, 10*time.Second, "INSERT INTO ledger VALUES (2, 'after') RETURNING inet_server_port()", &port); err != nil {
		t.Fatalf("write through pgbouncer after the switch: %v", err)
	}
	if port != pg2.Port {
		t.Errorf("the write landed on port %d, want pg2's %d", port, pg2.Port)
	}
	conn2 := nodeConn(t, sb, "pg2", "app")
	var n int
	if err := conn2.QueryRow(ctx, "SELECT count(*) FROM ledger").Scan(&n); err != nil || n != 2 {
		t.Errorf("pg2 has %d ledger rows (%v), want the one from before and the one from after", n, err)
	}

	// A clean switchover leaves nothing to rewind.
	out, err := apply(t, tg, p, "pg.rewind", map[string]string{"node": "pg1", "source": "pg2"})
	if err != nil {
		t.Fatalf("pg.rewind of the cleanly stopped old primary: %v", err)
	}
	if !hasLine(out, "no rewind required") && !hasLine(out, "rewound onto pg2") {
		t.Errorf("pg.rewind printed %q, want no rewind required or a rewind", out)
	}

	// The old primary, stopped, rejoins as a standby of the new one.
	out = mustApply(t, tg, p, "pg.follow", map[string]string{"node": "pg1", "upstream": "pg2"})
	wantLine(t, out, "created physical replication slot pg1 on pg2")
	wantLine(t, out, fmt.Sprintf("pg1 streams from pg2 (127.0.0.1:%d) through slot pg1, on timeline 2", pg2.Port))
	if st := waitStreams(t, sb, "pg1", "pg2"); st.SlotName != "pg1" {
		t.Errorf("pg1 streams through slot %q, want pg1", st.SlotName)
	}

	// The other standby, running, follows too.
	out = mustApply(t, tg, p, "pg.follow", map[string]string{"node": "pg3", "upstream": "pg2"})
	wantLine(t, out, "pg3 streams from pg2", "through slot pg3")
	waitStreams(t, sb, "pg3", "pg2")
	// Following again changes nothing and succeeds.
	out = mustApply(t, tg, p, "pg.follow", map[string]string{"node": "pg3", "upstream": "pg2"})
	wantLine(t, out, "replication slot pg3 exists on pg2")

	// The row written after the switch reaches both standbys.
	for _, node := range []string{"pg1", "pg3"} {
		c := nodeConn(t, sb, node, "app")
		eventually(t, 30*time.Second, node+" replays the write made after the switch", func() (bool, string) {
			var n int
			err := c.QueryRow(ctx, "SELECT count(*) FROM ledger").Scan(&n)
			return err == nil && n == 2, fmt.Sprintf("%d rows, %v", n, err)
		})
	}

	t.Run("follow refuses a running primary", func(t *testing.T) {
		_, err := apply(t, tg, p, "pg.follow", map[string]string{"node": "pg2", "upstream": "pg1"})
		wantErr(t, err, `follow "pg2" to "pg1"`, "pg2 is a running primary", "never demoted", "nothing done")
		if st, err := inspect(sb, "pg2"); err != nil || st.Role != pg.RolePrimary {
			t.Errorf("pg2 is %+v, %v after the refusal; want it still the primary", st, err)
		}
	})

	t.Run("rewind refuses a running node", func(t *testing.T) {
		_, err := apply(t, tg, p, "pg.rewind", map[string]string{"node": "pg3", "source": "pg2"})
		wantErr(t, err, `rewind "pg3" from "pg2"`, "pg3 is running: stop it first", "nothing done")
	})

	t.Run("promote refuses a primary", func(t *testing.T) {
		_, err := apply(t, tg, p, "pg.promote", map[string]string{"node": "pg2"})
		wantErr(t, err, `promote "pg2"`, "it is a primary already")
	})

	t.Run("follow without a slot", func(t *testing.T) {
		out := mustApply(t, tg, p, "pg.follow", map[string]string{"node": "pg3", "upstream": "pg1", "slot": ""})
		wantLine(t, out, "pg3 streams from pg1", "without a slot")
		if strings.Contains(strings.Join(out, "\n"), "slot pg3") {
			t.Errorf("printed %q, want no slot created", out)
		}
	})

	t.Run("follow gives up when the node never streams", func(t *testing.T) {
		s := build(t, "pg.follow", map[string]string{"node": "pg3", "upstream": "pg2", "slot": "", "conninfo": "host=127.0.0.1 port=1 user=postgres"})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		err := s.Apply(ctx, tg)
		wantErr(t, err, "pg3 is configured to stream from pg2 and runs, but pg3 does not stream from 127.0.0.1:1 yet")
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("gave up after %s, want about 5s", took)
		}
	})
}
