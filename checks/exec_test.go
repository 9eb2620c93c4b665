package checks

import (
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
)

func TestExecRun(t *testing.T) {
	t.Parallel()
	inventory := &cluster.Target{Cluster: &cluster.Cluster{Nodes: map[string]*cluster.Node{
		"pg1": {Name: "pg1", Host: cluster.Host{Transport: "local"}},
		"pg2": {Name: "pg2", Host: cluster.Host{Transport: "rsh", Address: "postgres@pg2"}},
	}}}
	long := `for i in $(seq 1 50); do echo "line $i of a chatty command that goes on and on and on, well past any reasonable width"; done; exit 4`
	tests := []struct {
		name    string
		command string
		node    string
		target  *cluster.Target
		timeout time.Duration
		status  Status
		want    []string
		avoid   []string
	}{
		{name: "true passes", command: "true", target: &cluster.Target{},
			status: Pass, want: []string{`"true" exited 0 on local`}},
		{name: "nil target runs locally", command: "true",
			status: Pass, want: []string{`"true" exited 0 on local`}},
		{name: "false fails", command: "false", target: &cluster.Target{},
			status: Fail, want: []string{`"false" exited 1 on local with no output`, "exit 0"}},
		{name: "exit 3 fails with its output", command: "echo to-stdout; echo to-stderr >&2; exit 3", target: &cluster.Target{},
			status: Fail, want: []string{"exited 3 on local", "to-stdout", "to-stderr", "exit 0"}},
		{name: "long output keeps only the tail", command: long, target: &cluster.Target{},
			status: Fail, want: []string{"exited 4", "line 50 of", "…"}, avoid: []string{"line 1 of", "line 45 of"}},
		{name: "cut off by ctx is an error", command: "echo started; sleep 10", target: &cluster.Target{}, timeout: 200 * time.Millisecond,
			status: Error, want: []string{"cut off", "started"}},
		{name: "local node", command: "test -d /", node: "pg1", target: inventory,
			status: Pass, want: []string{`"test -d /" exited 0 on pg1`}},
		{name: "unknown node is an error", command: "true", node: "pg9", target: inventory,
			status: Error, want: []string{`node "pg9" is not in the inventory`}},
		{name: "unknown transport is an error", command: "true", node: "pg2", target: inventory,
			status: Error, want: []string{`transport "rsh" is not supported`}},
		{name: "node without inventory is an error", command: "true", node: "pg1",
			status: Error, want: []string{"no inventory"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := map[string]any{"command": tc.command}
			if tc.node != "" {
				raw["node"] = tc.node
			}
			c := mustBuild(t, "exec", raw)
			r := runTimed(t, c, tc.target, tc.timeout)
			assertResult(t, r, tc.status, tc.want, tc.avoid)
			if len(r.Detail) > 300+len("…") {
				t.Errorf("detail is %d bytes long, want the output cut to 300", len(r.Detail))
			}
		})
	}
}

func TestExecNewAndDescribe(t *testing.T) {
	t.Parallel()
	if _, err := build(t, "exec", map[string]any{"command": "  "}); err == nil {
		t.Error("new accepted an empty command")
	}
	tests := []struct {
		raw  map[string]any
		want string
	}{
		{map[string]any{"command": "test -d /x"}, `"test -d /x" exits 0 on local`},
		{map[string]any{"command": "pg_isready", "node": "pg1"}, `"pg_isready" exits 0 on pg1`},
	}
	for _, tc := range tests {
		if got := mustBuild(t, "exec", tc.raw).Describe(nil); got != tc.want {
			t.Errorf("describe %v = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

func TestTailLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		n     int
		limit int
		want  string
	}{
		{"empty", "", 5, 300, ""},
		{"blank lines dropped", "a\n\n  b  \n\n", 5, 300, "a\nb"},
		{"last n lines", "1\n2\n3\n4", 2, 300, "3\n4"},
		{"cut to limit", "abcdefghij", 5, 4, "…ghij"},
		{"cut at a character boundary", "ééé", 5, 3, "…é"},
		{"invalid utf-8 replaced", "a\xffb", 5, 300, "a?b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tailLines(tc.in, tc.n, tc.limit); got != tc.want {
				t.Errorf("tailLines(%q, %d, %d) = %q, want %q", tc.in, tc.n, tc.limit, got, tc.want)
			}
		})
	}
}
