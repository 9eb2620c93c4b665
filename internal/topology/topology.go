// Package topology is switchover's one model of a cluster: it asks every
// node, the pooler and the cluster manager once, at the same time, and
// returns what they said as plain data. Status, the candidate choice, the
// reviewed plan's drift check and the checks that need the same facts all
// read this model instead of asking the servers themselves.
//
// A new fact about a node is one field on Node and one entry in nodeFacts
// (facts.go); a fact that needs every node's answer (who is the primary,
// how far a slot is behind it) is one entry in clusterFacts.
package topology

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/claim"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/oneline"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/repmgr"
)

// Role is a node's role as PostgreSQL reports it; the zero value is unknown.
type Role = pg.Role

// The roles a node answers with.
const (
	RolePrimary = pg.RolePrimary
	RoleStandby = pg.RoleStandby
)

// Topology is the cluster as it answered at one moment. The JSON names are
// those `switchover status --json` prints, and are stable.
type Topology struct {
	Cluster string  `json:"cluster"`
	Nodes   []*Node `json:"nodes"`
	// Primaries are the nodes that answered as a primary: one in a healthy
	// cluster.
	Primaries []string `json:"primaries"`
	// Poolers are every pooler's routing, in the inventory's order.
	Poolers []*Pooler `json:"poolers,omitempty"`
	// Pooler is the first of Poolers (the one a client-facing probe uses),
	// kept under the name status printed before there were several.
	Pooler *Pooler `json:"pooler,omitempty"`
	// Patroni is Patroni's view, when Patroni manages the cluster.
	Patroni *PatroniView `json:"patroni_view,omitempty"`
	// Claim is the run claim kept in the cluster (internal/claim) when a
	// run holds it, with the nodes it was seen on.
	Claim *RunClaim `json:"run_claim,omitempty"`
	// Repmgr is repmgr's view, when repmgr manages the cluster.
	Repmgr *RepmgrView `json:"repmgr_view,omitempty"`
	// Pgaf is the pg_auto_failover monitor's view, when it manages the cluster.
	Pgaf *PgafView `json:"pg_auto_failover_view,omitempty"`
	// Router is where the TCP router in front of the nodes sends new
	// connections, when the inventory has one.
	Router *RouterView `json:"router,omitempty"`
	// InspectedAt is when the inspection started.
	InspectedAt time.Time `json:"inspected_at"`
}

// RunClaim is a run's claim on the cluster as the nodes keep it: who, from
// where, since when, which run.
type RunClaim struct {
	claim.Holder
	SeenOn []string `json:"seen_on"`
}

// Node is one node of the inventory as it answered.
type Node struct {
	Name string `json:"node"`
	// Error says why the node could not be asked (it did not answer, or
	// refused); "" when it answered.
	Error    string `json:"error,omitempty"`
	Role     Role   `json:"role,omitempty"`
	Timeline int    `json:"timeline,omitempty"`
	// Upstream is the host:port a standby streams from, UpstreamNode that
	// address's node in the inventory ("" when none matches).
	Upstream     string `json:"upstream,omitempty"`
	UpstreamNode string `json:"upstream_node,omitempty"`
	Streaming    bool   `json:"streaming,omitempty"`
	// LagBytes is how far a standby's replay is behind the primary's
	// current LSN; nil when no primary answered.
	LagBytes *int64 `json:"lag_bytes,omitempty"`
	// LagSeconds is how far in time a standby's replay is behind: the age
	// of the last replayed transaction while WAL waits to be replayed, 0
	// when all it received is replayed; nil when it cannot tell.
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
	// ReplayLagSeconds is the upstream's measure of the same
	// (pg_stat_replication.replay_lag); nil when it has none (an idle
	// standby reports none).
	ReplayLagSeconds *float64 `json:"replay_lag_seconds,omitempty"`
	// ApplyDelaySeconds is a standby's recovery_min_apply_delay (0: none):
	// a delayed standby is never a candidate, and after a switchover it
	// streams from the new primary only once its delay allows.
	ApplyDelaySeconds float64 `json:"apply_delay_seconds,omitempty"`
	// Blocking is how many sessions would block a switchover to the node
	// (locks, advisory locks, old transactions).
	Blocking int `json:"blocking_sessions"`
	// FreeSlots is how many more ordinary clients a primary takes
	// (max_connections less the client backends and the slots reserved
	// for superusers); nil for a standby or when it could not be read.
	FreeSlots      *int `json:"free_connection_slots,omitempty"`
	MaxConnections int  `json:"max_connections,omitempty"`
	// Version is server_version_num, Major its major version.
	Version int `json:"server_version_num,omitempty"`
	Major   int `json:"major_version,omitempty"`
	// SystemID is pg_control_system()'s system identifier: the same on
	// every node of one cluster.
	SystemID string `json:"system_identifier,omitempty"`
	// SynchronousStandbyNames is the node's synchronous_standby_names,
	// which matters on the primary.
	SynchronousStandbyNames string `json:"synchronous_standby_names,omitempty"`
	// SyncState and SyncPriority are how the standby's upstream counts it
	// (pg_stat_replication: async, potential, sync, quorum); "" when the
	// upstream does not list it.
	SyncState    string `json:"sync_state,omitempty"`
	SyncPriority *int   `json:"sync_priority,omitempty"`
	// Senders are the standbys streaming from this node.
	Senders []Sender `json:"wal_senders,omitempty"`
	// Slots are the node's replication slots.
	Slots []Slot `json:"replication_slots,omitempty"`
	// Patroni is the member as Patroni lists it, when Patroni manages the
	// cluster; Disagrees says where Patroni and PostgreSQL differ.
	Patroni   *PatroniMember `json:"patroni,omitempty"`
	Disagrees string         `json:"disagrees,omitempty"`
	// Repmgr is the node's record in repmgr.nodes and Repmgrd repmgrd's
	// state on it, when repmgr manages the cluster.
	Repmgr  *repmgr.Record `json:"repmgr,omitempty"`
	Repmgrd *repmgr.Daemon `json:"repmgrd,omitempty"`
	// Pgaf is the node as the pg_auto_failover monitor lists it.
	Pgaf *PgafNode `json:"pg_auto_failover,omitempty"`
	// Problems are facts the node could not give although it answered,
	// each with why.
	Problems []string `json:"problems,omitempty"`
	// State is what pg.Inspect read, positions included.
	State pg.State `json:"-"`
	// claim is the run claim this node keeps; cluster names the claim.
	claim   *claim.Holder
	cluster string
}

