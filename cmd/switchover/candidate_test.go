package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
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

// At a terminal, a runbook whose candidate neither the inventory nor --var
// gives asks the operator to pick one of the standbys, each shown with how
// healthy it is, and plans with the one picked.
func TestCandidatePickedAtATerminal(t *testing.T) {
	sb := sandboxtest.Shared(t)
	src, err := os.ReadFile(sb.Inventory())
	if err != nil {
		t.Fatal(err)
	}
	inv := filepath.Join(t.TempDir(), "inventory.yaml")
	body := strings.Replace(string(src), "vars:\n  candidate: pg2\n", "", 1)
	if body == string(src) {
		t.Fatalf("the sandbox's inventory sets no candidate to leave out:\n%s", src)
	}
	if err := os.WriteFile(inv, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, keys, scr, done := interactive(t, "plan", "postgres-streaming-switchover", "-i", inv, "--journal-dir", t.TempDir())
	scr.waitFor(t, "which standby becomes the primary?", 30*time.Second)
	for _, want := range []string{"pg2", "pg3", "streams from pg1"} {
		scr.waitFor(t, want, time.Second)
	}
	keys("\x1b[B")
	keys("\r")
	if code := exitOf(t, done, time.Minute, scr); code != 0 {
		t.Fatalf("plan with the candidate picked: exit %d; the terminal shows:\n%s", code, scr.text())
	}
	m := regexp.MustCompile(`candidate: (pg[23]) \(chosen at the prompt\)`).FindStringSubmatch(scr.text())
	if m == nil {
		t.Fatalf("the terminal does not say which candidate was picked:\n%s", scr.text())
	}
	if want := regexp.MustCompile(`would run ` + m[1] + ` \([^)]*\): SELECT CASE WHEN pg_is_in_recovery\(\) THEN pg_promote`); !want.MatchString(scr.text()) {
		t.Fatalf("the plan does not promote %s (want %s):\n%s", m[1], want, scr.text())
	}
}

// TestCandidateIsThePrimary: --candidate naming the primary is refused in
// one sentence that names the primary and the other nodes, not with every
// check that cannot take a primary for a candidate.
func TestCandidateIsThePrimary(t *testing.T) {
	sb := sandboxtest.Shared(t)
	code, out, errOut := executeT(t, "plan", "postgres-streaming-switchover", "-i", sb.Inventory(), "--candidate", "pg1", "--journal-dir", t.TempDir())
	if code != exitPrecondition {
		t.Fatalf("plan --candidate pg1 (the primary): exit %d, want %d\n%s%s", code, exitPrecondition, out, errOut)
	}
	var errs []string
	for _, l := range strings.Split(errOut, "\n") {
		if strings.HasPrefix(l, "error:") || strings.HasPrefix(l, "  ") {
			errs = append(errs, l)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], "pg1 is already the primary") || !strings.Contains(errs[0], "the other nodes are pg2, pg3") {
		t.Errorf("plan --candidate pg1 said %q, want one line naming pg1 the primary and pg2, pg3 the other nodes:\n%s", errs, errOut)
	}
	if strings.Contains(errOut, "problems") {
		t.Errorf("plan --candidate pg1 lists problems instead of one sentence:\n%s", errOut)
	}
}
