package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/repmgr"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// TestRepmgrOnHostsOfTheirOwn brings up a repmgr cluster on hosts of their
// own with the binary (`sandbox up --hosts --manager repmgr`): each node's
// PostgreSQL and repmgrd inside its host's namespace, repmgr's conninfo on
// the host's address. It runs the shipped repmgr-switchover over ssh
// pg1 -> pg2 -> pg1 with a writer through PgBouncer (0 lost, never two
// writable primaries); after each, repmgr's metadata agrees with
// PostgreSQL (repmgr.agrees, and `switchover status` shows no
// disagreement) and repmgrd is unpaused everywhere. repmgr's own
// switchover reaches the other node's host over ssh as the servers' user
// (its dry run). It brings the sandbox down with the binary and finds
// nothing of it left.
func TestRepmgrOnHostsOfTheirOwn(t *testing.T) {
	if _, _, err := sandbox.FindRepmgr(""); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and repmgr is missing: %v", err)
		}
		t.Skipf("no repmgr here: %v", err)
	}
	sb, work := upOnHosts(t, sandbox.ManagerRepmgr)
	checkManagerHosts(t, sb, "repmgrd-%s", "repmgrd-%s-daemon")
	inv, err := os.ReadFile(sb.Inventory())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range sb.Nodes {
		conf, err := os.ReadFile(sb.RepmgrConfig(n))
		if err != nil {
			t.Fatalf("%s's repmgr.conf: %v", n.Name, err)
		}
		want := fmt.Sprintf("conninfo='host=%s port=%d ", sb.Addr(n.Name), n.Port)
		if !strings.Contains(string(conf), want) {
			t.Errorf("%s's repmgr.conf does not reach it on its host's address (%q):\n%s", n.Name, want, conf)
		}
		if !strings.Contains(string(inv), fmt.Sprintf("%s: %s\n", n.Name, sb.RepmgrConfig(n))) {
			t.Errorf("the inventory's manager.configs does not name %s's repmgr.conf %s:\n%s", n.Name, sb.RepmgrConfig(n), inv)
		}
	}

	book := patientPlaybook(t, t.TempDir(), repmgrPlaybook)
	for i, dir := range [][2]string{{"pg1", "pg2"}, {"pg2", "pg1"}} {
		ok := t.Run(fmt.Sprintf("repmgr-switchover %s -> %s over ssh", dir[0], dir[1]), func(t *testing.T) {
			switchOnHosts(t, sb, work, book, dir[0], dir[1], fmt.Sprintf("hosts_repmgr_%d", i))
			repmgrAgreesOnHosts(t, sb)
			res := runBinary(t, work, "status", "-i", sb.Inventory())
			if strings.Contains(res.Stdout, "DISAGREE") || !strings.Contains(res.Stdout, "repmgr:   "+dir[1]+": primary") {
				t.Errorf("switchover status after the switchover: repmgr does not show %s the primary in agreement:\n%s", dir[1], res.Output())
			}
		})
		if !ok {
			break
		}
	}
	t.Run("repmgr's own switchover reaches the other host over ssh", func(t *testing.T) {
		// repmgr's own `standby switchover` logs in to the primary's host
		// as the servers' user; its dry run checks exactly that, and that
		// repmgr runs there, and changes nothing.
		if !sb.RepmgrSSH() {
			t.Fatal("the sandbox did not set up ssh between the nodes' hosts for repmgr")
		}
		ctx, cancel := context.WithTimeout(context.Background(), hostsWait)
		defer cancel()
		out, err := repmgr.Run(ctx, sb.Cluster(), "pg2", "standby", "switchover", "--dry-run")
		t.Logf("repmgr standby switchover --dry-run on pg2:\n%s", out)
		if err != nil {
			t.Fatalf("repmgr's own switchover, dry run, on pg2's host: %v", err)
		}
		for _, want := range []string{fmt.Sprintf("SSH connection to host \"%s\" succeeded", sb.Addr("pg1")), "able to execute \"repmgr\" on remote host"} {
			if !strings.Contains(out, want) {
				t.Errorf("repmgr's dry run does not say %q", want)
			}
		}
	})
	downOnHosts(t, sb, work)
}