// Reachable reports whether the node answered.
func (n *Node) Reachable() bool { return n.Error == "" }

// Sender is one standby streaming from a node (pg_stat_replication).
type Sender struct {
	App          string `json:"application_name"`
	Node         string `json:"node,omitempty"` // the inventory node it is, when known
	State        string `json:"state"`
	SyncState    string `json:"sync_state"`
	SyncPriority int    `json:"sync_priority"`
	Slot         string `json:"slot,omitempty"`
	// ReplayLagSeconds is the sender's replay_lag; nil when it has none.
	ReplayLagSeconds *float64 `json:"replay_lag_seconds,omitempty"`
}

// Slot is one replication slot of a node.
type Slot struct {
	Name              string `json:"name"`
	Type              string `json:"type"` // physical or logical
	Plugin            string `json:"plugin,omitempty"`
	Active            bool   `json:"active"`
	RestartLSN        string `json:"restart_lsn,omitempty"`
	ConfirmedFlushLSN string `json:"confirmed_flush_lsn,omitempty"`
	// BehindBytes is how far the slot's consumer is behind the primary's
	// current LSN (confirmed flush for a logical slot, restart LSN for a
	// physical one); nil when either is unknown.
	BehindBytes *int64 `json:"behind_bytes,omitempty"`
	position    pg.LSN
}

// Pooler is where the pooler sends clients. Database, Target, Node and
// Paused describe the inventory's database; Databases every entry.
type Pooler struct {
	Name      string        `json:"name"`
	Kind      string        `json:"kind"`
	Database  string        `json:"database"`
	Target    string        `json:"target,omitempty"`      // host:port its entry points at
	Node      string        `json:"target_node,omitempty"` // that address's node
	Paused    bool          `json:"paused"`
	Disabled  bool          `json:"disabled,omitempty"` // new clients refused (DISABLE)
	Error     string        `json:"error,omitempty"`
	Databases []PoolerRoute `json:"databases,omitempty"`
}

// PoolerRoute is one [databases] entry of the pooler.
type PoolerRoute struct {
	Name     string `json:"name"`
	Target   string `json:"target"`                // host:port
	Node     string `json:"target_node,omitempty"` // that address's node
	Database string `json:"server_database,omitempty"`
	Paused   bool   `json:"paused"`
	Disabled bool   `json:"disabled,omitempty"` // new clients refused (DISABLE)
}

// Options change how Inspect asks.
type Options struct {
	// Nodes are the nodes to ask; empty means every node, in inventory order.
	Nodes []string
	// Connect opens a connection to a node, given back with pg.Release;
	// nil connects with the node's conninfo and a 5s statement timeout.
	Connect func(ctx context.Context, name string, n *cluster.Node) (*pgx.Conn, error)
	// NodesOnly leaves out the pooler and the cluster manager.
	NodesOnly bool
	// StateOnly reads of each node only its state (role, timeline,
	// upstream, positions, version), for a check that polls and needs no
	// more: one query a node instead of every fact.
	StateOnly bool
}

// DefaultStatementTimeout bounds each statement Inspect sends by default.
const DefaultStatementTimeout = 5 * time.Second

