package topology

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/haproxy"
)

// RouterView is where the TCP router in front of the nodes (HAProxy)
// sends new connections: each server of its backend, the node it is, and
// whether it is routable now. The JSON names are those `switchover status
// --json` prints, and are stable.
type RouterView struct {
	Kind    string         `json:"kind"`
	Where   string         `json:"where,omitempty"` // its runtime API
	Backend string         `json:"backend"`
	Error   string         `json:"error,omitempty"`
	Servers []RouterServer `json:"servers,omitempty"`
	// RoutesTo are the nodes whose servers take new connections.
	RoutesTo []string `json:"routes_to"`
}

// RouterServer is one server of the router's backend.
type RouterServer struct {
	Name     string `json:"name"`
	Node     string `json:"node,omitempty"` // the inventory's node it is, "" for none
	Address  string `json:"address"`
	State    string `json:"state"` // ready, drain or maint
	Health   string `json:"health"`
	Routable bool   `json:"routable"`
}

// askRouter reads the router's backend through its runtime API.
func askRouter(ctx context.Context, r *cluster.Router) *RouterView {
	v := &RouterView{Kind: r.Kind, Backend: r.Backend, RoutesTo: []string{}}
	if v.Kind == "" {
		v.Kind = "haproxy"
	}
	c, err := haproxy.ForRouter(r)
	if err != nil {
		v.Error = oneLine(err.Error())
		return v
	}
	v.Where = c.Where()
	servers, err := c.Servers(ctx, r.Backend)
	if err != nil {
		v.Error = oneLine(err.Error())
		return v
	}
	node := map[string]string{}
	for n := range r.Servers {
		node[r.Server(n)] = n
	}
	for _, s := range servers {
		v.Servers = append(v.Servers, RouterServer{Name: s.Name, Node: cmp.Or(node[s.Name], s.Name), // a server named as its node
			Address: fmt.Sprintf("%s:%d", s.Addr, s.Port), State: string(s.State()), Health: s.Op.String(), Routable: s.Routable()})
	}
	return v
}

// routerView keeps a server's node only when the inventory has it, and
// lists where new connections go: Verdict judges that.
func routerView(_ context.Context, t *Topology, _ *addressBook) {
	v := t.Router
	if v == nil || v.Error != "" {
		return
	}
	for i := range v.Servers {
		s := &v.Servers[i]
		if t.Node(s.Node) == nil {
			s.Node = ""
		}
		if s.Routable {
			v.RoutesTo = append(v.RoutesTo, cmp.Or(s.Node, s.Name))
		}
	}
	slices.Sort(v.RoutesTo)
}

// routerReason says why the router's routing is not healthy, or "": it
// must send new connections to the primary and to no other node.
func (t *Topology) routerReason() string {
	v := t.Router
	if v == nil {
		return ""
	}
	if v.Error != "" {
		return "the router could not be asked: " + v.Error
	}
	if len(t.Primaries) != 1 {
		return ""
	}
	p := t.Primaries[0]
	switch {
	case len(v.RoutesTo) == 0:
		return fmt.Sprintf("the router (%s backend %s) routes new connections to no server", v.Kind, v.Backend)
	case len(v.RoutesTo) > 1 || v.RoutesTo[0] != p:
		return fmt.Sprintf("the router (%s backend %s) routes new connections to %s, not to the primary %s alone", v.Kind, v.Backend, strings.Join(v.RoutesTo, ", "), p)
	}
	return ""
}
