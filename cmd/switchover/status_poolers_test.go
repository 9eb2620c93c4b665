package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/topology"
)

// TestRenderPoolers: status shows every pooler, where its client database
// and each other entry route, and which are paused.
func TestRenderPoolers(t *testing.T) {
	t.Parallel()
	app := func(node string, paused bool) []topology.PoolerRoute {
		return []topology.PoolerRoute{
			{Name: "pgbouncer", Paused: false},
			{Name: "app", Target: "10.0.0.1:5432", Node: node, Paused: paused},
			{Name: "app_ro", Target: "10.0.0.3:5432", Node: "pg3"},
		}
	}
	tests := []struct {
		name    string
		poolers []*topology.Pooler
		want    string
	}{
		{name: "none", want: "pooler:   none in the inventory\n"},
		{
			name: "one, as before",
			poolers: []*topology.Pooler{{Name: "pgbouncer", Kind: "pgbouncer", Database: "app", Target: "10.0.0.1:5432", Node: "pg1",
				Databases: []topology.PoolerRoute{{Name: "app", Target: "10.0.0.1:5432", Node: "pg1"}}}},
			want: "pooler:   pgbouncer sends database app to pg1 (10.0.0.1:5432)\n",
		},
		{
			name: "two, each by name with its other entries, one paused, one not answering",
			poolers: []*topology.Pooler{
				{Name: "pgb1", Kind: "pgbouncer", Database: "app", Target: "10.0.0.1:5432", Node: "pg1", Paused: true, Databases: app("pg1", true)},
				{Name: "pgb2", Kind: "pgbouncer", Database: "app", Target: "10.0.0.9:5432", Databases: []topology.PoolerRoute{{Name: "app", Target: "10.0.0.9:5432"}, {Name: "app_ro", Target: "10.0.0.3:5432", Node: "pg3", Paused: true}}},
				{Name: "pgb3", Kind: "pgbouncer", Database: "app", Error: "connect: connection refused"},
			},
			want: "pooler:   pgb1 (pgbouncer) sends database app to pg1 (10.0.0.1:5432), PAUSED: clients wait\n" +
				"          entry app_ro to pg3 (10.0.0.3:5432)\n" +
				"pooler:   pgb2 (pgbouncer) sends database app to 10.0.0.9:5432\n" +
				"          entry app_ro to pg3 (10.0.0.3:5432), PAUSED: clients wait\n" +
				"pooler:   pgb3 (pgbouncer): connect: connection refused\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			renderPoolers(&streams{out: &out}, &topology.Topology{Poolers: tt.poolers})
			if out.String() != tt.want {
				t.Errorf("status printed\n%s\nwant\n%s", out.String(), tt.want)
			}
		})
	}
}

// TestSandboxUpPoolersOutOfRange: a count of PgBouncers out of range is
// bad usage (exit 2), refused before anything is created.
func TestSandboxUpPoolersOutOfRange(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"0", "-1", "9"} {
		dir := filepath.Join(t.TempDir(), "sb")
		code, _, errOut := executeT(t, "sandbox", "up", "--dir", dir, "--poolers", n)
		if code != 2 || !strings.Contains(errOut, "--poolers "+n) {
			t.Errorf("sandbox up --poolers %s: exit %d, %q; want exit 2 naming the flag", n, code, errOut)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("sandbox up --poolers %s created %s", n, dir)
		}
	}
}

// TestRenderRouter: status shows where the router sends new connections
// and each server's state; nothing without a router; a router that does
// not answer, with why; a disabled pooler database, as such.
func TestRenderRouter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		router *topology.RouterView
		want   string
	}{
		{name: "none"},
		{name: "on the primary", router: &topology.RouterView{Kind: "haproxy", Backend: "postgres", RoutesTo: []string{"pg1"},
			Servers: []topology.RouterServer{{Name: "pg1", Node: "pg1", State: "ready", Health: "up", Routable: true}, {Name: "pg2", Node: "pg2", State: "maint", Health: "down"}}},
			want: "router:   haproxy backend postgres sends new connections to pg1 (pg1 ready up; pg2 maint down)\n"},
		{name: "nowhere", router: &topology.RouterView{Kind: "haproxy", Backend: "postgres", RoutesTo: []string{},
			Servers: []topology.RouterServer{{Name: "pg1", Node: "pg1", State: "drain", Health: "up"}}},
			want: "router:   haproxy backend postgres sends new connections to no server (pg1 drain up)\n"},
		{name: "not answering", router: &topology.RouterView{Kind: "haproxy", Backend: "postgres", Error: "dial unix /run/haproxy.sock: connect: no such file or directory"},
			want: "router:   haproxy backend postgres: dial unix /run/haproxy.sock: connect: no such file or directory\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			renderRouter(&streams{out: &out}, &topology.Topology{Router: tt.router})
			if out.String() != tt.want {
				t.Errorf("status printed\n%s\nwant\n%s", out.String(), tt.want)
			}
		})
	}
	var out bytes.Buffer
	renderPoolers(&streams{out: &out}, &topology.Topology{Poolers: []*topology.Pooler{{Name: "pgbouncer", Kind: "pgbouncer", Database: "app", Target: "10.0.0.1:5432", Node: "pg1", Disabled: true}}})
	if !strings.Contains(out.String(), "DISABLED: new clients refused") {
		t.Errorf("a disabled database is not shown as such: %s", out.String())
	}
}
