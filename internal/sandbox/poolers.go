package sandbox

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/transport"
)

// MaxPoolers bounds `sandbox up --poolers`.
const MaxPoolers = 8

// Pooler is one PgBouncer of the sandbox: its name in the inventory, its
// port and the directory of its configuration, log and pid file.
type Pooler struct {
	Name string `json:"name"`
	Port int    `json:"port"`
	Dir  string `json:"dir"`
}

// Config is the path of the pooler's configuration.
func (p Pooler) Config() string { return filepath.Join(p.Dir, "pgbouncer.ini") }

// ReadOnlyDatabase is the [databases] entry a sandbox with several poolers
// routes to its last standby in each of them: an entry that does not point
// at the primary, which a switchover leaves alone.
const ReadOnlyDatabase = "app_ro"

// Poolers returns the sandbox's PgBouncers: the one on PortBase, named
// cluster.DefaultPoolerName, unless it was brought up with several.
func (s *Sandbox) Poolers() []Pooler {
	if len(s.PoolerSet) > 0 {
		return append([]Pooler(nil), s.PoolerSet...)
	}
	return []Pooler{{Name: cluster.DefaultPoolerName, Port: s.PortBase, Dir: filepath.Join(s.Dir, "pgbouncer")}}
}

// planPoolers names and places n PgBouncers (n > 1): the first on
// PortBase, the others on the ports after the span the nodes (and their
// manager) take.
func (s *Sandbox) planPoolers(n, span int) {
	if n <= 1 {
		return
	}
	for i := 1; i <= n; i++ {
		p := Pooler{Name: fmt.Sprintf("pgb%d", i), Port: s.PortBase, Dir: filepath.Join(s.Dir, "pgbouncer")}
		if i > 1 {
			p.Port = s.PortBase + span + i - 1
			p.Dir = filepath.Join(s.Dir, fmt.Sprintf("pgbouncer%d", i))
		}
		s.PoolerSet = append(s.PoolerSet, p)
	}
}

// PoolerAdminConninfo reaches the admin console of pooler p.
func (s *Sandbox) PoolerAdminConninfo(p Pooler) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=pgbouncer sslmode=disable connect_timeout=5", s.Addr(PoolerHost), p.Port)
}

// PoolerClientConninfo is how a client reaches the app database through
// pooler p.
func (s *Sandbox) PoolerClientConninfo(p Pooler) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=app sslmode=disable connect_timeout=5", s.Addr(PoolerHost), p.Port)
}

// clusterPoolers is the sandbox's poolers as the inventory describes them.
func (s *Sandbox) clusterPoolers() []*cluster.Pooler {
	var out []*cluster.Pooler
	for _, p := range s.Poolers() {
		out = append(out, &cluster.Pooler{Name: p.Name, Kind: "pgbouncer", Admin: s.PoolerAdminConninfo(p), Database: "app", Config: p.Config(), Host: s.hostOf(PoolerHost)})
	}
	return out
}

// poolerInventory is the inventory's `pooler:` (one) or `poolers:` (several).
func (s *Sandbox) poolerInventory(host string) string {
	var b strings.Builder
	if len(s.PoolerSet) == 0 {
		p := s.Poolers()[0]
		fmt.Fprintf(&b, "pooler:\n  kind: pgbouncer\n  admin: %q\n  database: app\n  config: %s\n  host: %s\n",
			s.PoolerAdminConninfo(p), p.Config(), host)
		return b.String()
	}
	b.WriteString("poolers:\n")
	for _, p := range s.PoolerSet {
		fmt.Fprintf(&b, "  - name: %s\n    kind: pgbouncer\n    admin: %q\n    database: app\n    config: %s\n    host: %s\n",
			p.Name, s.PoolerAdminConninfo(p), p.Config(), host)
	}
	return b.String()
}

// logPoolers says where the PgBouncers listen.
func (s *Sandbox) logPoolers(log func(format string, args ...any)) {
	if len(s.PoolerSet) == 0 {
		log("pgbouncer on %s:%d", s.Addr(PoolerHost), s.PortBase)
		return
	}
	for _, p := range s.PoolerSet {
		log("pgbouncer %s on %s:%d (%s)", p.Name, s.Addr(PoolerHost), p.Port, p.Config())
	}
}

// startPgBouncer starts every PgBouncer of the sandbox in front of primary.
func (s *Sandbox) startPgBouncer(ctx context.Context, primary Node) error {
	for _, p := range s.Poolers() {
		if err := s.startPooler(ctx, p, primary); err != nil {
			return fmt.Errorf("pgbouncer %s: %w", p.Name, err)
		}
	}
	return nil
}

func (s *Sandbox) startPooler(ctx context.Context, p Pooler, primary Node) error {
	dir := p.Dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := s.chown(dir); err != nil {
		return err
	}
	entries := fmt.Sprintf("app = host=%s port=%d dbname=app\n", s.Addr(primary.Name), primary.Port)
	if len(s.PoolerSet) > 0 && len(s.Nodes) > 1 {
		ro := s.Nodes[len(s.Nodes)-1]
		entries += fmt.Sprintf("%s = host=%s port=%d dbname=app\n", ReadOnlyDatabase, s.Addr(ro.Name), ro.Port)
	}
	ini := fmt.Sprintf(`;; switchover sandbox: PgBouncer in front of the primary, trust on loopback only
[databases]
%s
[pgbouncer]
listen_addr = %s
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
admin_users = postgres
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
ignore_startup_parameters = extra_float_digits,options
server_login_retry = 1
server_connect_timeout = 5
logfile = %s
pidfile = %s
`, entries, s.Addr(PoolerHost), p.Port, filepath.Join(dir, "userlist.txt"), filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
	files := map[string]string{"pgbouncer.ini": ini, "userlist.txt": "\"postgres\" \"\"\n"}
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o640); err != nil {
			return err
		}
		if err := s.chown(path); err != nil {
			return err
		}
	}
	if _, err := s.sh(ctx, PoolerHost, "start pgbouncer", fmt.Sprintf("%s -d -q %s", transport.ShellQuote(s.PgBouncer), transport.ShellQuote(p.Config()))); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(s.Addr(PoolerHost), strconv.Itoa(p.Port)), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgbouncer did not listen on %s:%d within 10s%s", s.Addr(PoolerHost), p.Port, logEnds(filepath.Join(dir, "pgbouncer.log")))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// poolerPID returns the PID of pooler p's running PgBouncer, or 0; only a
// process started with p's configuration counts.
func (s *Sandbox) poolerPID(p Pooler) int {
	b, err := os.ReadFile(filepath.Join(p.Dir, "pgbouncer.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !processMatches(pid, p.Config()) {
		return 0
	}
	return pid
}

// poolerPIDs returns the running PgBouncers' PIDs by process name: the
// first pooler's is "pgbouncer", the others' "pgbouncer NAME".
func (s *Sandbox) poolerPIDs() map[string]int {
	out := map[string]int{}
	for i, p := range s.Poolers() {
		name := "pgbouncer"
		if i > 0 {
			name += " " + p.Name
		}
		if pid := s.poolerPID(p); pid > 0 {
			out[name] = pid
		}
	}
	return out
}

// isPoolerProcess reports whether a name of PIDs is a PgBouncer's.
func isPoolerProcess(name string) bool {
	return name == "pgbouncer" || strings.HasPrefix(name, "pgbouncer ")
}
