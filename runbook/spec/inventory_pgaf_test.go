package spec

import (
	"strings"
	"testing"
)

// The pg_auto_failover manager section: the monitor is required and
// checked as a connection string, the formation defaults to "default",
// the group is a number.
func TestInventoryPgAutoFailoverManager(t *testing.T) {
	t.Parallel()
	const nodes = "cluster: c\nnodes:\n  pg1: {host: local, conninfo: \"port=5432\"}\n"
	tests := []struct {
		name          string
		manager       string
		wantErr       string
		wantFormation string
		wantGroup     int
	}{
		{"full", `{kind: pg_auto_failover, monitor: "host=mon port=5431 user=autoctl_node dbname=pg_auto_failover", formation: f1, group: 2}`, "", "f1", 2},
		{"defaults", `{kind: pg_auto_failover, monitor: "postgres://autoctl_node@mon:5431/pg_auto_failover"}`, "", "default", 0},
		{"no monitor", `{kind: pg_auto_failover}`, "kind pg_auto_failover needs monitor", "", 0},
		{"bad group", `{kind: pg_auto_failover, monitor: "host=mon", group: one}`, "manager: group: want a number", "", 0},
		{"bad monitor", `{kind: pg_auto_failover, monitor: "host=mon port=x"}`, "manager: monitor:", "", 0},
		{"unknown kind", `{kind: stolon}`, `unknown kind "stolon"`, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inv, err := LoadInventory("inv.yaml", []byte(nodes+"manager: "+tt.manager+"\n"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadInventory: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadInventory: %v", err)
			}
			m := inv.Cluster.Manager
			if m == nil || m.Kind != "pg_auto_failover" || m.Monitor == "" || m.Formation != tt.wantFormation || m.Group != tt.wantGroup {
				t.Errorf("manager = %+v, want pg_auto_failover with formation %s, group %d", m, tt.wantFormation, tt.wantGroup)
			}
		})
	}
}
