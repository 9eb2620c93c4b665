package main

// The password of a password-protected cluster, given the three ways an
// operator gives it, never reaches what switchover writes: stdout, stderr,
// the journal, the report in either format, the list of runs.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/testbin"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// runEnv runs the binary like run does, with extra environment variables
// and twice the time.
func runEnv(t *testing.T, env []string, dir string, args ...string) testbin.Result {
	t.Helper()
	return testbin.RunEnv(t, cmdTimeout*2, env, dir, args...)
}

// assertPrimary fails unless node is out of recovery (the password is
// needed to ask).
func assertPrimary(t *testing.T, sb *sandbox.Sandbox, node string) {
	t.Helper()
	n, _ := sb.Node(node)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, sb.Conninfo(n, "postgres")+" password="+rightPassword, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var recovery bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovery); err != nil || recovery {
		t.Fatalf("%s: want the primary after the switchover, in recovery=%v (%v)", node, recovery, err)
	}
}

// TestSecretsPasswordNeverShown switches the primary back and forth on a
// sandbox that asks for a password, given in the inventory, in PGPASSWORD,
// and in a pgpass file; the password appears in nothing switchover writes.
func TestSecretsPasswordNeverShown(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.New(t, 1)
	protectWithPassword(t, sb)
	work := t.TempDir()
	pg1, pg2 := sb.Nodes[0], sb.Nodes[1]

	pgpass := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(pgpass, []byte("127.0.0.1:*:*:postgres:"+rightPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plain := sandboxInventory(t, sb, false, nil)
	tests := []struct {
		name     string
		inv      string
		env      []string
		from, to string
	}{
		{"in the inventory", sandboxInventory(t, sb, false, map[string]string{
			"pg1": sb.Conninfo(pg1, "postgres") + " password=" + rightPassword,
			"pg2": sb.Conninfo(pg2, "postgres") + " password=" + rightPassword,
		}), nil, "pg1", "pg2"},
		{"in PGPASSWORD", plain, []string{"PGPASSWORD=" + rightPassword}, "pg2", "pg1"},
		{"in a pgpass file", plain, []string{"PGPASSFILE=" + pgpass}, "pg1", "pg2"},
	}
	for _, tt := range tests {
		// Sequential: each switches the primary the previous one left.
		t.Run(tt.name, func(t *testing.T) {
			jdir := t.TempDir()
			args := []string{"run", playbook, "-i", tt.inv, "--yes", "--journal-dir", jdir,
				"--var", "primary=" + tt.from, "--var", "candidate=" + tt.to}
			r := runEnv(t, tt.env, work, args...)
			if r.Code != 0 {
				t.Fatalf("switchover %s: want exit 0, got %s", strings.Join(args, " "), r)
			}
			assertContains(t, "run", r.Stdout, "done in")
			assertPrimary(t, sb, tt.to)
			assertSecretNowhere(t, rightPassword, r, jdir)
			for _, format := range []string{"markdown", "json"} {
				rep := runEnv(t, tt.env, work, "report", "--format", format, "--journal-dir", jdir)
				if rep.Code != 0 {
					t.Fatalf("report --format %s: %s", format, rep)
				}
				assertSecretNowhere(t, rightPassword, rep, jdir)
			}
			runs := runEnv(t, tt.env, work, "runs", "--journal-dir", jdir)
			if runs.Code != 0 {
				t.Fatalf("runs: %s", runs)
			}
			assertSecretNowhere(t, rightPassword, runs, jdir)
		})
		if t.Failed() {
			return
		}
	}
}
