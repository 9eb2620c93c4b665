package checks

import (
	"testing"

	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestPGRoleOnSharedSandbox(t *testing.T) {
	t.Parallel()
	tg := sandboxTarget(sandboxtest.Shared(t))
	tests := []struct {
		node, is string
		want     Status
		says     []string
	}{
		{"pg1", "primary", Pass, []string{"pg1 is a primary", "timeline 1"}},
		{"pg2", "standby", Pass, []string{"pg2 is a standby", "replayed"}},
		{"pg3", "standby", Pass, []string{"pg3 is a standby"}},
		{"pg2", "primary", Fail, []string{"pg2 is a standby (in recovery)", "pg2 is a primary"}},
		{"pg1", "standby", Fail, []string{"pg1 is a primary (not in recovery)", "pg1 is a standby"}},
		{"pg9", "primary", Error, []string{`"pg9" is not in the inventory`}},
	}
	for _, tc := range tests {
		t.Run(tc.node+" "+tc.is, func(t *testing.T) {
			t.Parallel()
			r := runCheck(t, mustBuild(t, "pg.role", map[string]any{"node": tc.node, "is": tc.is}), tg)
			assertResult(t, r, tc.want, tc.says, nil)
		})
	}
}

func TestPGRoleRejectsAnUnknownRole(t *testing.T) {
	t.Parallel()
	def, _ := Lookup("pg.role")
	if _, err := def.New(params.NewValues(map[string]any{"node": "pg1", "is": "leader"})); err == nil {
		t.Error("New accepted is: leader")
	}
	if _, probs := params.Decode(def.Params, map[string]params.Raw{"node": {Scalar: "pg1"}, "is": {Scalar: "leader"}}); len(probs) == 0 {
		t.Error("Decode accepted is: leader")
	}
}

// writable: a primary whose new transactions are read-only (as a manager
// holds a node it just promoted) is not yet a primary taking writes.
func TestPGRoleWritable(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	open := sandboxTarget(sb)
	held := sandboxTarget(sb)
	n := *held.Cluster.Nodes["pg1"]
	n.Conninfo += " options='-c default_transaction_read_only=on'"
	held.Cluster.Nodes["pg1"] = &n
	c := mustBuild(t, "pg.role", map[string]any{"node": "pg1", "is": "primary", "writable": "true"})
	assertResult(t, runCheck(t, c, open), Pass, []string{"pg1 is a primary", "pg1 is a primary taking writes"}, nil)
	assertResult(t, runCheck(t, c, held), Fail, []string{"but read-only", "pg1 is a primary taking writes"}, nil)
	def, _ := Lookup("pg.role")
	if _, err := def.New(params.NewValues(map[string]any{"node": "pg2", "is": "standby", "writable": true})); err == nil {
		t.Error("New accepted writable with is: standby")
	}
}
