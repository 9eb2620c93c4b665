// Package repmgr reads repmgr's view of a cluster and runs repmgr's own
// commands on a node's host. repmgr keeps its view in PostgreSQL: the
// repmgr.nodes table, written on the primary and replicated to every
// standby, and repmgrd's state (running, paused) in each node's shared
// memory. A switchover that repmgr did not perform leaves that table
// naming the old primary until repmgr's own commands register the new
// shape; until then repmgrd cannot find a primary and stops monitoring.
package repmgr

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/oneline"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
)

// DefaultDatabase is the database repmgr's schema lives in when the
// inventory does not name one.
const DefaultDatabase = "repmgr"

// queryTimeout bounds one node's answer, so that a node that hangs leaves
// the others' answers usable.
const queryTimeout = 5 * time.Second

// Record is one row of repmgr.nodes: how repmgr has a node registered.
type Record struct {
	ID         int    `json:"node_id"`
	Name       string `json:"node_name"`
	Type       string `json:"type"` // primary, standby, witness
	UpstreamID int    `json:"upstream_node_id,omitempty"`
	Upstream   string `json:"upstream,omitempty"` // the upstream's node name
	Active     bool   `json:"active"`
}

// Daemon is repmgrd's state on one node, as that node's shared memory
// holds it: a paused repmgrd neither promotes nor follows on its own.
type Daemon struct {
	Node    string `json:"node"`
	Running bool   `json:"running"`
	Paused  bool   `json:"paused"`
	PID     int    `json:"pid,omitempty"`
	Error   string `json:"error,omitempty"`
}

// View is repmgr's view of the cluster: the repmgr.nodes table as one node
// holds it (the primary's when PostgreSQL names one) and repmgrd on each
// node.
type View struct {
	// From is the node whose repmgr.nodes was read; "" when none answered.
	From    string   `json:"from,omitempty"`
	Error   string   `json:"error,omitempty"`
	Records []Record `json:"records,omitempty"`
	Daemons []Daemon `json:"daemons,omitempty"`
}

// Database is the database of repmgr's schema for m.
func Database(m *cluster.Manager) string {
	if m != nil && m.Database != "" {
		return m.Database
	}
	return DefaultDatabase
}

// Conninfo is node n's connection string with repmgr's database instead
// of its own, the user and server unchanged.
func Conninfo(m *cluster.Manager, n *cluster.Node) (string, error) {
	r, err := conninfo.Resolve(n.Conninfo)
	if err != nil {
		return "", fmt.Errorf("node %q: %w", n.Name, err)
	}
	r.Database = Database(m)
	return r.Dial(), nil
}

func connect(ctx context.Context, c *cluster.Cluster, name string) (*pgx.Conn, error) {
	n, ok := c.Nodes[name]
	if !ok {
		return nil, fmt.Errorf("node %q is not in the inventory", name)
	}
	dsn, err := Conninfo(c.Manager, n)
	if err != nil {
		return nil, err
	}
	return pg.Connect(ctx, dsn, queryTimeout)
}

// Read reads repmgr's view: repmgr.nodes from the node called from (the
// primary, as PostgreSQL says) or, when from is "" or does not answer,
// from the first node in inventory order that does, and repmgrd's state
// on every node, all at once.
func Read(ctx context.Context, c *cluster.Cluster, from string) *View {
	v := &View{}
	names := c.NodeOrder()
	v.Daemons = make([]Daemon, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { v.Daemons[i] = readDaemon(ctx, c, name) })
	}
	order := names
	if from != "" {
		order = append([]string{from}, names...)
	}
	var errs []string
	for _, name := range order {
		recs, err := readRecords(ctx, c, name)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %s", name, oneline.Of(err.Error())))
			continue
		}
		v.From, v.Records = name, recs
		break
	}
	if v.From == "" {
		v.Error = "repmgr.nodes could not be read: " + strings.Join(errs, "; ")
	}
	wg.Wait()
	return v
}

func readRecords(ctx context.Context, c *cluster.Cluster, name string) ([]Record, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	conn, err := connect(ctx, c, name)
	if err != nil {
		return nil, err
	}
	defer pg.Release(conn)
	rows, err := conn.Query(ctx, `SELECT n.node_id, n.node_name, n.type, coalesce(n.upstream_node_id, 0), coalesce(u.node_name, ''), n.active
		FROM repmgr.nodes n LEFT JOIN repmgr.nodes u ON u.node_id = n.upstream_node_id ORDER BY n.node_id`)
	if err != nil {
		return nil, fmt.Errorf("read repmgr.nodes: %w", err)
	}
	recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Record, error) {
		var rec Record
		err := r.Scan(&rec.ID, &rec.Name, &rec.Type, &rec.UpstreamID, &rec.Upstream, &rec.Active)
		return rec, err
	})
	if err != nil {
		return nil, fmt.Errorf("read repmgr.nodes: %w", err)
	}
	return recs, nil
}

