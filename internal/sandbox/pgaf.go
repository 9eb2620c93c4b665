package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/pgaf"
	"github.com/switchover/switchover/internal/transport"
)

// ManagerPgAutoFailover runs a pg_auto_failover monitor and one keeper
// (`pg_autoctl run`) per node.
const ManagerPgAutoFailover = "pg_auto_failover"

// PgafUpTimeout bounds bringing up a pg_auto_failover sandbox, from the
// monitor to the last secondary streaming.
const PgafUpTimeout = 120 * time.Second

// FindPgAutoctl finds the pg_autoctl binary a pg_auto_failover sandbox
// needs, and checks that the PostgreSQL server has its extension.
func FindPgAutoctl(binDir string) (string, error) {
	p, err := exec.LookPath("pg_autoctl")
	if err != nil {
		return "", errors.New("pg_autoctl not found on the PATH; install it (Debian: apt-get install postgresql-15-auto-failover pg-auto-failover-cli)")
	}
	if binDir != "" {
		// Debian's layout: /usr/lib/postgresql/V/bin, extensions in
		// /usr/share/postgresql/V/extension.
		v := filepath.Base(filepath.Dir(binDir))
		share := filepath.Join("/usr/share/postgresql", v)
		if _, err := os.Stat(filepath.Join(share, "extension", "pgautofailover.control")); err != nil && dirExists(share) {
			return "", fmt.Errorf("the pgautofailover extension is not installed for the PostgreSQL in %s (Debian: apt-get install postgresql-%s-auto-failover)", binDir, filepath.Base(filepath.Dir(binDir)))
		}
	}
	return p, nil
}

// MonitorPort is the pg_auto_failover monitor's port, just above the nodes'.
func (s *Sandbox) MonitorPort() int { return s.PortBase + len(s.Nodes) + 1 }

// MonitorAddr is the address the pg_auto_failover monitor is reached on:
// 127.0.0.1, or in a multi-host sandbox this host's address on the private
// bridge. The monitor is the witness of the formation, so it stays off the
// nodes' hosts, as etcd does for Patroni: cutting one node's link leaves
// the monitor reachable from every other node and from switchover, which
// reaches it by SQL only and needs no ssh to it.
func (s *Sandbox) MonitorAddr() string { return s.bastionAddr() }

// MonitorConninfo reaches the monitor's database as the keepers do.
func (s *Sandbox) MonitorConninfo() string {
	return fmt.Sprintf("host=%s port=%d user=autoctl_node dbname=pg_auto_failover sslmode=disable connect_timeout=5", s.MonitorAddr(), s.MonitorPort())
}

// monitorURI is the same as a URI, the form `pg_autoctl create postgres
// --monitor` takes.
func (s *Sandbox) monitorURI() string {
	return fmt.Sprintf("postgres://autoctl_node@%s:%d/pg_auto_failover?sslmode=disable", s.MonitorAddr(), s.MonitorPort())
}

func (s *Sandbox) monitorDir() string { return filepath.Join(s.Dir, "monitor") }
func (s *Sandbox) pgafHome() string   { return filepath.Join(s.Dir, "pg_autoctl") }

// PgAutoctl is the shell command that runs pg_autoctl with args as the
// servers' user would, its configuration and state kept under the sandbox
// directory. The arguments are quoted.
func (s *Sandbox) PgAutoctl(args ...string) string {
	h := s.pgafHome()
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = transport.ShellQuote(a)
	}
	return fmt.Sprintf("env XDG_CONFIG_HOME=%s XDG_DATA_HOME=%s XDG_RUNTIME_DIR=%s PATH=%s:/usr/bin:/bin pg_autoctl %s",
		transport.ShellQuote(filepath.Join(h, "config")), transport.ShellQuote(filepath.Join(h, "data")),
		transport.ShellQuote(filepath.Join(h, "run")), transport.ShellQuote(s.BinDir), strings.Join(q, " "))
}

// RunPgAutoctl runs pg_autoctl with args as the servers' user and returns
// its output; a non-zero exit is an error with the output's last lines.
func (s *Sandbox) RunPgAutoctl(ctx context.Context, args ...string) (string, error) {
	return s.sh(ctx, "", "pg_autoctl "+strings.Join(args, " "), s.PgAutoctl(args...)+" 2>&1")
}

// pgafManager is the inventory's manager section for pg_auto_failover.
func (s *Sandbox) pgafManager() *cluster.Manager {
	return &cluster.Manager{Kind: ManagerPgAutoFailover, Monitor: s.MonitorConninfo(), Formation: "default", Group: 0}
}

