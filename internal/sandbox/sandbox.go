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
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/transport"
)

// DefaultPortBase is PgBouncer's port; the nodes listen on the next ones.
const DefaultPortBase = 54320

// DefaultName is the cluster's name in a sandbox's inventory unless
// Options.Name gives another: the name a run claims the cluster by, so
// sandboxes rehearsed side by side each need their own.
const DefaultName = "sandbox"

// Options set how a sandbox is brought up.
type Options struct {
	Dir      string // where everything lives; created, must not hold a sandbox
	Name     string // the cluster's name in the inventory; "" is DefaultName
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
	// Green brings up, beside the cluster (blue), one empty server of a
	// cluster of its own, GreenNode, on the port after the others, the
	// target of a blue/green move fed by logical replication: every server
	// then runs with wal_level = logical, and the inventory has a green:
	// section. GreenBinDir is green's PostgreSQL (another major version,
	// say); "" is blue's.
	Green       bool
	GreenBinDir string
	Log         func(format string, args ...any)
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
	Name      string `json:"name,omitempty"` // the cluster's name; "" (a sandbox recorded before names) is DefaultName
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
	// Green is the green server of a sandbox brought up with Options.Green,
	// run from GreenBinDir; nil without one.
	Green       *Node  `json:"green,omitempty"`
	GreenBinDir string `json:"green_bin_dir,omitempty"`
}

// ClusterName is the cluster's name in the sandbox's inventory.
func (s *Sandbox) ClusterName() string {
	if s.Name == "" {
		return DefaultName
	}
	return s.Name
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

// Node returns the node called name, the green server's too.
func (s *Sandbox) Node(name string) (Node, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	if s.Green != nil && s.Green.Name == name {
		return *s.Green, true
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
		if !portFree(p) {
			return fmt.Errorf("port %d on 127.0.0.1 is taken", p)
		}
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
	if IsFleet(dir) {
		return nil, fmt.Errorf("%s already holds a fleet sandbox; `switchover sandbox down --dir %s` first", dir, dir)
	}
	if err := checkGreen(o); err != nil {
		return nil, err
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
	if o.Green {
		span++ // green, after everything else
	}
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
	if o.Name == "" {
		o.Name = DefaultName
	}
	s = &Sandbox{Dir: dir, Name: o.Name, PortBase: o.PortBase, BinDir: bin, RunAs: runAs, PgBouncer: bouncer, Manager: o.Manager, Router: o.Router, HAProxy: haproxyBin}
	if s.Router == RouterNone {
		s.Router = ""
	}
	s.planPoolers(o.Poolers, nodeSpan)
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("pg%d", i)
		s.Nodes = append(s.Nodes, Node{Name: name, Port: o.PortBase + i, DataDir: filepath.Join(dir, name)})
	}
	if o.Green {
		s.Green = &Node{Name: GreenNode, Port: o.PortBase + span, DataDir: filepath.Join(dir, GreenNode)}
		s.GreenBinDir = o.GreenBinDir
		if s.GreenBinDir == "" {
			s.GreenBinDir = bin
		}
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
	if s.Green != nil {
		if err := s.upGreen(ctx, o.Log); err != nil {
			return nil, err
		}
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

// logEnds is the last lines of a server's log, to quote in an error: a
// failed bring-up removes the directory the log was in. It names the file
// when it cannot be read.
func logEnds(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(strings.TrimSpace(string(b))) == 0 {
		return fmt.Sprintf(" (no log in %s)", path)
	}
	return fmt.Sprintf("; %s ends: %s", filepath.Base(path), strings.ReplaceAll(lastLines(string(b), 3), "\n", " | "))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (s *Sandbox) bin(name string) string { return transport.ShellQuote(filepath.Join(s.BinDir, name)) }
