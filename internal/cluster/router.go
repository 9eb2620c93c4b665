package cluster

import (
	"fmt"

	"github.com/switchover/switchover/internal/conninfo"
)

// Router is a TCP router in front of the nodes, such as HAProxy with a
// backend that lists every node: clients reach the primary through it, and
// a run moves its routing with the primary instead of waiting for its
// health checks to notice.
type Router struct {
	Kind string // "haproxy"
	// Socket is the runtime API: "unix:/path" or "tcp:host:port".
	Socket string
	// Backend is the backend (proxy) whose servers are the nodes.
	Backend string
	// Servers maps a node's name to its server's name in Backend; a node
	// not listed has a server of its own name.
	Servers map[string]string
	// Endpoint is how a client connects through the router (libpq
	// connection string); the canary and haproxy.routes_to use it.
	Endpoint string
	// Host is where the socket is, when it is a unix socket on another
	// machine; nil dials it from this process.
	Host *Host
}

// Server returns the name of node's server in the router's backend.
func (r *Router) Server(node string) string {
	if s, ok := r.Servers[node]; ok && s != "" {
		return s
	}
	return node
}

// ClientConninfo is the router's client endpoint, resolved: its String
// never holds a password; Dial does, for this process.
func (r *Router) ClientConninfo() (conninfo.Resolved, error) {
	c, err := conninfo.Resolve(r.Endpoint)
	if err != nil {
		return conninfo.Resolved{}, fmt.Errorf("router endpoint: %w", err)
	}
	return c, nil
}