// upPgaf brings up the monitor, then pg1 (which the monitor makes the
// primary), then the other nodes at once (each cloned by its keeper from
// pg1), the app database and PgBouncer in front of pg1, and writes the
// inventory. Every keeper is a `pg_autoctl create ... --run` of its own,
// detached, stopped by PID by Down.
func (s *Sandbox) upPgaf(ctx context.Context, log func(string, ...any)) error {
	ctx, cancel := context.WithTimeout(ctx, PgafUpTimeout)
	defer cancel()
	if _, err := FindPgAutoctl(s.BinDir); err != nil {
		return err
	}
	if s.Net != nil {
		// pg_autoctl starts the monitor's server on every address of this
		// host (postgres -h '*'; its monitor takes no --listen), and in a
		// multi-host sandbox nothing else checked that port here (the
		// nodes' ports are in their own namespaces). Its pg_hba.conf lets
		// in only loopback and the private network.
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", s.MonitorPort()))
		if err != nil {
			return fmt.Errorf("the monitor's port %d is taken on this host; pick another --port-base: %w", s.MonitorPort(), err)
		}
		l.Close()
	}
	h := s.pgafHome()
	for _, d := range []string{h, filepath.Join(h, "config"), filepath.Join(h, "data"), filepath.Join(h, "run")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := s.chown(d); err != nil {
			return err
		}
	}
	pgctl := filepath.Join(s.BinDir, "pg_ctl")
	log("pg_auto_failover monitor on %s:%d, run as %s", s.MonitorAddr(), s.MonitorPort(), s.who())
	// pg_autoctl takes an existing data directory as it is: initdb here
	// skips its fsyncs, which make most of the time a keeper takes to
	// create one.
	// The monitor's and pg1's, at once.
	primary := s.Nodes[0]
	initErr := make(chan error, 1)
	go func() { initErr <- s.initPgaf(ctx, primary.DataDir, pgafSettings) }()
	if err := s.initPgaf(ctx, s.monitorDir(), ""); err != nil {
		<-initErr
		return err
	}
	mon := s.PgAutoctl("create", "monitor", "--pgctl", pgctl, "--pgdata", s.monitorDir(), "--pgport", fmt.Sprint(s.MonitorPort()),
		"--hostname", s.MonitorAddr(), "--no-ssl", "--auth", "trust", "--run")
	if err := s.detach(ctx, "pgaf-monitor", mon); err != nil {
		return err
	}
	c, err := pgaf.New(s.pgafManager())
	if err != nil {
		return err
	}
	if err := s.waitPgaf(ctx, c, "the monitor", func(*pgaf.View) bool { return true }); err != nil {
		return err
	}
	create := func(n Node) error {
		addr := s.Addr(n.Name)
		log("pg_autoctl %s: postgres on %s:%d", n.Name, addr, n.Port)
		cmd := s.PgAutoctl("create", "postgres", "--pgctl", pgctl, "--pgdata", n.DataDir, "--pgport", fmt.Sprint(n.Port),
			"--hostname", addr, "--listen", addr, "--name", n.Name, "--monitor", s.monitorURI(),
			"--no-ssl", "--auth", "trust", "--username", "postgres", "--dbname", "postgres", "--run")
		// On its node's host: in a multi-host sandbox, that host's namespace.
		return s.detachOn(ctx, n.Name, "pgaf-"+n.Name, cmd)
	}
	if err := <-initErr; err != nil {
		return err
	}
	if err := create(primary); err != nil {
		return err
	}
	if err := s.waitPgaf(ctx, c, primary.Name+" the single primary", func(v *pgaf.View) bool {
		n, ok := v.Node(primary.Name)
		return ok && n.Settled() && n.Reported == pgaf.StateSingle
	}); err != nil {
		return err
	}
	// A checkpoint now leaves little to the one each clone asks for.
	if err := s.checkpoint(ctx, primary); err != nil {
		return err
	}
	for _, n := range s.Nodes[1:] {
		if err := create(n); err != nil {
			return err
		}
	}
	if err := s.waitPgaf(ctx, c, "every node settled, "+primary.Name+" the primary", func(v *pgaf.View) bool {
		return len(v.Nodes) == len(s.Nodes) && v.Unsettled() == "" && v.Primary() == primary.Name
	}); err != nil {
		return err
	}
	if err := s.createApp(ctx, primary); err != nil {
		return err
	}
	s.logPoolers(log)
	if err := s.startPgBouncer(ctx, primary); err != nil {
		return err
	}
	if err := s.waitStreaming(ctx, 30*time.Second); err != nil {
		return err
	}
	return s.writeInventory()
}

// pgafSettings are added to pg1's configuration before its keeper first
// starts it; the secondaries' clones carry them. pg_autoctl sets
// listen_addresses, port, replication and synchronous commit itself.
const pgafSettings = `
# --- switchover sandbox: a rehearsal cluster, trust on its own network only ---
wal_log_hints = on
hot_standby_feedback = on
wal_keep_size = '256MB'
max_connections = 100
shared_buffers = '32MB'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
`