// TestPgafOnHostsOfTheirOwn brings up a pg_auto_failover formation on
// hosts of their own with the binary (`sandbox up --hosts --manager
// pg_auto_failover`): each node's keeper and PostgreSQL inside its host's
// namespace, on the host's address, the monitor on this host's side of
// the bridge. It runs the shipped pg-auto-failover-switchover over ssh
// pg1 -> pg2 -> pg1 with a writer through PgBouncer (0 lost, never two
// writable primaries); after each, the monitor shows every node settled
// with the primary PostgreSQL shows. Before that, one run finds the
// candidate's host cut off (its link down) and must refuse, nothing
// changed.
// It brings the sandbox down with the binary and finds nothing of it left.
func TestPgafOnHostsOfTheirOwn(t *testing.T) {
	if _, err := sandbox.FindPgAutoctl(""); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and pg_auto_failover is missing: %v", err)
		}
		t.Skipf("no pg_auto_failover here: %v", err)
	}
	sb, work := upOnHosts(t, sandbox.ManagerPgAutoFailover)
	sandboxtest.LogPgafEventsOnFailure(t, sb)
	checkManagerHosts(t, sb, "pgaf-%s")
	if got, want := sb.MonitorAddr(), sb.Net.Bastion; got != want {
		t.Errorf("the monitor is on %s, want this host's address on the bridge %s", got, want)
	}
	inv, err := os.ReadFile(sb.Inventory())
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("monitor: \"host=%s port=%d ", sb.Net.Bastion, sb.MonitorPort()); !strings.Contains(string(inv), want) {
		t.Errorf("the inventory does not reach the monitor on the bridge (%q):\n%s", want, inv)
	}

	book := patientPlaybook(t, t.TempDir(), pgafPlaybook)
	if !t.Run("candidate's host cut off: the run refuses", func(t *testing.T) {
		pgafCandidateCut(t, sb, work, book)
	}) {
		downOnHosts(t, sb, work)
		return
	}
	for i, dir := range [][2]string{{"pg1", "pg2"}, {"pg2", "pg1"}} {
		ok := t.Run(fmt.Sprintf("pg-auto-failover-switchover %s -> %s over ssh", dir[0], dir[1]), func(t *testing.T) {
			switchOnHosts(t, sb, work, book, dir[0], dir[1], fmt.Sprintf("hosts_pgaf_%d", i))
			ctx, cancel := context.WithTimeout(context.Background(), hostsWait)
			defer cancel()
			if err := sb.WaitPgafSettled(ctx, dir[1], hostsWait); err != nil {
				t.Errorf("after the switchover, PostgreSQL's primary is %s, but: %v", dir[1], err)
			}
		})
		if !ok {
			break
		}
	}
	downOnHosts(t, sb, work)
}

