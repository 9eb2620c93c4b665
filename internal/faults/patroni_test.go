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
	t.Run("patroni: SIGKILL in the rolling restart after the first replica's restart", func(t *testing.T) {
		killRollingRestart(t, sb)
	})
}

// postmasterStart is when a node's PostgreSQL last started.
func postmasterStart(t *testing.T, sb *sandbox.Sandbox, n sandbox.Node) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	defer cancel()
	conn, err := pg.Connect(ctx, sb.Conninfo(n, "postgres"), pollTimeout)
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	defer conn.Close(context.Background())
	var at time.Time
	if err := conn.QueryRow(ctx, "SELECT pg_postmaster_start_time()").Scan(&at); err != nil {
		t.Fatalf("%s: pg_postmaster_start_time(): %v", n.Name, err)
	}
	return at
}

// killRollingRestart kills the monthly-patch playbook once the first
// replica has been patched, restarted and seen streaming again, while the
// step goes on to the next. The resume must neither patch nor restart that
// replica again, and must patch and restart every other member.
func killRollingRestart(t *testing.T, sb *sandbox.Sandbox) {
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
	killWhen(t, p, jdir, "fact "+first+".restarted_at", 0, func(e journalEvent) bool {
		return e.Event == "fact" && e.Fact != nil && e.Fact.Key == first+".restarted_at"
	})
	killed := time.Now()
	fn, _ := sb.Node(first)
	firstStarted := postmasterStart(t, sb, fn)

	res := runBinary(t, work, "resume", "--yes", jd)
	t.Logf("resume: %s", res)
	if res.code != 0 {
		t.Fatalf("resume: exit %d, want 0", res.code)
	}
	out := res.output()
	if !strings.Contains(out, first+" (1 of 2): restarted by this run before it was interrupted") {
		t.Errorf("the resume does not say it skips %s, restarted before the kill", first)
	}
	if n := strings.Count(out, "| patched "); n != 2 {
		t.Errorf("the resume ran the patch command %d times, want 2 (the other replica and the old leader)", n)
	}
	for _, n := range sb.Nodes {
		at := postmasterStart(t, sb, n)
		switch {
		case n.Name == first && !at.Equal(firstStarted):
			t.Errorf("%s restarted again by the resume: postmaster started %s, it was %s at the kill", n.Name, at, firstStarted)
		case n.Name != first && at.Before(killed.Add(-time.Second)):
			t.Errorf("%s postmaster started %s, before the kill at %s: the resume did not restart it", n.Name, at, killed)
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
