package checks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "quorum.reachable",
		Doc:  "a majority (or all) of the members answer, and every standby that answers is streaming",
		Params: []params.Spec{
			{Name: "nodes", Type: params.Nodes,
				Doc: "database nodes that are members, reachable when they answer SQL; empty means every node of the inventory"},
			{Name: "witnesses", Type: params.Strings,
				Doc: "host:port of further members (a witness, a consensus store), reachable when they accept a tcp connection"},
			{Name: "require", Type: params.String, Default: "majority", Enum: []string{"majority", "all"},
				Doc: "majority: more than half of the members must be reachable; all: every one"},
		},
		New: newQuorumReachable,
	})
}

// The quorums quorum.reachable can require.
const (
	quorumMajority = "majority"
	quorumAll      = "all"
)

// QuorumReachable passes when enough members of the cluster are reachable
// from here and the standbys among them replicate. Members that answer us
// but cannot replicate are not a healthy quorum: a firewall that cuts the
// members off from each other, while each still answers its monitoring,
// leaves a cluster that cannot fail over (seeds/003, Chargify). Every member
// is asked at the same time, so one that hangs costs no more than the
// slowest.
type QuorumReachable struct {
	Nodes     []string // empty: every node of the inventory
	Witnesses []string // host:port
	Require   string   // quorumMajority or quorumAll
}

var _ Check = (*QuorumReachable)(nil)

func newQuorumReachable(v params.Values) (Check, error) {
	c := &QuorumReachable{Require: v.String("require")}
	if c.Require == "" {
		c.Require = quorumMajority
	}
	if c.Require != quorumMajority && c.Require != quorumAll {
		return nil, fmt.Errorf("require %q: want majority or all", c.Require)
	}
	nodes, err := nameList(v, "nodes")
	if err != nil {
		return nil, err
	}
	c.Nodes = nodes
	for _, w := range v.Strings("witnesses") {
		w = strings.TrimSpace(w)
		if err := checkHostPort(w); err != nil {
			return nil, fmt.Errorf("witnesses: %w", err)
		}
		if !slices.Contains(c.Witnesses, w) {
			c.Witnesses = append(c.Witnesses, w)
		}
	}
	return c, nil
}

// Describe implements Check.
func (c *QuorumReachable) Describe(t *cluster.Target) string {
	var members []string
	switch {
	case len(c.Nodes) > 0:
		members = append(members, c.Nodes...)
	case t != nil && t.Cluster != nil:
		members = append(members, t.Cluster.NodeNames()...)
	default:
		members = append(members, "every inventory node")
	}
	for _, w := range c.Witnesses {
		members = append(members, "witness "+w)
	}
	how := "a majority of"
	if c.Require == quorumAll {
		how = "all of"
	}
	return fmt.Sprintf("%s %s answer, and every standby among them is streaming", how, strings.Join(members, ", "))
}

// quorumMember is what was learnt of one member.
type quorumMember struct {
	name      string // node name, or host:port of a witness
	witness   bool
	reachable bool
	reason    string // why it is unreachable
	role      pg.Role
	link      walReceiver // a standby's replication link
	linkErr   error
}

// String describes the member in a few words.
func (m quorumMember) String() string {
	switch {
	case !m.reachable && m.witness:
		return fmt.Sprintf("witness %s unreachable (%s)", m.name, m.reason)
	case !m.reachable:
		return fmt.Sprintf("%s unreachable (%s)", m.name, m.reason)
	case m.witness:
		return fmt.Sprintf("witness %s accepted a tcp connection", m.name)
	case m.role == pg.RoleStandby:
		return fmt.Sprintf("%s answered (standby, %s)", m.name, m.linkText())
	}
	return fmt.Sprintf("%s answered (%s)", m.name, m.role)
}

// linkText describes a standby's replication link.
func (m quorumMember) linkText() string {
	if m.linkErr != nil {
		return fmt.Sprintf("replication link unknown: %v", m.linkErr)
	}
	return m.link.String()
}

// linkDown reports whether the member is a reachable standby whose
// replication link is not known to stream.
func (m quorumMember) linkDown() bool {
	return m.reachable && !m.witness && m.role == pg.RoleStandby && (m.linkErr != nil || !m.link.Streaming())
}

// Run implements Check.
func (c *QuorumReachable) Run(ctx context.Context, t *cluster.Target) Result {
	return withWanted(c.run(ctx, t), c, t)
}