// pgafCandidateCut cuts the candidate's host off (its link down) and runs
// the playbook: it must refuse at its preflight (exit 3) with nothing
// changed and no client held, pg1 stays the one primary and loses no
// acknowledged commit, and once healed the monitor settles again with pg1
// the primary. What the preflight sees first depends on the timing: pg2
// or its host not answering, or a commit of the writer on pg1 waiting
// for the cut synchronous secondary longer than a switchover may wait. (A cut once the run is under way makes pg1's commits wait
// for the monitor to stop requiring the cut secondary, some 25s, before
// the run can stop; a cut before it shows the same refusal in seconds.)
func pgafCandidateCut(t *testing.T, sb *sandbox.Sandbox, work, book string) {
	w := startWriter(t, sb, "hosts_pgaf_cut")
	smp := sandboxtest.StartSampler(sb)
	t.Cleanup(func() { smp.Finish() })
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	defer cancel()
	if err := sb.Isolate(ctx, "pg2"); err != nil {
		t.Fatalf("cut pg2's link: %v", err)
	}
	healed := false
	t.Cleanup(func() {
		if !healed {
			_ = sb.Heal(context.Background())
		}
	})
	res := runBinary(t, work, "run", book, "-i", sb.Inventory(), "--yes", "--journal-dir="+t.TempDir(), "--var", "primary=pg1", "--var", "candidate=pg2")
	t.Logf("run with pg2 cut off: exit %d\n%s", res.Code, lastLinesOf(res.Output(), 12))
	if res.Code != 3 {
		t.Errorf("the run with the candidate's host cut off: exit %d, want 3 (a precondition failed, nothing changed): %s", res.Code, res)
	}
	if !strings.Contains(res.Output(), "nothing was changed") {
		t.Errorf("the run does not say that nothing was changed:\n%s", lastLinesOf(res.Output(), 12))
	}
	if d := showDatabase(t, sb, "app"); d.Paused || d.Disabled {
		t.Errorf("after the run, PgBouncer's app is paused or disabled: %+v", d)
	}
	heal(t, sb)
	healed = true
	sctx, scancel := context.WithTimeout(context.Background(), hostsWait)
	defer scancel()
	healedAt := time.Now()
	if v, err := sb.PgafView(sctx); err == nil {
		healedAt = v.Read
	}
	if err := sb.WaitPgafHealthySince(sctx, "pg1", healedAt, hostsWait); err != nil {
		t.Errorf("after the heal: %v", err)
	}
	top := waitHealthyHosts(t, sb)
	if top.primary != "pg1" {
		t.Errorf("after the heal: %s, want pg1 still the primary", top.roles)
	}
	seen := smp.Finish()
	stopWriter(t, w)
	seen.CheckKept(t, sb, top.primary)
}

// repmgrAgreesOnHosts fails t unless repmgr's metadata agrees with
// PostgreSQL (repmgr.agrees, through the inventory as the playbook reads
// it) and repmgrd is unpaused on every node.
func repmgrAgreesOnHosts(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hostsWait)
	defer cancel()
	c := sb.Cluster()
	if r := (&checks.RepmgrAgrees{}).Run(ctx, &cluster.Target{Cluster: c}); r.Status != checks.Pass {
		t.Errorf("after the switchover: repmgr.agrees %s: %s\n%s", r.Status, r.Observed, r.Detail)
	}
	v := repmgr.Read(ctx, c, "")
	for _, d := range v.Daemons {
		if d.Error != "" || d.Paused {
			t.Errorf("after the switchover: repmgrd on %s paused or unknown (%+v), want unpaused", d.Node, d)
		}
	}
	t.Logf("repmgr after the switchover: %s", v)
}

// upOnHosts brings up a one-standby sandbox under manager on hosts of
// their own with the binary, brought down when t ends if the test did not
// bring it down itself. It returns the sandbox and the binary's working
// directory.
func upOnHosts(t *testing.T, manager string) (*sandbox.Sandbox, string) {
	t.Helper()
	dir := sandboxtest.HostsDir(t)
	work := t.TempDir()
	// The manager listens on this host's side of the bridge (the monitor,
	// etcd): on ports found free here, below the range the kernel hands
	// out to outgoing connections, and apart from other tests' sandboxes.
	base, err := sandbox.FreePortBase(10)
	if err != nil {
		t.Fatal(err)
	}
	res := runBinary(t, work, "sandbox", "up", "--hosts", "--manager", manager, "--standbys", "1", "--dir", dir, "--port-base", fmt.Sprint(base))
	t.Cleanup(func() {
		if _, err := os.Stat(dir); err != nil {
			return
		}
		sb, err := sandbox.Load(dir)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := sb.Down(ctx); err != nil {
			t.Errorf("sandbox down: %v", err)
		}
	})
	if res.Code != 0 {
		t.Fatalf("sandbox up --hosts --manager %s: %s", manager, res)
	}
	sb, err := sandbox.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if sb.Net == nil || sb.Manager != manager {
		t.Fatalf("sandbox up --hosts --manager %s recorded network %v, manager %q", manager, sb.Net, sb.Manager)
	}
	return sb, work
}

