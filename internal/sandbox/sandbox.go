// Package sandbox brings up a rehearsal PostgreSQL cluster on 127.0.0.1: a
// primary pg1, streaming standbys pg2.. with physical slots and
// wal_log_hints (so pg_rewind works), and a PgBouncer in front of the
// primary. It writes an inventory the shipped playbooks use unchanged, and
// stops exactly its own processes, by PID.
//
// Authentication is trust on 127.0.0.1 only: it is a rehearsal cluster.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
)

// DefaultPortBase is PgBouncer's port; the nodes listen on the next ones.
const DefaultPortBase = 54320

// Options set how a sandbox is brought up.
type Options struct {
	Dir      string // where everything lives; created, must not hold a sandbox
	PortBase int    // PgBouncer on PortBase, node i on PortBase+i; 0 picks free ports
	Standbys int    // number of standbys; default 2
	BinDir   string // PostgreSQL's bin directory; "" finds it
	RunAs    string // OS user for the servers; "" is this user, or a non-root one when root
	Manager  string // "" or ManagerNone: plain streaming; ManagerPatroni: Patroni with etcd; ManagerPgAutoFailover: a monitor and keepers
	Hosts    bool   // each node and the pooler on a host of its own (network namespaces, sshd); needs root
	// Poolers is the number of PgBouncers in front of the primary, each
	// with its own port and configuration; 0 or 1 is the one `pooler:`.
	Poolers int
	Router  string // "" or RouterNone: PgBouncer in front; RouterHAProxy: HAProxy instead, on the same port
	Log     func(format string, args ...any)
}

// Node is one server of the sandbox.
type Node struct {
	Name    string `json:"name"`
	Port    int    `json:"port"`
	DataDir string `json:"data_dir"`
}

// Sandbox is a running rehearsal cluster, as recorded in DIR/sandbox.json.
type Sandbox struct {
	Dir       string `json:"dir"`
	PortBase  int    `json:"port_base"`
	BinDir    string `json:"bin_dir"`
	RunAs     string `json:"run_as"`
	PgBouncer string `json:"pgbouncer"`         // the pgbouncer binary
	Manager   string `json:"manager,omitempty"` // "" (none) or ManagerPatroni
	Router    string `json:"router,omitempty"`  // "" (PgBouncer in front) or RouterHAProxy
	HAProxy   string `json:"haproxy,omitempty"` // the haproxy binary, with RouterHAProxy
	Nodes     []Node `json:"nodes"`
	// PoolerSet are the PgBouncers of a sandbox brought up with several
	// (Options.Poolers); empty for the one on PortBase (see Poolers).
	PoolerSet []Pooler `json:"poolers,omitempty"`
	// Net is the private network of a multi-host sandbox (Options.Hosts);
	// nil when everything runs on this host, on 127.0.0.1.
	Net *Network `json:"network,omitempty"`
	// SSHPort is the port of the sshd repmgr's own switchover reaches
	// the nodes on: the one a repmgr sandbox runs on 127.0.0.1, or 22, each
	// host's own, in a multi-host one; 0 when repmgr has none.
	SSHPort int `json:"ssh_port,omitempty"`
}

// Inventory is the path of the inventory the sandbox wrote.
func (s *Sandbox) Inventory() string { return filepath.Join(s.Dir, "inventory.yaml") }

// PoolerConfig is the path of the (first) PgBouncer's configuration.
func (s *Sandbox) PoolerConfig() string { return filepath.Join(s.Dir, "pgbouncer", "pgbouncer.ini") }

// Conninfo is a superuser connection string for a node.
func (s *Sandbox) Conninfo(n Node, db string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable connect_timeout=5", s.Addr(n.Name), n.Port, db)
}

// Addr is the address a node (by name) or the pooler ("pgbouncer") listens
// on: 127.0.0.1, or its own host's address in a multi-host sandbox.
func (s *Sandbox) Addr(name string) string {
	if s.Net != nil {
		if h, ok := s.Net.Host(name); ok {
			return h.Addr
		}
	}
	return "127.0.0.1"
}

// ClientConninfo is how a client reaches the app database through the
// (first) PgBouncer.
func (s *Sandbox) ClientConninfo() string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=app sslmode=disable connect_timeout=5", s.Addr(PoolerHost), s.PortBase)
}

