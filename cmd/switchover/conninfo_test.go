package main

// Connection strings as the operator's libpq resolves them: one that does
// not resolve to exactly one server is refused before anything runs, with
// its place in the inventory; and a password given in the inventory shows
// in no process's command line and on no server while a switchover runs.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// TestBadInputUnresolvableConninfo: a node named by a service no service
// file has, a node or a pooler listing two hosts: validate -i and plan
// refuse them with exit 2, the file:line:col of the conninfo, the node, and
// why; the password they carry is shown nowhere.
func TestBadInputUnresolvableConninfo(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	services := filepath.Join(work, "pg_service.conf")
	writeFile(t, services, "[pg2]\nhost=127.0.0.1\nport=1\nuser=postgres\n")
	env := []string{"PGSERVICEFILE=" + services, "PGSYSCONFDIR=" + filepath.Join(work, "none")}
	const head = "cluster: bad\nvars:\n  primary: pg1\n  candidate: pg2\nnodes:\n  pg1:\n"
	tests := []struct {
		name string
		inv  string
		want []string
	}{
		{name: "unknown service",
			inv:  head + "    conninfo: \"service=pg1 password=Hidden-Pw-777\"\n    host: local\n  pg2:\n    conninfo: \"service=pg2\"\n    host: local\n",
			want: []string{":7:15:", `node "pg1": conninfo`, "pg1"}},
		{name: "two hosts",
			inv:  head + "    conninfo: \"host=10.0.0.1,10.0.0.2 port=5432 user=postgres password=Hidden-Pw-777\"\n    host: local\n  pg2:\n    conninfo: \"service=pg2\"\n    host: local\n",
			want: []string{":7:15:", `node "pg1": conninfo`, "names 2 servers (10.0.0.1:5432, 10.0.0.2:5432)", "exactly one host and port"}},
		{name: "a URI with two hosts",
			inv:  head + "    conninfo: \"service=pg2\"\n    host: local\n  pg2:\n    conninfo: \"postgresql://postgres:Hidden-Pw-777@h1:1,h2:2/postgres\"\n    host: local\n",
			want: []string{":10:15:", `node "pg2": conninfo`, "names 2 servers (h1:1, h2:2)"}},
		{name: "pooler admin with two hosts",
			inv: head + "    conninfo: \"service=pg2\"\n    host: local\n  pg2:\n    conninfo: \"service=pg2\"\n    host: local\n" +
				"pooler:\n  kind: pgbouncer\n  admin: \"host=a,b port=6432 dbname=pgbouncer password=Hidden-Pw-777\"\n  database: app\n",
			want: []string{":14:10:", "pooler: admin", "names 2 servers (a:6432, b:6432)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			inv := filepath.Join(dir, "inventory.yaml")
			writeFile(t, inv, tt.inv)
			for _, args := range [][]string{
				{"validate", playbook, "-i", inv},
				{"plan", playbook, "-i", inv, "--journal-dir", t.TempDir()},
			} {
				r := runEnv(t, env, dir, args...)
				if r.Code != 2 {
					t.Fatalf("switchover %s: want exit 2, got %s", strings.Join(args, " "), r)
				}
				for i, w := range tt.want {
					if i == 0 {
						w = inv + w
					}
					if !strings.Contains(r.Stderr, w) {
						t.Errorf("%s: stderr lacks %q:\n%s", args[0], w, r.Stderr)
					}
				}
				if strings.Contains(r.Output(), "Hidden-Pw-777") {
					t.Errorf("%s: the password is in the output:\n%s", args[0], r)
				}
			}
		})
	}
}

// TestSecretsPasswordInNoCommandLine switches a sandbox that asks for a
// password, given in the inventory's conninfo, there and back while every
// process's command line is read as often as it can be: none holds the password, and
// no node's postgresql.auto.conf does afterwards (the rejoined standbys
// stream with the primary_conninfo the tool wrote, which has none). Not
// parallel: no other test of this package runs meanwhile, so whatever the
// scan sees is this run's.
func TestSecretsPasswordInNoCommandLine(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	protectWithPassword(t, sb)
	work := t.TempDir()
	pg1, pg2 := sb.Nodes[0], sb.Nodes[1]
	inv := sandboxInventory(t, sb, false, map[string]string{
		"pg1": sb.Conninfo(pg1, "postgres") + " password=" + rightPassword,
		"pg2": sb.Conninfo(pg2, "postgres") + " password=" + rightPassword,
	})
	scan := sandboxtest.ScanCmdlines(rightPassword, "pg_ctl")
	for _, dir := range [][2]string{{"pg1", "pg2"}, {"pg2", "pg1"}} {
		args := []string{"run", playbook, "-i", inv, "--yes", "--journal-dir", t.TempDir(),
			"--var", "primary=" + dir[0], "--var", "candidate=" + dir[1]}
		r := runEnv(t, nil, work, args...)
		if r.Code != 0 {
			scan.Finish()
			t.Fatalf("switchover %s: want exit 0, got %s", strings.Join(args, " "), r)
		}
		assertPrimary(t, sb, dir[1])
	}
	hits, scans, pgCtl := scan.Finish()
	t.Logf("%d scans of every command line, %d of them saw pg_ctl", scans, pgCtl)
	if pgCtl == 0 {
		t.Fatalf("%d scans never saw a pg_ctl process: the scan did not watch the run", scans)
	}
	if len(hits) > 0 {
		t.Fatalf("the password is in %d command lines:\n%s", len(hits), strings.Join(hits, "\n"))
	}
	for _, n := range sb.Nodes {
		b, err := os.ReadFile(filepath.Join(n.DataDir, "postgresql.auto.conf"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), rightPassword) {
			t.Errorf("%s: postgresql.auto.conf holds the password", n.Name)
		}
		if !strings.Contains(string(b), "primary_conninfo") && n.Name != "pg1" {
			t.Errorf("%s: postgresql.auto.conf has no primary_conninfo:\n%s", n.Name, b)
		}
	}
}
