// Package sshtest starts a private sshd on 127.0.0.1 for a test, with an
// ssh client config that reaches it, so that tests of the ssh transport and
// of the checks that run over it use a real sshd and a real ssh client.
package sshtest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/integration"
)

// Buffer collects what sshd logs; it is safe for concurrent use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Host returns the ssh address and config file of the server's Host test,
// for an inventory or an executor.
func (s *Server) Host() (address, configFile string) { return "test", s.ConfigFile }

// Closed returns an address of Host test on a port nobody listens on.
func (s *Server) Closed() string { return "test:1" }

// Server is a real sshd on 127.0.0.1, started for one test, and an ssh
// client config for reaching it:
//   - Host test logs in as the current user with an authorised key;
//   - Host wrongkey offers a key sshd does not know;
//   - Host unknownhost does not know sshd's host key and will not learn it.
type Server struct {
	// ConfigFile is the ssh client config (ssh -F) that reaches it.
	ConfigFile string
	// Port is where sshd listens on 127.0.0.1.
	Port int
	// LoginUser is who Host test logs in as: the current user.
	LoginUser string
	// Log is what sshd has logged so far (one "Accepted publickey" line per login).
	Log *Buffer
}

// skipOrFailOutsideCI skips a test whose environment cannot run it, but
// fails it under CI, where the environment is meant to have what it needs.
func skipOrFailOutsideCI(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format+" (CI is unset, so this is a skip; under CI it fails)", args...)
}

// Start starts sshd for t with extra lines in its config and stops it
// when t ends. It skips t (or, under CI, fails it) when sshd cannot run here.
func Start(t *testing.T, extraConfig ...string) *Server {
	t.Helper()
	integration.Need(t)
	sshd := "/usr/sbin/sshd"
	for _, tool := range []string{sshd, "ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFailOutsideCI(t, "cannot test ssh without %s: %v", tool, err)
		}
	}
	me, err := user.Current()
	if err != nil {
		skipOrFailOutsideCI(t, "cannot tell the current user: %v", err)
	}
	if os.Geteuid() == 0 {
		// sshd running as root wants its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			skipOrFailOutsideCI(t, "cannot create /run/sshd for sshd: %v", err)
		}
	}
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	for _, key := range []string{"host_key", "client_key", "wrong_key"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", path(key)).CombinedOutput(); err != nil {
			skipOrFailOutsideCI(t, "ssh-keygen %s: %v: %s", key, err, out)
		}
	}
	pub, err := os.ReadFile(path("client_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path("authorized_keys"), string(pub))
	port := freePort(t)
	// The login shell reads no startup file: bash, as Debian builds it,
	// reads ~/.bashrc for a command sshd starts unless it is a nested shell
	// (SHLVL set), and a slow one (a pyenv init) would make every login
	// the tests time take a second more. sshd takes the first SetEnv line
	// only, so SHLVL joins a caller's.
	extraConfig = append([]string(nil), extraConfig...)
	setEnv := false
	for i, line := range extraConfig {
		if f := strings.Fields(line); len(f) > 0 && strings.EqualFold(f[0], "SetEnv") {
			extraConfig[i], setEnv = line+" SHLVL=1", true
			break
		}
	}
	if !setEnv {
		extraConfig = append(extraConfig, "SetEnv SHLVL=1")
	}
	sshdConfig := fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s
AuthorizedKeysFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
PidFile %s
StrictModes no
MaxStartups 100
%s
`, port, path("host_key"), path("authorized_keys"), path("sshd.pid"), strings.Join(extraConfig, "\n"))
	writeFile(t, path("sshd_config"), sshdConfig)
	clientConfig := fmt.Sprintf(`Host test 127.0.0.1
  IdentityFile %[2]s
Host test wrongkey unknownhost
  HostName 127.0.0.1
  Port %[1]d
  User %[3]s
Host wrongkey
  IdentityFile %[4]s
Host unknownhost
  IdentityFile %[2]s
  UserKnownHostsFile %[5]s
  StrictHostKeyChecking yes
Host *
  IdentitiesOnly yes
  UserKnownHostsFile %[6]s
  StrictHostKeyChecking accept-new
  ControlMaster no
`, port, path("client_key"), me.Username, path("wrong_key"), path("empty_known_hosts"), path("known_hosts"))
	writeFile(t, path("ssh_config"), clientConfig)

	if out, err := exec.Command(sshd, "-t", "-f", path("sshd_config")).CombinedOutput(); err != nil {
		skipOrFailOutsideCI(t, "sshd rejects its test config: %v: %s", err, out)
	}
	log := &Buffer{}
	cmd := exec.Command(sshd, "-D", "-e", "-f", path("sshd_config"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		skipOrFailOutsideCI(t, "start sshd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(2 * time.Second):
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("sshd log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			skipOrFailOutsideCI(t, "sshd exited at start (%v): %s", err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			skipOrFailOutsideCI(t, "sshd does not accept connections on port %d after 5s: %v; its log: %s", port, err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A first login with plain ssh, which also records the host key. If it
	// fails, the machine does not let this user in (a locked account, say),
	// and the transport cannot be tested here.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ssh", "-F", path("ssh_config"), "-o", "BatchMode=yes", "test", "true").CombinedOutput(); err != nil {
		skipOrFailOutsideCI(t, "cannot log in to the test sshd as %s with plain ssh: %v: %s; sshd log: %s", me.Username, err, out, log.String())
	}
	return &Server{ConfigFile: path("ssh_config"), Port: port, LoginUser: me.Username, Log: log}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago,
// below the kernel's ephemeral range, where other processes' outgoing
// sockets cannot take it before sshd binds it.
func freePort(t *testing.T) int {
	t.Helper()
	for try := 0; try < 100; try++ {
		p := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	skipOrFailOutsideCI(t, "no free port on 127.0.0.1 between 20000 and 32000")
	return 0
}
