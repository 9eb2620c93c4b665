package discover_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/discover"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/runbook/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// streamingInventory is a plain streaming cluster over ssh, with a guess
// of every kind.
func streamingInventory() *discover.Inventory {
	ssh := func(addr string) discover.Host {
		return discover.Host{Host: cluster.Host{Transport: "ssh", Address: "admin@" + addr, User: "postgres"}}
	}
	return &discover.Inventory{
		From:      "10.0.0.2:5432",
		Cluster:   discover.Guess("main", "the servers set no cluster_name"),
		Candidate: discover.Guess("db2", "a standby streaming from the primary"),
		Nodes: []*discover.Node{
			{Name: discover.Guess("db1", "its host name"), Conninfo: "host=10.0.0.1 port=5432 user=postgres dbname=postgres sslmode=prefer",
				Host: ssh("10.0.0.1"), DataDir: discover.Read("/srv/postgresql/15/db1"),
				BinDir: discover.Guess("/usr/lib/postgresql/15/bin", "Debian's layout for PostgreSQL 15"),
				Role:   pg.RolePrimary, Version: 150008, VersionText: "15.8"},
			{Name: discover.Read("db2"), Conninfo: "host=10.0.0.2 port=5432 user=postgres dbname=postgres sslmode=prefer",
				Host: ssh("10.0.0.2"), DataDir: discover.Guess("/var/lib/postgresql/15/main", "this role may not read data_directory"),
				BinDir: discover.Guess("/usr/lib/postgresql/15/bin", "Debian's layout for PostgreSQL 15"),
				Role:   pg.RoleStandby, Upstream: "db1", SyncState: "sync", Version: 150008, VersionText: "15.8"},
			{Name: discover.Read("db3"), Conninfo: "host=10.0.0.3 port=5432 user=postgres dbname=postgres sslmode=prefer",
				Host:    discover.Host{Host: cluster.Host{Transport: "local"}, Guessed: "10.0.0.3 is not an address of this machine: give --ssh"},
				DataDir: discover.Read("/srv/pg/15"), BinDir: discover.Read("/opt/pg/bin"),
				Role: pg.RoleStandby, Version: 150008, VersionText: "15.8"},
		},
		Pooler: &discover.Pooler{Admin: "host=10.0.0.9 port=6432 user=pgbouncer dbname=pgbouncer sslmode=prefer",
			Database: discover.Read("app"), Config: discover.Guess("/etc/pgbouncer/pgbouncer.ini", "SHOW CONFIG gives no conffile"),
			Host: ssh("10.0.0.9")},
	}
}

// TestRenderGolden keeps the shape of a rendered inventory: header, role
// and version comments, flow-style hosts, a guessed marker after each
// guess and nowhere else.
func TestRenderGolden(t *testing.T) {
	got := discover.Render(streamingInventory())
	golden := filepath.Join("testdata", "streaming.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("rendered inventory differs from %s (run with -update after checking):\n%s", golden, got)
	}
}