// initPgaf creates a data directory for pg_autoctl to take over, without
// fsyncs, and appends settings to its configuration.
func (s *Sandbox) initPgaf(ctx context.Context, dir, settings string) error {
	if _, err := s.sh(ctx, "", "initdb "+filepath.Base(dir), fmt.Sprintf("%s -D %s -U postgres --auth=trust --encoding=UTF8 --no-sync >/dev/null",
		s.bin("initdb"), transport.ShellQuote(dir))); err != nil {
		return err
	}
	if s.Net != nil {
		// Connections come from the other hosts and from this one over
		// the bridge: trust the private network too, as the plain
		// multi-host sandbox does (initdb's local entries stay, for
		// pg_autoctl's own connections). pg_autoctl adds its entries
		// after these.
		hba := fmt.Sprintf("# switchover sandbox: trust on its private network\n"+
			"host all all %[1]s trust\nhost replication all %[1]s trust\n", s.Net.Subnet)
		if err := appendFile(filepath.Join(dir, "pg_hba.conf"), hba); err != nil {
			return err
		}
		settings += "wal_receiver_timeout = '5s'\nwal_sender_timeout = '5s'\n"
	}
	if settings == "" {
		return nil
	}
	return appendFile(filepath.Join(dir, "postgresql.conf"), settings)
}

// appendFile appends text to an existing file.
func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkpoint runs CHECKPOINT on n.
func (s *Sandbox) checkpoint(ctx context.Context, n Node) error {
	conn, err := pg.Connect(ctx, s.Conninfo(n, "postgres"), 30*time.Second)
	if err != nil {
		return fmt.Errorf("connect %s: %w", n.Name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint %s: %w", n.Name, err)
	}
	return nil
}

// waitPgaf polls the monitor's view until ok holds or ctx ends.
func (s *Sandbox) waitPgaf(ctx context.Context, c *pgaf.Client, what string, ok func(*pgaf.View) bool) error {
	last := "no answer yet"
	for {
		v, err := c.View(ctx)
		if err != nil {
			last = err.Error()
		} else {
			last = v.String()
			if ok(v) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pg_auto_failover: %s not reached in time (see %s/pgaf-*.log); monitor: %s", what, s.Dir, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// pgafPIDs returns the running keepers and the monitor's by name.
func (s *Sandbox) pgafPIDs() map[string]int {
	out := map[string]int{}
	for _, n := range s.Nodes {
		if pid := s.managedPID("pgaf-"+n.Name, n.DataDir+" "); pid > 0 {
			out["pgaf-"+n.Name] = pid
		}
	}
	if pid := s.managedPID("pgaf-monitor", s.monitorDir()); pid > 0 {
		out["pgaf-monitor"] = pid
	}
	return out
}

// stopPgaf stops every keeper (SIGTERM: it stops its PostgreSQL first)
// and waits for them and their servers, then the monitor and its server.
// What does not stop within 30s gets SIGKILL.
func (s *Sandbox) stopPgaf(ctx context.Context) error {
	pids := s.pgafPIDs()
	keepers := map[string]int{}
	for name, pid := range pids {
		if name != "pgaf-monitor" {
			keepers[name] = pid
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	var errs []error
	if err := waitGone(ctx, keepers, 30*time.Second); err != nil {
		errs = append(errs, err)
	}
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
	if pid, ok := pids["pgaf-monitor"]; ok {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if err := waitGone(ctx, map[string]int{"pgaf-monitor": pid}, 30*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if pid := s.pidOf(Node{Name: "monitor", DataDir: s.monitorDir()}); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGINT)
		if err := waitGone(ctx, map[string]int{"monitor": pid}, 30*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PgafView reads the monitor's view, for tests and the benchmark.
func (s *Sandbox) PgafView(ctx context.Context) (*pgaf.View, error) {
	c, err := pgaf.New(s.pgafManager())
	if err != nil {
		return nil, err
	}
	return c.View(ctx)
}

// WaitPgafSettled waits until the monitor shows every node settled with
// primary the primary, and PostgreSQL agrees: every other node streams.
func (s *Sandbox) WaitPgafSettled(ctx context.Context, primary string, limit time.Duration) error {
	return s.waitPgafSettled(ctx, primary, time.Time{}, limit)
}

// WaitPgafHealthySince is WaitPgafSettled once the monitor's health check
// has also found every node good after since (on the monitor's clock, as
// PgafView's Read gives it). After a node's link was down, the monitor
// can show the group settled while a health check begun during the cut
// has yet to fail; that failure then sends the primary to wait_primary
// and the standby to catchingup. A good check begun after the heal is
// the condition that rules it out.
func (s *Sandbox) WaitPgafHealthySince(ctx context.Context, primary string, since time.Time, limit time.Duration) error {
	return s.waitPgafSettled(ctx, primary, since, limit)
}

func (s *Sandbox) waitPgafSettled(ctx context.Context, primary string, since time.Time, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c, err := pgaf.New(s.pgafManager())
	if err != nil {
		return err
	}
	what := "every node settled, " + primary + " the primary"
	if !since.IsZero() {
		what += ", every node's health check good since " + since.Format("15:04:05.000")
	}
	if err := s.waitPgaf(ctx, c, what, func(v *pgaf.View) bool {
		if len(v.Nodes) != len(s.Nodes) || v.Unsettled() != "" || v.Primary() != primary {
			return false
		}
		for _, n := range v.Nodes {
			if !since.IsZero() && (n.Health != 1 || !n.HealthChecked.After(since)) {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	for _, n := range s.Nodes {
		if n.Name == primary {
			continue
		}
		for {
			st, err := s.inspect(ctx, n)
			if err == nil && st.Streaming {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("%s is not streaming after the monitor settled: %v", n.Name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
