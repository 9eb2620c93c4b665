// Package pgaf reads a pg_auto_failover monitor's view of a formation and
// asks it to promote a node. The monitor is a PostgreSQL server: everything
// is plain SQL on its pgautofailover schema, so nothing parses the output
// of pg_autoctl.
package pgaf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/pg"
)

// DefaultTimeout bounds one question to the monitor.
const DefaultTimeout = 5 * time.Second

// State is a node's replication state in pg_auto_failover's finite state
// machine, as the monitor stores it (reported by the node's keeper, or
// assigned by the monitor as its goal). The zero value means unknown.
type State string

// The states a switchover passes through or settles in.
const (
	StateSingle           State = "single"            // a primary without a standby
	StatePrimary          State = "primary"           // a primary with its standbys
	StateWaitPrimary      State = "wait_primary"      // a primary taking writes, waiting for a standby
	StateJoinPrimary      State = "join_primary"      // a primary while a standby joins
	StateApplySettings    State = "apply_settings"    // a primary applying new replication settings
	StateSecondary        State = "secondary"         // a standby that streams and may be promoted
	StateCatchingUp       State = "catchingup"        // a standby catching up
	StateDraining         State = "draining"          // the old primary, stopping writes for a promotion
	StateDemoted          State = "demoted"           // the old primary, stopped
	StateReportLSN        State = "report_lsn"        // a standby reporting its LSN for the election
	StatePreparePromotion State = "prepare_promotion" // the candidate, about to be promoted
	StateStopReplication  State = "stop_replication"  // the candidate, promoted but not yet taking writes
	StateMaintenance      State = "maintenance"       // a node held out by an operator
)

// IsPrimary reports whether a node in this state is the formation's
// writable primary, or is becoming it after the monitor chose it.
func (s State) IsPrimary() bool {
	switch s {
	case StateSingle, StatePrimary, StateWaitPrimary, StateJoinPrimary, StateApplySettings:
		return true
	}
	return false
}

// Node is one node of the formation as the monitor lists it.
type Node struct {
	ID        int64
	Name      string
	Host      string
	Port      int
	Reported  State // what the node's keeper last reported
	Goal      State // what the monitor assigned it
	Health    int   // the monitor's health check: 1 good, 0 bad, -1 unknown
	PgRunning bool  // the keeper's last report: PostgreSQL runs
	Timeline  int64
	LSN       pg.LSN
	Priority  int // candidate priority; 0 is never promoted
	// HealthChecked is when the monitor's health check last finished
	// for the node, on the monitor's clock (zero: never).
	HealthChecked time.Time
}

// Settled reports whether the node has reached the state the monitor
// assigned it.
func (n Node) Settled() bool { return n.Reported != "" && n.Reported == n.Goal }

// String is the node for messages: "pg2 secondary" when settled, else
// "pg2 report_lsn->prepare_promotion".
func (n Node) String() string {
	s := fmt.Sprintf("%s %s", n.Name, n.Reported)
	if !n.Settled() {
		s += "->" + string(n.Goal)
	}
	if n.Health == 0 {
		s += " (unhealthy)"
	}
	return s
}

// View is the monitor's view of one group of a formation.
type View struct {
	Monitor   string // the monitor, as host:port
	Formation string
	Group     int
	Nodes     []Node // by node id
	// Read is when the monitor answered, on its own clock.
	Read time.Time
}

