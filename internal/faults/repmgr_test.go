package faults

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/repmgr"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
)

const repmgrPlaybook = "repmgr-switchover"

// repmgrFaults kill repmgr-switchover at its switchover steps, with
// repmgrd paused and clients held: the resume must finish the switchover,
// register the new shape with repmgr and unpause repmgrd. The first runs
// in every test run; the others with SWITCHOVER_FULL=1.
var repmgrFaults = []fault{
	{"repmgr: SIGKILL inside promote", "promote", "running", 0},
	{"repmgr: SIGKILL inside stop-primary", "stop-primary", "running", 0},
	{"repmgr: SIGKILL after pause-repmgrd", "pause-repmgrd", "done", 0},
	{"repmgr: SIGKILL inside register-with-repmgr", "register-with-repmgr", "running", 0},
}

// TestKillAndResumeRepmgr runs the repmgr faults against one repmgr
// sandbox (real repmgr and repmgrd), alternating the direction. After each
// resume repmgr's view must agree with PostgreSQL's and repmgrd must be
// unpaused on every node.
func TestKillAndResumeRepmgr(t *testing.T) {
	cases := repmgrFaults[:1]
	if os.Getenv("SWITCHOVER_FULL") != "" {
		cases = repmgrFaults
	}
	sb := sandboxtest.NewRepmgr(t, 2)
	testbin.Build(t)
	for i, f := range cases {
		t.Run(f.name, func(t *testing.T) {
			runCase(t, sb, repmgrPlaybook, 200+i, f)
			repmgrSettled(t, sb)
		})
	}
}

// repmgrSettled fails the test unless repmgr registers what PostgreSQL
// runs and repmgrd is unpaused on every node.
func repmgrSettled(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	defer cancel()
	c := sb.Cluster()
	r := (&checks.RepmgrAgrees{}).Run(ctx, &cluster.Target{Cluster: c})
	if r.Status != checks.Pass {
		t.Errorf("after the resume: repmgr.agrees %s: %s\n%s", r.Status, r.Observed, r.Detail)
	}
	v := repmgr.Read(ctx, c, "")
	var paused []string
	for _, d := range v.Daemons {
		if d.Error != "" || d.Paused {
			paused = append(paused, d.Node)
		}
	}
	if len(paused) > 0 {
		t.Errorf("after the resume: repmgrd paused (or unknown) on %s, want unpaused everywhere", strings.Join(paused, ", "))
	}
	t.Logf("repmgr after the resume: %s", v)
}
