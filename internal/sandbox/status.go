package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
)

// NodeStatus is one node as `sandbox status` shows it.
type NodeStatus struct {
	Node     Node
	Running  bool
	State    pg.State
	LagBytes int64 // standby: how far its replay is behind the primary's current LSN
	Green    bool  // the green server, a cluster of its own
	Err      error
}

// Status inspects every node.
func (s *Sandbox) Status(ctx context.Context) []NodeStatus {
	out := make([]NodeStatus, len(s.Nodes))
	var primaryLSN pg.LSN
	for i, n := range s.Nodes {
		out[i].Node = n
		out[i].Running = s.pidOf(n) > 0
		st, err := s.inspect(ctx, n)
		out[i].State, out[i].Err = st, err
		if err == nil && st.Role == pg.RolePrimary && st.CurrentLSN > primaryLSN {
			primaryLSN = st.CurrentLSN
		}
	}
	for i := range out {
		if st := out[i].State; out[i].Err == nil && st.Role == pg.RoleStandby && primaryLSN > 0 {
			out[i].LagBytes = int64(primaryLSN) - int64(st.ReplayLSN)
		}
	}
	if s.Green != nil { // a cluster of its own: no lag to blue's primary
		g := NodeStatus{Node: *s.Green, Green: true, Running: s.pidOf(*s.Green) > 0}
		g.State, g.Err = s.inspect(ctx, *s.Green)
		out = append(out, g)
	}
	return out
}

// pidOf returns the postmaster's PID of a running node, or 0. It trusts
// postmaster.pid only when that process is a postgres of this data dir,
// so a recycled PID is never taken for ours.
func (s *Sandbox) pidOf(n Node) int {
	b, err := os.ReadFile(filepath.Join(n.DataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 0 {
		return 0
	}
	if !processMatches(pid, n.DataDir) {
		return 0
	}
	return pid
}

// processMatches reports whether pid is alive and its command line
// mentions arg (its data directory or configuration file).
func processMatches(pid int, arg string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), arg)
}

// PIDs returns the PIDs of the sandbox's running processes by name.
func (s *Sandbox) PIDs() map[string]int {
	out := map[string]int{}
	for _, n := range s.Nodes {
		if pid := s.pidOf(n); pid > 0 {
			out[n.Name] = pid
		}
	}
	if s.Green != nil {
		if pid := s.pidOf(*s.Green); pid > 0 {
			out[s.Green.Name] = pid
		}
	}
	for name, pid := range s.poolerPIDs() {
		out[name] = pid
	}
	if pid := s.haproxyPID(); pid > 0 {
		out["haproxy"] = pid
	}
	for name, pid := range s.managerPIDs() {
		out[name] = pid
	}
	return out
}

// Down stops the sandbox's own processes by PID (a fast shutdown for
// PostgreSQL, a safe one for PgBouncer, SIGKILL for what does not stop
// within 30s) and removes its directory.
func (s *Sandbox) Down(ctx context.Context) error {
	if err := s.stopManager(ctx); err != nil {
		if s.Net != nil {
			// Whatever still runs in the namespaces goes with them.
			return errors.Join(err, s.downHosts(ctx))
		}
		return err
	}
	if s.Net != nil {
		return s.downHosts(ctx)
	}
	pids := s.PIDs()
	for name, pid := range pids {
		sig := syscall.SIGINT // PostgreSQL: fast shutdown; PgBouncer: safe shutdown
		if isPoolerProcess(name) {
			sig = syscall.SIGTERM // immediate: clients of a rehearsal need no grace
		}
		_ = syscall.Kill(pid, sig)
	}
	if err := waitGone(ctx, pids, 30*time.Second); err != nil {
		return err
	}
	if s.Dir == "" || s.Dir == "/" {
		return fmt.Errorf("refusing to remove %q", s.Dir)
	}
	return os.RemoveAll(s.Dir)
}

// alive reports whether pid runs (a zombie counts as gone).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) && b[i+2] == 'Z' {
		return false
	}
	return true
}

// hostOf is how the inventory reaches the host of a node (by name) or of
// the pooler.
func (s *Sandbox) hostOf(name string) cluster.Host {
	if s.Net != nil {
		if h, ok := s.Net.Host(name); ok {
			return cluster.Host{Transport: "ssh", Address: "root@" + h.Addr, User: s.RunAs, SSHConfig: s.Net.SSHConfig}
		}
	}
	return cluster.Host{Transport: "local", User: s.RunAs}
}

// Cluster returns the sandbox as the inventory describes it, for tests
// that drive checks and steps without a runbook.
func (s *Sandbox) Cluster() *cluster.Cluster {
	c := &cluster.Cluster{Name: s.ClusterName(), Nodes: map[string]*cluster.Node{}}
	for _, n := range s.Nodes {
		c.Nodes[n.Name] = &cluster.Node{Name: n.Name, Conninfo: s.Conninfo(n, s.InventoryDatabase()), Host: s.hostOf(n.Name), DataDir: n.DataDir, BinDir: s.BinDir}
		c.Order = append(c.Order, n.Name)
	}
	if c.Router = s.router(); c.Router == nil {
		c.Poolers = s.clusterPoolers()
	}
	c.Manager = s.manager()
	c.Green = s.greenCluster()
	return c
}