// checkManagerHosts checks that the inventory reaches every node over ssh
// on its host's address, and that each node's PostgreSQL and its
// manager's processes (named by the formats, %s the node) run inside that
// host's namespace.
func checkManagerHosts(t *testing.T, sb *sandbox.Sandbox, procs ...string) {
	t.Helper()
	inv, err := os.ReadFile(sb.Inventory())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(inv), "transport: ssh") || strings.Contains(string(inv), "127.0.0.1") {
		t.Fatalf("inventory is not all over ssh and the hosts' addresses:\n%s", inv)
	}
	pids := sb.PIDs()
	for _, n := range sb.Nodes {
		h, _ := sb.Net.Host(n.Name)
		for _, want := range []string{fmt.Sprintf("host=%s port=%d", h.Addr, n.Port), fmt.Sprintf("address: \"root@%s\"", h.Addr)} {
			if !strings.Contains(string(inv), want) {
				t.Errorf("inventory does not reach %s on its own host (%q):\n%s", n.Name, want, inv)
			}
		}
		ns, err := os.Stat(filepath.Join("/run/netns", h.Netns))
		if err != nil {
			t.Fatalf("namespace of %s: %v", n.Name, err)
		}
		names := []string{n.Name}
		for _, f := range procs {
			names = append(names, fmt.Sprintf(f, n.Name))
		}
		for _, proc := range names {
			pid, ok := pids[proc]
			if !ok {
				t.Errorf("%s is not running (running: %v)", proc, pids)
				continue
			}
			in, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid))
			if err != nil || !os.SameFile(in, ns) {
				t.Errorf("%s (pid %d) does not run in %s's namespace %s (%v)", proc, pid, n.Name, h.Netns, err)
			}
		}
	}
}

// switchOnHosts runs a shipped playbook from primary to candidate with
// the binary, a writer through PgBouncer and the role sampler beside it:
// exit 0, the run's canary and the writer lose nothing, candidate the
// primary after, never two writable primaries.
func switchOnHosts(t *testing.T, sb *sandbox.Sandbox, work, book, primary, candidate, table string) {
	t.Helper()
	w := startWriter(t, sb, table)
	smp := sandboxtest.StartSampler(sb)
	res := runBinary(t, work, "run", book, "-i", sb.Inventory(), "--yes", "--journal-dir="+t.TempDir(),
		"--var", "primary="+primary, "--var", "candidate="+candidate)
	seen := smp.Finish()
	t.Logf("run: exit %d\n%s", res.Code, lastLinesOf(res.Output(), 30))
	if res.Code != 0 {
		t.Fatalf("%s %s -> %s over ssh: %s", filepath.Base(book), primary, candidate, res)
	}
	if !strings.Contains(res.Stdout, "0 lost") {
		t.Errorf("the run's canary did not report 0 lost:\n%s", res.Stdout)
	}
	top := waitHealthyHosts(t, sb)
	if top.primary != candidate {
		t.Errorf("after the switchover: %s, want %s the primary", top.roles, candidate)
	}
	stopWriter(t, w)
	seen.CheckKept(t, sb, top.primary)
}

// downOnHosts brings the sandbox down with the binary: every process by
// PID, the namespaces, links and directory gone.
func downOnHosts(t *testing.T, sb *sandbox.Sandbox, work string) {
	t.Helper()
	prefix := sb.Net.Prefix
	res := runBinary(t, work, "sandbox", "down", "--dir", sb.Dir)
	if res.Code != 0 {
		t.Fatalf("sandbox down: %s", res)
	}
	if left := sandboxtest.Leftovers(prefix, sb.Dir); len(left) > 0 {
		t.Errorf("sandbox down left:\n%s", strings.Join(left, "\n"))
	}
	if _, err := os.Stat(sb.Dir); err == nil {
		t.Errorf("sandbox down left its directory %s", sb.Dir)
	}
}
