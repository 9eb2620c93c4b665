package steps

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/patroni/patronitest"
)

// rollingTarget is a Target on the fake's cluster with the given inventory
// nodes, in that order, each on this machine.
func rollingTarget(url string, order ...string) (*cluster.Target, *printed) {
	c := &cluster.Cluster{Name: "test", Nodes: map[string]*cluster.Node{}, Order: order,
		Manager: &cluster.Manager{Kind: "patroni", URLs: []string{url}}}
	for _, n := range order {
		c.Nodes[n] = &cluster.Node{Name: n, Host: cluster.Host{Transport: "local"}}
	}
	p := &printed{}
	return p.target(c), p
}

// startedAt is when the fake's servers say they started.
var startedAt = time.Date(2026, 11, 3, 2, 15, 0, 123456000, time.UTC)

// restartedAt is when a server the fake restarted says it started.
var restartedAt = startedAt.Add(time.Minute)

func TestPatroniRestartReplicas(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		order    []string
		leader   string
		patch    string
		maxLag   int64
		within   time.Duration
		notReady string // a member PostgreSQL never shows streaming
		// facts restored by a resume, and when each server started
		// (default: startedAt)
		facts   map[string]string
		started map[string]time.Time
		// want
		restarted []string
		wantErr   []string
		wantOut   []string // lines that must appear, in this order
	}{
		{name: "every replica, one at a time", order: []string{"pg1", "pg2", "pg3"}, leader: "pg1", patch: "echo patched",
			restarted: []string{"pg2", "pg3"},
			wantOut: []string{"pg2 (1 of 2): starting", "patched", "POST ", "pg2 streams from pg1 again",
				"pg3 (2 of 2): starting", "patched", "POST ", "pg3 streams from pg1 again", "all 2 replicas restarted"}},
		{name: "the inventory's order", order: []string{"pg3", "pg1", "pg2"}, leader: "pg1",
			restarted: []string{"pg3", "pg2"},
			wantOut:   []string{"pg3 (1 of 2): starting", "pg3 streams from pg1 again", "pg2 (2 of 2): starting", "pg2 streams from pg1 again"}},
		{name: "wrong leader", order: []string{"pg1", "pg2", "pg3"}, leader: "pg2",
			wantErr: []string{`restart replicas of "pg2": GET `, "shows pg1 as the leader, not pg2", "nothing restarted"}},
		{name: "member not in the inventory", order: []string{"pg1", "pg2"}, leader: "pg1",
			wantErr: []string{"member pg3 is not in the inventory", "nothing restarted"}},
		{name: "inventory node not a member", order: []string{"pg1", "pg2", "pg3", "pg4"}, leader: "pg1",
			wantErr: []string{"inventory node pg4 is not a Patroni member", "nothing restarted"}},
		{name: "patch fails", order: []string{"pg1", "pg2", "pg3"}, leader: "pg1", patch: "echo no space left >&2; exit 3",
			wantErr: []string{`restart replicas of "pg1": pg2: patch command: command exited 3: no space left`,
				"pg2 was not restarted", "restarted before it: none; not restarted: pg3"}},
		{name: "second replica does not stream", order: []string{"pg1", "pg2", "pg3"}, leader: "pg1", within: time.Second, notReady: "pg3",
			restarted: []string{"pg2", "pg3"},
			wantErr: []string{"pg3: pg3 does not stream from pg1 within 1s of its restart request",
				"WAL receiver starting", "pg3 was asked to restart", "restarted before it: pg2; not restarted: none"}},
		{name: "resumed after the first replica's restart", order: []string{"pg1", "pg2", "pg3"}, leader: "pg1", patch: "echo patched",
			facts:     map[string]string{"pg2.restarted_at": startedAt.Format(time.RFC3339Nano)},
			restarted: []string{"pg3"},
			wantOut: []string{"pg2 (1 of 2): restarted by this run before it was interrupted (its PostgreSQL started at 2026-11-03T02:15:00.123456Z, fact pg2.restarted_at): not patched or restarted again",
				"pg2 streams from pg1 (", "pg3 (2 of 2): starting", "patched", "POST ", "pg3 streams from pg1 again"}},
		{name: "resumed, but the server started before the recorded restart", order: []string{"pg1", "pg2", "pg3"}, leader: "pg1",
			facts:     map[string]string{"pg2.restarted_at": startedAt.Format(time.RFC3339Nano)},
			started:   map[string]time.Time{"pg2": startedAt.Add(-time.Hour)},
			restarted: []string{"pg2", "pg3"},
			wantOut:   []string{"pg2: restarted by this run at 2026-11-03T02:15:00.123456Z, but its PostgreSQL says it started at 2026-11-03T01:15:00.123456Z: restarting it again", "pg2 (1 of 2): starting", "pg2 streams from pg1 again"}},
		{name: "lag over max_lag", order: []string{"pg1", "pg2", "pg3"}, leader: "pg1", within: time.Second, maxLag: 1024,
			restarted: []string{"pg2", "pg3"},
			wantErr:   []string{"pg3 does not stream from pg1 within 1s", "lag 2048, want lag at most 1kB", "restarted before it: pg2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := patronitest.New(t)
			f.RestartPolls = 2
			f.ServeEachMember(t)
			tg, p := rollingTarget(f.URL(), tt.order...)
			for k, v := range tt.facts {
				tg.Facts.Restore(k, v)
			}
			s := &PatroniRestartReplicas{Leader: tt.leader, PatchCommand: tt.patch, Within: 10 * time.Second, MaxLag: 16 << 20}
			if tt.within > 0 {
				s.Within = tt.within
			}
			if tt.maxLag > 0 {
				s.MaxLag = tt.maxLag
			}
			var mu sync.Mutex
			s.standby = func(_ context.Context, _ *cluster.Target, node string) (standbyState, error) {
				mu.Lock()
				defer mu.Unlock()
				// A server restarted through the fake started at
				// restartedAt; one not restarted when the test says, or
				// at startedAt.
				started, ok := tt.started[node]
				if !ok {
					started = startedAt
				}
				f.Mu.Lock()
				if slices.Contains(f.RestartedMembers, node) {
					started = restartedAt
				}
				f.Mu.Unlock()
				if node == tt.notReady {
					return standbyState{Recovery: true, Receiver: "starting", Started: started}, nil
				}
				return standbyState{Recovery: true, Receiver: "streaming", Sender: "127.0.0.1:5432", Started: started}, nil
			}
			err := s.Apply(context.Background(), tg)
			out := p.all()
			t.Logf("err=%v\n  %s", err, strings.Join(out, "\n  "))
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to say %q", err, w)
				}
			}
			f.Mu.Lock()
			got := slices.Clone(f.RestartedMembers)
			f.Mu.Unlock()
			if !slices.Equal(got, tt.restarted) {
				t.Errorf("POST /restart went to %q, want %q", got, tt.restarted)
			}
			patched := 0
			for _, l := range out {
				if l == "patched" {
					patched++
				}
			}
			if want := len(tt.restarted); tt.patch == "echo patched" && patched != want {
				t.Errorf("the patch command ran %d times, want %d", patched, want)
			}
			// Every replica restarted is recorded, with its new server's
			// start time, for a resume; a fact restored is kept.
			for _, m := range tt.order {
				v, ok := tg.Facts.Get(m + ".restarted_at")
				want, wantOK := tt.facts[m+".restarted_at"]
				if slices.Contains(tt.restarted, m) {
					want, wantOK = restartedAt.Format(time.RFC3339Nano), true
				}
				if v != want || ok != wantOK {
					t.Errorf("fact %s.restarted_at = %q (%t), want %q (%t)", m, v, ok, want, wantOK)
				}
			}
			i := 0
			for _, l := range out {
				if i < len(tt.wantOut) && strings.Contains(l, tt.wantOut[i]) {
					i++
				}
			}
			if i < len(tt.wantOut) {
				t.Errorf("output lacks %q (in order %q)", tt.wantOut[i], tt.wantOut)
			}
		})
	}
}

