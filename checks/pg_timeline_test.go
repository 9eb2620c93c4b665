package checks

import (
	"testing"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestPGTimelineOnSharedSandbox(t *testing.T) {
	t.Parallel()
	tg := sandboxTarget(sandboxtest.Shared(t))
	tests := []struct {
		name string
		raw  map[string]any
		want Status
		says []string
	}{
		{"primary on 1", map[string]any{"node": "pg1", "is": "1"}, Pass, []string{"pg1 is on timeline 1"}},
		{"standby on 1", map[string]any{"node": "pg2", "is": "1"}, Pass, []string{"pg2 is on timeline 1"}},
		{"standby same as primary", map[string]any{"node": "pg3", "same_as": "pg1"}, Pass,
			[]string{"pg3 is on timeline 1, pg1 on timeline 1"}},
		{"not on 2", map[string]any{"node": "pg1", "is": "2"}, Fail,
			[]string{"pg1 is on timeline 1", "pg1 on timeline 2"}},
		{"same as a missing node", map[string]any{"node": "pg1", "same_as": "pg8"}, Error,
			[]string{`"pg8" is not in the inventory`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runCheck(t, mustBuild(t, "pg.timeline", tc.raw), tg)
			assertResult(t, r, tc.want, tc.says, nil)
			if tc.want != Error {
				hasValue(t, r, "timeline", 1)
			}
		})
	}
}

func TestPGTimelineRejectsBadParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  map[string]any
	}{
		{"neither", map[string]any{"node": "pg1"}},
		{"both", map[string]any{"node": "pg1", "is": "1", "same_as": "pg2"}},
		{"same as itself", map[string]any{"node": "pg1", "same_as": "pg1"}},
		{"timeline 0", map[string]any{"node": "pg1", "is": "0"}},
		{"negative", map[string]any{"node": "pg1", "is": "-3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if c, err := build(t, "pg.timeline", tc.raw); err == nil {
				t.Errorf("New accepted %v: %s", tc.raw, c.Describe(nil))
			} else {
				t.Logf("rejected: %v", err)
			}
		})
	}
}
