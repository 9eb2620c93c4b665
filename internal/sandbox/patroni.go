package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
)

// Managers a sandbox can run under.
const (
	ManagerNone    = "none"    // plain streaming replication, nothing fails over on its own
	ManagerPatroni = "patroni" // one Patroni per node, with a single-node etcd as its DCS
)

// PatroniUpTimeout bounds bringing up a Patroni sandbox, from etcd to the
// last replica streaming.
const PatroniUpTimeout = 90 * time.Second

// checkManager validates the manager and returns how many ports above the
// base the sandbox needs: the nodes, and for Patroni one REST API per node
// and etcd's client and peer ports.
func checkManager(m string, nodes int) (int, error) {
	switch m {
	case "", ManagerNone:
		return nodes, nil
	case ManagerPatroni:
		if _, _, err := FindPatroni(); err != nil {
			return 0, err
		}
		return 2*nodes + 2, nil
	case ManagerRepmgr:
		if _, _, err := FindRepmgr(""); err != nil {
			return 0, err
		}
		return nodes + 1, nil // and the sshd for repmgr's own switchover
	case ManagerPgAutoFailover:
		if _, err := FindPgAutoctl(""); err != nil {
			return 0, err
		}
		return nodes + 1, nil // the monitor above the nodes
	}
	return 0, fmt.Errorf("--manager %s: want none, patroni, repmgr or pg_auto_failover", m)
}

// FindPatroni finds the patroni and etcd binaries a Patroni sandbox needs.
func FindPatroni() (patroniBin, etcdBin string, err error) {
	var missing []string
	if patroniBin, err = exec.LookPath("patroni"); err != nil {
		missing = append(missing, "patroni")
	}
	if etcdBin, err = exec.LookPath("etcd"); err != nil {
		missing = append(missing, "etcd")
	}
	if len(missing) > 0 {
		return "", "", fmt.Errorf("%s not found on the PATH; install them (Debian: apt-get install patroni etcd-server)", strings.Join(missing, " and "))
	}
	return patroniBin, etcdBin, nil
}

// RESTURL is the URL of a node's Patroni REST API.
func (s *Sandbox) RESTURL(n Node) string {
	return fmt.Sprintf("http://%s:%d", s.Addr(n.Name), s.restPort(n))
}

func (s *Sandbox) restPort(n Node) int { return n.Port + len(s.Nodes) }

func (s *Sandbox) etcdPorts() (client, peer int) {
	return s.PortBase + 2*len(s.Nodes) + 1, s.PortBase + 2*len(s.Nodes) + 2
}

// manager is the inventory's manager section, nil for a plain sandbox.
func (s *Sandbox) manager() *cluster.Manager {
	if s.Manager == ManagerRepmgr {
		return s.repmgrManager()
	}
	if s.Manager == ManagerPgAutoFailover {
		return s.pgafManager()
	}
	if s.Manager != ManagerPatroni {
		return nil
	}
	m := &cluster.Manager{Kind: cluster.ManagerPatroni}
	for _, n := range s.Nodes {
		m.URLs = append(m.URLs, s.RESTURL(n))
	}
	return m
}

func (s *Sandbox) patroniConfig(n Node) string { return filepath.Join(s.Dir, n.Name+".yml") }
func (s *Sandbox) etcdDir() string             { return filepath.Join(s.Dir, "etcd") }

// pidFile records the PID of a detached process: etcd or patroni-pgN.
func (s *Sandbox) pidFile(name string) string { return filepath.Join(s.Dir, name+".pid") }

// patroniYAML is a node's Patroni configuration. Every value is a plain
// loopback address, a port or a path under the sandbox, so no quoting
// beyond single quotes is needed.
func (s *Sandbox) patroniYAML(n Node) string {
	client, _ := s.etcdPorts()
	addr, trust, extra := s.Addr(n.Name), "127.0.0.1/32", ""
	if s.Net != nil {
		// Each node on its host's address; trust on the private network,
		// and short replication timeouts, as the plain multi-host sandbox.
		trust = s.Net.Subnet
		extra = "    wal_receiver_timeout: 5s\n    wal_sender_timeout: 5s\n"
	}
	return fmt.Sprintf(`# Written by switchover sandbox up: a rehearsal cluster, trust on %[9]s only.
scope: sandbox
name: %[1]s
restapi:
  listen: %[8]s:%[2]d
  connect_address: %[8]s:%[2]d
etcd3:
  hosts: %[11]s:%[3]d
watchdog:
  mode: 'off'
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 5
    maximum_lag_on_failover: 16777216
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: 'on'
        wal_log_hints: 'on'
        max_wal_senders: 20
        max_replication_slots: 20
        max_connections: 100
  initdb:
    - encoding: UTF8
    - no-sync
postgresql:
  listen: %[8]s:%[4]d
  connect_address: %[8]s:%[4]d
  data_dir: '%[5]s'
  bin_dir: '%[6]s'
  pgpass: '%[7]s'
  authentication:
    superuser:
      username: postgres
    replication:
      username: postgres
  parameters:
    unix_socket_directories: ''
    hot_standby_feedback: 'on'
    wal_keep_size: 256MB
    shared_buffers: 32MB
    log_min_messages: warning
%[10]s  pg_hba:
    - host all all %[9]s trust
    - host replication all %[9]s trust
`, n.Name, s.restPort(n), client, n.Port, n.DataDir, s.BinDir, filepath.Join(s.Dir, "pgpass-"+n.Name), addr, trust, extra, s.etcdAddr())
}

