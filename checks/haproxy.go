package checks

import (
	"context"
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/haproxy"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "haproxy.routes_to",
		Doc:  "a client connecting through the router's endpoint reaches the given node, and it accepts writes; passes without a router",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the node clients must reach"},
		},
		New: func(v params.Values) (Check, error) { return &RouterRoutesTo{Node: v.Node("node")}, nil },
	})
	Register(Definition{
		Kind: "haproxy.server_state",
		Doc:  "the node's server in HAProxy's backend is in the given state; passes without a router",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the node whose server is looked at"},
			{Name: "is", Type: params.String, Required: true, Enum: []string{"ready", "drain", "maint", "up", "down", "routable"},
				Doc: "ready, drain, maint: its admin state; up, down: what its health says; routable: ready, up and weighted, so HAProxy sends it new connections"},
		},
		New: func(v params.Values) (Check, error) {
			return &RouterServerState{Node: v.Node("node"), Is: v.String("is")}, nil
		},
	})
}

// RouterRoutesTo checks the path clients use through HAProxy: a new
// connection to the router's endpoint reaches the given node, and that node
// accepts writes. Each evaluation connects anew, as HAProxy routes each
// connection when it opens. It writes nothing.
type RouterRoutesTo struct {
	Node string
}

var _ Check = (*RouterRoutesTo)(nil)

// Describe implements Check.
func (c *RouterRoutesTo) Describe(t *cluster.Target) string {
	ep := "the router's endpoint"
	if t != nil && t.Cluster != nil && t.Cluster.Router != nil {
		if r, err := t.Cluster.Router.ClientConninfo(); err == nil {
			ep = r.Address()
		}
	}
	return fmt.Sprintf("a new connection through %s reaches %s, writable", ep, c.Node)
}

// Run implements Check. The server reached is told apart by its
// postmaster start time, asked through the router and of the node
// directly, as pgbouncer.routes_to does.
func (c *RouterRoutesTo) Run(ctx context.Context, t *cluster.Target) Result {
	r := t.Cluster.Router
	if r == nil {
		return Passed("no router in the inventory")
	}
	if _, err := t.Node(c.Node); err != nil {
		return Errored(err)
	}
	ci, err := r.ClientConninfo()
	if err != nil {
		return Errored(err)
	}
	const ask = `SELECT pg_postmaster_start_time()::text, pg_is_in_recovery(), current_setting('transaction_read_only')`
	var viaStart, directStart, readOnly, ro string
	var recovery, directRecovery bool
	via, err := pg.Connect(ctx, ci.Dial(), timeLeft(ctx))
	if err != nil {
		return Failed(fmt.Sprintf("a client cannot connect through %s: %v", ci.Address(), err), "a connection to "+c.Node)
	}
	defer closeConn(via)
	if err := via.QueryRow(ctx, ask).Scan(&viaStart, &recovery, &readOnly); err != nil {
		return Failed(fmt.Sprintf("a query through %s failed: %v", ci.Address(), err), "an answer from "+c.Node)
	}
	direct, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(direct)
	if err := direct.QueryRow(ctx, ask).Scan(&directStart, &directRecovery, &ro); err != nil {
		return Errored(fmt.Errorf("%s: %w", c.Node, err))
	}
	res := Result{Values: map[string]any{"same_server": viaStart == directStart, "in_recovery": recovery, "read_only": readOnly}}
	who := c.Node
	if viaStart != directStart {
		who = "another server than " + c.Node
	}
	res.Observed = fmt.Sprintf("through %s: %s, in recovery %v, transaction_read_only %s", ci.Address(), who, recovery, readOnly)
	res.Wanted = fmt.Sprintf("%s, not in recovery, writable", c.Node)
	res.Status = Pass
	if viaStart != directStart || recovery || readOnly == "on" {
		res.Status = Fail
	}
	return res
}

// RouterServerState checks how HAProxy holds a node's server: its admin
// state, its health, or whether it gets new connections.
type RouterServerState struct {
	Node string
	Is   string
}

var _ Check = (*RouterServerState)(nil)

// Describe implements Check.
func (c *RouterServerState) Describe(t *cluster.Target) string {
	backend, server := "<backend>", c.Node
	if t != nil && t.Cluster != nil && t.Cluster.Router != nil {
		backend, server = t.Cluster.Router.Backend, t.Cluster.Router.Server(c.Node)
	}
	return fmt.Sprintf("haproxy server %s/%s (%s) is %s", backend, server, c.Node, c.Is)
}

// Run implements Check.
func (c *RouterServerState) Run(ctx context.Context, t *cluster.Target) Result {
	r := t.Cluster.Router
	if r == nil {
		return Passed("no router in the inventory")
	}
	if _, err := t.Node(c.Node); err != nil {
		return Errored(err)
	}
	client, err := haproxy.ForRouter(r)
	if err != nil {
		return Errored(err)
	}
	srv, err := client.Servers(ctx, r.Backend)
	if err != nil {
		return Errored(err)
	}
	name := r.Server(c.Node)
	var all []string
	var found *haproxy.Server
	for i, s := range srv {
		all = append(all, fmt.Sprintf("%s %s/%s", s.Name, s.State(), s.Op))
		if s.Name == name {
			found = &srv[i]
		}
	}
	if found == nil {
		return Errored(fmt.Errorf("haproxy backend %s has no server %s for node %q (servers: %s)", r.Backend, name, c.Node, strings.Join(all, ", ")))
	}
	var ok bool
	switch c.Is {
	case "ready", "drain", "maint":
		ok = string(found.State()) == c.Is
	case "up":
		ok = found.Op == haproxy.OpRunning || found.Op == haproxy.OpStarting
	case "down":
		ok = found.Op == haproxy.OpStopped || found.Op == haproxy.OpStopping
	case "routable":
		ok = found.Routable()
	}
	res := Result{Status: Fail, Observed: fmt.Sprintf("server %s/%s: %s, %s (backend: %s)", r.Backend, name, found.State(), found.Op, strings.Join(all, ", ")),
		Wanted: fmt.Sprintf("%s %s", name, c.Is), Values: map[string]any{"state": string(found.State()), "health": found.Op.String()}}
	if ok {
		res.Status = Pass
	}
	return res
}
