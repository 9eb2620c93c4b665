package checks

import (
	"context"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/patroni/patronitest"
)

func patroniTarget(urls ...string) *cluster.Target {
	return &cluster.Target{Cluster: &cluster.Cluster{Manager: &cluster.Manager{Kind: "patroni", URLs: urls}}}
}

func TestPatroniLeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		node    string
		change  func(f *patronitest.Fake)
		down    bool
		want    Status
		observe string
	}{
		{name: "leader", node: "pg1", want: Pass, observe: "pg1 holds the leader lock"},
		{name: "another leader", node: "pg2", want: Fail, observe: "shows pg1 as the leader, not pg2"},
		{name: "no leader lock", node: "pg1", change: func(f *patronitest.Fake) { f.Members[0].Role = "replica" }, want: Fail, observe: "shows no leader"},
		{name: "two leaders", node: "pg1", change: func(f *patronitest.Fake) { f.Members[1].Role = "leader" }, want: Fail, observe: "shows 2 leaders"},
		{name: "unreachable", node: "pg1", down: true, want: Error, observe: "no patroni REST API answered"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := patronitest.New(t)
			if tc.change != nil {
				tc.change(f)
			}
			urls := []string{"http://127.0.0.1:1", f.URL()}
			if tc.down {
				urls = urls[:1]
			}
			r := (&PatroniLeader{Node: tc.node}).Run(context.Background(), patroniTarget(urls...))
			if r.Status != tc.want || !strings.Contains(r.Observed, tc.observe) {
				t.Errorf("got %s %q, want %s containing %q", r.Status, r.Observed, tc.want, tc.observe)
			}
		})
	}
}

func TestPatroniCandidateOK(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		node    string
		maxLag  int64
		change  func(f *patronitest.Fake)
		down    bool
		want    Status
		observe string
	}{
		{name: "healthy replica", node: "pg2", want: Pass, observe: "pg2 is a replica streaming with lag 0 bytes"},
		{name: "sync standby", node: "pg3", want: Pass, observe: "lag 2048 bytes"},
		{name: "the leader", node: "pg1", want: Fail, observe: "pg1 is leader, not a replica"},
		{name: "not a member", node: "pg9", want: Fail, observe: "lists no member pg9"},
		{name: "nofailover", node: "pg2", change: func(f *patronitest.Fake) { f.Members[1].Tags = map[string]any{"nofailover": true} }, want: Fail, observe: "tagged nofailover"},
		{name: "stopped", node: "pg2", change: func(f *patronitest.Fake) { f.Members[1].State = "stopped" }, want: Fail, observe: "stopped, not running or streaming"},
		{name: "lag unknown", node: "pg2", change: func(f *patronitest.Fake) { f.Members[1].Lag = "unknown" }, want: Fail, observe: "lag is unknown"},
		{name: "over max_lag", node: "pg3", maxLag: 1024, want: Fail, observe: "lags 2048 bytes, more than max_lag 1024"},
		{name: "over maximum_lag_on_failover", node: "pg3", change: func(f *patronitest.Fake) { f.Config["maximum_lag_on_failover"] = 1000 }, want: Fail, observe: "more than Patroni's maximum_lag_on_failover 1000"},
		{name: "unreachable", node: "pg2", down: true, want: Error, observe: "no REST API answered"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := patronitest.New(t)
			if tc.change != nil {
				tc.change(f)
			}
			urls := []string{f.URL()}
			if tc.down {
				urls = []string{"http://127.0.0.1:1"}
			}
			maxLag := tc.maxLag
			if maxLag == 0 {
				maxLag = 16 << 20
			}
			r := (&PatroniCandidate{Node: tc.node, MaxLag: maxLag}).Run(context.Background(), patroniTarget(urls...))
			if r.Status != tc.want || !strings.Contains(r.Observed, tc.observe) {
				t.Errorf("got %s %q, want %s containing %q", r.Status, r.Observed, tc.want, tc.observe)
			}
		})
	}
}

func TestPatroniChecksRegistered(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"patroni.leader", "patroni.candidate_ok"} {
		if _, ok := Lookup(kind); !ok {
			t.Errorf("%s is not registered", kind)
		}
	}
}
