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
		"# Written by switchover sandbox up: a rehearsal cluster, trust on " + s.trustedNet() + " only.",
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
		"ssh_options=" + q(s.sshOptions()),
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
	upSSH := s.upRepmgrSSH
	if s.Net != nil {
		upSSH = s.upRepmgrHostsSSH
	}
	if err := upSSH(ctx, log); err != nil {
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
		// On its node's host: in a multi-host sandbox, that host's namespace.
		if err := s.detachOn(ctx, n.Name, "repmgrd-"+n.Name, loop); err != nil {
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
	if pid := s.managedPID("sshd", filepath.Join(s.sshDir(), "sshd_config")); pid > 0 {
		out["sshd"] = pid
	}
	return out
}

// stopRepmgrd stops each repmgrd supervisor and its repmgrd (SIGTERM to
// the supervisor's process group, which holds nothing else), before the
// servers stop.
func (s *Sandbox) stopRepmgrd(ctx context.Context) error {
	pids := s.repmgrdPIDs()
	for name, pid := range pids {
		if strings.HasSuffix(name, "-daemon") || name == "sshd" {
			continue
		}
		_ = syscall.Kill(-pid, syscall.SIGTERM)
	}
	for name, pid := range pids {
		if strings.HasSuffix(name, "-daemon") || name == "sshd" {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	if err := waitGone(ctx, pids, 15*time.Second); err != nil {
		return fmt.Errorf("stop repmgrd: %w", err)
	}
	return nil
}

// repmgr's own switchover (`repmgr standby switchover`) reaches the old
// primary's host over ssh, as the servers' user, to stop it and rejoin it.
// With every node on 127.0.0.1 the sandbox runs one sshd for that, as the
// servers' user on a port of its own (an sshd that is not root can only let
// its own user in), with a key made for the sandbox; each repmgr.conf's
// ssh_options point ssh at it. Without an sshd on the machine the sandbox
// comes up without it, and repmgr's own switchover cannot run there.

func (s *Sandbox) sshDir() string { return filepath.Join(s.Dir, "ssh") }

// repmgrSSHPort is the port of the sandbox's sshd, above the nodes'.
func (s *Sandbox) repmgrSSHPort() int { return s.PortBase + len(s.Nodes) + 1 }

// RepmgrSSH reports whether repmgr's own switchover can reach the nodes
// over ssh in this sandbox.
func (s *Sandbox) RepmgrSSH() bool { return s.SSHPort > 0 }

func (s *Sandbox) sshOptions() string {
	if s.Net != nil {
		return fmt.Sprintf("-q -F %s -o ConnectTimeout=10", filepath.Join(s.repmgrSSHDir(), "ssh_config"))
	}
	return fmt.Sprintf("-q -F %s -o ConnectTimeout=10", filepath.Join(s.sshDir(), "ssh_config"))
}

// In a multi-host sandbox each host runs an sshd of its own already, as
// root, for the inventory's root logins, and only root may log in (the
// servers' user's account is usually locked, which an sshd without PAM
// refuses whatever the key). repmgr's own switchover logs in to the other
// nodes' hosts with a key of the servers' user that root's authorized
// keys restrict to one forced command: run what was asked as the servers'
// user, nothing else (no pty, no forwarding). repmgr's ssh_options point
// at a client configuration that user can read, beside a copy of the
// hosts' known keys, checked strictly.

// repmgrSSHDir holds the servers' user's key and ssh configuration for
// repmgr's own switchover in a multi-host sandbox (DIR/ssh is root's).
func (s *Sandbox) repmgrSSHDir() string { return filepath.Join(s.Dir, "repmgr-ssh") }

// upRepmgrHostsSSH makes the servers' user's key, ssh configuration and
// known hosts for repmgr's own switchover in a multi-host sandbox, and
// checks that each node's host reaches every other one over ssh as that
// user, the way repmgr will.
func (s *Sandbox) upRepmgrHostsSSH(ctx context.Context, log func(string, ...any)) error {
	if s.who() == "root" {
		log("servers run as root: repmgr's own switchover (which needs ssh as the servers' user) cannot run in this sandbox")
		return nil
	}
	dir := s.repmgrSSHDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	out, err := exec.CommandContext(cctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "switchover sandbox repmgr "+s.Net.Prefix, "-f", path("client_key")).CombinedOutput()
	cancel()
	if err != nil {
		return fmt.Errorf("ssh-keygen %s: %v: %s", path("client_key"), err, strings.TrimSpace(string(out)))
	}
	pub, err := os.ReadFile(path("client_key.pub"))
	if err != nil {
		return err
	}
	known, err := os.ReadFile(s.Net.KnownHosts)
	if err != nil {
		return err
	}
	// Root's authorized keys: the key may only run a command as the
	// servers' user. sshd runs the forced command with root's shell and
	// what the client asked for in SSH_ORIGINAL_COMMAND.
	forced := fmt.Sprintf(`restrict,command="cd / && exec runuser -u %s -- /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"" %s`, s.who(), strings.TrimSpace(string(pub)))
	if err := appendFile(filepath.Join(s.Net.sshDir(), "authorized_keys"), forced+"\n"); err != nil {
		return err
	}
	files := map[string]string{
		"known_hosts": string(known),
		"ssh_config": fmt.Sprintf("# switchover sandbox: repmgr's ssh between the nodes' hosts, as %s there\nHost *\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n"+
			"  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  CheckHostIP no\n  BatchMode yes\n  ControlMaster no\n",
			s.who(), path("client_key"), path("known_hosts")),
	}
	for name, text := range files {
		if err := os.WriteFile(path(name), []byte(text), 0o600); err != nil {
			return err
		}
	}
	for _, name := range []string{"", "client_key", "client_key.pub", "known_hosts", "ssh_config"} {
		if err := s.chown(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	// repmgr checks ssh first thing: prove each host reaches the others.
	for _, from := range s.Nodes {
		for _, to := range s.Nodes {
			if from.Name == to.Name {
				continue
			}
			what := fmt.Sprintf("ssh from %s to %s as %s", from.Name, to.Name, s.who())
			if _, err := s.sh(ctx, from.Name, what, fmt.Sprintf("ssh %s %s true", s.sshOptions(), s.Addr(to.Name))); err != nil {
				return err
			}
		}
	}
	log("each node's host reaches the others over ssh as %s, for repmgr's own switchover (ssh_options -F %s)", s.who(), path("ssh_config"))
	s.SSHPort = 22
	return s.save()
}

// upRepmgrSSH makes the keys and configuration and starts the sshd.
func (s *Sandbox) upRepmgrSSH(ctx context.Context, log func(string, ...any)) error {
	if _, err := os.Stat(sshdPath); err != nil {
		log("no %s: repmgr's own switchover (which needs ssh) cannot run in this sandbox", sshdPath)
		return nil
	}
	dir := s.sshDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	for _, key := range []string{"host_key", "client_key"} {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		out, err := exec.CommandContext(cctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "switchover sandbox "+key, "-f", path(key)).CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("ssh-keygen %s: %v: %s", path(key), err, strings.TrimSpace(string(out)))
		}
	}
	pub, err := os.ReadFile(path("client_key.pub"))
	if err != nil {
		return err
	}
	port := s.repmgrSSHPort()
	files := map[string]string{
		"authorized_keys": string(pub),
		"sshd_config": fmt.Sprintf("# switchover sandbox: repmgr's ssh between the nodes, for the servers' user only\nListenAddress 127.0.0.1\nPort %d\nHostKey %s\nAuthorizedKeysFile %s\n"+
			"PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile %s\nMaxStartups 100\n",
			port, path("host_key"), path("authorized_keys"), path("sshd.pid")),
		"ssh_config": fmt.Sprintf("# switchover sandbox: repmgr's ssh to the nodes, all on 127.0.0.1\nHost 127.0.0.1\n  Port %d\n  IdentityFile %s\n  IdentitiesOnly yes\n"+
			"  UserKnownHostsFile %s\n  StrictHostKeyChecking accept-new\n  ControlMaster no\n", port, path("client_key"), path("known_hosts")),
	}
	for name, text := range files {
		if err := os.WriteFile(path(name), []byte(text), 0o600); err != nil {
			return err
		}
	}
	for _, name := range []string{"", "host_key", "host_key.pub", "client_key", "client_key.pub", "authorized_keys", "sshd_config", "ssh_config"} {
		if err := s.chown(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	log("sshd on 127.0.0.1:%d for repmgr's own switchover (as %s)", port, s.who())
	if err := s.detach(ctx, "sshd", fmt.Sprintf("%s -D -e -f %s", sshdPath, transport.ShellQuote(path("sshd_config")))); err != nil {
		return err
	}
	s.SSHPort = port
	// repmgr checks ssh first thing: prove it works, host key accepted.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := s.sh(ctx, "", "ssh to the sandbox's sshd", fmt.Sprintf("ssh %s -o BatchMode=yes 127.0.0.1 true", s.sshOptions()))
		if err == nil {
			return s.save()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w (see %s)", err, filepath.Join(s.Dir, "sshd.log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
