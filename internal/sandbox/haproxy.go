package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/haproxy"
	"github.com/switchover/switchover/internal/transport"
)

// The routers a sandbox can put in front of its nodes.
const (
	RouterNone    = "none"
	RouterHAProxy = "haproxy" // HAProxy on the base port instead of PgBouncer, a backend with every node
)

// HAProxyBackend is the backend of the sandbox's HAProxy; its servers are
// named as the nodes are.
const HAProxyBackend = "postgres"

// The health checks of the sandbox's HAProxy, as a typical deployment
// sets them (Patroni's own HAProxy template: inter 3s fall 3 rise 2).
const (
	haproxyInter = 3 * time.Second
	haproxyFall  = 3
	haproxyRise  = 2
)

// checkRouter validates the router and finds its binary.
func checkRouter(o Options) (string, error) {
	switch o.Router {
	case "", RouterNone:
		return "", nil
	case RouterHAProxy:
		if o.Hosts {
			return "", errors.New("--router haproxy runs on this host only; leave out --hosts")
		}
		return findHAProxy()
	}
	return "", fmt.Errorf("--router %s: want none or haproxy", o.Router)
}

// findHAProxy finds the haproxy binary.
func findHAProxy() (string, error) {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/haproxy", "/usr/local/sbin/haproxy"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("haproxy not found; install it (Debian: apt-get install haproxy)")
}

func (s *Sandbox) haproxyDir() string { return filepath.Join(s.Dir, "haproxy") }

// HAProxyConfig is the path of HAProxy's configuration.
func (s *Sandbox) HAProxyConfig() string { return filepath.Join(s.haproxyDir(), "haproxy.cfg") }

// HAProxySocket is HAProxy's runtime API (level admin) as the inventory names it.
func (s *Sandbox) HAProxySocket() string {
	return "unix:" + filepath.Join(s.haproxyDir(), "admin.sock")
}

// RouterConninfo is how a client reaches the app database through HAProxy.
func (s *Sandbox) RouterConninfo() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=app sslmode=disable connect_timeout=5", s.PortBase)
}

// router is the inventory's router section, nil without one.
func (s *Sandbox) router() *cluster.Router {
	if s.Router != RouterHAProxy {
		return nil
	}
	return &cluster.Router{Kind: "haproxy", Socket: s.HAProxySocket(), Backend: HAProxyBackend, Endpoint: s.RouterConninfo()}
}

// haproxyCfg is HAProxy's configuration: a frontend on the base port and
// a backend with every node. With Patroni, the health check asks each
// member's REST API whether it is the primary (GET /primary), so only the
// leader is up; without a manager, a TCP check finds every node up and the
// runtime state alone decides: the primary's server ready, the others in
// maintenance (disabled), as the run leaves them.
func (s *Sandbox) haproxyCfg(primary Node) string {
	sock := strings.TrimPrefix(s.HAProxySocket(), "unix:")
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by switchover sandbox up: HAProxy in front of the nodes, a rehearsal.
global
    stats socket %s mode 600 level admin
    stats timeout 10s
    pidfile %s

defaults
    mode tcp
    timeout connect 2s
    timeout client 30m
    timeout server 30m
    timeout check 2s

frontend postgres
    bind 127.0.0.1:%d
    default_backend %s

backend %s
`, sock, filepath.Join(s.haproxyDir(), "haproxy.pid"), s.PortBase, HAProxyBackend, HAProxyBackend)
	inter := strconv.Itoa(int(haproxyInter / time.Millisecond))
	if s.Manager == ManagerPatroni {
		b.WriteString("    option httpchk GET /primary\n    http-check expect status 200\n")
	} else {
		b.WriteString("    option tcp-check\n")
	}
	fmt.Fprintf(&b, "    default-server inter %s fall %d rise %d on-marked-down shutdown-sessions\n", inter, haproxyFall, haproxyRise)
	for _, n := range s.Nodes {
		line := fmt.Sprintf("    server %s 127.0.0.1:%d check", n.Name, n.Port)
		switch {
		case s.Manager == ManagerPatroni:
			line += fmt.Sprintf(" port %d", s.restPort(n))
		case n.Name != primary.Name:
			line += " disabled"
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// startHAProxy writes HAProxy's configuration and starts it as the
// servers' user, in front of primary.
func (s *Sandbox) startHAProxy(ctx context.Context, primary Node) error {
	dir := s.haproxyDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := s.chown(dir); err != nil {
		return err
	}
	if err := os.WriteFile(s.HAProxyConfig(), []byte(s.haproxyCfg(primary)), 0o644); err != nil {
		return err
	}
	if _, err := s.sh(ctx, "", "check the haproxy configuration", fmt.Sprintf("%s -c -q -f %s", transport.ShellQuote(s.HAProxy), transport.ShellQuote(s.HAProxyConfig()))); err != nil {
		return err
	}
	if _, err := s.sh(ctx, "", "start haproxy", fmt.Sprintf("%s -D -f %s", transport.ShellQuote(s.HAProxy), transport.ShellQuote(s.HAProxyConfig()))); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.PortBase)), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("haproxy did not listen on 127.0.0.1:%d within 10s", s.PortBase)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s.WaitRouted(ctx, primary.Name, 3*haproxyInter)
}

// WaitRouted waits until HAProxy routes to primary alone: at start it
// counts every checked server up until its first check fails, and after a
// switchover left to its checks the old primary stays up until it has
// failed fall checks.
func (s *Sandbox) WaitRouted(ctx context.Context, primary string, limit time.Duration) error {
	c, err := haproxy.ForRouter(s.router())
	if err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	for {
		srv, err := c.Servers(ctx, HAProxyBackend)
		var routed []string
		for _, v := range srv {
			if v.Routable() {
				routed = append(routed, v.Name)
			}
		}
		if err == nil && len(routed) == 1 && routed[0] == primary {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("haproxy does not route to %s alone after %s (routes to %v; %v)", primary, limit, routed, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// haproxyPID is the running HAProxy of this sandbox, or 0.
func (s *Sandbox) haproxyPID() int {
	if s.Router != RouterHAProxy {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(s.haproxyDir(), "haproxy.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !alive(pid) || !processMatches(pid, s.HAProxyConfig()) {
		return 0
	}
	return pid
}

// startFront starts what clients connect to on the base port: HAProxy
// when the sandbox has a router, else PgBouncer.
func (s *Sandbox) startFront(ctx context.Context, primary Node, log func(string, ...any)) error {
	if s.Router == RouterHAProxy {
		log("haproxy on 127.0.0.1:%d (backend %s, runtime API %s)", s.PortBase, HAProxyBackend, s.HAProxySocket())
		return s.startHAProxy(ctx, primary)
	}
	s.logPoolers(log)
	return s.startPgBouncer(ctx, primary)
}