func TestPatroniRestartReplicasDescribe(t *testing.T) {
	t.Parallel()
	tg, _ := rollingTarget("http://127.0.0.1:8008", "pg2", "pg1", "pg3")
	s := build(t, "patroni.restart_replicas", map[string]string{"leader": "pg1", "patch_command": "apt-get -y upgrade postgresql-16"})
	d := s.Describe(tg)
	for _, w := range []string{
		"GET http://127.0.0.1:8008/cluster once: pg1 must be the leader, pg2, pg3 its replicas",
		"\n  1. pg2: on pg2 (local): /bin/sh -c 'apt-get -y upgrade postgresql-16'; then POST <pg2's api_url>/restart {}",
		"\n  2. pg3: on pg3 (local): /bin/sh -c 'apt-get -y upgrade postgresql-16'; then POST <pg3's api_url>/restart {}",
		"lag at most 16MB", "for up to 2m0s from the request",
	} {
		if !strings.Contains(d.Command, w) {
			t.Errorf("describe command lacks %q:\n%s", w, d.Command)
		}
	}
	if !strings.HasPrefix(d.Node, "pg2, pg3 via patroni REST API") || !strings.Contains(d.Changes, "pg1 is not restarted") {
		t.Errorf("describe = %+v", d)
	}
}

func TestPatroniRestartReplicasParams(t *testing.T) {
	t.Parallel()
	if _, err := tryBuild("patroni.restart_replicas", map[string]string{}); err == nil || !strings.Contains(err.Error(), `"leader"`) {
		t.Errorf("without leader: err = %v", err)
	}
	if _, err := tryBuild("patroni.restart_replicas", map[string]string{"leader": "pg1", "within": "0s"}); err == nil || !strings.Contains(err.Error(), `"within" must be more than 0`) {
		t.Errorf("within 0s: err = %v", err)
	}
}

func TestStandbyFromLeader(t *testing.T) {
	t.Parallel()
	tg, _ := rollingTarget("http://127.0.0.1:8008", "pg1", "pg2")
	tg.Cluster.Nodes["pg1"].Conninfo = "host=db1.example port=5433 dbname=postgres"
	s := &PatroniRestartReplicas{Leader: "pg1"}
	tests := []struct {
		sender string
		want   bool
	}{
		{"127.0.0.1:5432", true}, // as /cluster gives it
		{"localhost:5432", true}, // loopback is loopback
		{"db1.example:5433", true},
		{"db1.example:5432", false},
		{"10.0.0.2:5432", false},
		{"", false},
	}
	leader := patroni.Member{Name: "pg1", Role: patroni.RoleLeader, Host: "127.0.0.1", Port: 5432}
	for _, tt := range tests {
		if got := s.fromLeader(tg, leader, tt.sender); got != tt.want {
			t.Errorf("fromLeader(%q) = %v, want %v", tt.sender, got, tt.want)
		}
	}
}
