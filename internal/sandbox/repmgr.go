package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/repmgr"
	"github.com/switchover/switchover/internal/transport"
)

// ManagerRepmgr runs the sandbox under repmgr: every node registered in
// repmgr's metadata (database repmgr, user repmgr) and a repmgrd per node.
const ManagerRepmgr = "repmgr"

// RepmgrUpTimeout bounds registering the nodes and starting repmgrd.
const RepmgrUpTimeout = 60 * time.Second

// FindRepmgr finds the repmgr and repmgrd binaries a repmgr sandbox needs,
// and repmgr's library in PostgreSQL's (shared_preload_libraries).
func FindRepmgr(binDir string) (repmgrBin, repmgrdBin string, err error) {
	var missing []string
	if repmgrBin, err = exec.LookPath("repmgr"); err != nil {
		missing = append(missing, "repmgr")
	}
	if repmgrdBin, err = exec.LookPath("repmgrd"); err != nil {
		missing = append(missing, "repmgrd")
	}
	if binDir != "" {
		if _, err := os.Stat(filepath.Join(filepath.Dir(binDir), "lib", "repmgr.so")); err != nil {
			missing = append(missing, "repmgr.so beside "+binDir)
		}
	}
	if len(missing) > 0 {
		pkg := "postgresql-NN-repmgr"
		if v := versionOf(binDir); v > 0 {
			pkg = fmt.Sprintf("postgresql-%d-repmgr", v)
		}
		return "", "", fmt.Errorf("%s not found; install repmgr (Debian: apt-get install %s)", strings.Join(missing, ", "), pkg)
	}
	return repmgrBin, repmgrdBin, nil
}

// RepmgrConfig is the path of a node's repmgr.conf.
func (s *Sandbox) RepmgrConfig(n Node) string { return filepath.Join(s.Dir, "repmgr-"+n.Name+".conf") }

// repmgrConninfo is how repmgr reaches a node: its own user and database.
func (s *Sandbox) repmgrConninfo(n Node) string {
	return fmt.Sprintf("host=%s port=%d user=repmgr dbname=repmgr connect_timeout=2", s.Addr(n.Name), n.Port)
}

// repmgrConf is a node's repmgr.conf. The service commands are pg_ctl on
// this sandbox's data directory, so repmgr's own switchover stops and
// starts exactly the sandbox's servers; repmgrd fails over automatically
// unless paused, which is the setting a switchover must hold off.
func (s *Sandbox) repmgrConf(n Node) string {
	q := func(v string) string { return "'" + strings.ReplaceAll(v, "'", `\'`) + "'" }
	pgctl := filepath.Join(s.BinDir, "pg_ctl")
	logf := filepath.Join(s.Dir, n.Name+".log")
	cfg := s.RepmgrConfig(n)
	lines := []string{
		"# Written by switchover sandbox up: a rehearsal cluster, trust on 127.0.0.1 only.",
		fmt.Sprintf("node_id=%d", s.nodeID(n)),
		"node_name=" + q(n.Name),
		"conninfo=" + q(s.repmgrConninfo(n)),
		"data_directory=" + q(n.DataDir),
		"pg_bindir=" + q(s.BinDir),
		"use_replication_slots=no",
		"replication_user='postgres'",
		"service_start_command=" + q(fmt.Sprintf("%s start -D %s -w -t 60 -l %s", pgctl, n.DataDir, logf)),
		"service_stop_command=" + q(fmt.Sprintf("%s stop -D %s -w -t 60 -m fast", pgctl, n.DataDir)),
		"service_restart_command=" + q(fmt.Sprintf("%s restart -D %s -w -t 60 -m fast -l %s", pgctl, n.DataDir, logf)),
		"service_reload_command=" + q(fmt.Sprintf("%s reload -D %s", pgctl, n.DataDir)),
		"service_promote_command=" + q(fmt.Sprintf("%s promote -D %s -w -t 60", pgctl, n.DataDir)),
		"repmgrd_pid_file=" + q(s.pidFile("repmgrd-"+n.Name+"-daemon")),
		"log_file=" + q(filepath.Join(s.Dir, "repmgrd-"+n.Name+".log")),
		"failover='automatic'",
		"promote_command=" + q("repmgr standby promote -f "+cfg+" --log-to-file"),
		"follow_command=" + q("repmgr standby follow -f "+cfg+" --log-to-file --upstream-node-id=%n"),
		"monitor_interval_secs=1",
		"reconnect_attempts=3",
		"reconnect_interval=1",
		"standby_disconnect_on_failover=false",
	}
	return strings.Join(lines, "\n") + "\n"
}

func (s *Sandbox) nodeID(n Node) int {
	id, _ := strconv.Atoi(strings.TrimPrefix(n.Name, "pg"))
	return id
}

// repmgrSettings are what every node of a repmgr sandbox needs besides
// the usual settings: repmgr's library, so repmgrd can run.
const repmgrSettings = "shared_preload_libraries = 'repmgr'\n"

