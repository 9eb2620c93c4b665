package main

// Guards that refuse a run before it changes anything, tested through the
// binary against the real fault: an inventory naming another cluster's data
// directory, a pooler paused by someone else, a wrong password. Each run
// exits 3 and leaves the cluster, the pooler and the other cluster as they
// were.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/transport"
)

// guardConn connects to a server for a test's look at it.
func guardConn(t *testing.T, conninfo string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return pg.Connect(ctx, conninfo, 5*time.Second)
}

// systemID asks a server for its system identifier.
func systemID(t *testing.T, conninfo string) string {
	t.Helper()
	c, err := guardConn(t, conninfo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, err := pg.SystemIdentifier(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// assertWritablePrimary fails unless the server at conninfo is a primary
// that takes a write.
func assertWritablePrimary(t *testing.T, what, conninfo string) {
	t.Helper()
	c, err := guardConn(t, conninfo)
	if err != nil {
		t.Fatalf("%s does not answer: %v", what, err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var recovery bool
	if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovery); err != nil || recovery {
		t.Fatalf("%s: in recovery %v (%v); want a primary", what, recovery, err)
	}
	if _, err := c.Exec(ctx, "CREATE TEMP TABLE guard_probe (x int); INSERT INTO guard_probe VALUES (1)"); err != nil {
		t.Errorf("%s does not take a write: %v", what, err)
	}
}

// assertStandby fails unless the server at conninfo is in recovery.
func assertStandby(t *testing.T, what, conninfo string) {
	t.Helper()
	c, err := guardConn(t, conninfo)
	if err != nil {
		t.Fatalf("%s does not answer: %v", what, err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var recovery bool
	if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovery); err != nil || !recovery {
		t.Fatalf("%s: in recovery %v (%v); want a standby", what, recovery, err)
	}
}

// poolerPaused asks the sandbox's PgBouncer whether app is paused (SHOW
// DATABASES).
func poolerPaused(t *testing.T, sb *sandbox.Sandbox, admin string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pg.ConnectAdmin(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SHOW DATABASES")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	col := map[string]int{}
	for i, f := range rows.FieldDescriptions() {
		col[f.Name] = i
	}
	for rows.Next() {
		raw := rows.RawValues()
		if string(raw[col["name"]]) == "app" {
			return string(raw[col["paused"]]) == "1"
		}
	}
	t.Fatal("SHOW DATABASES has no app")
	return false
}

// adminExec sends one command to the sandbox's PgBouncer admin console.
func adminExec(t *testing.T, admin, command string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pg.ConnectAdmin(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, command); err != nil {
		t.Fatalf("%s: %v", command, err)
	}
}

// canaryTables lists the canary tables on a server.
func canaryTables(t *testing.T, conninfo string) []string {
	t.Helper()
	c, err := guardConn(t, conninfo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := c.Query(ctx, `SELECT relname FROM pg_class WHERE relname LIKE 'switchover\_canary%' AND relkind = 'r'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// withDataDir returns inv with node's data_dir replaced, written to a new
// file.
func withDataDir(t *testing.T, inv string, from, to string) string {
	t.Helper()
	b, err := os.ReadFile(inv)
	if err != nil {
		t.Fatal(err)
	}
	old := "data_dir: " + from + "\n"
	if !strings.Contains(string(b), old) {
		t.Fatalf("the inventory has no %q:\n%s", old, b)
	}
	out := filepath.Join(t.TempDir(), "inventory.yaml")
	writeFile(t, out, strings.Replace(string(b), old, "data_dir: "+to+"\n", 1))
	return out
}

// TestGuardsRefuseBeforeActing runs the streaming playbook through the
// binary on a sandbox of its own, against one fault after another; each
// is refused at preflight with exit 3 and nothing changed.
func TestGuardsRefuseBeforeActing(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.New(t, 1)
	other := sandboxtest.Independent(t, sb, "other-cluster")
	work := t.TempDir()
	pg1, pg2 := sb.Nodes[0], sb.Nodes[1]
	ours := systemID(t, sb.Conninfo(pg1, "postgres"))
	theirs := systemID(t, sb.Conninfo(other, "postgres"))
	admin := sb.AdminConninfo()

	t.Run("a clean sandbox passes", func(t *testing.T) {
		r := mustRun(t, 0, work, "plan", playbook, "-i", sb.Inventory(), "--journal-dir", t.TempDir())
		assertContains(t, "plan", r.Stdout, "pass  all nodes: the system identifier from SQL (pg_control_system()) equals the one pg_controldata reads")
	})

	wrongDir := withDataDir(t, sb.Inventory(), pg1.DataDir, other.DataDir)

	t.Run("pg1's data_dir is another cluster's", func(t *testing.T) {
		r := mustRun(t, 3, work, "plan", playbook, "-i", wrongDir, "--journal-dir", t.TempDir())
		assertContains(t, "plan", r.Output(), "pg1", ours, theirs, other.DataDir)

		r = mustRun(t, 3, work, "run", playbook, "-i", wrongDir, "--yes", "--journal-dir", t.TempDir())
		assertContains(t, "run", r.Output(), "pg1", ours, theirs, other.DataDir)
		assertNothingChanged(t, "run", r)
		assertWritablePrimary(t, "pg1", sb.Conninfo(pg1, "postgres"))
		assertWritablePrimary(t, "the other cluster's primary", sb.Conninfo(other, "postgres"))
		assertStandby(t, "pg2", sb.Conninfo(pg2, "postgres"))
	})

	t.Run("a run refused at preflight leaves someone else's pause", func(t *testing.T) {
		adminExec(t, admin, "PAUSE app")
		defer adminExec(t, admin, "RESUME app")
		r := mustRun(t, 3, work, "run", playbook, "-i", wrongDir, "--yes", "--journal-dir", t.TempDir())
		assertContains(t, "run", r.Stdout, "RESUME app not sent", "this run never paused it")
		if !poolerPaused(t, sb, admin) {
			t.Fatal("app is no longer paused after a run that never paused it")
		}
		assertWritablePrimary(t, "pg1", sb.Conninfo(pg1, "postgres"))
	})

	// From here on the nodes and PgBouncer ask for a password.
	protectWithPassword(t, sb)
	withPassword := func(n sandbox.Node, pw string) string { return sb.Conninfo(n, "postgres") + " password=" + pw }

	t.Run("a wrong password for a node", func(t *testing.T) {
		inv := sandboxInventory(t, sb, false, map[string]string{
			"pg1": withPassword(pg1, wrongPassword),
			"pg2": withPassword(pg2, rightPassword),
		})
		r := mustRun(t, 3, work, "run", playbook, "-i", inv, "--yes", "--journal-dir", t.TempDir())
		assertContains(t, "run", r.Output(), "pg1", "password authentication failed", "RESUME app not sent")
		assertNothingChanged(t, "run", r)
		if strings.Contains(r.Stdout, "pgbouncer paused") {
			t.Errorf("the pooler was paused:\n%s", r)
		}
		if tables := canaryTables(t, withPassword(pg1, rightPassword)); len(tables) > 0 {
			t.Errorf("canary tables left: %v", tables)
		}
		assertSecretNowhere(t, wrongPassword, r, work)
	})

	t.Run("a wrong password for the pooler", func(t *testing.T) {
		requirePoolerPassword(t, sb)
		adminRight := admin + " password=" + rightPassword
		inv := sandboxInventory(t, sb, false, map[string]string{
			"pg1": withPassword(pg1, rightPassword),
			"pg2": withPassword(pg2, rightPassword),
		})
		b, err := os.ReadFile(inv)
		if err != nil {
			t.Fatal(err)
		}
		old := fmt.Sprintf("admin: %q", admin)
		if !strings.Contains(string(b), old) {
			t.Fatalf("the inventory has no %s", old)
		}
		writeFile(t, inv, strings.Replace(string(b), old, fmt.Sprintf("admin: %q", admin+" password="+wrongPassword), 1))
		r := mustRun(t, 3, work, "run", playbook, "-i", inv, "--yes", "--journal-dir", t.TempDir())
		assertContains(t, "run", r.Output(), "pgbouncer admin console", "password authentication failed", "RESUME app not sent")
		assertNothingChanged(t, "run", r)
		if poolerPaused(t, sb, adminRight) {
			t.Error("app is paused after the refused run")
		}
		if tables := canaryTables(t, withPassword(pg1, rightPassword)); len(tables) > 0 {
			t.Errorf("canary tables left: %v", tables)
		}
		assertWritablePrimary(t, "pg1", withPassword(pg1, rightPassword))
		assertStandby(t, "pg2", withPassword(pg2, rightPassword))
	})
}

// requirePoolerPassword makes the sandbox's PgBouncer ask its clients
// (the admin console too) for the password in its auth_file.
func requirePoolerPassword(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	as := transport.Local{User: sb.RunAs}
	out, err := as.Run(ctx, fmt.Sprintf("sed -i 's/^auth_type = trust$/auth_type = md5/' '%s'", sb.PoolerConfig()))
	if err != nil || out.ExitCode != 0 {
		t.Fatalf("edit %s: %v %s", sb.PoolerConfig(), err, out.Combined())
	}
	adminExec(t, sb.AdminConninfo(), "RELOAD")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := pg.ConnectAdmin(ctx, sb.AdminConninfo()+" password=nope-nope")
		if err != nil {
			return
		}
		c.Close(context.Background())
		if time.Now().After(deadline) {
			t.Fatal("pgbouncer still lets a wrong password in after the reload")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
