package topology_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/haproxy"
	"github.com/switchover/switchover/internal/patroni/patronitest"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/topology"
	"github.com/switchover/switchover/internal/transport"
)

func TestMain(m *testing.M) { sandboxtest.Main(m) }

// exec runs statements on a node of the sandbox.
func exec(t *testing.T, ctx context.Context, sb *sandbox.Sandbox, node string, sqls ...string) {
	t.Helper()
	n, _ := sb.Node(node)
	c, err := pg.Connect(ctx, sb.Conninfo(n, "postgres"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	for _, sql := range sqls {
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatalf("%s on %s: %v", sql, node, err)
		}
	}
}

func pgCtl(t *testing.T, ctx context.Context, sb *sandbox.Sandbox, node, verb string) {
	t.Helper()
	n, _ := sb.Node(node)
	o, err := (transport.Local{User: sb.RunAs}).Run(ctx, fmt.Sprintf("%s/pg_ctl %s -D %s -m fast -w -l %s/%s.log", sb.BinDir, verb, n.DataDir, sb.Dir, node))
	if err != nil || o.ExitCode != 0 {
		t.Fatalf("pg_ctl %s %s: %v %s", verb, node, err, o.Combined())
	}
}

// until inspects the cluster until ok holds of the topology, for at most
// 30 seconds, and returns the last one.
func until(t *testing.T, ctx context.Context, c *cluster.Cluster, what string, ok func(*topology.Topology) bool) *topology.Topology {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
		top := topology.Inspect(ictx, c, topology.Options{})
		cancel()
		if ok(top) {
			return top
		}
		if time.Now().After(deadline) {
			t.Fatalf("within 30s, never %s; last: %+v", what, describe(top))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func describe(top *topology.Topology) string {
	var parts []string
	for _, n := range top.Nodes {
		parts = append(parts, fmt.Sprintf("%+v", *n))
	}
	return strings.Join(parts, "\n")
}

// Every fact of the model, read from a real cluster: pg1 primary with
// synchronous_standby_names naming pg2 and a logical slot besides the
// standbys' physical ones, pg2 and pg3 streaming from it, a session that
// would block a switchover to pg3, the pooler's routing; then pg3 stopped
// and reported unreachable with why.
func TestInspectASandbox(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	exec(t, ctx, sb, "pg1", "ALTER SYSTEM SET wal_level = logical", "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (pg2)'")
	pgCtl(t, ctx, sb, "pg1", "restart")
	exec(t, ctx, sb, "pg1", "SELECT pg_create_logical_replication_slot('cdc', 'test_decoding')")
	c := sb.Cluster()

	// Waited for as the primary sees it too (both senders, both slots
	// active, pg3 async): a standby restarting its WAL receiver after
	// the primary's restart can say it streams before the primary shows
	// its sender.
	top := until(t, ctx, c, "pg2 synchronous and pg3 streaming from pg1, as pg1 sees them, their lag known", func(top *topology.Topology) bool {
		pg1, pg2, pg3 := top.Node("pg1"), top.Node("pg2"), top.Node("pg3")
		active := 0
		for _, s := range pg1.Slots {
			if s.Type == "physical" && s.Active {
				active++
			}
		}
		// A standby that has received WAL it has not replayed yet, and
		// has replayed no transaction since it started, cannot tell its
		// lag in time (no replay timestamp): wait until it can.
		lagKnown := func(n *topology.Node) bool { return n.LagBytes != nil && n.LagSeconds != nil }
		return pg2.Streaming && pg3.Streaming && pg2.SyncState == "sync" && pg3.SyncState == "async" &&
			len(pg1.Senders) == 2 && active == 2 && lagKnown(pg2) && lagKnown(pg3)
	})
	if !slices.Equal(top.Primaries, []string{"pg1"}) {
		t.Fatalf("primaries = %v, want [pg1]", top.Primaries)
	}
	p := top.Node("pg1")
	if !p.Reachable() || p.Role != topology.RolePrimary || p.Timeline != 1 || p.Major < 10 || p.Version/10000 != p.Major {
		t.Errorf("pg1 = %+v; want a reachable primary on timeline 1 with its version", *p)
	}
	if p.SynchronousStandbyNames != "FIRST 1 (pg2)" {
		t.Errorf("pg1 synchronous_standby_names = %q", p.SynchronousStandbyNames)
	}
	if p.SystemID == "" || p.SystemID == "0" {
		t.Errorf("pg1 system identifier = %q", p.SystemID)
	}
	slots := map[string]topology.Slot{}
	for _, s := range p.Slots {
		slots[s.Name] = s
	}
	if s := slots["cdc"]; s.Type != "logical" || s.Plugin != "test_decoding" || s.Active || s.BehindBytes == nil || *s.BehindBytes < 0 || s.ConfirmedFlushLSN == "" {
		t.Errorf("slot cdc = %+v; want logical, test_decoding, inactive, with how far behind", s)
	}
	for _, name := range []string{"pg2", "pg3"} {
		if s := slots[name]; s.Type != "physical" || !s.Active || s.BehindBytes == nil {
			t.Errorf("slot %s = %+v; want physical, active, with how far behind", name, s)
		}
	}
	if len(p.Senders) != 2 {
		t.Errorf("pg1 senders = %+v; want pg2 and pg3", p.Senders)
	}
	for _, name := range []string{"pg2", "pg3"} {
		n := top.Node(name)
		if n.Role != topology.RoleStandby || n.UpstreamNode != "pg1" || !strings.HasPrefix(n.Upstream, "127.0.0.1:") || n.Timeline != 1 {
			t.Errorf("%s = %+v; want a standby streaming from pg1 on timeline 1", name, *n)
		}
		if n.LagBytes == nil || n.LagSeconds == nil || *n.LagSeconds < 0 {
			t.Errorf("%s lag = %v bytes, %v seconds; want both known", name, n.LagBytes, n.LagSeconds)
		}
		if n.SystemID != p.SystemID {
			t.Errorf("%s system identifier %s, pg1's %s: want the same", name, n.SystemID, p.SystemID)
		}
		if n.Major != p.Major {
			t.Errorf("%s major %d, pg1's %d", name, n.Major, p.Major)
		}
		if n.Blocking != 0 || len(n.Problems) > 0 {
			t.Errorf("%s blocking %d, problems %v; want none", name, n.Blocking, n.Problems)
		}
	}
	if n := top.Node("pg2"); n.SyncState != "sync" || n.SyncPriority == nil || *n.SyncPriority != 1 {
		t.Errorf("pg2 sync = %q priority %v; want sync, 1", n.SyncState, n.SyncPriority)
	}
	if n := top.Node("pg3"); n.SyncState != "async" {
		t.Errorf("pg3 sync = %q; want async", n.SyncState)
	}
	if po := top.Pooler; po == nil || po.Error != "" || po.Database != "app" || po.Node != "pg1" || po.Paused {
		t.Errorf("pooler = %+v; want app routed to pg1, not paused", po)
	} else if i := slices.IndexFunc(po.Databases, func(r topology.PoolerRoute) bool { return r.Name == "app" }); i < 0 || po.Databases[i].Node != "pg1" {
		t.Errorf("pooler entries = %+v; want app routed to pg1", po.Databases)
	}
	if top.Patroni != nil {
		t.Errorf("patroni view %+v without a manager", top.Patroni)
	}

	// A session holding an advisory lock on pg3 would block a switchover to it.
	n3, _ := sb.Node("pg3")
	lock, err := pg.Connect(ctx, sb.Conninfo(n3, "postgres"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, "SELECT pg_advisory_lock(7)"); err != nil {
		t.Fatal(err)
	}
	top = topology.Inspect(ctx, c, topology.Options{NodesOnly: true})
	lock.Close(context.Background())
	if n := top.Node("pg3"); n.Blocking != 1 {
		t.Errorf("pg3 blocking = %d with an advisory lock held; want 1", n.Blocking)
	}
	if top.Pooler != nil {
		t.Errorf("NodesOnly asked the pooler: %+v", top.Pooler)
	}
	top = topology.Inspect(ctx, c, topology.Options{Nodes: []string{"pg3"}, StateOnly: true})
	if n := top.Nodes[0]; len(top.Nodes) != 1 || n.Role != topology.RoleStandby || n.Blocking != 0 || n.SystemID != "" {
		t.Errorf("StateOnly of pg3 = %+v; want its role and no other fact", *n)
	}

	pgCtl(t, ctx, sb, "pg3", "stop")
	top = topology.Inspect(ctx, c, topology.Options{})
	if n := top.Node("pg3"); n.Reachable() || !strings.Contains(n.Error, "refused") || n.Role != "" {
		t.Errorf("pg3 stopped = %+v; want unreachable, saying the connection was refused", *n)
	}
	if n := top.Node("pg2"); !n.Reachable() || n.UpstreamNode != "pg1" {
		t.Errorf("pg2 = %+v; want it unaffected", *n)
	}
	choicePrimary, choices, err := top.Candidates()
	if err != nil || choicePrimary != "pg1" || len(choices) != 2 || choices[0].Node != "pg2" || !choices[0].Healthy || choices[1].Healthy {
		t.Errorf("candidates = %s %+v %v; want pg2 healthy first, pg3 not", choicePrimary, choices, err)
	}
}

// The manager's view: Patroni's members with their role, state, lag,
// timeline and tags, who holds the leader lock, whether it is paused, a
// member the inventory lacks, and where Patroni and PostgreSQL disagree.
func TestInspectPatroniView(t *testing.T) {
	sb := sandboxtest.Shared(t)
	f := patronitest.New(t)
	f.Members[0].Role, f.Members[0].State = "replica", "streaming"
	f.Members[1].Role, f.Members[1].State = "leader", "running"
	f.Members[2].Tags = map[string]any{"nofailover": true}
	f.Members = append(f.Members, patronitest.Member{Name: "pg9", Role: "replica", State: "running"})
	f.Config["pause"] = true
	c := sb.Cluster()
	c.Manager = &cluster.Manager{Kind: "patroni", URLs: []string{f.URL()}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	top := topology.Inspect(ctx, c, topology.Options{})
	v := top.Patroni
	if v == nil || v.Error != "" {
		t.Fatalf("patroni view = %+v", v)
	}
	if v.Leader != "pg2" || !v.Paused || !slices.Equal(v.Others, []string{"pg9"}) || len(v.Members) != 4 {
		t.Errorf("view = %+v; want pg2 leading, paused, pg9 not in the inventory, 4 members", *v)
	}
	pg1, pg2, pg3 := top.Node("pg1"), top.Node("pg2"), top.Node("pg3")
	if pg1.Patroni == nil || pg1.Patroni.Role != "replica" || pg1.Disagrees != "patroni shows a replica, PostgreSQL is out of recovery" {
		t.Errorf("pg1 = %+v %+v", pg1.Patroni, pg1.Disagrees)
	}
	if pg2.Patroni == nil || !pg2.Patroni.IsLeader() || pg2.Disagrees == "" {
		t.Errorf("pg2 = %+v %q", pg2.Patroni, pg2.Disagrees)
	}
	if m := pg3.Patroni; m == nil || !m.NoFailover || m.Timeline != 3 || m.LagBytes == nil || *m.LagBytes != 2048 || pg3.Disagrees != "" {
		t.Errorf("pg3 = %+v %q; want nofailover, timeline 3, lag 2048, agreeing", m, pg3.Disagrees)
	}
}

// TestVerdictDisabledPooler: a pooler that refuses new clients (a run's
// guard closed it) makes an otherwise healthy cluster degraded, saying so.
func TestVerdictDisabledPooler(t *testing.T) {
	top := &topology.Topology{Primaries: []string{"pg1"}, Nodes: []*topology.Node{{Name: "pg1", Role: topology.RolePrimary}},
		Poolers: []*topology.Pooler{{Name: "pgbouncer", Database: "app", Disabled: true}}}
	v := top.Verdict()
	if v.Health != topology.Degraded || len(v.Reasons) != 1 || !strings.Contains(v.Reasons[0], "pooler pgbouncer refuses new clients of app") {
		t.Fatalf("verdict %+v; want degraded naming the disabled pooler", v)
	}
	top.Poolers[0].Disabled = false
	if v := top.Verdict(); v.Health != topology.Healthy {
		t.Fatalf("verdict %+v; want healthy", v)
	}
}

// TestInspectRouter: the HAProxy in front of a sandbox is read through its
// runtime API: its servers by node, and where new connections go. Routing
// to a standby as well as the primary makes the cluster degraded, saying
// where it routes.
func TestInspectRouter(t *testing.T) {
	sb := sandboxtest.NewRouter(t, 1, "")
	c := sb.Cluster()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	top := topology.Inspect(ctx, c, topology.Options{})
	if top.Router == nil || top.Router.Error != "" {
		t.Fatalf("router view %+v", top.Router)
	}
	if !slices.Equal(top.Router.RoutesTo, []string{"pg1"}) {
		t.Fatalf("routes to %v (%+v); want pg1", top.Router.RoutesTo, top.Router.Servers)
	}
	if v := top.Verdict(); v.Health != topology.Healthy {
		t.Fatalf("verdict %+v with the router on the primary; want healthy", v)
	}
	hc, err := haproxy.ForRouter(c.Router)
	if err != nil {
		t.Fatal(err)
	}
	if err := hc.SetState(ctx, c.Router.Backend, c.Router.Server("pg2"), haproxy.Ready); err != nil {
		t.Fatal(err)
	}
	if err := hc.SetHealth(ctx, c.Router.Backend, c.Router.Server("pg2"), haproxy.Up); err != nil {
		t.Fatal(err)
	}
	top = topology.Inspect(ctx, c, topology.Options{})
	v := top.Verdict()
	if v.Health != topology.Degraded || !strings.Contains(strings.Join(v.Reasons, "; "), "routes new connections to pg1, pg2, not to the primary pg1 alone") {
		t.Fatalf("verdict %+v with the router on both nodes; want degraded, naming where it routes", v)
	}
}

// TestVerdictFencedPrimary: a primary a switchover left fenced takes no
// commit; the cluster is degraded, and the reason says how it ends.
func TestVerdictFencedPrimary(t *testing.T) {
	top := &topology.Topology{Primaries: []string{"pg1"}, Nodes: []*topology.Node{{Name: "pg1", Role: topology.RolePrimary, SynchronousStandbyNames: pg.FenceSyncName}}}
	v := top.Verdict()
	if v.Health != topology.Degraded || len(v.Reasons) != 1 || !strings.Contains(v.Reasons[0], "pg1 is fenced by a switchover") || !strings.Contains(v.Reasons[0], "switchover resume") {
		t.Fatalf("verdict %+v; want degraded naming the fence and how it is lifted", v)
	}
	top.Nodes[0].SynchronousStandbyNames = "ANY 1 (pg2)"
	if v := top.Verdict(); v.Health != topology.Healthy {
		t.Errorf("with synchronous_standby_names %q: verdict %+v, want healthy", top.Nodes[0].SynchronousStandbyNames, v)
	}
}
