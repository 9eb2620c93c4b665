package checks

import (
	"fmt"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestPoolerEntriesOnShared(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	pg1, _ := sb.Node("pg1")
	tests := []struct {
		name    string
		node    string
		poolers func(c *cluster.Cluster)
		status  Status
		want    []string
	}{
		{name: "routes to the primary", node: "pg1", status: Pass,
			want: []string{fmt.Sprintf("pgbouncer: app routes to pg1 (127.0.0.1:%d); the repoint moves app", pg1.Port)}},
		{name: "not to the standby", node: "pg2", status: Fail,
			want: []string{"not routing to pg2: pgbouncer", fmt.Sprintf("app routes to 127.0.0.1:%d", pg1.Port), "every pooler's client database routing to pg2"}},
		{name: "a pooler that does not answer", node: "pg1", status: Error,
			poolers: func(c *cluster.Cluster) {
				gone := *c.Poolers[0]
				gone.Name, gone.Admin = "gone", "host=127.0.0.1 port=1 dbname=pgbouncer user=postgres sslmode=disable connect_timeout=2"
				c.Poolers = append(c.Poolers, &gone)
			},
			want: []string{"gone: connect to the pgbouncer admin console", "pgbouncer: app routes to pg1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg := sandboxTarget(sb)
			if tt.poolers != nil {
				tt.poolers(tg.Cluster)
			}
			r := runCheck(t, mustBuild(t, "pgbouncer.entries", map[string]any{"node": tt.node}), tg)
			assertResult(t, r, tt.status, tt.want, nil)
		})
	}
}
