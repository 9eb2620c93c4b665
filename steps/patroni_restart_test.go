package steps

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/patroni/patronitest"
)

func TestPatroniRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		self   string
		polls  int
		status int
		reason string
		within time.Duration
		// the server's start time stays the same through the restart
		sameStart bool
		// the start time cannot be read before the request
		unknownBefore bool
		wantErr       string
		wantRestarts  int
		wantLastPrint string
		wantFact      bool
	}{
		{name: "replica runs again", self: "pg2", polls: 3, within: 10 * time.Second, wantRestarts: 1, wantFact: true,
			wantLastPrint: "pg2: PostgreSQL started at 2026-11-03T02:16:00.123456Z (was 2026-11-03T02:15:00.123456Z); fact pg2.restarted_at"},
		{name: "leader runs again", self: "pg1", polls: 0, within: 10 * time.Second, wantRestarts: 1, wantFact: true,
			wantLastPrint: "pg1: PostgreSQL started at 2026-11-03T02:16:00.123456Z (was 2026-11-03T02:15:00.123456Z)"},
		{name: "start time not known before", self: "pg2", within: 10 * time.Second, unknownBefore: true, wantRestarts: 1, wantFact: true,
			wantLastPrint: "pg2: PostgreSQL started at 2026-11-03T02:16:00.123456Z (not known before the request)"},
		{name: "runs, but the same server", self: "pg2", within: time.Second, sameStart: true, wantRestarts: 1,
			wantErr: `patroni restart "pg2": patroni shows pg2 running again, but its PostgreSQL still runs the server started at 2026-11-03T02:15:00.123456Z, before the request`},
		{name: "never runs again", self: "pg2", polls: -1, within: 600 * time.Millisecond, wantRestarts: 1,
			wantErr: `patroni restart "pg2": pg2 does not run again within 600ms`},
		{name: "refused", self: "pg2", status: 400, reason: "Unknown filter", within: time.Second, wantRestarts: 1,
			wantErr: `patroni restart "pg2": patroni refused (400): Unknown filter; nothing changed`},
		{name: "unknown member", self: "pg9", within: time.Second,
			wantErr: `lists no member "pg9"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := patronitest.New(t)
			f.Self, f.RestartPolls, f.RestartStatus, f.RestartReason = tt.self, tt.polls, tt.status, tt.reason
			tg, out := patroniTarget(f.URL())
			s := &PatroniRestart{Node: tt.self, Within: tt.within}
			s.startTime = func(_ context.Context, _ *cluster.Target, node string) (time.Time, error) {
				if node != tt.self {
					t.Errorf("start time of %s asked, want %s's", node, tt.self)
				}
				f.Mu.Lock()
				restarted := len(f.Restarts) > 0
				f.Mu.Unlock()
				switch {
				case !restarted && tt.unknownBefore:
					return time.Time{}, errors.New("connection refused")
				case restarted && !tt.sameStart:
					return restartedAt, nil
				}
				return startedAt, nil
			}
			if d := s.Describe(tg); !strings.Contains(d.Command, "GET "+f.URL()+"/cluster for "+tt.self+"'s api_url, then POST <that scheme://host:port>/restart {}") {
				t.Errorf("describe = %+v", d)
			}
			err := s.Apply(context.Background(), tg)
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if got := len(f.Restarts); got != tt.wantRestarts {
				t.Errorf("POST /restart %d times, want %d", got, tt.wantRestarts)
			}
			for _, b := range f.Restarts {
				if b != "{}" {
					t.Errorf("POST /restart body %q, want {}", b)
				}
			}
			if v, ok := tg.Facts.Get(tt.self + ".restarted_at"); ok != tt.wantFact || (ok && v != restartedAt.Format(time.RFC3339Nano)) {
				t.Errorf("fact %s.restarted_at = %q (%t), want it recorded: %t", tt.self, v, ok, tt.wantFact)
			}
			if tt.wantLastPrint != "" {
				if last := (*out)[len(*out)-1]; !strings.Contains(last, tt.wantLastPrint) {
					t.Errorf("output = %q", *out)
				}
				if n := f.Count("GET /cluster"); n < tt.polls+2 {
					t.Errorf("GET /cluster %d times, want at least %d", n, tt.polls+2)
				}
			}
		})
	}
}