// Node returns the node called name.
func (v *View) Node(name string) (Node, bool) {
	for _, n := range v.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Primaries are the nodes the monitor has assigned a primary's state.
func (v *View) Primaries() []Node {
	var out []Node
	for _, n := range v.Nodes {
		if n.Goal.IsPrimary() {
			out = append(out, n)
		}
	}
	return out
}

// Primary is the one node the monitor assigned a primary's state, or ""
// when none or several are.
func (v *View) Primary() string {
	if p := v.Primaries(); len(p) == 1 {
		return p[0].Name
	}
	return ""
}

// Unsettled says why the group is not settled, or "" when it is: every
// node has reached its goal state, healthy and running, exactly one is
// the primary and every other node a secondary.
func (v *View) Unsettled() string {
	var why []string
	primaries := 0
	for _, n := range v.Nodes {
		switch {
		case !n.Settled():
			why = append(why, fmt.Sprintf("%s reports %s, assigned %s", n.Name, n.Reported, n.Goal))
		case n.Health == 0:
			why = append(why, n.Name+" fails the monitor's health check")
		case !n.PgRunning:
			why = append(why, n.Name+"'s keeper reports PostgreSQL not running")
		case n.Goal == StatePrimary || n.Goal == StateSingle && len(v.Nodes) == 1:
			primaries++
		case n.Goal != StateSecondary:
			why = append(why, fmt.Sprintf("%s is %s, neither primary nor secondary", n.Name, n.Goal))
		}
	}
	if len(v.Nodes) == 0 {
		why = append(why, "the monitor lists no node")
	} else if primaries != 1 && len(why) == 0 {
		why = append(why, fmt.Sprintf("%d primaries", primaries))
	}
	return strings.Join(why, "; ")
}

// String is the view for messages: "pg1 primary, pg2 secondary".
func (v *View) String() string {
	parts := make([]string, len(v.Nodes))
	for i, n := range v.Nodes {
		parts[i] = n.String()
	}
	if len(parts) == 0 {
		return "no nodes"
	}
	return strings.Join(parts, ", ")
}

// Client asks one monitor about one formation's group.
type Client struct {
	conninfo  string
	formation string
	group     int
	where     string
}

// New returns a client for the inventory's pg_auto_failover manager.
func New(m *cluster.Manager) (*Client, error) {
	if m == nil || m.Kind != cluster.ManagerPgAutoFailover {
		return nil, errors.New("pg_auto_failover: the inventory has no manager of kind pg_auto_failover")
	}
	if strings.TrimSpace(m.Monitor) == "" {
		return nil, errors.New("pg_auto_failover: the inventory's manager gives no monitor connection string")
	}
	if err := pg.CheckConninfo(m.Monitor); err != nil {
		return nil, fmt.Errorf("pg_auto_failover monitor: %w", err)
	}
	f := m.Formation
	if f == "" {
		f = "default"
	}
	return &Client{conninfo: m.Monitor, formation: f, group: m.Group, where: Where(m.Monitor)}, nil
}

// ForTarget returns a client for the target's cluster manager.
func ForTarget(t *cluster.Target) (*Client, error) {
	if t == nil || t.Cluster == nil {
		return nil, errors.New("pg_auto_failover: no cluster")
	}
	return New(t.Cluster.Manager)
}

// Where names a monitor for messages as host:port, never with a password.
func Where(s string) string {
	r, err := conninfo.Resolve(s)
	if err != nil || r.Host == "" {
		return "the monitor"
	}
	return net.JoinHostPort(r.Host, r.PortString())
}

// Where is the monitor as host:port.
func (c *Client) Where() string { return c.where }

// Formation is the formation the client asks about.
func (c *Client) Formation() string { return c.formation }

// Group is the group the client asks about.
func (c *Client) Group() int { return c.group }

// nodesSQL reads the group's nodes from the monitor's own table: the only
// place with both the reported and the assigned state, health and the
// keeper's last report.
const nodesSQL = `SELECT nodeid, nodename, nodehost, nodeport, reportedstate::text, goalstate::text,
       health, coalesce(reportedpgisrunning, false), reportedtli, reportedlsn::text, candidatepriority,
       coalesce(healthchecktime, '-infinity'::timestamptz) > '-infinity', coalesce(healthchecktime, now()), now()
  FROM pgautofailover.node
 WHERE formationid = $1 AND groupid = $2
 ORDER BY nodeid`

// View reads the monitor's view of the group.
func (c *Client) View(ctx context.Context) (*View, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	conn, err := pg.Connect(ctx, c.conninfo, DefaultTimeout)
	if err != nil {
		return nil, fmt.Errorf("pg_auto_failover monitor %s: %w", c.where, err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, nodesSQL, c.formation, c.group)
	if err != nil {
		return nil, fmt.Errorf("pg_auto_failover monitor %s: read pgautofailover.node: %w", c.where, err)
	}
	defer rows.Close()
	v := &View{Monitor: c.where, Formation: c.formation, Group: c.group}
	for rows.Next() {
		var n Node
		var rep, goal, lsn string
		var port, health, prio int32
		var tli int32
		var checked bool
		var checkedAt time.Time
		if err := rows.Scan(&n.ID, &n.Name, &n.Host, &port, &rep, &goal, &health, &n.PgRunning, &tli, &lsn, &prio, &checked, &checkedAt, &v.Read); err != nil {
			return nil, fmt.Errorf("pg_auto_failover monitor %s: read pgautofailover.node: %w", c.where, err)
		}
		n.Port, n.Health, n.Priority, n.Timeline = int(port), int(health), int(prio), int64(tli)
		n.Reported, n.Goal = State(rep), State(goal)
		if checked {
			n.HealthChecked = checkedAt
		}
		if l, err := pg.ParseLSN(lsn); err == nil {
			n.LSN = l
		}
		v.Nodes = append(v.Nodes, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pg_auto_failover monitor %s: read pgautofailover.node: %w", c.where, err)
	}
	slices.SortFunc(v.Nodes, func(a, b Node) int { return int(a.ID - b.ID) })
	return v, nil
}

// PromoteSQL is what the monitor is asked to promote a node: the supported
// way to choose the candidate of a switchover, the same function
// `pg_autoctl perform promotion` calls.
const PromoteSQL = "SELECT pgautofailover.perform_promotion($1, $2)"

// inFlightSQL counts the monitor's sessions, other than this one, in the
// middle of a promotion request (ours included, when a run that asked was
// cut off before the answer, and one typed by hand).
const inFlightSQL = `SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state <> 'idle'
  AND (query ILIKE '%perform_promotion%' OR query ILIKE '%perform_failover%')`

// PromotionsInFlight counts the promotion requests the monitor is still
// working on: a request whose answer never came (a timeout, a cut
// connection) may still promote a node while it is in flight.
func (c *Client) PromotionsInFlight(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	conn, err := pg.Connect(ctx, c.conninfo, DefaultTimeout)
	if err != nil {
		return 0, fmt.Errorf("pg_auto_failover monitor %s: %w", c.where, err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, inFlightSQL).Scan(&n); err != nil {
		return 0, fmt.Errorf("pg_auto_failover monitor %s: its sessions: %w", c.where, err)
	}
	return n, nil
}

// Promote asks the monitor to promote the node called name. The monitor
// only assigns goal states: the keepers carry them out over the next
// seconds, and the view shows how far they got. It answers false when the
// node is the primary already.
func (c *Client) Promote(ctx context.Context, name string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	conn, err := pg.Connect(ctx, c.conninfo, DefaultTimeout)
	if err != nil {
		return false, fmt.Errorf("pg_auto_failover monitor %s: %w; nothing asked", c.where, err)
	}
	defer conn.Close(context.Background())
	var started bool
	if err := conn.QueryRow(ctx, PromoteSQL, c.formation, name).Scan(&started); err != nil {
		return false, fmt.Errorf("pg_auto_failover monitor %s: perform_promotion(%q, %q): %w", c.where, c.formation, name, err)
	}
	return started, nil
}
