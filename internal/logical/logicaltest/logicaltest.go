// Package logicaltest gives the tests of a logical move two real
// PostgreSQL servers on loopback, each a cluster of its own with
// wal_level = logical: blue and green, in one cluster.Target, as an
// inventory with a green section shows them to checks and steps. The
// servers are stopped by their PIDs when the test ends, whatever its
// outcome. Without PostgreSQL binaries the tests skip, unless CI is set.
package logicaltest

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/integration"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/transport"
)

// Pair is the two servers of a test.
type Pair struct {
	Target *cluster.Target
	BinDir string
	RunAs  string
	dir    string
	ports  map[string]int
}

// settings every server gets.
const settings = `
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
max_logical_replication_workers = 6
max_worker_processes = 12
fsync = off
shared_buffers = '32MB'
max_connections = 60
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
`

// New starts blue and green for t and stops them when t ends.
func New(t testing.TB) *Pair {
	t.Helper()
	integration.Need(t)
	bin, err := sandbox.FindBinDir("")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and PostgreSQL is missing: %v", err)
		}
		t.Skipf("no PostgreSQL here: %v", err)
	}
	runAs := ""
	if os.Geteuid() == 0 {
		for _, name := range []string{"postgres", "nobody"} {
			if _, err := user.Lookup(name); err == nil {
				runAs = name
				break
			}
		}
		if runAs == "" {
			t.Fatal("running as root, and no user postgres or nobody to run the servers")
		}
	}
	dir, err := os.MkdirTemp("", "switchover-logical-")
	if err != nil {
		t.Fatal(err)
	}
	p := &Pair{BinDir: bin, RunAs: runAs, dir: dir, ports: map[string]int{}}
	t.Cleanup(func() { p.down(t) })
	if runAs != "" {
		u, _ := user.Lookup(runAs)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	c := &cluster.Cluster{Name: "logical", Nodes: map[string]*cluster.Node{}, Order: []string{"blue", "green"}}
	for _, name := range []string{"blue", "green"} {
		port, err := sandbox.FreePortBase(1)
		if err != nil {
			t.Fatal(err)
		}
		p.ports[name] = port
		data := filepath.Join(dir, name)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err = p.sh(ctx, fmt.Sprintf("%s -D %s -U postgres --auth=trust --encoding=UTF8 --no-sync >/dev/null && printf '%%s' %s >> %s && %s start -D %s -w -t 60 -l %s >/dev/null",
			q(filepath.Join(bin, "initdb")), q(data), q(settings+fmt.Sprintf("port = %d\n", port)), q(filepath.Join(data, "postgresql.conf")),
			q(filepath.Join(bin, "pg_ctl")), q(data), q(filepath.Join(dir, name+".log"))))
		cancel()
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		c.Nodes[name] = &cluster.Node{Name: name, Conninfo: p.Conninfo(name),
			Host: cluster.Host{Transport: "local", User: runAs}, DataDir: data, BinDir: bin}
	}
	p.Target = &cluster.Target{Cluster: c, Facts: &cluster.Facts{}}
	return p
}

func q(s string) string { return transport.ShellQuote(s) }

// sh runs a command as the servers' user.
func (p *Pair) sh(ctx context.Context, command string) error {
	out, err := transport.Local{User: p.RunAs}.Run(ctx, command)
	if err != nil {
		return err
	}
	if out.ExitCode != 0 {
		return fmt.Errorf("exit %d: %s", out.ExitCode, out.Combined())
	}
	return nil
}

// Sh runs a command as the servers' user, failing t when it fails.
func (p *Pair) Sh(t testing.TB, command string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.sh(ctx, command); err != nil {
		t.Fatalf("%s: %v", command, err)
	}
}

// Conninfo is a superuser connection string of a server.
func (p *Pair) Conninfo(name string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=5", p.ports[name])
}

// Port is a server's port.
func (p *Pair) Port(name string) int { return p.ports[name] }

// Connect opens a session on a server, closed when t ends.
func (p *Pair) Connect(t testing.TB, name string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, p.Conninfo(name)+" application_name=test", 30*time.Second)
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	t.Cleanup(func() { pg.Release(conn) })
	return conn
}

// Exec runs statements on a server in a session of their own.
func (p *Pair) Exec(t testing.TB, name string, stmts ...string) {
	t.Helper()
	conn := p.Connect(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s on %s: %v", s, name, err)
		}
	}
}

// Query runs a query of one value on a server and returns it as text.
func (p *Pair) Query(t testing.TB, name, sql string) string {
	t.Helper()
	conn := p.Connect(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var v *string
	if err := conn.QueryRow(ctx, "SELECT ("+sql+")::text").Scan(&v); err != nil {
		t.Fatalf("%s on %s: %v", sql, name, err)
	}
	if v == nil {
		return "NULL"
	}
	return *v
}

// Eventually polls a query on a server until it returns want, failing t
// after limit with what it returned last.
func (p *Pair) Eventually(t testing.TB, name, sql, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := p.Query(t, name, sql)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s: %s after %s, want %s", sql, name, got, limit, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log returns the end of a server's log, for a failing test's message.
func (p *Pair) Log(name string) string {
	b, _ := os.ReadFile(filepath.Join(p.dir, name+".log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// down stops both servers by PID (a fast shutdown, SIGKILL after 30s)
// and removes their directory.
func (p *Pair) down(t testing.TB) {
	if t.Failed() {
		for _, name := range []string{"blue", "green"} {
			t.Logf("log of %s:\n%s", name, p.Log(name))
		}
	}
	for _, name := range []string{"blue", "green"} {
		data := filepath.Join(p.dir, name)
		pid := pidOf(data)
		if pid == 0 {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGINT)
		deadline := time.Now().Add(30 * time.Second)
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	_ = os.RemoveAll(p.dir)
}

// pidOf reads the postmaster's PID of a data directory, 0 when none runs.
func pidOf(data string) int {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 0 {
		return 0
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmd), data) {
		return 0
	}
	return pid
}
