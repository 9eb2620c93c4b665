// Package cluster is the in-memory model of the cluster a runbook acts on:
// its nodes, how to reach their hosts, and the facts a run learns on the way.
// The runbook package builds it from an inventory file; checks and steps read
// it through a Target.
package cluster

import (
	"fmt"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/transport"
)

// NamePattern is what a name in an inventory or a runbook must match (a
// cluster, a node, a pooler, a step): the loader refuses others, and what
// writes an inventory makes its names fit.
var NamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// NameRule says what NamePattern allows, for messages.
const NameRule = "lower-case letters, digits, '-', '_' and '.', starting with a letter or digit"

// Cluster is what an inventory describes.
type Cluster struct {
	Name    string
	Nodes   map[string]*Node
	Manager *Manager // nil when no cluster manager runs
	Router  *Router  // nil when no TCP router (HAProxy) is in front
	// Order is the node names as the inventory lists them, so that steps
	// acting on one node after another go in the order the operator wrote.
	Order []string
	// Poolers are the connection poolers clients go through, in the
	// inventory's order; none when clients connect directly. A run holds
	// clients in every one of them or in none.
	Poolers []*Pooler
	// Green is the target cluster of a blue/green move (a major upgrade by
	// logical replication, say), fed from this one; nil when the inventory
	// has no green section. Its nodes are reached by name like this
	// cluster's (Node, Executor), but NodeOrder, NodeNames and everything
	// that walks the cluster see this cluster's nodes only.
	Green *Cluster
}

// Node is one PostgreSQL server of the cluster.
type Node struct {
	Name     string
	Conninfo string // libpq connection string; may hold a password
	Host     Host
	DataDir  string
	BinDir   string
}

// Host says how commands reach a node's machine.
type Host struct {
	Transport string // "local" or "ssh"
	Address   string // for ssh: [user@]host[:port]
	// User runs the commands as this OS user (the database's owner, say):
	// locally by switching user (switchover must be root), over ssh with sudo.
	User string
	// SSHConfig is an ssh client configuration file (ssh -F); "" uses the
	// user's own.
	SSHConfig string
}

// Executor returns how to run commands on this host.
func (h Host) Executor() (transport.Executor, error) {
	switch h.Transport {
	case "", "local":
		return transport.Local{User: h.User}, nil
	case "ssh":
		return transport.SSH{Address: h.Address, User: h.User, ConfigFile: h.SSHConfig}, nil
	}
	return nil, fmt.Errorf("transport %q is not supported", h.Transport)
}

// Pooler is one connection pooler clients go through.
type Pooler struct {
	// Name tells the poolers of one cluster apart in output and facts:
	// DefaultPoolerName for the inventory's single `pooler:`.
	Name     string
	Kind     string // "pgbouncer"
	Admin    string // connection string of the admin console
	Database string // the client-facing database entry
	Config   string // path of the pooler's configuration file
	Host     Host
}

// DefaultPoolerName is the name of the pooler an inventory gives with the
// single `pooler:` key.
const DefaultPoolerName = "pgbouncer"

// ClientConninfo is how a client reaches the pooler's database: the admin
// console's server, user and TLS settings, with the client-facing database
// instead. Its String never holds a password; Dial does, for this process.
func (p *Pooler) ClientConninfo() (conninfo.Resolved, error) {
	r, err := conninfo.Resolve(p.Admin)
	if err != nil {
		return conninfo.Resolved{}, fmt.Errorf("pooler admin connection string: %w", err)
	}
	r.Database, r.ApplicationName = p.Database, ""
	return r, nil
}

// FollowConninfo is the primary_conninfo with which follower streams
// from n, as pg.follow writes it by default: n's inventory conninfo
// resolved to host, port, user and TLS settings, no database, and
// application_name the follower's name. It never holds a password: the
// follower's OS user uses its own ~/.pgpass or passfile.
func (n *Node) FollowConninfo(follower string) (string, error) {
	r, err := conninfo.Resolve(n.Conninfo)
	if err != nil {
		return "", fmt.Errorf("conninfo of %q: %w", n.Name, err)
	}
	r.Database, r.ApplicationName = "", follower
	return r.String(), nil
}

