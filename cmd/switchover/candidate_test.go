package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// --candidate auto picks the most caught-up healthy standby and says why:
// not one whose replay is paused, not one a session would block.
func TestCandidateAuto(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := func(name string) func(string) {
		n, _ := sb.Node(name)
		c, err := pg.Connect(ctx, sb.Conninfo(n, "postgres"), 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return func(sql string) {
			t.Helper()
			if _, err := c.Exec(ctx, sql); err != nil {
				t.Fatalf("%s on %s: %v", sql, name, err)
			}
		}
	}
	// replayed waits (bounded) until the standby has replayed all the
	// primary has written.
	replayed := func(name string) {
		t.Helper()
		n, _ := sb.Node(name)
		c, err := pg.Connect(ctx, sb.Conninfo(n, "postgres"), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		p, _ := sb.Node("pg1")
		pc, err := pg.Connect(ctx, sb.Conninfo(p, "postgres"), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close(context.Background())
		var target string
		if err := pc.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&target); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			var done bool
			if err := c.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", target).Scan(&done); err != nil {
				t.Fatal(err)
			}
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s has not replayed up to %s in 30s", name, target)
			}
		}
	}
	pg1, pg2, pg3 := conn("pg1"), conn("pg2"), conn("pg3")
	pg2("SELECT pg_wal_replay_pause()")
	pg1("CREATE TABLE behind AS SELECT generate_series(1, 10000) AS i")
	replayed("pg3") // pg2 cannot
	code, _, errOut := executeT(t, "plan", "postgres-streaming-switchover", "-i", sb.Inventory(), "--candidate", "auto", "--journal-dir", t.TempDir())
	if code != 0 || !strings.Contains(errOut, "candidate: pg3 (auto)") || !strings.Contains(errOut, "pg2") {
		t.Fatalf("with pg2 behind: exit %d, stderr:\n%s\nwant pg3 chosen and pg2 named", code, errOut)
	}
	pg2("SELECT pg_wal_replay_resume()")
	pg3("SELECT pg_advisory_lock(99)")
	replayed("pg2")
	code, _, errOut = executeT(t, "plan", "postgres-streaming-switchover", "-i", sb.Inventory(), "--candidate", "auto", "--journal-dir", t.TempDir())
	if code != 0 || !strings.Contains(errOut, "candidate: pg2 (auto)") || !strings.Contains(errOut, "not pg3: it 1 session(s) would block it") {
		t.Fatalf("with a lock on pg3: exit %d, stderr:\n%s\nwant pg2 chosen and pg3 refused for its session", code, errOut)
	}
	if code, _, _ := executeT(t, "plan", "postgres-streaming-switchover", "-i", sb.Inventory(), "--candidate", "pg7"); code != exitUsage {
		t.Fatalf("--candidate pg7: exit %d, want %d", code, exitUsage)
	}
}
