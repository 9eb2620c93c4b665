package checks

import (
	"slices"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// TestSyncStandbys sets synchronous_standby_names on the primary of a
// sandbox of its own (pg1, standbys pg2 and pg3 streaming) and asks whether
// pg2 could take over without leaving commits waiting.
func TestSyncStandbys(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	tg := sandboxTarget(sb)
	c := mustBuild(t, "pg.sync_standbys", map[string]any{"primary": "pg1", "candidate": "pg2"})
	tests := []struct {
		setting string
		status  Status
		want    []string
	}{
		{"", Pass, []string{"synchronous_standby_names is empty on pg1: synchronous replication is off"}},
		{"FIRST 1 (pg2)", Fail, []string{"pg2 (streaming", "pg3 (streaming", "without the candidate pg2, 0 listed standby(s) stream: none; 1 needed",
			"commits on the new primary would wait for a synchronous standby that is not there", "the old primary pg1 rejoins only later"}},
		{"ANY 1 (pg2, pg3)", Pass, []string{"without the candidate pg2, 1 listed standby(s) stream: pg3; 1 needed"}},
		{"ANY 2 (pg2, pg3)", Fail, []string{"1 listed standby(s) stream: pg3; 2 needed", "would wait"}},
		{"2 (pg2, pg3)", Fail, []string{"FIRST 2 (pg2, pg3)", "2 needed"}},
		{"*", Pass, []string{"FIRST 1 (*)", "stream: pg3; 1 needed"}},
		{`"PG3"`, Pass, []string{"stream: pg3; 1 needed"}},
		{"pg2, pg4", Fail, []string{"stream: none; 1 needed"}},
	}
	for _, tc := range tests {
		t.Run(tc.setting, func(t *testing.T) {
			alterSystem(t, sb, "pg1", "synchronous_standby_names", tc.setting, tc.setting)
			r := runCheck(t, c, tg)
			assertResult(t, r, tc.status, tc.want, nil)
			if tc.setting != "" {
				if apps, _ := r.Values["candidate_application_names"].([]string); !slices.Contains(apps, "pg2") {
					t.Errorf("values candidate_application_names = %v, want pg2 among them", r.Values["candidate_application_names"])
				}
			}
		})
	}
	// The candidate, not the node name, decides: the same setting with pg3
	// as candidate leaves pg2.
	other := mustBuild(t, "pg.sync_standbys", map[string]any{"primary": "pg1", "candidate": "pg3"})
	alterSystem(t, sb, "pg1", "synchronous_standby_names", "FIRST 1 (pg2)", "FIRST 1 (pg2)")
	assertResult(t, runCheck(t, other, tg), Pass, []string{"without the candidate pg3, 1 listed standby(s) stream: pg2"}, nil)
	// A standby is no primary to ask.
	wrong := mustBuild(t, "pg.sync_standbys", map[string]any{"primary": "pg2", "candidate": "pg3"})
	assertResult(t, runCheck(t, wrong, tg), Error, []string{"pg2 is in recovery, not a primary"}, nil)
}

func TestSyncStandbysNew(t *testing.T) {
	t.Parallel()
	if _, err := build(t, "pg.sync_standbys", map[string]any{"primary": "pg1", "candidate": "pg1"}); err == nil {
		t.Error("the same node as primary and candidate was accepted")
	}
	c := mustBuild(t, "pg.sync_standbys", map[string]any{"primary": "pg1", "candidate": "pg2"})
	if got := c.Describe(nil); !strings.Contains(got, "once pg2 takes over from pg1") {
		t.Errorf("describe = %q", got)
	}
}