// AdminConninfo reaches the (first) PgBouncer's admin console.
func (s *Sandbox) AdminConninfo() string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=pgbouncer sslmode=disable connect_timeout=5", s.Addr(PoolerHost), s.PortBase)
}

// Node returns the node called name.
func (s *Sandbox) Node(name string) (Node, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// exec runs commands as the servers' user on the host of a node (by
// name) or of the pooler: this host, or that host's network namespace.
func (s *Sandbox) exec(host string) transport.Executor {
	if s.Net != nil {
		if h, ok := s.Net.Host(host); ok {
			return nsExec{netns: h.Netns, user: s.RunAs}
		}
	}
	return transport.Local{User: s.RunAs}
}

func (s *Sandbox) stateFile() string { return filepath.Join(s.Dir, "sandbox.json") }

// FindBinDir finds PostgreSQL's server binaries: explicit, else
// `pg_config --bindir`, else initdb on the PATH, else the newest
// /usr/lib/postgresql/*/bin.
func FindBinDir(explicit string) (string, error) {
	ok := func(d string) bool {
		st, err := os.Stat(filepath.Join(d, "initdb"))
		return err == nil && !st.IsDir()
	}
	if explicit != "" {
		if ok(explicit) {
			return explicit, nil
		}
		return "", fmt.Errorf("--pg-bin %s: no initdb there", explicit)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); ok(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if ok(d) {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries found (looked at pg_config --bindir, the PATH and /usr/lib/postgresql/*/bin); install them (Debian: apt-get install postgresql) or pass --pg-bin")
}

func versionOf(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// findPgBouncer finds the pgbouncer binary.
func findPgBouncer() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/local/bin/pgbouncer"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("pgbouncer not found; install it (Debian: apt-get install pgbouncer)")
}

// runAsUser picks who runs the servers: PostgreSQL refuses root.
func runAsUser(explicit string) (string, error) {
	if explicit != "" {
		if _, err := user.Lookup(explicit); err != nil {
			return "", fmt.Errorf("--run-as %s: %w", explicit, err)
		}
		return explicit, nil
	}
	if os.Geteuid() != 0 {
		return "", nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		if _, err := user.Lookup(name); err == nil {
			return name, nil
		}
	}
	return "", errors.New("running as root, and neither user postgres nor nobody exists to run the servers; pass --run-as USER")
}

// FreePortBase finds a base port such that base..base+n are free on
// 127.0.0.1. It looks below the kernel's ephemeral range (which starts at
// 32768 by default), where the outgoing connections of other processes
// cannot take a port between this check and the servers' bind.
func FreePortBase(n int) (int, error) {
	const low, high = 20000, 32000
	for try := 0; try < 100; try++ {
		base := low + rand.IntN(high-low-n-1)
		if portsFree(base, n) == nil {
			return base, nil
		}
	}
	return 0, errors.New("no free block of ports on 127.0.0.1 between 20000 and 32000")
}

func portsFree(base, n int) error {
	for p := base; p <= base+n; p++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return fmt.Errorf("port %d on 127.0.0.1 is taken", p)
		}
		l.Close()
	}
	return nil
}

// Up creates and starts a sandbox. On failure it stops what it started
// and removes the directory, so a failed Up leaves nothing behind.
func Up(ctx context.Context, o Options) (s *Sandbox, err error) {
	if o.Standbys == 0 {
		o.Standbys = 2
	}
	if o.Standbys < 0 || o.Standbys > 20 {
		return nil, fmt.Errorf("--standbys %d: want 1 to 20", o.Standbys)
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	if o.Dir == "" {
		return nil, errors.New("no sandbox directory given")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "sandbox.json")); err == nil {
		return nil, fmt.Errorf("%s already holds a sandbox; `switchover sandbox down --dir %s` first", dir, dir)
	}
	bin, err := FindBinDir(o.BinDir)
	if err != nil {
		return nil, err
	}
	bouncer, err := findPgBouncer()
	if err != nil {
		return nil, err
	}
	runAs, err := runAsUser(o.RunAs)
	if err != nil {
		return nil, err
	}
	haproxyBin, err := checkRouter(o)
	if err != nil {
		return nil, err
	}
	n := o.Standbys + 1
	span, err := checkManager(o.Manager, n)
	if err != nil {
		return nil, err
	}
	if o.Poolers < 0 || o.Poolers > MaxPoolers {
		return nil, fmt.Errorf("--poolers %d: want 1 to %d", o.Poolers, MaxPoolers)
	}
	nodeSpan := span
	span += max(o.Poolers-1, 0) // the second pooler and on, after the nodes' ports
	if o.Hosts {
		if err := checkHosts(o); err != nil {
			return nil, err
		}
		if o.PortBase == 0 {
			o.PortBase = DefaultPortBase // each host has its own ports
		}
	} else if o.PortBase == 0 {
		if o.PortBase, err = FreePortBase(span); err != nil {
			return nil, err
		}
	} else if err := portsFree(o.PortBase, span); err != nil {
		return nil, fmt.Errorf("%w; pick another --port-base", err)
	}
	s = &Sandbox{Dir: dir, PortBase: o.PortBase, BinDir: bin, RunAs: runAs, PgBouncer: bouncer, Manager: o.Manager, Router: o.Router, HAProxy: haproxyBin}
	if s.Router == RouterNone {
		s.Router = ""
	}
	s.planPoolers(o.Poolers, nodeSpan)
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("pg%d", i)
		s.Nodes = append(s.Nodes, Node{Name: name, Port: o.PortBase + i, DataDir: filepath.Join(dir, name)})
	}
	created := false
	sb := s // the named result is nil on the error paths below
	defer func() {
		if err != nil && created {
			_ = sb.Down(context.Background())
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	created = true
	if err := s.chown(dir); err != nil {
		return nil, err
	}
	if err := s.save(); err != nil {
		return nil, err
	}
	if o.Hosts {
		if err := s.upNetwork(ctx, o.Log); err != nil {
			return nil, err
		}
	}
	if s.Manager == ManagerPatroni {
		if err := s.upPatroni(ctx, o.Log); err != nil {
			return nil, err
		}
		return s, nil
	}
	if s.Manager == ManagerPgAutoFailover {
		if err := s.upPgaf(ctx, o.Log); err != nil {
			return nil, err
		}
		return s, nil
	}
	primary := s.Nodes[0]
	o.Log("initdb %s (PostgreSQL in %s, servers run as %s)", primary.Name, bin, s.who())
	if err := s.initPrimary(ctx, primary); err != nil {
		return nil, err
	}
	if s.Manager == ManagerRepmgr {
		if err := s.appendConf(primary, repmgrSettings); err != nil {
			return nil, err
		}
	}
	if err := s.start(ctx, primary); err != nil {
		return nil, err
	}
	if err := s.setupPrimary(ctx, primary); err != nil {
		return nil, err
	}
	for _, sb := range s.Nodes[1:] {
		o.Log("pg_basebackup %s from %s", sb.Name, primary.Name)
		if err := s.cloneStandby(ctx, primary, sb); err != nil {
			return nil, err
		}
		if err := s.start(ctx, sb); err != nil {
			return nil, err
		}
	}
	if err := s.startFront(ctx, primary, o.Log); err != nil {
		return nil, err
	}
	if err := s.waitStreaming(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	if s.Manager == ManagerRepmgr {
		if err := s.upRepmgr(ctx, o.Log); err != nil {
			return nil, err
		}
	}
	if err := s.writeInventory(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Sandbox) who() string {
	if s.RunAs == "" {
		if u, err := user.Current(); err == nil {
			return u.Username
		}
	}
	return s.RunAs
}

func (s *Sandbox) chown(path string) error {
	if s.RunAs == "" {
		return nil
	}
	u, err := user.Lookup(s.RunAs)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}

func (s *Sandbox) save() error {
	b, _ := json.MarshalIndent(s, "", "  ")
	return os.WriteFile(s.stateFile(), append(b, '\n'), 0o644)
}

// Load reads the sandbox recorded in dir.
func Load(dir string) (*Sandbox, error) {
	b, err := os.ReadFile(filepath.Join(dir, "sandbox.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no sandbox in %s (bring one up with `switchover sandbox up --dir %s`)", dir, dir)
		}
		return nil, err
	}
	var s Sandbox
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "sandbox.json"), err)
	}
	return &s, nil
}

// sh runs a command as the servers' user and fails with its output.
func (s *Sandbox) sh(ctx context.Context, host, what, command string) (string, error) {
	out, err := s.exec(host).Run(ctx, command)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if out.ExitCode != 0 {
		return "", fmt.Errorf("%s: exit %d: %s", what, out.ExitCode, lastLines(out.Combined(), 6))
	}
	return out.Stdout, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (s *Sandbox) bin(name string) string { return transport.ShellQuote(filepath.Join(s.BinDir, name)) }

// settings every node gets; the port is set per node after the clone.
const settings = `
# --- switchover sandbox: a rehearsal cluster on 127.0.0.1 only ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 20
max_replication_slots = 20
wal_log_hints = on
hot_standby = on
hot_standby_feedback = on
wal_keep_size = '256MB'
max_connections = 100
shared_buffers = '32MB'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
`

func (s *Sandbox) initPrimary(ctx context.Context, n Node) error {
	if _, err := s.sh(ctx, n.Name, "initdb "+n.Name, fmt.Sprintf("%s -D %s -U postgres --auth=trust --encoding=UTF8 --no-sync >/dev/null",
		s.bin("initdb"), transport.ShellQuote(n.DataDir))); err != nil {
		return err
	}
	hba := "# switchover sandbox: trust on loopback only\n" +
		"host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"
	if s.Net != nil {
		hba = fmt.Sprintf("# switchover sandbox: trust on its private network only\n"+
			"host all all %[1]s trust\nhost replication all %[1]s trust\n", s.Net.Subnet)
	}
	if err := os.WriteFile(filepath.Join(n.DataDir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return err
	}
	if err := s.chown(filepath.Join(n.DataDir, "pg_hba.conf")); err != nil {
		return err
	}
	return s.appendConf(n, settings)
}

func (s *Sandbox) appendConf(n Node, text string) error {
	f, err := os.OpenFile(filepath.Join(n.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if s.Net != nil {
		// Short replication timeouts: a partition shows in seconds.
		text += fmt.Sprintf("listen_addresses = '%s'\nwal_receiver_timeout = '5s'\nwal_sender_timeout = '5s'\n", s.Addr(n.Name))
	}
	_, err = f.WriteString(text + fmt.Sprintf("port = %d\n", n.Port))
	return err
}

func (s *Sandbox) start(ctx context.Context, n Node) error {
	_, err := s.sh(ctx, n.Name, "start "+n.Name, fmt.Sprintf("%s start -D %s -w -t 60 -l %s >/dev/null",
		s.bin("pg_ctl"), transport.ShellQuote(n.DataDir), transport.ShellQuote(filepath.Join(s.Dir, n.Name+".log"))))
	return err
}

func (s *Sandbox) setupPrimary(ctx context.Context, n Node) error {
	conn, err := pg.Connect(ctx, s.Conninfo(n, "postgres"), 30*time.Second)
	if err != nil {
		return fmt.Errorf("connect %s: %w", n.Name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE app"); err != nil {
		return fmt.Errorf("create database app: %w", err)
	}
	for _, sb := range s.Nodes {
		if _, err := conn.Exec(ctx, "SELECT pg_create_physical_replication_slot($1)", sb.Name); err != nil {
			return fmt.Errorf("create slot %s: %w", sb.Name, err)
		}
	}
	return nil
}

// PrimaryConninfo is the primary_conninfo a standby uses to stream from n.
func (s *Sandbox) PrimaryConninfo(upstream Node, standby string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres application_name=%s sslmode=disable", s.Addr(upstream.Name), upstream.Port, standby)
}

func (s *Sandbox) cloneStandby(ctx context.Context, primary, n Node) error {
	if _, err := s.sh(ctx, n.Name, "pg_basebackup "+n.Name, fmt.Sprintf("%s -h %s -p %d -U postgres -D %s -X stream -c fast --no-sync",
		s.bin("pg_basebackup"), s.Addr(primary.Name), primary.Port, transport.ShellQuote(n.DataDir))); err != nil {
		return err
	}
	conf := fmt.Sprintf("primary_conninfo = '%s'\nprimary_slot_name = '%s'\n", s.PrimaryConninfo(primary, n.Name), n.Name)
	auto := filepath.Join(n.DataDir, "postgresql.auto.conf")
	if err := os.WriteFile(auto, []byte("# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n"+conf), 0o600); err != nil {
		return err
	}
	signal := filepath.Join(n.DataDir, "standby.signal")
	if err := os.WriteFile(signal, nil, 0o600); err != nil {
		return err
	}
	for _, f := range []string{auto, signal} {
		if err := s.chown(f); err != nil {
			return err
		}
	}
	return s.appendConf(n, "")
}

// waitStreaming waits until every standby streams from the primary.
func (s *Sandbox) waitStreaming(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, n := range s.Nodes[1:] {
		for {
			st, err := s.inspect(ctx, n)
			if err == nil && st.Streaming {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s is not streaming after %s (see %s.log): %v", n.Name, limit, filepath.Join(s.Dir, n.Name), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func (s *Sandbox) inspect(ctx context.Context, n Node) (pg.State, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pg.Connect(cctx, s.Conninfo(n, "postgres"), 5*time.Second)
	if err != nil {
		return pg.State{}, err
	}
	defer conn.Close(context.Background())
	return pg.Inspect(cctx, conn)
}

func (s *Sandbox) writeInventory() error {
	var b strings.Builder
	where := "on 127.0.0.1"
	if s.Net != nil {
		where = "on hosts of its own, reached over ssh,"
	}
	fmt.Fprintf(&b, "# Written by `switchover sandbox up`: a rehearsal cluster %s\n# with trust authentication. Not for production.\ncluster: sandbox\nvars:\n  candidate: pg2\nnodes:\n", where)
	host := func(string) string { return "local" }
	if s.RunAs != "" {
		host = func(string) string { return fmt.Sprintf("{transport: local, user: %s}", s.RunAs) }
	}
	if s.Net != nil {
		host = func(name string) string {
			h := s.hostOf(name)
			return fmt.Sprintf("{transport: ssh, address: %q, user: %s, ssh_config: %s}", h.Address, h.User, h.SSHConfig)
		}
	}
	for _, n := range s.Nodes {
		fmt.Fprintf(&b, "  %s:\n    conninfo: %q\n    host: %s\n    data_dir: %s\n    bin_dir: %s\n",
			n.Name, s.Conninfo(n, "postgres"), host(n.Name), n.DataDir, s.BinDir)
	}
	if r := s.router(); r != nil {
		fmt.Fprintf(&b, "router:\n  kind: %s\n  socket: %s\n  backend: %s\n  endpoint: %q\n", r.Kind, r.Socket, r.Backend, r.Endpoint)
	} else {
		b.WriteString(s.poolerInventory(host(PoolerHost)))
	}
	if m := s.manager(); m != nil && m.Kind == ManagerRepmgr {
		fmt.Fprintf(&b, "manager:\n  kind: %s\n  database: %s\n  configs:\n", m.Kind, m.Database)
		for _, n := range s.Nodes {
			fmt.Fprintf(&b, "    %s: %s\n", n.Name, m.Configs[n.Name])
		}
	} else if m != nil && m.Kind == ManagerPgAutoFailover {
		fmt.Fprintf(&b, "manager:\n  kind: %s\n  monitor: %q\n  formation: %s\n  group: %d\n", m.Kind, m.Monitor, m.Formation, m.Group)
	} else if m != nil {
		fmt.Fprintf(&b, "manager:\n  kind: %s\n  urls:\n", m.Kind)
		for _, u := range m.URLs {
			fmt.Fprintf(&b, "    - %s\n", u)
		}
	}
	return os.WriteFile(s.Inventory(), []byte(b.String()), 0o644)
}

// NodeStatus is one node as `sandbox status` shows it.
type NodeStatus struct {
	Node     Node
	Running  bool
	State    pg.State
	LagBytes int64 // standby: how far its replay is behind the primary's current LSN
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
	c := &cluster.Cluster{Name: "sandbox", Nodes: map[string]*cluster.Node{}}
	for _, n := range s.Nodes {
		c.Nodes[n.Name] = &cluster.Node{Name: n.Name, Conninfo: s.Conninfo(n, "postgres"), Host: s.hostOf(n.Name), DataDir: n.DataDir, BinDir: s.BinDir}
		c.Order = append(c.Order, n.Name)
	}
	if c.Router = s.router(); c.Router == nil {
		c.Poolers = s.clusterPoolers()
	}
	c.Manager = s.manager()
	return c
}
