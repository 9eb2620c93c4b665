package checks

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// pgAKinds are the kinds this set of files registers, each with a valid
// value for every required parameter.
var pgAKinds = map[string]map[string]string{
	"pg.reachable":     {"node": "pg1"},
	"pg.role":          {"node": "pg1", "is": "primary"},
	"pg.replication":   {"node": "pg2", "upstream": "pg1"},
	"pg.caught_up":     {"node": "pg2", "with": "pg1"},
	"pg.timeline":      {"node": "pg1", "is": "1"},
	"pg.slots":         {"node": "pg1", "slots": "pg2"},
	"quorum.reachable": {},
}

func TestPGARegistration(t *testing.T) {
	t.Parallel()
	for kind, sample := range pgAKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			def, ok := Lookup(kind)
			if !ok {
				t.Fatalf("%q is not registered", kind)
			}
			if strings.TrimSpace(def.Doc) == "" || strings.Contains(def.Doc, "\n") {
				t.Errorf("doc %q: want one non-empty line", def.Doc)
			}
			for _, p := range def.Params {
				if strings.TrimSpace(p.Doc) == "" {
					t.Errorf("parameter %q has no doc", p.Name)
				}
				if p.Type == params.Unknown {
					t.Errorf("parameter %q has no type", p.Name)
				}
				if p.Required && p.Default != "" {
					t.Errorf("parameter %q is required and has a default", p.Name)
				}
				if _, given := sample[p.Name]; p.Required && !given {
					t.Errorf("no sample for required parameter %q", p.Name)
				}
			}
			c, err := def.New(pgANewValues(t, kind, sample))
			if err != nil {
				t.Fatalf("new with defaults: %v", err)
			}
			d := c.Describe(nil)
			if d == "" {
				t.Error("describe is empty")
			}
			if node := sample["node"]; node != "" && !strings.Contains(d, node) {
				t.Errorf("describe %q does not name node %s", d, node)
			}
		})
	}
}

func TestPGReachableOnSharedSandbox(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	tg := pgATarget(sb)
	for node, role := range map[string]string{"pg1": "primary", "pg2": "standby", "pg3": "standby"} {
		t.Run(node, func(t *testing.T) {
			t.Parallel()
			r := pgARun(t, mustBuild(t, "pg.reachable", map[string]any{"node": node}), tg)
			assertResult(t, r, Pass, []string{node + " answered", role, "PostgreSQL "}, nil)
			pgAHasValue(t, r, "role", role)
			pgAHasValue(t, r, "connect_time", nil)
			if v, _ := r.Values["server_version_num"].(int); v < 100000 {
				t.Errorf("server_version_num = %v, want a version 10 or later", r.Values["server_version_num"])
			}
		})
	}
}

// TestPGReachableErrors needs no server: a node the inventory lacks and a
// node whose port is closed cannot be evaluated, and the message names the
// node, says why, and never shows the password.
func TestPGReachableErrors(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	host, port, _ := strings.Cut(addr, ":")
	tg := &cluster.Target{Facts: &cluster.Facts{}, Cluster: &cluster.Cluster{Nodes: map[string]*cluster.Node{
		"db9": {Name: "db9", Conninfo: "host=" + host + " port=" + port + " user=postgres password=s3cr3t-pw dbname=postgres sslmode=disable connect_timeout=2"},
	}}}
	tests := []struct {
		name   string
		node   string
		target *cluster.Target
		want   []string
	}{
		{"not in inventory", "db7", tg, []string{`"db7"`, "not in the inventory"}},
		{"no inventory", "db9", nil, []string{`"db9"`, "no inventory"}},
		{"closed port", "db9", tg, []string{"db9", addr, "connection refused"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := pgARun(t, mustBuild(t, "pg.reachable", map[string]any{"node": tc.node}), tc.target)
			assertResult(t, r, Error, tc.want, []string{"s3cr3t"})
			if want := tc.node + " accepts a connection"; !strings.Contains(r.Wanted, want) {
				t.Errorf("wanted %q: want it to say %q", r.Wanted, want)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := mustBuild(t, "pg.reachable", map[string]any{"node": "db9"}).Run(ctx, tg)
		assertResult(t, r, Error, []string{"db9", "cancelled"}, []string{"s3cr3t"})
	})
}

func TestPGAHelpers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	same := []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:5432", "127.0.0.1:5432", true},
		{"localhost:5432", "127.0.0.1:5432", true},
		{"[::1]:5432", "localhost:5432", true},
		{"127.0.0.1:5432", "127.0.0.1:5433", false},
		{"10.0.0.5:5432", "10.0.0.6:5432", false},
		{"DB1.example:5432", "db1.example:5432", true},
		{"/var/run/postgresql:5432", "/var/run/postgresql:5432", true},
		{"/var/run/postgresql:5432", "localhost:5432", false},
		{"", "127.0.0.1:5432", false},
	}
	for _, tc := range same {
		if got := pgASameEndpoint(ctx, tc.a, tc.b); got != tc.want {
			t.Errorf("pgASameEndpoint(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	for num, want := range map[int]string{150008: "15.8", 170000: "17.0", 90624: "9.6.24"} {
		if got := pgAVersion(num); got != want {
			t.Errorf("pgAVersion(%d) = %q, want %q", num, got, want)
		}
	}
	for n, want := range map[int64]string{16 << 20: "16MB", 512 << 10: "512kB", 1: "1 byte", 184: "184 bytes", 0: "0 bytes", 1<<20 + 1: "1048577 bytes"} {
		if got := pgABytes(n); got != want {
			t.Errorf("pgABytes(%d) = %q, want %q", n, got, want)
		}
	}
	eps, err := pgAEndpoints("host=db1,db2 port=5432,5433 user=x password=secret")
	if err != nil || strings.Join(eps, " ") != "db1:5432 db2:5433" {
		t.Errorf("pgAEndpoints = %v, %v; want db1:5432 db2:5433", eps, err)
	}
	if _, err := pgAEndpoints("host='unterminated password=secret"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("pgAEndpoints of a bad string: %v; want an error without the password", err)
	}
}