// ManagerKind names a kind of cluster manager, as inventories write it.
type ManagerKind string

// The cluster managers the tool knows.
const (
	ManagerPatroni        ManagerKind = "patroni"
	ManagerRepmgr         ManagerKind = "repmgr"
	ManagerPgAutoFailover ManagerKind = "pg_auto_failover"
)

// Manager is the cluster manager that could fail over on its own.
type Manager struct {
	Kind ManagerKind
	URLs []string
	// Username and Password are sent as HTTP basic auth when Username is set.
	Username string
	Password string
	// CAFile verifies the API's TLS certificate; Insecure skips verification.
	CAFile   string
	Insecure bool
	// Configs is each node's repmgr.conf (kind repmgr): repmgr's own
	// commands run on the node's host with it. Database is the database
	// holding the repmgr schema, reached with each node's conninfo.
	Configs  map[string]string
	Database string
	// Monitor, Formation and Group locate a pg_auto_failover cluster: the
	// monitor's connection string, and the formation and group whose nodes
	// the inventory lists.
	Monitor   string
	Formation string
	Group     int
}

// NodeNames returns the node names, sorted.
func (c *Cluster) NodeNames() []string {
	if c == nil {
		return nil
	}
	out := make([]string, 0, len(c.Nodes))
	for n := range c.Nodes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// NodeOrder returns the node names in the inventory's order, or sorted by
// name when Order does not list every node exactly once.
func (c *Cluster) NodeOrder() []string {
	if c == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, n := range c.Order {
		if _, ok := c.Nodes[n]; !ok || seen[n] {
			return c.NodeNames()
		}
		seen[n] = true
	}
	if len(seen) != len(c.Nodes) {
		return c.NodeNames()
	}
	return append([]string(nil), c.Order...)
}

// Node returns the node called name: one of this cluster's, else one of
// its green cluster's. Names are unique across both (the inventory loader
// refuses a name given twice), so a step may name either.
func (c *Cluster) Node(name string) (*Node, bool) {
	if c == nil {
		return nil, false
	}
	if n, ok := c.Nodes[name]; ok && n != nil {
		return n, true
	}
	if c.Green != nil {
		if n, ok := c.Green.Nodes[name]; ok && n != nil {
			return n, true
		}
	}
	return nil, false
}

// Executor returns how to run commands on the host of node (of this
// cluster or of its green one); the empty name means this machine.
func (c *Cluster) Executor(node string) (transport.Executor, error) {
	if node == "" {
		return transport.Local{}, nil
	}
	if c == nil {
		return nil, fmt.Errorf("node %q: no inventory given", node)
	}
	n, ok := c.Node(node)
	if !ok {
		return nil, fmt.Errorf("node %q is not in the inventory", node)
	}
	ex, err := n.Host.Executor()
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", node, err)
	}
	return ex, nil
}

// Facts is what a run learns while it goes and later steps need, such as the
// shutdown checkpoint LSN of a stopped primary. The engine journals every
// fact, so a resumed run knows what the interrupted one learned.
type Facts struct {
	mu sync.Mutex
	m  map[string]string
	// OnSet is called with every new fact; the engine journals it.
	OnSet func(key, value string)
}

// RestartedFact is the fact that records when a node's PostgreSQL, restarted
// by this run, started (its pg_postmaster_start_time(), RFC 3339).
func RestartedFact(node string) string { return node + ".restarted_at" }

// SystemIDFact is the fact that records a node's system identifier, learnt
// before a step acts on its data directory: pg.same_cluster records it for
// every node whose server answered, and pg.stop asks the server when no
// check did.
func SystemIDFact(node string) string { return node + ".system_identifier" }

// StartTime is how a server's start time is written in facts and output.
func StartTime(at time.Time) string { return at.UTC().Format(time.RFC3339Nano) }

// SetRestarted records that this run restarted node's PostgreSQL, which
// then started at at.
func (f *Facts) SetRestarted(node string, at time.Time) { f.Set(RestartedFact(node), StartTime(at)) }