// Inspect asks every node, the pooler and the manager at once and returns
// what they said. It never fails: what could not be learnt is said where
// it would have been (a node's Error, the pooler's Error, the view's
// Error). ctx bounds it all.
func Inspect(ctx context.Context, c *cluster.Cluster, o Options) *Topology {
	t := &Topology{Cluster: c.Name, Primaries: []string{}, InspectedAt: time.Now().UTC()}
	names := o.Nodes
	if len(names) == 0 {
		names = c.NodeOrder()
	}
	connect := o.Connect
	if connect == nil {
		connect = func(ctx context.Context, _ string, n *cluster.Node) (*pgx.Conn, error) {
			return pg.Connect(ctx, n.Conninfo, DefaultStatementTimeout)
		}
	}
	var wg sync.WaitGroup
	for _, name := range names {
		n := &Node{Name: name, cluster: c.Name}
		t.Nodes = append(t.Nodes, n)
		wg.Go(func() { askNode(ctx, c.Nodes[name], n, connect, o.StateOnly) })
	}
	var view *PatroniView
	if !o.NodesOnly && len(c.Poolers) > 0 {
		t.Poolers = make([]*Pooler, len(c.Poolers))
		for i, p := range c.Poolers {
			wg.Go(func() { t.Poolers[i] = askPooler(ctx, p) })
		}
	}
	if !o.NodesOnly && c.Manager != nil && c.Manager.Kind == cluster.ManagerPatroni {
		wg.Go(func() { view = askPatroni(ctx, c.Manager) })
	}
	var router *RouterView
	if !o.NodesOnly && c.Router != nil {
		wg.Go(func() { router = askRouter(ctx, c.Router) })
	}
	var afView *PgafView
	if !o.NodesOnly && c.Manager != nil && c.Manager.Kind == cluster.ManagerPgAutoFailover {
		wg.Go(func() { afView = askPgaf(ctx, c.Manager) })
	}
	wg.Wait()
	if len(t.Poolers) > 0 {
		t.Pooler = t.Poolers[0]
	}
	t.Patroni = view
	t.Pgaf = afView
	t.Router = router
	book := newAddressBook(c)
	for _, f := range clusterFacts {
		f(ctx, t, book)
	}
	if !o.NodesOnly && c.Manager != nil && c.Manager.Kind == cluster.ManagerRepmgr {
		askRepmgr(ctx, c, t) // after the facts: it reads repmgr.nodes on the primary they found
	}
	return t
}

// Node returns the node called name, or nil.
func (t *Topology) Node(name string) *Node {
	for _, n := range t.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// askNode connects to one node and reads every fact of nodeFacts. The
// first fact is the node's state: when it cannot be read, the node counts
// as unreachable.
func askNode(ctx context.Context, cn *cluster.Node, n *Node,
	connect func(context.Context, string, *cluster.Node) (*pgx.Conn, error), stateOnly bool) {
	if cn == nil {
		n.Error = "not in the inventory"
		return
	}
	if strings.TrimSpace(cn.Conninfo) == "" {
		n.Error = "no conninfo in the inventory"
		return
	}
	conn, err := connect(ctx, n.Name, cn)
	if err != nil {
		n.Error = oneLine(err.Error())
		return
	}
	defer pg.Release(conn)
	for i, f := range nodeFacts {
		if i > 0 && stateOnly {
			break
		}
		if f.on != "" && f.on != n.Role {
			continue
		}
		if err := f.read(ctx, conn, n); err != nil {
			if i == 0 {
				n.Error = oneLine(err.Error())
				return
			}
			n.Problems = append(n.Problems, f.name+": "+oneLine(err.Error()))
		}
	}
}

// addressBook finds the node of the inventory an address belongs to.
type addressBook struct {
	order     []string
	endpoints map[string][]string // node -> host:port it is reached at
}

func newAddressBook(c *cluster.Cluster) *addressBook {
	b := &addressBook{order: c.NodeOrder(), endpoints: map[string][]string{}}
	for _, name := range b.order {
		n := c.Nodes[name]
		if n == nil {
			continue
		}
		r, err := conninfo.Resolve(n.Conninfo)
		if err != nil {
			continue
		}
		b.endpoints[name] = []string{r.Address()}
	}
	return b
}

// nodeAt returns the node reached at addr (host:port), or "": an equal
// address first, then one naming the same server.
func (b *addressBook) nodeAt(ctx context.Context, addr string) string {
	if addr == "" {
		return ""
	}
	for _, name := range b.order {
		for _, ep := range b.endpoints[name] {
			if strings.EqualFold(ep, addr) {
				return name
			}
		}
	}
	for _, name := range b.order {
		for _, ep := range b.endpoints[name] {
			if pg.SameEndpoint(ctx, addr, ep) {
				return name
			}
		}
	}
	return ""
}

// oneLine puts a message on one line.
func oneLine(s string) string { return oneline.Of(s) }