// etcdAddr is the address etcd listens on: loopback, or in a multi-host
// sandbox this host's address on the private bridge, which every host
// reaches.
func (s *Sandbox) etcdAddr() string { return s.bastionAddr() }

// upPatroni brings up etcd, then pg1's Patroni (which bootstraps the
// cluster), then the others (which clone it), the app database and
// PgBouncer in front of pg1, and writes the inventory.
func (s *Sandbox) upPatroni(ctx context.Context, log func(string, ...any)) error {
	ctx, cancel := context.WithTimeout(ctx, PatroniUpTimeout)
	defer cancel()
	patroniBin, etcdBin, err := FindPatroni()
	if err != nil {
		return err
	}
	client, peer := s.etcdPorts()
	ea := s.etcdAddr()
	log("etcd on %s:%d (peer %d), run as %s", ea, client, peer, s.who())
	etcd := fmt.Sprintf("%s --name sb --data-dir %s --listen-client-urls http://%[5]s:%[3]d --advertise-client-urls http://%[5]s:%[3]d"+
		" --listen-peer-urls http://%[5]s:%[4]d --initial-advertise-peer-urls http://%[5]s:%[4]d --initial-cluster sb=http://%[5]s:%[4]d",
		transport.ShellQuote(etcdBin), transport.ShellQuote(s.etcdDir()), client, peer, ea)
	if err := s.detach(ctx, "etcd", etcd); err != nil {
		return err
	}
	if err := waitHTTP(ctx, fmt.Sprintf("http://%s:%d/health", ea, client), 20*time.Second); err != nil {
		return fmt.Errorf("etcd did not answer (see %s): %w", filepath.Join(s.Dir, "etcd.log"), err)
	}
	for i, n := range s.Nodes {
		p := s.patroniConfig(n)
		if err := os.WriteFile(p, []byte(s.patroniYAML(n)), 0o600); err != nil {
			return err
		}
		if err := s.chown(p); err != nil {
			return err
		}
		log("patroni %s: postgres on %s:%d, REST API on %s", n.Name, s.Addr(n.Name), n.Port, s.RESTURL(n))
		// On its node's host: in a multi-host sandbox, that host's namespace.
		if err := s.detachOn(ctx, n.Name, "patroni-"+n.Name, transport.ShellQuote(patroniBin)+" "+transport.ShellQuote(p)); err != nil {
			return err
		}
		if i == 0 {
			if err := s.waitPatroni(ctx, 1); err != nil {
				return err
			}
		}
	}
	if err := s.waitPatroni(ctx, len(s.Nodes)); err != nil {
		return err
	}
	leader := s.Nodes[0]
	if err := s.createApp(ctx, leader); err != nil {
		return err
	}
	if err := s.startFront(ctx, leader, log); err != nil {
		return err
	}
	if err := s.waitStreaming(ctx, 30*time.Second); err != nil {
		return err
	}
	return s.writeInventory()
}

// detach starts a long-lived process as the servers' user in a session of
// its own, so it outlives `sandbox up`, its output in DIR/name.log and its
// PID in DIR/name.pid.
func (s *Sandbox) detach(ctx context.Context, name, command string) error {
	return s.detachOn(ctx, "", name, command)
}

