package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/canary"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
)

// hostsWait bounds every wait on the multi-host sandbox: replication over
// its network reconnects within wal_retrieve_retry_interval (5s), and the
// machine may be loaded.
const hostsWait = 60 * time.Second

// TestHostsOfTheirOwn brings a multi-host sandbox up with the binary
// (`sandbox up --hosts`), runs the shipped streaming playbook over ssh
// there and back, then partitions the network for real: a host cut off,
// the path between the primary and the candidate cut while this host
// still reaches both, and the candidate's host cut right after its
// promotion. It brings the sandbox down with the binary and finds no
// namespace, link or process of it left. One sandbox for every case; each
// case heals what it cut.
func TestHostsOfTheirOwn(t *testing.T) {
	dir := sandboxtest.HostsDir(t)
	work := t.TempDir()
	res := runBinary(t, work, "sandbox", "up", "--hosts", "--dir", dir)
	var sb *sandbox.Sandbox
	t.Cleanup(func() {
		if _, err := os.Stat(dir); err != nil {
			return
		}
		if sb == nil {
			if sb, _ = sandbox.Load(dir); sb == nil {
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := sb.Down(ctx); err != nil {
			t.Errorf("sandbox down: %v", err)
		}
	})
	if res.Code != 0 {
		t.Fatalf("sandbox up --hosts: %s", res)
	}
	sb, err := sandbox.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if sb.Net == nil {
		t.Fatalf("sandbox up --hosts recorded no network: %+v", sb)
	}
	inv, err := os.ReadFile(sb.Inventory())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range sb.Nodes {
		h, _ := sb.Net.Host(n.Name)
		for _, want := range []string{fmt.Sprintf("host=%s port=%d", h.Addr, n.Port), fmt.Sprintf("address: \"root@%s\"", h.Addr)} {
			if !strings.Contains(string(inv), want) {
				t.Fatalf("inventory does not reach %s by its own host (%q):\n%s", n.Name, want, inv)
			}
		}
	}
	if !strings.Contains(string(inv), "transport: ssh") || strings.Contains(string(inv), "127.0.0.1") {
		t.Fatalf("inventory is not all over ssh and the hosts' addresses:\n%s", inv)
	}

	ok := t.Run("there and back over ssh", func(t *testing.T) {
		for _, sw := range [][2]string{{"pg1", "pg2"}, {"pg2", "pg1"}} {
			w := startWriter(t, sb, "hosts_roundtrip")
			smp := sandboxtest.StartSampler(sb)
			res := runBinary(t, work, "run", "postgres-streaming-switchover", "-i", sb.Inventory(), "--yes",
				"--journal-dir="+t.TempDir(), "--var", "primary="+sw[0], "--var", "candidate="+sw[1])
			seen := smp.Finish()
			if res.Code != 0 {
				t.Fatalf("%s -> %s over ssh: %s", sw[0], sw[1], res)
			}
			if !strings.Contains(res.Stdout, "0 lost") {
				t.Errorf("%s -> %s: the run's canary did not report 0 lost:\n%s", sw[0], sw[1], res.Stdout)
			}
			top := waitHealthyHosts(t, sb)
			if top.primary != sw[1] {
				t.Fatalf("%s -> %s: the primary is %s", sw[0], sw[1], top.roles)
			}
			stopWriter(t, w)
			seen.CheckKept(t, sb, top.primary)
			t.Logf("%s -> %s over ssh: %s", sw[0], sw[1], top.roles)
		}
	})
	if !ok {
		t.FailNow() // the partitions below assume pg1 primary
	}

	t.Run("a host cut off: plan refuses, naming it", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), hostsWait)
		defer cancel()
		if err := sb.Isolate(ctx, "pg3"); err != nil {
			t.Fatal(err)
		}
		defer heal(t, sb)
		r := quorumAll(t, sb)
		if r.Status != checks.Fail || !strings.Contains(r.Observed, "unreachable: pg3") || !strings.Contains(r.Observed, sb.Addr("pg3")) {
			t.Errorf("quorum.reachable with pg3 cut off: want a failure naming pg3 and its address, got %s: %s", r.Status, r.Observed)
		}
		res := runBinary(t, work, "plan", "postgres-streaming-switchover", "-i", sb.Inventory(), "--journal-dir="+t.TempDir())
		if res.Code != 3 {
			t.Fatalf("plan with pg3 cut off: want exit 3 (a precondition failed): %s", res)
		}
		// Preflight stops at its first failed check: whichever asks pg3
		// first names it.
		out := res.Output()
		for _, want := range []string{`stop at step "preflight"`, "pg3", sb.Addr("pg3") + ":"} {
			if !strings.Contains(out, want) {
				t.Errorf("plan's refusal does not name %q:\n%s", want, out)
			}
		}
	})

	t.Run("the path between primary and candidate cut: run refuses before holding a client", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), hostsWait)
		defer cancel()
		if err := sb.CutPath(ctx, "pg1", "pg2"); err != nil {
			t.Fatal(err)
		}
		defer heal(t, sb)
		// This host still reaches both; only their replication breaks.
		waitFor(t, "pg2 answers this host but no longer streams from pg1", func(ctx context.Context) error {
			for _, name := range []string{"pg1", "pg2"} {
				if _, err := inspectNode(ctx, sb, sandboxtest.Node(t, sb, name)); err != nil {
					return fmt.Errorf("%s does not answer this host: %w", name, err)
				}
			}
			st, _ := inspectNode(ctx, sb, sandboxtest.Node(t, sb, "pg2"))
			if st.Streaming {
				return fmt.Errorf("pg2 still streams from %s", st.Upstream)
			}
			return nil
		})
		r := quorumAll(t, sb)
		if r.Status != checks.Fail || !strings.Contains(r.Observed, "pg2 answers but its replication link is down") {
			t.Errorf("quorum.reachable with pg1-pg2 cut: want a failure naming pg2's replication link, got %s: %s", r.Status, r.Observed)
		}
		jdir := t.TempDir()
		res := runBinary(t, work, "run", "postgres-streaming-switchover", "-i", sb.Inventory(), "--yes", "--journal-dir="+jdir)
		if res.Code != 3 {
			t.Fatalf("run with pg1-pg2 cut: want exit 3 (a precondition failed): %s", res)
		}
		// Preflight stops at its first failed check: quorum.reachable or
		// pg.topology, whichever sees pg2's broken link first, names it.
		out := res.Output()
		if !strings.Contains(out, "pg2 answers but its replication link is down") && !strings.Contains(out, "pg2: standby from not streaming") {
			t.Errorf("run's refusal does not name pg2's broken replication link:\n%s", out)
		}
		for _, e := range testbin.ReadJournalDir(t, jdir) {
			if e.Event == "step" && e.Step == "pause-pooler" && e.State == "running" {
				t.Errorf("the pooler was paused although preflight refused: %s", e)
			}
		}
	})

	t.Run("the candidate's host cut right after promote: one primary, nothing lost", func(t *testing.T) {
		if _, err := healthyWithin(sb, hostsWait); err != nil {
			t.Fatalf("not healthy before the case: %v", err)
		}
		w := startWriter(t, sb, "hosts_cut")
		smp := sandboxtest.StartSampler(sb)
		jdir := t.TempDir()
		p := start(t, work, "run", "postgres-streaming-switchover", "-i", sb.Inventory(), "--yes", "--journal-dir="+jdir)
		p.WaitJournal(jdir, "promote done", cmdTimeout, testbin.MainStep("promote", "done"))
		ctx, cancel := context.WithTimeout(context.Background(), hostsWait)
		err := sb.Isolate(ctx, "pg2")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		res := p.Wait()
		t.Logf("the run, pg2 cut off after promote: exit %d\n%s", res.Code, lastLinesOf(res.Output(), 30))
		if res.Code == 0 {
			t.Errorf("the run succeeded although the candidate's host was cut off after promote: %s", res)
		}
		heal(t, sb)
		// pg2 is the one primary: promoted, then cut off; pg1 stopped for
		// the switchover, and no one started it again as a primary.
		waitFor(t, "pg2 the one primary, reachable again", func(ctx context.Context) error {
			st, err := inspectNode(ctx, sb, sandboxtest.Node(t, sb, "pg2"))
			if err != nil {
				return err
			}
			if st.Role != pg.RolePrimary {
				return fmt.Errorf("pg2 is %s", st.Role)
			}
			for _, name := range []string{"pg1", "pg3"} {
				if st, err := inspectNode(ctx, sb, sandboxtest.Node(t, sb, name)); err == nil && st.Role == pg.RolePrimary {
					return fmt.Errorf("%s is a primary too", name)
				}
			}
			return nil
		})
		smp.Finish().CheckKept(t, sb, "pg2")
		stopWriter(t, w)
	})

	res = runBinary(t, work, "sandbox", "down", "--dir", dir)
	if res.Code != 0 {
		t.Fatalf("sandbox down: %s", res)
	}
	if left := sandboxtest.Leftovers(sb.Net.Prefix, dir); len(left) > 0 {
		t.Errorf("sandbox down left:\n%s", strings.Join(left, "\n"))
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("sandbox down left its directory %s", dir)
	}
}