// Restarted returns when node's PostgreSQL started after this run restarted
// it, and whether the run recorded a restart; an error when the fact is
// there but not a time.
func (f *Facts) Restarted(node string) (time.Time, bool, error) {
	if f == nil {
		return time.Time{}, false, nil
	}
	v, ok := f.Get(RestartedFact(node))
	if !ok {
		return time.Time{}, false, nil
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, true, fmt.Errorf("fact %s is %q, not an RFC 3339 time", RestartedFact(node), v)
	}
	return at, true, nil
}

// Set records a fact.
func (f *Facts) Set(key, value string) {
	f.mu.Lock()
	if f.m == nil {
		f.m = map[string]string{}
	}
	f.m[key] = value
	hook := f.OnSet
	f.mu.Unlock()
	if hook != nil {
		hook(key, value)
	}
}

// Restore records a fact without calling OnSet (a resumed run replays them).
func (f *Facts) Restore(key, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]string{}
	}
	f.m[key] = value
}

// Get returns a fact and whether it is known.
func (f *Facts) Get(key string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.m[key]
	return v, ok
}

// Session holds what lives across the steps of one run in this process,
// such as a canary writer started by one step and stopped by another. It
// is not journaled: a resumed run starts with an empty session.
type Session struct {
	mu sync.Mutex
	m  map[string]any
}

// Put keeps a value under key.
func (s *Session) Put(key string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]any{}
	}
	s.m[key] = v
}

// Load returns the value under key, made by create when there is none.
// A nil session makes a value each time and keeps none.
func (s *Session) Load(key string, create func() any) any {
	if s == nil {
		return create()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[key]; ok {
		return v
	}
	if s.m == nil {
		s.m = map[string]any{}
	}
	v := create()
	s.m[key] = v
	return v
}

// Take returns the value under key and forgets it.
func (s *Session) Take(key string) (any, bool) {
	if s == nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	delete(s.m, key)
	return v, ok
}

// Closer is a session value that must be released when the run ends.
type Closer interface{ Close() }

// CloseAll releases what is left in the session: the engine calls it when
// a run returns, so nothing a step started outlives the run.
func (s *Session) CloseAll() {
	if s == nil {
		return
	}
	s.mu.Lock()
	vals := s.m
	s.m = nil
	s.mu.Unlock()
	for _, v := range vals {
		if c, ok := v.(Closer); ok {
			c.Close()
		}
	}
}

// Target is what a check or a step acts on: the cluster, the facts of the
// run, and a place to report output as it comes.
type Target struct {
	RunID   string
	Cluster *Cluster
	Facts   *Facts
	Session *Session
	// Output receives a line of action output as it is produced; may be nil.
	Output func(line string)
	// Hold is told when a step holds clients and when they go on; nil
	// when the run keeps no guard.
	Hold ClientHold
	// NoChange is told when an action found nothing to do; may be nil.
	NoChange func()
}

// Unchanged prints line and marks the action as one that changed nothing
// (a RESUME not sent, a canary that never ran), so that a run's summary
// lists only the actions that changed something.
func (t *Target) Unchanged(line string) {
	if t != nil && t.NoChange != nil {
		t.NoChange()
	}
	t.Print(line)
}

// Print sends a line of output to the run's observer, if any.
func (t *Target) Print(line string) {
	if t != nil && t.Output != nil {
		t.Output(line)
	}
}

// Node returns the inventory entry of the named node, of the cluster or
// of its green one, or an error that says why there is none: checks and
// steps find their nodes here.
func (t *Target) Node(name string) (*Node, error) {
	if t == nil || t.Cluster == nil {
		return nil, fmt.Errorf("node %q: no inventory given", name)
	}
	n, ok := t.Cluster.Node(name)
	if !ok {
		return nil, fmt.Errorf("node %q is not in the inventory", name)
	}
	return n, nil
}

// Executor returns the executor for node (see Cluster.Executor).
func (t *Target) Executor(node string) (transport.Executor, error) {
	return t.Cluster.Executor(node)
}
