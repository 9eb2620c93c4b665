package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/haproxy"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	enabled := params.Spec{Name: "enabled", Type: params.Bool, Default: "true",
		Doc: "false does nothing and says so: HAProxy is left to its health checks alone (to compare, or when another tool moves it)"}
	Register(Definition{
		Kind: "haproxy.drain",
		Doc:  "takes the node's server out of HAProxy's backend and closes its sessions, so no write reaches it through HAProxy; nothing to do without a router",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the node whose server leaves the backend, usually the primary about to stop"},
			{Name: "state", Type: params.String, Default: "maint", Enum: []string{"maint", "drain"},
				Doc: "maint: no connection at all; drain: only persistent ones (a TCP backend has none)"},
			{Name: "shutdown_sessions", Type: params.Bool, Default: "true", Doc: "close the sessions the server has now (shutdown sessions server)"},
			enabled,
		},
		New: func(v params.Values) (Step, error) {
			return &HAProxyDrain{Node: v.Node("node"), State: haproxy.AdminState(v.String("state")),
				Shutdown: v.Bool("shutdown_sessions"), Enabled: v.Bool("enabled")}, nil
		},
	})
	Register(Definition{
		Kind: "haproxy.ready",
		Doc:  "routes HAProxy's backend to the node at once: its server ready and forced up, ahead of its health checks; the others as the backend's checks need; nothing to do without a router",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the node clients must reach, usually the new primary"},
			{Name: "others", Type: params.String, Default: "maint", Enum: []string{"maint", "down", "keep"},
				Doc: "the other nodes' servers: maint when a plain TCP check finds every node up and the runtime state alone decides; down (ready, forced down: its check brings it up when it is the primary) when a check asks Patroni which node is the primary, so the checks govern again afterwards; keep leaves them"},
			enabled,
		},
		New: func(v params.Values) (Step, error) {
			return &HAProxyReady{Node: v.Node("node"), Others: v.String("others"), Enabled: v.Bool("enabled")}, nil
		},
	})
}

// errNoRouter: the inventory has no router, so the router steps have
// nothing to do.
var errNoRouter = errors.New("the inventory has no router")

// routerClient is the HAProxy runtime API of the inventory's router.
func routerClient(t *cluster.Target) (*cluster.Router, *haproxy.Client, error) {
	if t == nil || t.Cluster == nil || t.Cluster.Router == nil {
		return nil, nil, errNoRouter
	}
	c, err := haproxy.ForRouter(t.Cluster.Router)
	return t.Cluster.Router, c, err
}

// routerWhere names the router for plans: "haproxy unix:/run/haproxy/admin.sock".
func routerWhere(t *cluster.Target) string {
	_, c, err := routerClient(t)
	if err != nil {
		return fmt.Sprintf("haproxy (%v)", err)
	}
	return c.Where()
}

// routerSkipped says why a router step does nothing, or "" when it acts.
func routerSkipped(t *cluster.Target, enabled bool, err error) string {
	switch {
	case errors.Is(err, errNoRouter):
		return "no router in the inventory: nothing to do"
	case !enabled:
		return "router steps turned off (enabled: false): HAProxy is left to its health checks"
	}
	return ""
}

func serverOf(t *cluster.Target, node string) (backend, server string) {
	if t != nil && t.Cluster != nil && t.Cluster.Router != nil {
		return t.Cluster.Router.Backend, t.Cluster.Router.Server(node)
	}
	return "<backend>", node
}

// printServers shows the backend's servers as HAProxy has them now.
func printServers(ctx context.Context, t *cluster.Target, c *haproxy.Client, backend string) {
	srv, err := c.Servers(ctx, backend)
	if err != nil {
		t.Print("haproxy: the servers' state could not be read: " + err.Error())
		return
	}
	parts := make([]string, 0, len(srv))
	for _, s := range srv {
		parts = append(parts, fmt.Sprintf("%s %s/%s", s.Name, s.State(), s.Op))
	}
	t.Print(fmt.Sprintf("haproxy backend %s: %s", backend, strings.Join(parts, ", ")))
}

// HAProxyDrain takes a node's server out of HAProxy's backend before the
// node stops: HAProxy would otherwise keep sending clients to it until its
// health checks had failed fall times, and sessions already open through
// it would go on writing until the stop cut them.
type HAProxyDrain struct {
	Node     string
	State    haproxy.AdminState
	Shutdown bool
	Enabled  bool
}

var _ Step = (*HAProxyDrain)(nil)

func (s *HAProxyDrain) commands(t *cluster.Target) []string {
	b, srv := serverOf(t, s.Node)
	cmds := []string{haproxy.SetStateCommand(b, srv, s.State)}
	if s.Shutdown {
		cmds = append(cmds, haproxy.ShutdownSessionsCommand(b, srv))
	}
	return cmds
}

// Describe implements Step.
func (s *HAProxyDrain) Describe(t *cluster.Target) Effect {
	_, _, err := routerClient(t)
	if why := routerSkipped(t, s.Enabled, err); why != "" {
		return Effect{Node: "haproxy", Command: "(none)", Changes: why}
	}
	b, srv := serverOf(t, s.Node)
	changes := fmt.Sprintf("HAProxy sends no new connection to %s (server %s/%s in %s)", s.Node, b, srv, s.State)
	if s.Shutdown {
		changes += " and closes the sessions it has through it; those clients see their connection end"
	}
	return Effect{Node: routerWhere(t), Command: strings.Join(s.commands(t), "; "), Changes: changes}
}