func readDaemon(ctx context.Context, c *cluster.Cluster, name string) Daemon {
	d := Daemon{Node: name}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	conn, err := connect(ctx, c, name)
	if err != nil {
		d.Error = oneline.Of(err.Error())
		return d
	}
	defer pg.Release(conn)
	var pid *int
	err = conn.QueryRow(ctx, "SELECT repmgr.repmgrd_is_running(), repmgr.repmgrd_is_paused(), repmgr.get_repmgrd_pid()").Scan(&d.Running, &d.Paused, &pid)
	if err != nil {
		d.Error = oneline.Of(fmt.Sprintf("ask repmgrd's state: %v", err))
		return d
	}
	if pid != nil && d.Running {
		d.PID = *pid
	}
	return d
}

// Record returns the record of the node called name.
func (v *View) Record(name string) (Record, bool) {
	for _, r := range v.Records {
		if r.Name == name {
			return r, true
		}
	}
	return Record{}, false
}

// Primary is the node repmgr has registered as the active primary; "" when
// none is, or more than one.
func (v *View) Primary() string {
	var out []string
	for _, r := range v.Records {
		if r.Type == "primary" && r.Active {
			out = append(out, r.Name)
		}
	}
	if len(out) != 1 {
		return ""
	}
	return out[0]
}

// Daemon returns repmgrd's state on the node called name.
func (v *View) Daemon(name string) (Daemon, bool) {
	for _, d := range v.Daemons {
		if d.Node == name {
			return d, true
		}
	}
	return Daemon{}, false
}

// Actual is what PostgreSQL says of one node, for Disagreements: whether
// it answered, whether it is the primary, and the node it streams from.
type Actual struct {
	Name      string
	Reachable bool
	Primary   bool
	Upstream  string // the inventory node it streams from; "" when none or unknown
}

// Disagreements names, by node, where repmgr's registration differs from
// what PostgreSQL says: the registered primary is not the running one, a
// standby registered under another upstream than the one it streams from,
// a node not registered or registered inactive. Nodes that did not answer
// are left out: PostgreSQL has nothing to say of them.
func (v *View) Disagreements(actual []Actual) map[string]string {
	out := map[string]string{}
	if v.From == "" {
		return out
	}
	for _, a := range actual {
		if !a.Reachable {
			continue
		}
		r, ok := v.Record(a.Name)
		switch {
		case !ok:
			out[a.Name] = "repmgr has no record of it"
		case !r.Active:
			out[a.Name] = "repmgr has it registered inactive"
		case a.Primary && r.Type != "primary":
			out[a.Name] = fmt.Sprintf("repmgr has it registered as a %s, PostgreSQL is out of recovery", r.Type)
		case !a.Primary && r.Type == "primary":
			out[a.Name] = "repmgr has it registered as the primary, PostgreSQL is in recovery"
		case !a.Primary && a.Upstream != "" && r.Upstream != a.Upstream:
			reg := r.Upstream
			if reg == "" {
				reg = "no upstream"
			}
			out[a.Name] = fmt.Sprintf("repmgr has its upstream as %s, it streams from %s", reg, a.Upstream)
		}
	}
	return out
}

// Describe renders the disagreements one a line, sorted by node.
func Describe(dis map[string]string) []string {
	out := make([]string, 0, len(dis))
	for n, d := range dis {
		out = append(out, n+": "+d)
	}
	sort.Strings(out)
	return out
}

// String renders the records as `repmgr cluster show` would list them, in
// one line: pg1=primary pg2=standby<pg1 ...
func (v *View) String() string {
	if v.From == "" {
		return v.Error
	}
	var parts []string
	for _, r := range v.Records {
		p := r.Name + "=" + r.Type
		if r.Upstream != "" {
			p += "<" + r.Upstream
		}
		if !r.Active {
			p += "(inactive)"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

// Config is node's repmgr.conf as the inventory gives it.
func Config(m *cluster.Manager, node string) (string, error) {
	if m == nil || m.Kind != cluster.ManagerRepmgr {
		return "", errors.New("the inventory's manager is not repmgr")
	}
	p := m.Configs[node]
	if p == "" {
		return "", fmt.Errorf("the inventory's manager section gives no repmgr.conf for node %q (configs: {%s: /path/to/repmgr.conf})", node, node)
	}
	return p, nil
}

// CommandLine is the repmgr command line run on node's host.
func CommandLine(m *cluster.Manager, node string, args ...string) (string, error) {
	cfg, err := Config(m, node)
	if err != nil {
		return "", err
	}
	parts := []string{"repmgr", "-f", transport.ShellQuote(cfg)}
	for _, a := range args {
		parts = append(parts, transport.ShellQuote(a))
	}
	return strings.Join(parts, " "), nil
}

// Run runs repmgr on node's host with that node's repmgr.conf, and
// returns its output; a non-zero exit is an error that quotes the end of
// it.
func Run(ctx context.Context, c *cluster.Cluster, node string, args ...string) (string, error) {
	line, err := CommandLine(c.Manager, node, args...)
	if err != nil {
		return "", err
	}
	ex, err := c.Executor(node)
	if err != nil {
		return "", err
	}
	out, err := ex.Run(ctx, line)
	if err != nil {
		return "", fmt.Errorf("%s on %s: %w", line, node, err)
	}
	text := strings.TrimSpace(out.Combined())
	if out.ExitCode != 0 {
		return text, fmt.Errorf("%s on %s: exit %d: %s", line, node, out.ExitCode, lastLines(text, 4))
	}
	return text, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