// run evaluates the check once; Run fills in what it wanted when it
// ended in an error before saying so.
func (c *QuorumReachable) run(ctx context.Context, t *cluster.Target) Result {
	nodes := c.Nodes
	if len(nodes) == 0 && t != nil && t.Cluster != nil {
		nodes = t.Cluster.NodeNames()
	}
	for _, n := range nodes {
		if _, err := t.Node(n); err != nil {
			return Errored(err)
		}
	}
	members := make([]quorumMember, 0, len(nodes)+len(c.Witnesses))
	for _, n := range nodes {
		members = append(members, quorumMember{name: n})
	}
	for _, w := range c.Witnesses {
		members = append(members, quorumMember{name: w, witness: true})
	}
	if len(members) == 0 {
		return Errored(errors.New("no members: the inventory has no nodes and no witnesses are given"))
	}

	var wg sync.WaitGroup
	for i := range members {
		wg.Add(1)
		go func(m *quorumMember) {
			defer wg.Done()
			if m.witness {
				quorumDialWitness(ctx, m)
			} else {
				quorumAskNode(ctx, t, m)
			}
		}(&members[i])
	}
	wg.Wait()

	reachable := 0
	var seen, unreachable, linksDown []string
	for _, m := range members {
		seen = append(seen, m.String())
		if m.reachable {
			reachable++
		} else {
			unreachable = append(unreachable, m.name)
		}
		if m.linkDown() {
			linksDown = append(linksDown, fmt.Sprintf("%s answers but its replication link is down (%s)", m.name, m.linkText()))
		}
	}
	total := len(members)
	need := total/2 + 1
	if c.Require == quorumAll {
		need = total
	}
	summary := fmt.Sprintf("%d of %d members reachable (%s needs %d)", reachable, total, c.Require, need)
	r := Result{
		Status:   Pass,
		Observed: summary + ": " + strings.Join(seen, "; "),
		Wanted: fmt.Sprintf("at least %d of %d members reachable (%s), every reachable standby streaming",
			need, total, c.Require),
	}
	var problems []string
	if reachable < need {
		problems = append(problems, fmt.Sprintf("only %d of %d members reachable, %s needs %d; unreachable: %s",
			reachable, total, c.Require, need, strings.Join(unreachable, ", ")))
	}
	problems = append(problems, linksDown...)
	if len(problems) > 0 {
		r.Status = Fail
		r.Observed = strings.Join(problems, "; ") + ". " + r.Observed
		r.Detail = strings.Join(seen, "\n")
	}

	values := map[string]any{}
	for _, m := range members {
		v := map[string]any{"reachable": m.reachable}
		if m.witness {
			v["witness"] = true
		}
		if !m.reachable {
			v["reason"] = m.reason
		}
		if m.reachable && !m.witness {
			v["role"] = string(m.role)
		}
		if m.reachable && m.role == pg.RoleStandby {
			v["streaming"] = m.link.Streaming()
			v["receiver"] = m.link.Status
			v["sender"] = m.link.Sender()
		}
		values[m.name] = v
	}
	r.Values = map[string]any{
		"members":    values,
		"reachable":  reachable,
		"total":      total,
		"needed":     need,
		"links_down": len(linksDown),
	}
	return r
}

// quorumAskNode connects to a node, asks its role and, for a standby, the
// state of its WAL receiver.
func quorumAskNode(ctx context.Context, t *cluster.Target, m *quorumMember) {
	conn, err := connectNode(ctx, t, m.name)
	var cerr *connectError
	switch {
	case errors.As(err, &cerr) && cerr.Address != "":
		m.reason = fmt.Sprintf("%s: %s", cerr.Address, cerr.Reason)
		return
	case errors.As(err, &cerr):
		m.reason = cerr.Reason
		return
	case err != nil:
		m.reason = err.Error()
		return
	}
	defer closeConn(conn)
	st, err := pg.Inspect(ctx, conn)
	if err != nil {
		m.reason = fmt.Sprintf("connected, but the server did not answer: %v", err)
		return
	}
	m.reachable, m.role = true, st.Role
	if st.Role == pg.RoleStandby {
		m.link, m.linkErr = readWALReceiver(ctx, conn)
	}
}

// quorumDialWitness opens a tcp connection to a witness and closes it.
func quorumDialWitness(ctx context.Context, m *quorumMember) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.name)
	if err != nil {
		m.reason = dialProblem(err)
		return
	}
	_ = conn.Close()
	m.reachable = true
}