// TestRenderedInventoriesLoad: what is rendered is what the inventory
// loader reads, with every manager.
func TestRenderedInventoriesLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		manager *discover.Manager
		check   func(t *testing.T, m *cluster.Manager)
	}{
		{"plain", nil, func(t *testing.T, m *cluster.Manager) {
			if m != nil {
				t.Errorf("manager %+v, want none", m)
			}
		}},
		{"patroni", &discover.Manager{Kind: cluster.ManagerPatroni, URLs: []string{"http://10.0.0.1:8008", "http://10.0.0.2:8008"}, Username: "admin"},
			func(t *testing.T, m *cluster.Manager) {
				if len(m.URLs) != 2 || m.URLs[1] != "http://10.0.0.2:8008" || m.Username != "admin" || m.Password != "" {
					t.Errorf("patroni manager %+v", m)
				}
			}},
		{"repmgr", &discover.Manager{Kind: cluster.ManagerRepmgr, Database: "repmgr", Configs: map[string]discover.Value{
			"db1": discover.Read("/etc/repmgr/15/repmgr.conf"), "db2": discover.Guess("/etc/repmgr.conf", "no config_file"),
			"db3": discover.Read("/etc/repmgr/15/repmgr.conf")}},
			func(t *testing.T, m *cluster.Manager) {
				if m.Database != "repmgr" || m.Configs["db2"] != "/etc/repmgr.conf" || len(m.Configs) != 3 {
					t.Errorf("repmgr manager %+v", m)
				}
			}},
		{"pg_auto_failover", &discover.Manager{Kind: cluster.ManagerPgAutoFailover, Monitor: "host=10.0.0.8 port=5431 user=autoctl_node dbname=pg_auto_failover", Formation: "default", Group: 0},
			func(t *testing.T, m *cluster.Manager) {
				if m.Monitor == "" || m.Formation != "default" || m.Group != 0 {
					t.Errorf("pg_auto_failover manager %+v", m)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inv := streamingInventory()
			inv.Manager = tc.manager
			text := discover.Render(inv)
			got, err := spec.LoadInventory("discovered", text)
			if err != nil {
				t.Fatalf("the rendered inventory does not load: %v\n%s", err, text)
			}
			if got.Cluster.Name != "main" || strings.Join(got.NodeOrder(), " ") != "db1 db2 db3" {
				t.Errorf("cluster %q, nodes %v", got.Cluster.Name, got.NodeOrder())
			}
			if h := got.Cluster.Nodes["db1"].Host; h.Transport != "ssh" || h.Address != "admin@10.0.0.1" || h.User != "postgres" {
				t.Errorf("db1's host: %+v", h)
			}
			if p := got.Cluster.Poolers; len(p) != 1 || p[0].Database != "app" || p[0].Config != "/etc/pgbouncer/pgbouncer.ini" {
				t.Errorf("pooler: %+v", p)
			}
			tc.check(t, got.Cluster.Manager)
		})
	}
}

// TestGuessedMarkers: a line carries the guessed marker exactly when its
// value is a guess, and says why.
func TestGuessedMarkers(t *testing.T) {
	t.Parallel()
	inv := streamingInventory()
	text := string(discover.Render(inv))
	lines := strings.Split(text, "\n")
	find := func(prefix string) []string {
		var out []string
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				out = append(out, l)
			}
		}
		return out
	}
	tests := []struct {
		line    string // the line's start, trimmed
		guessed string // "" for a value read from the cluster
	}{
		{"cluster: main", "the servers set no cluster_name"},
		{"candidate: db2", "a standby streaming from the primary"},
		{"db1:", "its host name"},
		{"db2:", ""},
		{"data_dir: /var/lib/postgresql/15/main", "this role may not read data_directory"},
		{"data_dir: /srv/pg/15", ""},
		{"bin_dir: /opt/pg/bin", ""},
		{"host: local", "10.0.0.3 is not an address of this machine"},
		{"database: app", ""},
		{"config: /etc/pgbouncer/pgbouncer.ini", "SHOW CONFIG gives no conffile"},
	}
	for _, tc := range tests {
		got := find(tc.line)
		if len(got) == 0 {
			t.Errorf("no line %q in:\n%s", tc.line, text)
			continue
		}
		for _, l := range got {
			marked := strings.Contains(l, discover.GuessedMarker)
			switch {
			case tc.guessed == "" && marked:
				t.Errorf("%q is marked guessed, but was read from the cluster", l)
			case tc.guessed != "" && !strings.Contains(l, discover.GuessedMarker+tc.guessed):
				t.Errorf("%q: want the marker %q", l, discover.GuessedMarker+tc.guessed)
			}
		}
	}
	for _, l := range find("bin_dir: /usr/lib/postgresql/15/bin") {
		if !strings.Contains(l, discover.GuessedMarker+"Debian's layout") {
			t.Errorf("%q: want a guessed marker", l)
		}
	}
	if n := strings.Count(text, "# standby of db1 (sync), PostgreSQL 15.8, server_version_num 150008"); n != 1 {
		t.Errorf("db2's role and version comment shows %d times:\n%s", n, text)
	}
}
