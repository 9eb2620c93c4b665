package faults

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

const patroniPlaybook = "patroni-switchover"

// patroniFaults kill the patroni-switchover playbook where Patroni goes on
// without us: with clients held in a paused pooler, inside the switchover
// step (the request sent or about to be, Patroni switching over on its
// own), and right after it. The resume must find the switchover done or
// under way, never send a request Patroni would refuse, resume the pooler
// and finish: one leader, the candidate, the others streaming from it.
var patroniFaults = []fault{
	{"patroni: SIGKILL after pause-pooler", "pause-pooler", "done", 0},
	{"patroni: SIGKILL inside switchover", "switchover", "running", 0},
	// The request is out and Patroni is demoting the leader: the run dies
	// while clients are held and Patroni carries on alone.
	{"patroni: SIGKILL 500ms into switchover", "switchover", "running", 500 * time.Millisecond},
	{"patroni: SIGKILL after switchover", "switchover", "done", 0},
}

// switchoverRequests counts the switchover requests the members' Patroni
// logged, so far.
func switchoverRequests(t *testing.T, sb *sandbox.Sandbox) int {
	t.Helper()
	n := 0
	for _, node := range sb.Nodes {
		b, err := os.ReadFile(filepath.Join(sb.Dir, "patroni-"+node.Name+".log"))
		if err != nil {
			t.Fatalf("patroni log of %s: %v", node.Name, err)
		}
		n += bytes.Count(b, []byte("received switchover request"))
	}
	return n
}

// TestKillAndResumePatroni runs the Patroni faults against one Patroni
// sandbox (real Patroni and etcd), alternating the direction.
func TestKillAndResumePatroni(t *testing.T) {
	sb := sandboxtest.NewPatroni(t, 2)
	binary(t)
	for i, f := range patroniFaults {
		ok := t.Run(f.name, func(t *testing.T) {
			before := switchoverRequests(t, sb)
			runCase(t, sb, patroniPlaybook, len(faults)+i, f)
			// Killed before the request or after it, the switchover is
			// asked for exactly once: a resume follows one under way.
			if n := switchoverRequests(t, sb) - before; n != 1 {
				t.Errorf("Patroni received %d switchover requests in this case, want 1", n)
			}
		})
		if !ok {
			t.Logf("case %q failed", f.name)
		}
	}
}
