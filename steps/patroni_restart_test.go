package steps

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/patroni/patronitest"
)

func TestPatroniRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		self          string
		polls         int
		status        int
		reason        string
		within        time.Duration
		wantErr       string
		wantRestarts  int
		wantLastPrint string
	}{
		{name: "replica runs again", self: "pg2", polls: 3, within: 10 * time.Second, wantRestarts: 1, wantLastPrint: "pg2 runs again"},
		{name: "leader runs again", self: "pg1", polls: 0, within: 10 * time.Second, wantRestarts: 1, wantLastPrint: "pg1 runs again"},
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
