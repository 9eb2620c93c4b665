package faults

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
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
	testbin.Build(t)
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
	for _, k := range rollingKills {
		t.Run(k.name, func(t *testing.T) { killRollingRestart(t, sb, k) })
	}
}

// postmasterStart is when a node's PostgreSQL last started. A node caught
// restarting (the kill may land just after a restart request went out) has
// pollTimeout to answer.
func postmasterStart(t *testing.T, sb *sandbox.Sandbox, n sandbox.Node) time.Time {
	t.Helper()
	read := func() (time.Time, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		conn, err := pg.Connect(ctx, sb.Conninfo(n, "postgres"), 3*time.Second)
		if err != nil {
			return time.Time{}, err
		}
		defer conn.Close(context.Background())
		var at time.Time
		err = conn.QueryRow(ctx, "SELECT pg_postmaster_start_time()").Scan(&at)
		return at, err
	}
	for deadline := time.Now().Add(pollTimeout); ; time.Sleep(50 * time.Millisecond) {
		at, err := read()
		if err == nil {
			return at
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: pg_postmaster_start_time(): %v", n.Name, err)
		}
	}
}

// rollingKill is where a rolling restart is killed, and what its resume
// must do.
type rollingKill struct {
	name string
	// at matches the journal event to kill at; first is the first replica
	// the run restarts, primary the leader at the start.
	at func(e testbin.Event, first, primary string) bool
	// restarted names who the resume must restart: "others" every node but
	// the first replica, "primary" only the old leader.
	restarted string
	patched   int    // how many times the resume runs the patch command
	says      string // a line the resume must print, %s the first replica
}

// rollingKills cut the monthly-patch playbook off inside its restarts. A
// replica's restart being journaled, the resume must restart exactly the
// members this run has not restarted yet: none twice, none left out.
var rollingKills = []rollingKill{
	{name: "patroni: SIGKILL in the rolling restart after the first replica's restart",
		at: func(e testbin.Event, first, _ string) bool {
			return e.Event == "fact" && e.Fact != nil && e.Fact.Key == first+".restarted_at"
		},
		restarted: "others", patched: 2, says: "%s (1 of 2): restarted by this run before it was interrupted"},
	{name: "patroni: SIGKILL as the old leader's restart starts",
		at:        func(e testbin.Event, _, _ string) bool { return testbin.MainStep("restart-old-leader", "running")(e) },
		restarted: "primary", patched: 0, says: "step \"restart-old-leader\": its postconditions do not hold; it is idempotent, so it runs again"},
}

// killRollingRestart kills the monthly-patch playbook where k says, then
// resumes it: every member ends restarted exactly once by the run, and the
// cluster ends healthy with the first replica leading.
func killRollingRestart(t *testing.T, sb *sandbox.Sandbox, k rollingKill) {
	before, err := waitHealthy(t, sb)
	if err != nil {
		t.Fatalf("before the case: %v", err)
	}
	primary, first := before.primary, ""
	for _, n := range sb.Nodes {
		if n.Name != primary && first == "" {
			first = n.Name
		}
	}
	t.Logf("before: %s; the first replica restarted is %s", before.roles, first)
	work, jdir := t.TempDir(), t.TempDir()
	jd := "--journal-dir=" + jdir
	p := start(t, work, "run", "patroni-rolling-restart", "-i", sb.Inventory(), "--yes", jd,
		"--var", "primary="+primary, "--var", "candidate="+first, "--var", "patch_command=echo patched $(hostname)")
	p.KillWhen(jdir, k.name, journalStall, 0, func(e testbin.Event) bool { return k.at(e, first, primary) })
	atKill := map[string]time.Time{}
	for _, n := range sb.Nodes {
		atKill[n.Name] = postmasterStart(t, sb, n)
	}

	res := runBinary(t, work, "resume", "--yes", jd)
	t.Logf("resume: %s", res)
	if res.Code != 0 {
		t.Fatalf("resume: exit %d, want 0", res.Code)
	}
	out := res.Output()
	if w := strings.ReplaceAll(k.says, "%s", first); !strings.Contains(out, w) {
		t.Errorf("the resume does not say %q", w)
	}
	if n := strings.Count(out, "| patched "); n != k.patched {
		t.Errorf("the resume ran the patch command %d times, want %d", n, k.patched)
	}
	for _, n := range sb.Nodes {
		at := postmasterStart(t, sb, n)
		want := n.Name != first
		if k.restarted == "primary" {
			want = n.Name == primary
		}
		switch {
		case want && at.Equal(atKill[n.Name]):
			t.Errorf("%s still runs the server started %s, as at the kill: the resume did not restart it", n.Name, at)
		case !want && !at.Equal(atKill[n.Name]):
			t.Errorf("%s restarted by the resume (server started %s, was %s at the kill): restarted twice by the run", n.Name, at, atKill[n.Name])
		}
	}
	after, err := waitHealthy(t, sb)
	if err != nil {
		t.Fatalf("after the resume: %v", err)
	}
	if after.primary != first {
		t.Errorf("after the resume %s leads, want %s", after.primary, first)
	}
	t.Logf("after: %s", after.roles)
}
