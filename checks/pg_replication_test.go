package checks

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestPGReplicationOnSharedSandbox(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	tg := sandboxTarget(sb)
	pg1 := nodeAddr(sandboxNode(t, sb, "pg1"))
	pg3 := nodeAddr(sandboxNode(t, sb, "pg3"))
	tests := []struct {
		name string
		raw  map[string]any
		want Status
		says []string
	}{
		{"pg2 from pg1", map[string]any{"node": "pg2", "upstream": "pg1"}, Pass,
			[]string{"pg2 streams from pg1 (" + pg1 + ")", "bytes behind", "16777216 bytes (16MB)", "30s"}},
		{"pg3 from pg1", map[string]any{"node": "pg3", "upstream": "pg1"}, Pass,
			[]string{"pg3 streams from pg1"}},
		{"pg2 from pg3, which it does not", map[string]any{"node": "pg2", "upstream": "pg3"}, Fail,
			[]string{"pg2 streams from " + pg1 + ", not from pg3 (" + pg3 + ")"}},
		{"a primary is no standby", map[string]any{"node": "pg1", "upstream": "pg2"}, Fail,
			[]string{"pg1 is a primary"}},
		{"unknown upstream", map[string]any{"node": "pg2", "upstream": "pg7"}, Error,
			[]string{`"pg7" is not in the inventory`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Lag on an idle sandbox is a few bytes at most, but a
			// checkpoint may land between the two reads: poll briefly.
			r := runUntil(t, mustBuild(t, "pg.replication", tc.raw), tg, tc.want, 5*time.Second)
			assertResult(t, r, tc.want, tc.says, nil)
			if tc.want == Pass {
				hasValue(t, r, "streaming", true)
				hasValue(t, r, "sender", pg1)
				hasValue(t, r, "lag_bytes", nil)
				hasValue(t, r, "lag_seconds", nil)
			}
		})
	}
}

// TestPGReplicationBrokenLink points pg3 at a closed port: it still answers
// SQL but no longer replicates, which pg.replication and quorum.reachable
// must both say.
func TestPGReplicationBrokenLink(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	tg := sandboxTarget(sb)
	runSQL(t, sb, "pg3",
		"ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=postgres application_name=pg3 sslmode=disable connect_timeout=2'",
		"SELECT pg_reload_conf()")
	waitFor(t, "pg3 stops streaming", 10*time.Second, func() (bool, string) {
		st, err := nodeState(t, sb, "pg3")
		return err == nil && !st.Streaming, fmt.Sprintf("%+v, %v", st, err)
	})

	r := runCheck(t, mustBuild(t, "pg.replication", map[string]any{"node": "pg3", "upstream": "pg1"}), tg)
	assertResult(t, r, Fail, []string{"pg3", "not streaming", "pg3 streaming from pg1"}, nil)
	hasValue(t, r, "streaming", false)

	r = runCheck(t, mustBuild(t, "pg.replication", map[string]any{"node": "pg2", "upstream": "pg1"}), tg)
	assertResult(t, r, Pass, []string{"pg2 streams from pg1"}, nil)

	r = runCheck(t, mustBuild(t, "quorum.reachable", map[string]any{}), tg)
	assertResult(t, r, Fail, []string{"3 of 3 members reachable", "pg3 answers but its replication link is down", "pg2 answered (standby, streaming from"}, nil)
}

func TestByteLimit(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{16 << 20: "16777216 bytes (16MB)", 184: "184 bytes", 1: "1 byte"} {
		if got := byteLimit(n); got != want {
			t.Errorf("byteLimit(%d) = %q, want %q", n, got, want)
		}
	}
}