// quorumAll runs quorum.reachable {require: all} on the sandbox once, as
// the playbook's preflight does.
func quorumAll(t *testing.T, sb *sandbox.Sandbox) checks.Result {
	t.Helper()
	def, ok := checks.Lookup("quorum.reachable")
	if !ok {
		t.Fatal("quorum.reachable is not registered")
	}
	vals, probs := params.Decode(def.Params, map[string]params.Raw{"require": {Scalar: "all"}})
	if len(probs) > 0 {
		t.Fatalf("quorum.reachable: %v", probs)
	}
	c, err := def.New(vals)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := c.Run(ctx, &cluster.Target{Cluster: sb.Cluster(), Facts: &cluster.Facts{}})
	t.Logf("quorum.reachable: %s: %s", r.Status, r.Observed)
	return r
}

// startWriter starts an independent writer through the pooler, stopped
// (without a verdict) when t ends if stopWriter did not run.
func startWriter(t *testing.T, sb *sandbox.Sandbox, table string) *canary.Writer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hostsWait)
	defer cancel()
	w, err := canary.Start(ctx, canary.Options{Conninfo: sb.ClientConninfo(), Table: table, Interval: 10 * time.Millisecond,
		RunID: fmt.Sprintf("%s-%d", table, time.Now().UnixNano())})
	if err != nil {
		t.Fatalf("canary: %v", err)
	}
	t.Cleanup(w.Close)
	// The writer has a commit acknowledged before the case begins: a
	// case that holds or refuses clients at once (the guard's) would
	// otherwise leave a slow writer on a loaded machine none to show.
	waitFor(t, "the writer's first commit through the pooler", func(context.Context) error {
		if w.Acked() == 0 {
			return errors.New("none acknowledged yet")
		}
		return nil
	})
	return w
}

