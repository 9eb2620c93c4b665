package checks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/transport"
)

func TestTopologyAndRoutesOnAHealthySandbox(t *testing.T) {
	sb := sandboxtest.Shared(t)
	tg := sandboxTarget(sb)
	tests := []struct {
		name   string
		check  Check
		want   Status
		saying string
	}{
		{"pg1 is the only primary", &Topology{Primary: "pg1"}, Pass, "pg2: standby from 127.0.0.1"},
		{"pg2 is not the primary", &Topology{Primary: "pg2"}, Fail, "pg2 is a standby, not the primary"},
		{"a subset of nodes", &Topology{Primary: "pg1", Nodes: []string{"pg1", "pg3"}}, Pass, "pg3: standby"},
		{"unknown primary", &Topology{Primary: "pg9"}, Error, `"pg9" is not in the inventory`},
		{"the pooler reaches pg1", &PoolerRoutesTo{Node: "pg1"}, Pass, "through the pooler: pg1"},
		{"the pooler does not reach pg2", &PoolerRoutesTo{Node: "pg2"}, Fail, "another server than pg2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCheck(t, tt.check, tg)
			text := r.Observed + "\n" + r.Detail
			if r.Status != tt.want || !strings.Contains(text, tt.saying) {
				t.Fatalf("%s = %s: %s; want %s saying %q", tt.check.Describe(tg), r.Status, text, tt.want, tt.saying)
			}
		})
	}
}

// An old primary restarted by hand without standby.signal is a second
// writable node: the topology check names both primaries.
func TestTopologyNamesTwoPrimaries(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	pg3, _ := sb.Node("pg3")
	ex := transport.Local{User: sb.RunAs}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctl := func(args string) {
		t.Helper()
		out, err := ex.Run(ctx, fmt.Sprintf("%s/pg_ctl %s -D %s -w -t 30 -l %s/pg3-restart.log", sb.BinDir, args, pg3.DataDir, sb.Dir))
		if err != nil || out.ExitCode != 0 {
			t.Fatalf("pg_ctl %s: %v %s", args, err, out.Combined())
		}
	}
	ctl("stop -m fast")
	if err := os.Remove(filepath.Join(pg3.DataDir, "standby.signal")); err != nil {
		t.Fatal(err)
	}
	ctl("start")
	r := runCheck(t, &Topology{Primary: "pg1"}, sandboxTarget(sb))
	if r.Status != Fail || !strings.Contains(r.Observed, "2 primaries: pg1 and pg3") || !strings.Contains(r.Detail, "pg3 is a primary too") {
		t.Fatalf("topology with pg3 promoted by hand = %s: %s\n%s; want a failure naming pg1 and pg3", r.Status, r.Observed, r.Detail)
	}
}