// upRepmgr registers the nodes with repmgr (the primary, then each standby
// the sandbox cloned), and starts a repmgrd per node. Each repmgrd runs in
// the foreground under a shell that starts it again when it exits, as a
// service manager would: repmgrd ends when it finds no primary in its
// metadata, which is what a switchover repmgr did not perform leaves until
// the metadata is registered again.
func (s *Sandbox) upRepmgr(ctx context.Context, log func(string, ...any)) error {
	ctx, cancel := context.WithTimeout(ctx, RepmgrUpTimeout)
	defer cancel()
	_, repmgrdBin, err := FindRepmgr(s.BinDir)
	if err != nil {
		return err
	}
	primary := s.Nodes[0]
	conn, err := pg.Connect(ctx, s.Conninfo(primary, "postgres"), 30*time.Second)
	if err != nil {
		return fmt.Errorf("connect %s: %w", primary.Name, err)
	}
	for _, q := range []string{"CREATE USER repmgr SUPERUSER", "CREATE DATABASE repmgr OWNER repmgr"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			conn.Close(context.Background())
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	conn.Close(context.Background())
	for _, n := range s.Nodes {
		p := s.RepmgrConfig(n)
		if err := os.WriteFile(p, []byte(s.repmgrConf(n)), 0o600); err != nil {
			return err
		}
		if err := s.chown(p); err != nil {
			return err
		}
	}
	log("repmgr primary register %s", primary.Name)
	if _, err := s.sh(ctx, primary.Name, "repmgr primary register "+primary.Name, s.repmgrCmd(primary, "primary register")); err != nil {
		return err
	}
	for _, n := range s.Nodes[1:] {
		log("repmgr standby register %s", n.Name)
		if _, err := s.sh(ctx, n.Name, "repmgr standby register "+n.Name, s.repmgrCmd(n, fmt.Sprintf("standby register --upstream-node-id=%d", s.nodeID(primary)))); err != nil {
			return err
		}
	}
	for _, n := range s.Nodes {
		log("repmgrd %s (config %s)", n.Name, s.RepmgrConfig(n))
		loop := fmt.Sprintf("sh -c %s", transport.ShellQuote(fmt.Sprintf("while :; do %s -f %s --daemonize=false; sleep 1; done",
			transport.ShellQuote(repmgrdBin), transport.ShellQuote(s.RepmgrConfig(n)))))
		if err := s.detach(ctx, "repmgrd-"+n.Name, loop); err != nil {
			return err
		}
	}
	return s.waitRepmgrd(ctx)
}

func (s *Sandbox) repmgrCmd(n Node, args string) string {
	return fmt.Sprintf("repmgr -f %s %s", transport.ShellQuote(s.RepmgrConfig(n)), args)
}

// waitRepmgrd waits until repmgrd runs on every node, as each node's
// shared memory says.
func (s *Sandbox) waitRepmgrd(ctx context.Context) error {
	c := s.Cluster()
	for {
		v := repmgr.Read(ctx, c, s.Nodes[0].Name)
		var missing []string
		for _, d := range v.Daemons {
			if !d.Running {
				missing = append(missing, d.Node)
			}
		}
		if v.Error == "" && len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("repmgrd not running on %s in time (see %s/repmgrd-pg*.log): %s", strings.Join(missing, ", "), s.Dir, v.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// repmgrManager is the inventory's manager section of a repmgr sandbox.
func (s *Sandbox) repmgrManager() *cluster.Manager {
	m := &cluster.Manager{Kind: ManagerRepmgr, Database: repmgr.DefaultDatabase, Configs: map[string]string{}}
	for _, n := range s.Nodes {
		m.Configs[n.Name] = s.RepmgrConfig(n)
	}
	return m
}

// repmgrdPIDs returns the running repmgrd supervisors (repmgrd-pgN) and
// the repmgrd each runs (repmgrd-pgN-daemon), by name.
func (s *Sandbox) repmgrdPIDs() map[string]int {
	out := map[string]int{}
	for _, n := range s.Nodes {
		if pid := s.managedPID("repmgrd-"+n.Name, s.RepmgrConfig(n)); pid > 0 {
			out["repmgrd-"+n.Name] = pid
		}
		if pid := s.managedPID("repmgrd-"+n.Name+"-daemon", s.RepmgrConfig(n)); pid > 0 {
			out["repmgrd-"+n.Name+"-daemon"] = pid
		}
	}
	return out
}

// stopRepmgrd stops each repmgrd supervisor and its repmgrd (SIGTERM to
// the supervisor's process group, which holds nothing else), before the
// servers stop.
func (s *Sandbox) stopRepmgrd(ctx context.Context) error {
	pids := s.repmgrdPIDs()
	for name, pid := range pids {
		if strings.HasSuffix(name, "-daemon") {
			continue
		}
		_ = syscall.Kill(-pid, syscall.SIGTERM)
	}
	for name, pid := range pids {
		if strings.HasSuffix(name, "-daemon") {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	if err := waitGone(ctx, pids, 15*time.Second); err != nil {
		return fmt.Errorf("stop repmgrd: %w", err)
	}
	return nil
}