// Apply implements Step.
func (s *HAProxyDrain) Apply(ctx context.Context, t *cluster.Target) error {
	r, c, err := routerClient(t)
	if why := routerSkipped(t, s.Enabled, err); why != "" {
		t.Unchanged(why)
		return nil
	}
	if err != nil {
		return fmt.Errorf("drain %q in haproxy: %w", s.Node, err)
	}
	if _, err := t.Node(s.Node); err != nil {
		return fmt.Errorf("drain in haproxy: %w", err)
	}
	srv := r.Server(s.Node)
	if err := c.SetState(ctx, r.Backend, srv, s.State); err != nil {
		return fmt.Errorf("drain %q in haproxy: %w; its server is unchanged", s.Node, err)
	}
	t.Print(fmt.Sprintf("haproxy: server %s/%s set %s", r.Backend, srv, s.State))
	if s.Shutdown {
		if err := c.ShutdownSessions(ctx, r.Backend, srv); err != nil {
			return fmt.Errorf("drain %q in haproxy: server set %s, but its sessions were not closed: %w", s.Node, s.State, err)
		}
		t.Print(fmt.Sprintf("haproxy: sessions of %s/%s closed", r.Backend, srv))
	}
	printServers(ctx, t, c, r.Backend)
	return nil
}

// HAProxyReady routes HAProxy's backend to a node right away: right
// after the promotion, the new primary's server is set ready and forced
// up, so clients reach it now instead of after rise health checks. The
// other servers are set as the backend's checks need (see Others). With
// the old primary as its node, it is the rollback's undo of a drain.
type HAProxyReady struct {
	Node string
	// Others is what becomes of the other nodes' servers: "maint", "down"
	// or "keep".
	Others  string
	Enabled bool
}

var _ Step = (*HAProxyReady)(nil)

// others returns the other nodes, in the inventory's order.
func (s *HAProxyReady) others(t *cluster.Target) []string {
	if t == nil || t.Cluster == nil || s.Others == "keep" {
		return nil
	}
	var out []string
	for _, n := range t.Cluster.NodeOrder() {
		if n != s.Node {
			out = append(out, n)
		}
	}
	return out
}

func (s *HAProxyReady) commands(t *cluster.Target) []string {
	b, srv := serverOf(t, s.Node)
	var cmds []string
	for _, n := range s.others(t) {
		_, o := serverOf(t, n)
		if s.Others == "maint" {
			cmds = append(cmds, haproxy.SetStateCommand(b, o, haproxy.Maint))
		} else {
			cmds = append(cmds, haproxy.SetWeightCommand(b, o, "0"), haproxy.SetStateCommand(b, o, haproxy.Ready),
				haproxy.SetHealthCommand(b, o, haproxy.Down), haproxy.SetWeightCommand(b, o, "100%"))
		}
	}
	return append(cmds, haproxy.SetStateCommand(b, srv, haproxy.Ready), haproxy.SetHealthCommand(b, srv, haproxy.Up))
}

// Describe implements Step.
func (s *HAProxyReady) Describe(t *cluster.Target) Effect {
	_, _, err := routerClient(t)
	if why := routerSkipped(t, s.Enabled, err); why != "" {
		return Effect{Node: "haproxy", Command: "(none)", Changes: why}
	}
	changes := fmt.Sprintf("HAProxy sends new connections to %s now, ahead of its health checks", s.Node)
	switch s.Others {
	case "maint":
		changes += "; the other nodes' servers in maintenance"
	case "down":
		changes += "; the other nodes' servers ready but forced down, until their health checks say otherwise"
	}
	return Effect{Node: routerWhere(t), Command: strings.Join(s.commands(t), "; "), Changes: changes}
}

// Apply implements Step.
func (s *HAProxyReady) Apply(ctx context.Context, t *cluster.Target) error {
	r, c, err := routerClient(t)
	if why := routerSkipped(t, s.Enabled, err); why != "" {
		t.Unchanged(why)
		return nil
	}
	if err != nil {
		return fmt.Errorf("route haproxy to %q: %w", s.Node, err)
	}
	if _, err := t.Node(s.Node); err != nil {
		return fmt.Errorf("route haproxy: %w", err)
	}
	srv := r.Server(s.Node)
	// The others first: when the step ends, no server but the node's is
	// routable, so no client is sent anywhere else in between.
	for _, n := range s.others(t) {
		o := r.Server(n)
		if s.Others == "maint" {
			err = c.SetState(ctx, r.Backend, o, haproxy.Maint)
		} else {
			err = readyButDown(ctx, c, r.Backend, o)
		}
		if err != nil {
			return fmt.Errorf("route haproxy to %q: server of %q: %w", s.Node, n, err)
		}
	}
	if err := c.SetState(ctx, r.Backend, srv, haproxy.Ready); err != nil {
		return fmt.Errorf("route haproxy to %q: %w", s.Node, err)
	}
	if err := c.SetHealth(ctx, r.Backend, srv, haproxy.Up); err != nil {
		return fmt.Errorf("route haproxy to %q: server set ready, but not forced up (its health checks decide): %w", s.Node, err)
	}
	t.Print(fmt.Sprintf("haproxy: server %s/%s ready and up; others %s", r.Backend, srv, s.Others))
	printServers(ctx, t, c, r.Backend)
	return nil
}

// readyButDown gives a server back to its health checks without routing
// to it first: a server leaving maintenance counts as up until its next
// check, so it is weighted 0 while it is set ready and forced down.
func readyButDown(ctx context.Context, c *haproxy.Client, backend, server string) error {
	if err := c.SetWeight(ctx, backend, server, "0"); err != nil {
		return err
	}
	if err := c.SetState(ctx, backend, server, haproxy.Ready); err != nil {
		return err
	}
	if err := c.SetHealth(ctx, backend, server, haproxy.Down); err != nil {
		return err
	}
	return c.SetWeight(ctx, backend, server, "100%")
}