// detachOn is detach on the host of a node (by name; "" for this host).
func (s *Sandbox) detachOn(ctx context.Context, host, name, command string) error {
	logf := filepath.Join(s.Dir, name+".log")
	out, err := s.sh(ctx, host, "start "+name, fmt.Sprintf("cd %s || exit 1; setsid %s </dev/null >>%s 2>&1 & echo $!", transport.ShellQuote(s.Dir), command, transport.ShellQuote(logf)))
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || pid <= 0 {
		return fmt.Errorf("start %s: no PID (got %q)", name, out)
	}
	// Written by us (root or the servers' user), read only by us.
	return os.WriteFile(s.pidFile(name), []byte(strconv.Itoa(pid)+"\n"), 0o644)
}

// waitHTTP waits until url answers 200.
func waitHTTP(ctx context.Context, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %s: %w", limit, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitPatroni waits until the first want members show in /cluster, pg1
// the running leader and the others running or streaming replicas.
func (s *Sandbox) waitPatroni(ctx context.Context, want int) error {
	c, err := patroni.New(s.manager())
	if err != nil {
		return err
	}
	var last string
	for {
		st, err := c.Cluster(ctx)
		if err != nil {
			last = err.Error()
		} else {
			last = st.String()
			if settled(st, s.Nodes[:want]) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("patroni: %d members not up and running in time (see %s/patroni-pg*.log); /cluster: %s", want, s.Dir, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func settled(st *patroni.State, nodes []Node) bool {
	for i, n := range nodes {
		m, ok := st.Member(n.Name)
		if !ok {
			return false
		}
		if i == 0 && !m.SettledLeader() {
			return false
		}
		if i > 0 && !m.SettledReplica() {
			return false
		}
	}
	return true
}

func (s *Sandbox) createApp(ctx context.Context, n Node) error {
	conn, err := pg.Connect(ctx, s.Conninfo(n, "postgres"), 30*time.Second)
	if err != nil {
		return fmt.Errorf("connect %s: %w", n.Name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE app"); err != nil {
		return fmt.Errorf("create database app: %w", err)
	}
	return nil
}

// managedPID reads DIR/name.pid and returns the PID when that process
// still runs with arg on its command line, else 0.
func (s *Sandbox) managedPID(name, arg string) int {
	b, err := os.ReadFile(s.pidFile(name))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !alive(pid) || !processMatches(pid, arg) {
		return 0
	}
	return pid
}

// managerPIDs returns the running Patroni and etcd processes by name.
func (s *Sandbox) managerPIDs() map[string]int {
	if s.Manager == ManagerPgAutoFailover {
		return s.pgafPIDs()
	}
	out := map[string]int{}
	if s.Manager == ManagerRepmgr {
		return s.repmgrdPIDs()
	}
	if s.Manager != ManagerPatroni {
		return out
	}
	for _, n := range s.Nodes {
		if pid := s.managedPID("patroni-"+n.Name, s.patroniConfig(n)); pid > 0 {
			out["patroni-"+n.Name] = pid
		}
	}
	if pid := s.managedPID("etcd", s.etcdDir()); pid > 0 {
		out["etcd"] = pid
	}
	return out
}

// stopManager stops every Patroni (SIGTERM: it stops its PostgreSQL
// first) and waits for them and their servers to be gone, then stops
// etcd. What does not stop within 30s gets SIGKILL.
func (s *Sandbox) stopManager(ctx context.Context) error {
	if s.Manager == ManagerRepmgr {
		return s.stopRepmgrd(ctx)
	}
	if s.Manager == ManagerPgAutoFailover {
		return s.stopPgaf(ctx)
	}
	if s.Manager != ManagerPatroni {
		return nil
	}
	pids := s.managerPIDs()
	patronis := map[string]int{}
	for name, pid := range pids {
		if strings.HasPrefix(name, "patroni-") {
			patronis[name] = pid
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	var errs []error
	if err := waitGone(ctx, patronis, 30*time.Second); err != nil {
		errs = append(errs, err)
	}
	// Their PostgreSQL servers: gone with Patroni, unless it was killed.
	servers := map[string]int{}
	for _, n := range s.Nodes {
		if pid := s.pidOf(n); pid > 0 {
			servers[n.Name] = pid
			_ = syscall.Kill(pid, syscall.SIGINT)
		}
	}
	if err := waitGone(ctx, servers, 30*time.Second); err != nil {
		errs = append(errs, err)
	}
	if pid, ok := pids["etcd"]; ok {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if err := waitGone(ctx, map[string]int{"etcd": pid}, 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// waitGone waits for the processes to end, and kills those still there
// after limit.
func waitGone(ctx context.Context, pids map[string]int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for name, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				time.Sleep(100 * time.Millisecond)
				if alive(pid) {
					return fmt.Errorf("%s (pid %d) did not stop", name, pid)
				}
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}