// stopWriter stops the writer, fails t unless every acknowledged commit
// is on the primary the pooler reaches, and returns what it measured.
func stopWriter(t *testing.T, w *canary.Writer) canary.Report {
	t.Helper()
	var rep canary.Report
	waitFor(t, "the writer's commits checked through the pooler", func(ctx context.Context) error {
		var err error
		rep, err = w.Stop(ctx)
		return err
	})
	t.Logf("writer through the pooler: %d acknowledged, %d client errors, longest gap %s, %d lost",
		rep.Acked, rep.Errors, rep.Window.Round(time.Millisecond), len(rep.Lost))
	if rep.Acked == 0 {
		t.Error("the writer got no commit acknowledged")
	}
	if len(rep.Lost) > 0 {
		t.Errorf("%d acknowledged commits lost: %v", len(rep.Lost), rep.Lost)
	}
	return rep
}

// heal undoes every partition and waits until the cluster is healthy.
func heal(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hostsWait)
	defer cancel()
	if err := sb.Heal(ctx); err != nil {
		t.Fatalf("heal: %v", err)
	}
}

func healthyWithin(sb *sandbox.Sandbox, limit time.Duration) (topology, error) {
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		top, err := healthy(ctx, sb)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return top, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitHealthyHosts(t *testing.T, sb *sandbox.Sandbox) topology {
	t.Helper()
	top, err := healthyWithin(sb, hostsWait)
	if err != nil {
		t.Fatalf("cluster not healthy within %s: %v", hostsWait, err)
	}
	return top
}

// waitFor polls cond (≤hostsWait) until it returns nil.
func waitFor(t *testing.T, what string, cond func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(hostsWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not within %s: %v", what, hostsWait, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lastLinesOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Without root, `sandbox up --hosts` refuses with exit 2, says it needs
// root, points to the one-host sandbox, and creates nothing.
func TestHostsSandboxNeedsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs the binary as user nobody, which needs root to switch to")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	// A copy nobody may run: the built binary's directory is private.
	bin, err := os.ReadFile(testbin.Build(t))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.MkdirTemp("", "switchover-faults-pub-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	if err := os.Chmod(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(pub, "switchover")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(pub, "sandbox")
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "sandbox", "up", "--hosts", "--dir", dir)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=/", "NO_COLOR=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	code := cmd.ProcessState.ExitCode()
	if code != 2 {
		t.Fatalf("sandbox up --hosts as nobody: want exit 2, got %d (%v):\n%s", code, err, out)
	}
	for _, want := range []string{"--hosts needs root", "the one-host sandbox", "`switchover sandbox up` without --hosts"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("sandbox up --hosts as nobody does not say %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("sandbox up --hosts as nobody created %s", dir)
	}
}
