package checks

import (
	"testing"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestQuorumOnSharedSandbox(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	tg := sandboxTarget(sb)
	closed := closedPort(t)
	pg1 := nodeAddr(sandboxNode(t, sb, "pg1"))
	tests := []struct {
		name string
		raw  map[string]any
		want Status
		says []string
	}{
		{"every node", map[string]any{}, Pass,
			[]string{"3 of 3 members reachable (majority needs 2)", "pg1 answered (primary)", "pg2 answered (standby, streaming from " + pg1 + ")", "pg3 answered (standby, streaming"}},
		{"all required", map[string]any{"require": "all"}, Pass, []string{"3 of 3 members reachable (all needs 3)"}},
		{"named nodes", map[string]any{"nodes": []string{"pg1", "pg2"}}, Pass, []string{"2 of 2 members reachable"}},
		{"a witness down, majority", map[string]any{"witnesses": []string{closed}}, Pass,
			[]string{"3 of 4 members reachable (majority needs 3)", "witness " + closed + " unreachable (connection refused)"}},
		{"a witness down, all", map[string]any{"witnesses": []string{closed}, "require": "all"}, Fail,
			[]string{"only 3 of 4 members reachable, all needs 4; unreachable: " + closed}},
		{"a witness up", map[string]any{"nodes": []string{"pg1"}, "witnesses": []string{pg1}}, Pass,
			[]string{"witness " + pg1 + " accepted a tcp connection"}},
		{"unknown node", map[string]any{"nodes": []string{"pg1", "pg6"}}, Error, []string{`"pg6" is not in the inventory`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runCheck(t, mustBuild(t, "quorum.reachable", tc.raw), tg)
			assertResult(t, r, tc.want, tc.says, nil)
		})
	}
}

func TestQuorumRejectsABadWitness(t *testing.T) {
	t.Parallel()
	if _, err := build(t, "quorum.reachable", map[string]any{"witnesses": []string{"no-port"}}); err == nil {
		t.Error("New accepted witness no-port")
	}
}

// TestQuorumStoppedNodes stops standbys one by one: with one of three down
// a majority remains, with two it does not.
func TestQuorumStoppedNodes(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	tg := sandboxTarget(sb)
	stopNode(t, sb, "pg3")

	r := runCheck(t, mustBuild(t, "pg.reachable", map[string]any{"node": "pg3"}), tg)
	assertResult(t, r, Error, []string{"connect pg3", nodeAddr(sandboxNode(t, sb, "pg3")), "connection refused"}, nil)

	majority := mustBuild(t, "quorum.reachable", map[string]any{})
	all := mustBuild(t, "quorum.reachable", map[string]any{"require": "all"})
	r = runCheck(t, majority, tg)
	assertResult(t, r, Pass, []string{"2 of 3 members reachable (majority needs 2)", "pg3 unreachable", "connection refused", "pg2 answered (standby, streaming"}, nil)
	hasValue(t, r, "reachable", 2)
	r = runCheck(t, all, tg)
	assertResult(t, r, Fail, []string{"only 2 of 3 members reachable, all needs 3; unreachable: pg3"}, nil)

	stopNode(t, sb, "pg2")
	r = runCheck(t, majority, tg)
	assertResult(t, r, Fail, []string{"only 1 of 3 members reachable, majority needs 2; unreachable: pg2, pg3", "pg1 answered (primary)"}, nil)
}
