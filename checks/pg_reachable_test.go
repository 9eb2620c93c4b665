package checks

import (
	"context"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestPGReachableOnSharedSandbox(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	tg := sandboxTarget(sb)
	for node, role := range map[string]string{"pg1": "primary", "pg2": "standby", "pg3": "standby"} {
		t.Run(node, func(t *testing.T) {
			t.Parallel()
			r := runCheck(t, mustBuild(t, "pg.reachable", map[string]any{"node": node}), tg)
			assertResult(t, r, Pass, []string{node + " answered", role, "PostgreSQL "}, nil)
			hasValue(t, r, "role", role)
			hasValue(t, r, "connect_time", nil)
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
			r := runCheck(t, mustBuild(t, "pg.reachable", map[string]any{"node": tc.node}), tc.target)
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
