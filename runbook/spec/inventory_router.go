package spec

// The inventory's router: section (HAProxy in front of the nodes).

import (
	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/haproxy"
	"github.com/switchover/switchover/internal/pg"
)

// router reads {kind: haproxy, socket: unix:/path | tcp:host:port,
// backend: NAME, servers: {node: server}, endpoint: CONNINFO, host: HOST}.
func (r *reader) router(n *yaml.Node) *cluster.Router {
	rt := &cluster.Router{}
	var kind, socket, backend, endpoint *yaml.Node
	r.fields(n, "router", map[string]func(k, v *yaml.Node){
		"kind": func(_, v *yaml.Node) {
			kind, rt.Kind = v, r.str(v, "router: kind")
			if rt.Kind != "haproxy" {
				r.errf(v, "router: unknown kind %q (expected \"haproxy\")", rt.Kind)
			}
		},
		"socket": func(_, v *yaml.Node) {
			socket, rt.Socket = v, r.str(v, "router: socket")
			if _, err := haproxy.ParseSocket(rt.Socket); rt.Socket != "" && err != nil {
				r.errf(v, "router: %v", err)
			}
		},
		"backend": func(_, v *yaml.Node) { backend, rt.Backend = v, r.str(v, "router: backend") },
		"servers": func(_, v *yaml.Node) {
			if v.Kind != yaml.MappingNode {
				r.errf(v, "router: servers: want a mapping of node names to server names, got %s", kindName(v))
				return
			}
			rt.Servers = map[string]string{}
			for i := 0; i+1 < len(v.Content); i += 2 {
				k := v.Content[i]
				rt.Servers[k.Value] = r.str(v.Content[i+1], "router: servers: "+k.Value)
			}
		},
		"endpoint": func(_, v *yaml.Node) {
			endpoint, rt.Endpoint = v, r.str(v, "router: endpoint")
			if rt.Endpoint != "" {
				if err := pg.CheckConninfo(rt.Endpoint); err != nil {
					r.errf(v, "router: endpoint: %v", err)
				}
			}
		},
		"host": func(_, v *yaml.Node) {
			h := r.host(v, "router: host")
			rt.Host = &h
		},
	})
	for _, req := range []struct {
		n    *yaml.Node
		key  string
		what string
	}{
		{kind, "kind", "haproxy"},
		{socket, "socket", "HAProxy's runtime API: unix:/path or tcp:host:port, at level admin"},
		{backend, "backend", "the backend whose servers are the nodes"},
		{endpoint, "endpoint", "a connection string through HAProxy, as clients connect"},
	} {
		if req.n == nil && n.Kind == yaml.MappingNode {
			r.errf(n, "router: missing key %q (%s)", req.key, req.what)
		}
	}
	return rt
}

// checkRouterServers reports servers: entries that name no node.
func (r *reader) checkRouterServers(n *yaml.Node, inv *Inventory) {
	rt := inv.Cluster.Router
	if rt == nil || n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Value == "servers" && v.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(v.Content); j += 2 {
				if _, ok := inv.Cluster.Nodes[v.Content[j].Value]; !ok {
					r.errf(v.Content[j], "router: servers: %q is not a node of the inventory", v.Content[j].Value)
				}
			}
		}
	}
}
