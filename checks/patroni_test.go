package checks

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/patroni/patronitest"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
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
		{name: "no leader lock", node: "pg1", change: func(f *patronitest.Fake) { f.Members[0].Role = patroni.RoleReplica }, want: Fail, observe: "shows no leader"},
		{name: "two leaders", node: "pg1", change: func(f *patronitest.Fake) { f.Members[1].Role = patroni.RoleLeader }, want: Fail, observe: "shows 2 leaders"},
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
		{name: "stopped", node: "pg2", change: func(f *patronitest.Fake) { f.Members[1].State = patroni.StateStopped }, want: Fail, observe: "stopped, not running or streaming"},
		{name: "lag unknown", node: "pg2", change: func(f *patronitest.Fake) { f.Members[1].Lag = "unknown" }, want: Fail, observe: "lag is unknown"},
		{name: "over max_lag", node: "pg3", maxLag: 1024, want: Fail, observe: "lags 2048 bytes, more than max_lag 1024"},
		{name: "over maximum_lag_on_failover", node: "pg3", change: func(f *patronitest.Fake) { f.Config["maximum_lag_on_failover"] = 1000 }, want: Fail, observe: "more than Patroni's maximum_lag_on_failover 1000"},
		{name: "synchronous_mode, async candidate", node: "pg2", change: func(f *patronitest.Fake) { f.Config["synchronous_mode"] = true }, want: Fail, observe: "synchronous_mode and pg2 is a replica, not a synchronous standby"},
		{name: "synchronous_mode, sync candidate", node: "pg3", change: func(f *patronitest.Fake) { f.Config["synchronous_mode"] = true }, want: Pass, observe: "pg3 is a sync_standby"},
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

// Patroni's view held against PostgreSQL's on a real cluster (pg1 the
// primary, pg2 and pg3 streaming from it): Patroni naming pg1 agrees;
// naming pg2 does not, since PostgreSQL on pg2 is in recovery.
func TestPatroniLeaderAgainstPostgreSQL(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	for _, tc := range []struct {
		leader  string
		want    Status
		observe string
	}{
		{leader: "pg1", want: Pass, observe: "and PostgreSQL agrees"},
		{leader: "pg2", want: Fail, observe: "patroni shows pg2 as the leader, but PostgreSQL on pg2 is in recovery (a standby)"},
	} {
		t.Run(tc.leader, func(t *testing.T) {
			f := patronitest.New(t)
			for i := range f.Members {
				if f.Members[i].Name == tc.leader {
					f.Members[i].Role = patroni.RoleLeader
				} else {
					f.Members[i].Role = patroni.RoleReplica
				}
			}
			tg := sandboxTarget(sb)
			tg.Cluster.Manager = &cluster.Manager{Kind: "patroni", URLs: []string{f.URL()}}
			r := runCheck(t, &PatroniLeader{Node: tc.leader}, tg)
			if r.Status != tc.want || !strings.Contains(r.Observed, tc.observe) {
				t.Errorf("got %s %q, want %s %q\n%s", r.Status, r.Observed, tc.want, tc.observe, r.Detail)
			}
			if !strings.Contains(r.Detail, "PostgreSQL on pg3: in recovery") {
				t.Errorf("detail does not say what PostgreSQL on pg3 said:\n%s", r.Detail)
			}
		})
	}
}

// A standby promoted behind Patroni's back: Patroni still shows pg1 as the
// leader, but PostgreSQL on pg3 takes writes too. The check fails and names
// pg3.
func TestPatroniLeaderSecondPrimary(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := openSession(t, sb, "pg3")
	if _, err := conn.Exec(ctx, "SELECT pg_promote(wait => true)"); err != nil {
		t.Fatalf("promote pg3: %v", err)
	}
	f := patronitest.New(t)
	tg := sandboxTarget(sb)
	tg.Cluster.Manager = &cluster.Manager{Kind: "patroni", URLs: []string{f.URL()}}
	r := runCheck(t, &PatroniLeader{Node: "pg1"}, tg)
	want := "patroni shows pg1 as the leader, but PostgreSQL on pg3 is out of recovery too: more than one server takes writes"
	if r.Status != Fail || r.Observed != want {
		t.Errorf("got %s %q, want Fail %q\n%s", r.Status, r.Observed, want, r.Detail)
	}
}

// On a real Patroni cluster in synchronous_mode: the replica Patroni made
// the synchronous standby passes, the other fails, and Patroni itself
// refuses a switchover to the one that fails, for the same reason.
func TestPatroniCandidateInSynchronousMode(t *testing.T) {
	sb := sandboxtest.NewPatroni(t, 2)
	client, err := patroni.New(sb.Cluster().Manager)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := sb.Cluster().Manager.URLs[0]
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, base+"/config", strings.NewReader(`{"synchronous_mode": true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PATCH /config: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PATCH /config: %s", resp.Status)
	}
	// Patroni names a synchronous standby on its next loop.
	var sync, async string
	for deadline := time.Now().Add(30 * time.Second); sync == "" || async == ""; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no sync_standby and replica within 30s")
		}
		st, err := client.Cluster(ctx)
		if err != nil {
			continue
		}
		sync, async = "", ""
		for _, m := range st.Members {
			switch {
			case m.Role == patroni.RoleSyncStandby && m.State != patroni.StateStopped:
				sync = m.Name
			case m.Role == patroni.RoleReplica:
				async = m.Name
			}
		}
	}
	tg := &cluster.Target{Cluster: sb.Cluster(), Facts: &cluster.Facts{}}
	if r := runCheck(t, &PatroniCandidate{Node: sync, MaxLag: 16 << 20}, tg); r.Status != Pass {
		t.Errorf("candidate %s (sync_standby): %s %q, want pass", sync, r.Status, r.Observed)
	}
	r := runCheck(t, &PatroniCandidate{Node: async, MaxLag: 16 << 20}, tg)
	if r.Status != Fail || !strings.Contains(r.Observed, "not a synchronous standby") {
		t.Errorf("candidate %s (replica): %s %q, want a failure naming synchronous_mode", async, r.Status, r.Observed)
	}
	_, err = client.Switchover(ctx, "pg1", async, nil)
	var he *patroni.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusPreconditionFailed || !strings.Contains(he.Body, "sync_standby") {
		t.Errorf("POST /switchover to %s: %v, want Patroni's 412 naming sync_standby", async, err)
	}
}
