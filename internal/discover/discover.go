// Package discover reads a running cluster into an inventory: starting
// from one node's connection string, it asks PostgreSQL (and the cluster
// manager, when there is one) which nodes there are, how each is reached,
// where its data lives and which version it runs, and asks the pooler's
// admin console where clients go. What the cluster cannot say (a bin
// directory, the OS user that owns the servers, a primary's name under
// plain streaming replication) is guessed, and every guess carries the
// reason it rests on, so the rendered inventory marks it.
//
// Discovery only reads: it connects, queries and disconnects. A node it
// cannot reach, a node of another cluster, or a port where no PostgreSQL
// answers is an error that says where and what, and no inventory is made.
package discover

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
)

// DefaultTimeout bounds each connection and each question to one server.
const DefaultTimeout = 5 * time.Second

// NeighbourPorts is how many ports on either side of each known port are
// tried for a standby whose port the cluster does not say, unless the
// operator lists the ports to try.
const NeighbourPorts = 10

// ErrOptions marks a mistake in what discovery was given (a connection
// string that does not parse, a url that is not one): nothing was asked
// of any server.
var ErrOptions = errors.New("invalid discovery options")

// Options say where discovery starts and how the inventory reaches hosts.
type Options struct {
	// Conninfo reaches any node of the cluster, primary or standby. A
	// password in it is used to connect and never written out.
	Conninfo string
	// PgBouncer is the admin console of the PgBouncer in front, if any.
	PgBouncer string
	// Patroni is a member's REST API url, when Patroni runs the cluster.
	Patroni string
	// PgafMonitor is the pg_auto_failover monitor's connection string,
	// when a monitor runs the cluster.
	PgafMonitor string
	// Cluster is the cluster's name in the inventory; "" takes the
	// servers' cluster_name, or guesses.
	Cluster string
	// SSH is how commands reach each host over ssh: an address pattern
	// in which {host} is the node's address (from its conninfo) and
	// {name} its name, e.g. "admin@{host}". "" runs commands locally.
	SSH string
	// SSHConfig is the ssh client configuration the inventory names.
	SSHConfig string
	// RunAs is the OS user commands run as on each host (the servers'
	// owner); "" leaves it to the transport, or to a guess when local.
	RunAs string
	// Ports are tried, besides the ports the cluster names, for a standby
	// whose port the cluster does not say (plain streaming replication).
	// Empty tries the NeighbourPorts on either side of each known port.
	Ports []int
	// Timeout bounds each connection and question; DefaultTimeout when 0.
	Timeout time.Duration
	// Note receives what the operator should know but is no error: a
	// password left out, a walsender skipped. Nil drops them.
	Note func(msg string)
}

// Value is one value of the inventory. Guessed is empty when the value was
// read from the cluster; otherwise it says what the guess rests on.
type Value struct {
	Text    string
	Guessed string
}

// Read is a value read from the cluster.
func Read(text string) Value { return Value{Text: text} }

// Guess is a guessed value and what it rests on.
func Guess(text, why string) Value { return Value{Text: text, Guessed: why} }

// Inventory is a cluster as discovery found it, ready to render.
type Inventory struct {
	// From is where discovery started, host:port.
	From      string
	Cluster   Value
	Candidate Value // a standby to promote; "" when there is none
	Nodes     []*Node
	Pooler    *Pooler  // nil without --pgbouncer
	Manager   *Manager // nil for plain streaming replication
}

// Node is one server of the cluster.
type Node struct {
	Name     Value
	Conninfo string // rendered without a password
	Host     Host
	DataDir  Value
	BinDir   Value
	Role     pg.Role
	Upstream string // a standby's upstream, by name; "" when not streaming
	// SyncState is how the upstream counts a standby: async, potential,
	// sync or quorum.
	SyncState string
	// Version is server_version_num; VersionText is server_version.
	Version     int
	VersionText string
	SystemID    string
}

// Host is how commands reach a host, with why, when it is a guess.
type Host struct {
	cluster.Host
	Guessed string
}

// Pooler is the PgBouncer in front of the primary.
type Pooler struct {
	Admin    string // the admin console's conninfo, without a password
	Database Value  // the client-facing [databases] entry
	Config   Value
	Host     Host
}

// Manager is the cluster manager, as the inventory's manager section
// writes it.
type Manager struct {
	Kind cluster.ManagerKind
	// Patroni: each member's REST API, and the user of basic auth.
	URLs     []string
	Username string
	// repmgr: the database of its schema, each node's repmgr.conf.
	Database string
	Configs  map[string]Value
	// pg_auto_failover: the monitor (without a password), formation, group.
	Monitor   string
	Formation string
	Group     int
}

// Primary returns the node that is the primary, or nil.
func (inv *Inventory) Primary() *Node {
	for _, n := range inv.Nodes {
		if n.Role == pg.RolePrimary {
			return n
		}
	}
	return nil
}

// Discover reads the cluster o.Conninfo belongs to. It changes nothing on
// any server.
func Discover(ctx context.Context, o Options) (*Inventory, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Note == nil {
		o.Note = func(string) {}
	}
	managers := 0
	for _, m := range []string{o.Patroni, o.PgafMonitor} {
		if m != "" {
			managers++
		}
	}
	if managers > 1 {
		return nil, fmt.Errorf("%w: give one manager (--patroni or --pgaf-monitor), not both", ErrOptions)
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	w, err := newWalker(o)
	if err != nil {
		return nil, err
	}
	return w.discover(ctx)
}

// check refuses options that cannot be right before anything is asked of
// any server.
func (o Options) check() error {
	if o.Cluster != "" && !cluster.NamePattern.MatchString(o.Cluster) {
		return fmt.Errorf("%w: cluster name %q: use %s", ErrOptions, o.Cluster, cluster.NameRule)
	}
	for _, c := range []struct{ flag, s string }{{"--pgbouncer", o.PgBouncer}, {"--pgaf-monitor", o.PgafMonitor}} {
		if c.s == "" {
			continue
		}
		if _, err := conninfo.Resolve(c.s); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrOptions, c.flag, err)
		}
	}
	if o.Patroni != "" {
		u, err := url.Parse(strings.TrimSpace(o.Patroni))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: --patroni: %s is not an http or https url", ErrOptions, patroni.Redact(o.Patroni))
		}
	}
	if o.SSH != "" {
		a := strings.NewReplacer("{host}", "db1", "{name}", "pg1").Replace(sshPattern(o.SSH))
		if _, _, _, err := transport.ParseSSHAddress(a); err != nil {
			return fmt.Errorf("%w: --ssh %q: %v", ErrOptions, o.SSH, err)
		}
	}
	return nil
}
