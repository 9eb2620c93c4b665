package steps

import (
	"context"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
)

// repmgr.unpause acts only when this run's journal says it paused repmgrd:
// a pause an operator set, or one this run found already there, is left.
// Without the fact it touches nothing (the inventory here names no host
// that could answer).
func TestRepmgrUnpauseOnlyWhatTheRunPaused(t *testing.T) {
	t.Parallel()
	for _, fact := range []string{"", "no"} {
		facts := &cluster.Facts{}
		if fact != "" {
			facts.Set(RepmgrPausedFact, fact)
		}
		var out []string
		tg := &cluster.Target{Cluster: &cluster.Cluster{Name: "c", Nodes: map[string]*cluster.Node{"pg1": {Name: "pg1", Conninfo: "host=192.0.2.1 port=1"}},
			Manager: &cluster.Manager{Kind: "repmgr", Configs: map[string]string{"pg1": "/nonexistent/repmgr.conf"}}},
			Facts: facts, Output: func(l string) { out = append(out, l) }}
		if err := (&RepmgrPause{Pause: false}).Apply(context.Background(), tg); err != nil {
			t.Errorf("fact %q: unpause: %v", fact, err)
		}
		if got := strings.Join(out, "\n"); !strings.Contains(got, "did not pause repmgrd") {
			t.Errorf("fact %q: output %q, want it to say the run did not pause repmgrd", fact, got)
		}
	}
}

func TestRepmgrDescribe(t *testing.T) {
	t.Parallel()
	tg := &cluster.Target{Cluster: &cluster.Cluster{Name: "c", Order: []string{"pg1", "pg2"},
		Nodes:   map[string]*cluster.Node{"pg1": {Name: "pg1"}, "pg2": {Name: "pg2"}},
		Manager: &cluster.Manager{Kind: "repmgr", Configs: map[string]string{"pg1": "/etc/r1.conf", "pg2": "/etc/r2.conf"}}}}
	tests := []struct {
		step Step
		want []string
	}{
		{&RepmgrPause{Pause: true}, []string{"repmgr -f /etc/r1.conf service pause", "unless every node shows repmgrd paused already"}},
		{&RepmgrPause{Pause: false}, []string{"repmgr -f /etc/r1.conf service unpause", "only if this run paused repmgrd"}},
		{&RepmgrRegister{Primary: "pg2"}, []string{"on pg2: repmgr -f /etc/r2.conf primary register --force", "on pg1: repmgr -f /etc/r1.conf standby register --force"}},
	}
	for _, tt := range tests {
		e := tt.step.Describe(tg)
		for _, w := range tt.want {
			if !strings.Contains(e.Command, w) {
				t.Errorf("%T: Describe().Command = %q, want it to contain %q", tt.step, e.Command, w)
			}
		}
	}
}
