package pgaf

import (
	"testing"

	"github.com/switchover/switchover/internal/cluster"
)

func node(name string, reported, goal State) Node {
	return Node{Name: name, Reported: reported, Goal: goal, Health: 1, PgRunning: true}
}

func TestViewSettledAndPrimary(t *testing.T) {
	t.Parallel()
	unhealthy := node("pg2", StateSecondary, StateSecondary)
	unhealthy.Health = 0
	tests := []struct {
		name        string
		nodes       []Node
		wantPrimary string
		wantSettled bool
	}{
		{"settled", []Node{node("pg1", StatePrimary, StatePrimary), node("pg2", StateSecondary, StateSecondary)}, "pg1", true},
		{"single node", []Node{node("pg1", StateSingle, StateSingle)}, "pg1", true},
		{"draining", []Node{node("pg1", StatePrimary, StateDraining), node("pg2", StateSecondary, StatePreparePromotion)}, "", false},
		{"candidate taking writes, old primary rejoining", []Node{node("pg1", StateDemoted, "catchingup"), node("pg2", StateStopReplication, StateWaitPrimary)}, "pg2", false},
		{"wait_primary settled is not settled", []Node{node("pg1", StateCatchingUp, StateCatchingUp), node("pg2", StateWaitPrimary, StateWaitPrimary)}, "pg2", false},
		{"unhealthy secondary", []Node{node("pg1", StatePrimary, StatePrimary), unhealthy}, "pg1", false},
		{"two primaries", []Node{node("pg1", StatePrimary, StatePrimary), node("pg2", StatePrimary, StatePrimary)}, "", false},
		{"no nodes", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := &View{Nodes: tt.nodes}
			if got := v.Primary(); got != tt.wantPrimary {
				t.Errorf("Primary() = %q, want %q (%s)", got, tt.wantPrimary, v)
			}
			why := v.Unsettled()
			if (why == "") != tt.wantSettled {
				t.Errorf("Unsettled() = %q, want settled %v (%s)", why, tt.wantSettled, v)
			}
		})
	}
}

func TestNewNeedsAMonitor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		m       *cluster.Manager
		wantErr bool
		where   string
	}{
		{"patroni", &cluster.Manager{Kind: "patroni"}, true, ""},
		{"no monitor", &cluster.Manager{Kind: "pg_auto_failover"}, true, ""},
		{"monitor", &cluster.Manager{Kind: "pg_auto_failover", Monitor: "host=10.0.0.9 port=5431 user=autoctl_node password=secret dbname=pg_auto_failover"}, false, "10.0.0.9:5431"},
		{"uri", &cluster.Manager{Kind: "pg_auto_failover", Monitor: "postgres://autoctl_node:secret@mon:6000/pg_auto_failover"}, false, "mon:6000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tt.m)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New: %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (c.Where() != tt.where || c.Formation() != "default") {
				t.Errorf("Where() = %q, Formation() = %q; want %q, default", c.Where(), c.Formation(), tt.where)
			}
		})
	}
}
