package checks

import (
	"testing"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestPGSlotsOnSharedSandbox(t *testing.T) {
	t.Parallel()
	tg := sandboxTarget(sandboxtest.Shared(t))
	// The sandbox makes a slot for every node, pg1's own included: that one
	// exists but no standby uses it.
	tests := []struct {
		name  string
		raw   map[string]any
		want  Status
		says  []string
		avoid []string
	}{
		{"standbys' slots active", map[string]any{"node": "pg1", "slots": []string{"pg2", "pg3"}}, Pass,
			[]string{"pg2 active", "pg3 active"}, nil},
		{"a missing slot", map[string]any{"node": "pg1", "slots": []string{"pg2", "nosuch", "pg3"}}, Fail,
			[]string{"missing: nosuch", "pg2 active"}, []string{"missing: pg2"}},
		{"an inactive slot", map[string]any{"node": "pg1", "slots": []string{"pg1", "pg2"}}, Fail,
			[]string{"inactive: pg1", "each active"}, nil},
		{"inactive allowed", map[string]any{"node": "pg1", "slots": []string{"pg1", "pg2"}, "active": "false"}, Pass,
			[]string{"pg1 inactive"}, []string{"each active"}},
		{"missing on a standby", map[string]any{"node": "pg2", "slots": "pg3"}, Fail,
			[]string{"missing: pg3 on pg2"}, nil},
		{"unknown node", map[string]any{"node": "pg5", "slots": "pg2"}, Error,
			[]string{`"pg5"`}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runCheck(t, mustBuild(t, "pg.slots", tc.raw), tg)
			assertResult(t, r, tc.want, tc.says, tc.avoid)
		})
	}
}

func TestPGSlotsRejectsNoSlots(t *testing.T) {
	t.Parallel()
	for _, slots := range [][]string{{}, {" "}} {
		if _, err := build(t, "pg.slots", map[string]any{"node": "pg1", "slots": slots}); err == nil {
			t.Errorf("New accepted slots %q", slots)
		}
	}
}
