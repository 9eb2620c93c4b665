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
