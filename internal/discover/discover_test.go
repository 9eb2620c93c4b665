package discover_test

// Discovery against real clusters, through the real binary: the inventory
// it writes names the nodes, conninfos, data and bin directories, pooler
// and manager the sandbox's own inventory names, and the shipped playbook
// validates, plans and switches over with it.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
	"github.com/switchover/switchover/runbook/spec"
)

// TestMain brings the shared sandbox down (none is used) and removes the
// binary the tests built.
func TestMain(m *testing.M) { sandboxtest.MainThen(m, testbin.Remove) }

// binTimeout bounds every run of the binary but a switchover.
const binTimeout = 90 * time.Second

// runTimeout bounds a switchover run.
const runTimeout = 3 * time.Minute

// discoverInto runs `inventory discover -o FILE` in dir, wants exit 0,
// and loads what it wrote.
func discoverInto(t *testing.T, dir string, args ...string) (*spec.Inventory, testbin.Result) {
	t.Helper()
	path := filepath.Join(dir, "discovered.yaml")
	os.Remove(path)
	res := testbin.Run(t, binTimeout, dir, append([]string{"inventory", "discover", "-o", path}, args...)...)
	if res.Code != 0 {
		t.Fatalf("inventory discover: %s", res)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("discovered (%s):\n%s", strings.TrimSpace(res.Stderr), b)
	inv, err := spec.LoadInventory(path, b)
	if err != nil {
		t.Fatalf("the discovered inventory does not load: %v", err)
	}
	return inv, res
}

// refused runs `inventory discover -o FILE` in dir, wants exit 3 with
// every one of wants in its error, and nothing written.
func refused(t *testing.T, dir string, wants []string, args ...string) {
	t.Helper()
	path := filepath.Join(dir, "refused.yaml")
	res := testbin.Run(t, binTimeout, dir, append([]string{"inventory", "discover", "-o", path}, args...)...)
	if res.Code != 3 {
		t.Fatalf("inventory discover: want exit 3, got %s", res)
	}
	for _, w := range wants {
		if !strings.Contains(res.Stderr, w) {
			t.Errorf("want %q in the error:\n%s", w, res.Stderr)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("%s was written (err %v)", path, err)
	}
	t.Logf("refused: %s", strings.TrimSpace(res.Stderr))
}

// sameAsSandbox compares a discovered inventory with the one the sandbox
// wrote: the same nodes, conninfos (resolved: host, port, user, database,
// TLS), data and bin directories, hosts, pooler and manager.
func sameAsSandbox(t *testing.T, sb *sandbox.Sandbox, got *spec.Inventory) {
	t.Helper()
	b, err := os.ReadFile(sb.Inventory())
	if err != nil {
		t.Fatal(err)
	}
	want, err := spec.LoadInventory(sb.Inventory(), b)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := got.Cluster.NodeNames(), want.Cluster.NodeNames(); !slices.Equal(g, w) {
		t.Fatalf("nodes %v, the sandbox's %v", g, w)
	}
	for _, name := range want.Cluster.NodeNames() {
		g, w := got.Cluster.Nodes[name], want.Cluster.Nodes[name]
		sameConninfo(t, name, g.Conninfo, w.Conninfo)
		if g.DataDir != w.DataDir || g.BinDir != w.BinDir {
			t.Errorf("%s: data_dir %s bin_dir %s, the sandbox's %s and %s", name, g.DataDir, g.BinDir, w.DataDir, w.BinDir)
		}
		if g.Host != w.Host {
			t.Errorf("%s: host %+v, the sandbox's %+v", name, g.Host, w.Host)
		}
	}
	if len(got.Cluster.Poolers) != len(want.Cluster.Poolers) {
		t.Fatalf("poolers %+v, the sandbox's %+v", got.Cluster.Poolers, want.Cluster.Poolers)
	}
	for i, w := range want.Cluster.Poolers {
		g := got.Cluster.Poolers[i]
		sameConninfo(t, "pooler", g.Admin, w.Admin)
		if g.Database != w.Database || g.Config != w.Config || g.Host != w.Host || g.Kind != w.Kind {
			t.Errorf("pooler %+v, the sandbox's %+v", g, w)
		}
	}
	gm, wm := got.Cluster.Manager, want.Cluster.Manager
	switch {
	case wm == nil && gm == nil:
	case wm == nil || gm == nil || gm.Kind != wm.Kind:
		t.Fatalf("manager %+v, the sandbox's %+v", gm, wm)
	case wm.Kind == cluster.ManagerPatroni:
		if !slices.Equal(sorted(gm.URLs), sorted(wm.URLs)) {
			t.Errorf("Patroni urls %v, the sandbox's %v", gm.URLs, wm.URLs)
		}
	case wm.Kind == cluster.ManagerRepmgr:
		if gm.Database != wm.Database || fmt.Sprint(gm.Configs) != fmt.Sprint(wm.Configs) {
			t.Errorf("repmgr database %s configs %v, the sandbox's %s and %v", gm.Database, gm.Configs, wm.Database, wm.Configs)
		}
	case wm.Kind == cluster.ManagerPgAutoFailover:
		sameConninfo(t, "monitor", gm.Monitor, wm.Monitor)
		if gm.Formation != wm.Formation || gm.Group != wm.Group {
			t.Errorf("formation %s group %d, the sandbox's %s and %d", gm.Formation, gm.Group, wm.Formation, wm.Group)
		}
	}
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

// sameConninfo compares two connection strings as libpq reads them.
func sameConninfo(t *testing.T, what, got, want string) {
	t.Helper()
	g, err1 := conninfo.Resolve(got)
	w, err2 := conninfo.Resolve(want)
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: %v %v", what, err1, err2)
	}
	if g.String() != w.String() {
		t.Errorf("%s: conninfo %q, the sandbox's %q", what, got, want)
	}
}

// validateAndPlan wants `validate` and `plan` of playbook to pass with
// the inventory at path.
func validateAndPlan(t *testing.T, dir, playbook, path string, args ...string) {
	t.Helper()
	if res := testbin.Run(t, binTimeout, dir, append([]string{"validate", playbook, "-i", path}, args...)...); res.Code != 0 {
		t.Fatalf("validate: %s", res)
	}
	res := testbin.Run(t, binTimeout, dir, append([]string{"plan", playbook, "-i", path, "--journal-dir", filepath.Join(dir, "journal")}, args...)...)
	if res.Code != 0 {
		t.Fatalf("plan: %s", res)
	}
	t.Logf("%s: validate and plan pass", playbook)
}

// switchOver runs playbook with the inventory at path, --yes, and wants
// exit 0.
func switchOver(t *testing.T, dir, playbook, path string, args ...string) {
	t.Helper()
	res := testbin.Run(t, runTimeout, dir, append([]string{"run", playbook, "-i", path, "--yes", "--journal-dir", filepath.Join(dir, "journal")}, args...)...)
	if res.Code != 0 {
		t.Fatalf("run %s: %s", playbook, res)
	}
	if !strings.Contains(res.Stdout, "0 lost") {
		t.Errorf("run %s: the canary did not report 0 lost:\n%s", playbook, res.Stdout)
	}
	t.Logf("%s: switched over (exit 0, 0 lost)", playbook)
}

func nodeConninfo(t *testing.T, sb *sandbox.Sandbox, name string) string {
	return sb.Conninfo(sandboxtest.Node(t, sb, name), "postgres")
}

// TestDiscoverPlain discovers the plain sandbox from a standby, with a
// password in the connection string, and switches over with what it
// wrote; then refuses what it cannot describe.
func TestDiscoverPlain(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	dir := t.TempDir()
	const secret = "discover-Secret-42"
	inv, res := discoverInto(t, dir, "--conninfo", nodeConninfo(t, sb, "pg2")+" password="+secret, "--pgbouncer", sb.AdminConninfo())
	b, _ := os.ReadFile(inv.File)
	if strings.Contains(string(b)+res.Stdout+res.Stderr, secret) {
		t.Errorf("the password shows in the inventory or the output")
	}
	if !strings.Contains(res.Stderr, "--conninfo carries a password") {
		t.Errorf("no note that the password was left out:\n%s", res.Stderr)
	}
	sameAsSandbox(t, sb, inv)
	if v := inv.Vars; len(v) != 1 || v[0].Name != "candidate" || !strings.Contains(string(b), "candidate: "+v[0].Value+" # guessed: ") {
		t.Errorf("vars %+v: want a candidate marked guessed", v)
	}

	t.Run("nothing listens", func(t *testing.T) {
		port, err := sandbox.FreePortBase(0)
		if err != nil {
			t.Fatal(err)
		}
		where := fmt.Sprintf("127.0.0.1:%d", port)
		refused(t, dir, []string{"the node at " + where + " (--conninfo)", "cannot connect", "nothing written"},
			"--conninfo", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", port))
	})
	t.Run("a pooler, not PostgreSQL", func(t *testing.T) {
		refused(t, dir, []string{fmt.Sprintf("127.0.0.1:%d (--conninfo)", sb.PortBase), "not a PostgreSQL server"},
			"--conninfo", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", sb.PortBase))
	})
	t.Run("a standby on none of the ports tried", func(t *testing.T) {
		refused(t, dir, []string{"shows a standby (application_name \"pg2\"", "--ports"},
			"--conninfo", nodeConninfo(t, sb, "pg1"), "--ports", fmt.Sprint(sb.PortBase))
	})
	t.Run("a role that may not read the standbys' names", func(t *testing.T) {
		sandboxtest.Exec(t, sb, "pg1", "CREATE ROLE discover_plain LOGIN")
		t.Cleanup(func() { sandboxtest.Exec(t, sb, "pg1", "DROP ROLE discover_plain") })
		pg1 := sandboxtest.Node(t, sb, "pg1")
		refused(t, dir, []string{"may not read the name they stream under", "pg_monitor"},
			"--conninfo", fmt.Sprintf("host=127.0.0.1 port=%d user=discover_plain dbname=postgres sslmode=disable", pg1.Port))
	})
	t.Run("a node of another cluster", func(t *testing.T) {
		other := sandboxtest.Independent(t, sb, "other")
		pg1 := sandboxtest.Node(t, sb, "pg1")
		// pg3 now streams from the other cluster's server, which refuses it.
		sandboxtest.Exec(t, sb, "pg3", fmt.Sprintf("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=%d user=postgres application_name=pg3 sslmode=disable'", other.Port), "SELECT pg_reload_conf()")
		t.Cleanup(func() {
			sandboxtest.Exec(t, sb, "pg3", fmt.Sprintf("ALTER SYSTEM SET primary_conninfo = '%s'", sb.PrimaryConninfo(pg1, "pg3")), "SELECT pg_reload_conf()")
			sandboxtest.EventuallyQuery(t, sb, "pg3", "SELECT count(*)::text FROM pg_stat_wal_receiver WHERE status = 'streaming'", "1")
		})
		sandboxtest.EventuallyQuery(t, sb, "pg3", "SELECT count(*)::text FROM pg_stat_wal_receiver WHERE status = 'streaming'", "0")
		refused(t, dir, []string{fmt.Sprintf("127.0.0.1:%d", other.Port), "another cluster", "system identifier"},
			"--conninfo", nodeConninfo(t, sb, "pg3"))
	})
	if t.Failed() {
		t.FailNow()
	}

	// The other refusals left the cluster as it was: discover again, from
	// the primary, and switch over with that.
	inv, _ = discoverInto(t, dir, "--conninfo", nodeConninfo(t, sb, "pg1"), "--pgbouncer", sb.AdminConninfo())
	sameAsSandbox(t, sb, inv)
	validateAndPlan(t, dir, "postgres-streaming-switchover", inv.File)
	switchOver(t, dir, "postgres-streaming-switchover", inv.File, "--candidate", "pg2")
	sandboxtest.WantOnePrimary(t, sb, "pg2")
	after, _ := discoverInto(t, dir, "--conninfo", nodeConninfo(t, sb, "pg3"), "--pgbouncer", sb.AdminConninfo())
	sameAsSandbox(t, sb, after)
	if p := primaryOf(after); p != "pg2" {
		t.Errorf("after the switchover discovery finds %s the primary, want pg2", p)
	}
}

// primaryOf is the node an inventory's comment calls the primary.
func primaryOf(inv *spec.Inventory) string {
	b, _ := os.ReadFile(inv.File)
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "# primary, ") && i+1 < len(lines) {
			name, _, _ := strings.Cut(strings.TrimSpace(lines[i+1]), ":")
			return name
		}
	}
	return ""
}

// TestDiscoverPatroni discovers a Patroni sandbox from a replica and one
// member's REST API, and switches over with what it wrote.
func TestDiscoverPatroni(t *testing.T) {
	sb := sandboxtest.NewPatroni(t, 2)
	dir := t.TempDir()
	inv, _ := discoverInto(t, dir, "--conninfo", nodeConninfo(t, sb, "pg3"), "--patroni", sb.RESTURL(sandboxtest.Node(t, sb, "pg2")),
		"--pgbouncer", sb.AdminConninfo())
	sameAsSandbox(t, sb, inv)
	if inv.Cluster.Name != "sandbox" {
		t.Errorf("cluster %q, want Patroni's scope (cluster_name) sandbox", inv.Cluster.Name)
	}
	validateAndPlan(t, dir, "patroni-switchover", inv.File)
	switchOver(t, dir, "patroni-switchover", inv.File, "--candidate", "pg2")
}

// TestDiscoverRepmgr discovers a repmgr sandbox from a standby (repmgr is
// found from its own table), and switches over with what it wrote.
func TestDiscoverRepmgr(t *testing.T) {
	sb := sandboxtest.NewRepmgr(t, 2)
	dir := t.TempDir()
	inv, _ := discoverInto(t, dir, "--conninfo", nodeConninfo(t, sb, "pg2"), "--pgbouncer", sb.AdminConninfo())
	sameAsSandbox(t, sb, inv)
	validateAndPlan(t, dir, "repmgr-switchover", inv.File)
	switchOver(t, dir, "repmgr-switchover", inv.File, "--candidate", "pg2")
}

// TestDiscoverPgAutoFailover discovers a pg_auto_failover sandbox from its
// secondary and the monitor, and switches over with what it wrote.
func TestDiscoverPgAutoFailover(t *testing.T) {
	sb := sandboxtest.NewPgaf(t, 1)
	dir := t.TempDir()
	inv, _ := discoverInto(t, dir, "--conninfo", nodeConninfo(t, sb, "pg2"), "--pgaf-monitor", sb.MonitorConninfo(),
		"--pgbouncer", sb.AdminConninfo())
	sameAsSandbox(t, sb, inv)
	validateAndPlan(t, dir, "pg-auto-failover-switchover", inv.File)
	switchOver(t, dir, "pg-auto-failover-switchover", inv.File, "--candidate", "pg2")
}

// TestDiscoverHostsOfTheirOwn discovers a sandbox whose nodes are on hosts
// of their own, reached over ssh, and switches over with what it wrote.
func TestDiscoverHostsOfTheirOwn(t *testing.T) {
	sb := sandboxtest.NewHosts(t, 2)
	dir := t.TempDir()
	inv, _ := discoverInto(t, dir, "--conninfo", nodeConninfo(t, sb, "pg3"), "--pgbouncer", sb.AdminConninfo(),
		"--ssh", "root@{host}", "--run-as", sb.RunAs, "--ssh-config", sb.Net.SSHConfig)
	sameAsSandbox(t, sb, inv)
	validateAndPlan(t, dir, "postgres-streaming-switchover", inv.File)
	switchOver(t, dir, "postgres-streaming-switchover", inv.File, "--candidate", "pg2")
}
