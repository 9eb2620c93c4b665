package transport

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestSSHMasterArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ssh  SSH
		want string
	}{
		{name: "defaults", ssh: SSH{Address: "db1"},
			want: "-o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR -T -o ControlPath=/tmp/swo-1/0 -o ControlMaster=yes -o ControlPersist=no -o ServerAliveInterval=3 -o ServerAliveCountMax=3 -N db1"},
		// -F and the destination are the user's: the master reads the
		// same config (ProxyJump and all) as any ssh of the transport.
		{name: "config, user and port kept", ssh: SSH{Address: "ssh://postgres@db1:2222", ConfigFile: "/etc/switchover/ssh_config", ConnectTimeout: 2 * time.Second},
			want: "-o BatchMode=yes -o ConnectTimeout=2 -o LogLevel=ERROR -T -F /etc/switchover/ssh_config -p 2222 -o ControlPath=/tmp/swo-1/0 -o ControlMaster=yes -o ControlPersist=no -o ServerAliveInterval=3 -o ServerAliveCountMax=3 -N postgres@db1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user, host, port, err := ParseSSHAddress(tt.ssh.Address)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(tt.ssh.masterArgs(user, host, port, "/tmp/swo-1/0"), " "); got != tt.want {
				t.Errorf("masterArgs = %s\nwant         %s", got, tt.want)
			}
		})
	}
}

// masterOf returns the master connection open for s, or nil.
func masterOf(t *testing.T, s SSH) *master {
	t.Helper()
	user, host, port, err := ParseSSHAddress(s.Address)
	if err != nil {
		t.Fatal(err)
	}
	pool.mu.Lock()
	defer pool.mu.Unlock()
	return pool.masters[s.masterKey(user, host, port)]
}

// sshdSessions counts the sessions sshd has logged for a user it accepted
// so far: one line per login ("Accepted publickey for ...").
func sshdLogins(s *sshServer) int {
	return strings.Count(s.Log.String(), "Accepted publickey for")
}

// TestSSHReuse runs commands within a reuse period: the first opens one
// master connection (sshd sees one more login), the later ones are sessions
// on it (no login), and ending the period stops the master and removes its
// socket and directory.
func TestSSHReuse(t *testing.T) {
	server := startSSHD(t)
	end := ReuseConnections()
	defer end()
	ssh := sshTo(server)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before := sshdLogins(server)
	var took []time.Duration
	for i := 0; i < 3; i++ {
		start := time.Now()
		out, err := ssh.Run(ctx, "echo hello")
		took = append(took, time.Since(start))
		if err != nil || out.Stdout != "hello\n" || out.ExitCode != 0 {
			t.Fatalf("Run %d = %+v, %v; want hello, exit code 0", i+1, out, err)
		}
	}
	t.Logf("over ssh: first command %s (login and master), then %s and %s", took[0], took[1], took[2])
	m := masterOf(t, ssh)
	if m == nil || !m.alive() {
		t.Fatalf("no master connection runs after three commands")
	}
	if got := sshdLogins(server) - before; got != 1 {
		t.Errorf("sshd logged %d logins for three commands, want 1 (the master)", got)
	}
	check := exec.CommandContext(ctx, "ssh", append([]string{"-O", "check"}, m.args...)...)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("ssh -O check: %v: %s", err, out)
	}
	info, err := os.Stat(filepath.Dir(m.socket))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o700 {
		t.Errorf("the control socket's directory has mode %v, want 0700", info.Mode().Perm())
	}
	if len(m.socket) > maxControlPath {
		t.Errorf("control socket path %q has %d bytes, more than %d", m.socket, len(m.socket), maxControlPath)
	}

	// A nested period (a second run in the same process) keeps it open.
	endNested := ReuseConnections()
	endNested()
	if !m.alive() {
		t.Fatalf("the master stopped when a nested period ended")
	}
	end()
	select {
	case <-m.exited:
	case <-time.After(5 * time.Second):
		t.Fatalf("the master still runs 5s after the last period ended")
	}
	if _, err := os.Stat(m.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the control socket %s is still there (%v)", m.socket, err)
	}
	if _, err := os.Stat(filepath.Dir(m.socket)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the control socket's directory is still there (%v)", err)
	}
	// Outside any period, a command logs in on its own again.
	before = sshdLogins(server)
	if out, err := ssh.Run(ctx, "echo again"); err != nil || out.Stdout != "again\n" {
		t.Fatalf("Run after the period = %+v, %v", out, err)
	}
	if got := sshdLogins(server) - before; got != 1 {
		t.Errorf("sshd logged %d logins for one command outside a period, want 1", got)
	}
}

// TestSSHReuseManySessions runs more commands at once on one host than
// sshd allows sessions on a connection: those refused by the shared
// connection log in on their own, and every command runs once.
func TestSSHReuseManySessions(t *testing.T) {
	server := startSSHD(t, "MaxSessions 2")
	end := ReuseConnections()
	defer end()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := sshTo(server).Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := sshTo(server).Run(ctx, "sleep 0.3; echo ran")
			if err == nil && out.Stdout != "ran\n" {
				err = errors.New("printed " + out.Stdout)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// TestSSHReuseRunInput: input reaches the command over the shared
// connection, byte for byte, and a command the shared connection refuses
// (more at once than sshd allows sessions) gets its input whole on its own
// login.
func TestSSHReuseRunInput(t *testing.T) {
	server := startSSHD(t, "MaxSessions 2")
	end := ReuseConnections()
	defer end()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ssh := sshTo(server)
	for _, tt := range inputCases() {
		got, err := ssh.RunInput(ctx, tt.command, strings.NewReader(tt.input))
		if err != nil {
			t.Fatalf("%s: RunInput: %v", tt.name, err)
		}
		got.Elapsed = 0
		if got != tt.want {
			t.Errorf("%s: RunInput(%q) = %+v, want %+v", tt.name, tt.command, got, tt.want)
		}
	}
	if m := masterOf(t, ssh); m == nil || !m.alive() {
		t.Fatalf("no master connection runs after the commands")
	}
	before := sshdLogins(server)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			input := fmt.Sprintf("command %d's input\n", i)
			out, err := ssh.RunInput(ctx, "sleep 0.3; cat", strings.NewReader(input))
			if err == nil && out.Stdout != input {
				err = fmt.Errorf("command %d printed %q, want its input %q", i, out.Stdout, input)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("RunInput: %v", err)
		}
	}
	if sshdLogins(server) == before {
		t.Errorf("every command ran over the shared connection: none was refused, so the input of a refused one was not tried")
	}
}

// TestSSHReuseConnectionFailed checks that a master that cannot connect
// fails the command as plain ssh does, naming ssh's reason, and leaves no
// master behind.
func TestSSHReuseConnectionFailed(t *testing.T) {
	server := startSSHD(t)
	end := ReuseConnections()
	defer end()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ssh := SSH{Address: "test:1", ConfigFile: server.ConfigFile}
	out, err := ssh.Run(ctx, "echo ran")
	if !errors.Is(err, ErrConnection) || !strings.Contains(err.Error(), "Connection refused") {
		t.Fatalf("Run = %+v, %v; want an error wrapping ErrConnection that says Connection refused", out, err)
	}
	if m := masterOf(t, ssh); m != nil && m.alive() {
		t.Errorf("a master runs for a host that refused the connection")
	}
}

// TestSSHReuseCutOff checks a cut-off over the shared connection: Run
// returns at its deadline, and the command and what it started stop on the
// host, as without a master.
func TestSSHReuseCutOff(t *testing.T) {
	server := startSSHD(t)
	end := ReuseConnections()
	defer end()
	warm, cancelWarm := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancelWarm()
	if _, err := sshTo(server).Run(warm, "true"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bgFile, fgFile := filepath.Join(dir, "background.pid"), filepath.Join(dir, "foreground.pid")
	command := fmt.Sprintf("sleep 30 & echo $! > %s; echo $$ > %s; echo started; exec sleep 30", bgFile, fgFile)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Cut off once the command has started, however long that takes
		// on a loaded machine.
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(fgFile); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	out, err := sshTo(server).Run(ctx, command)
	if !errors.Is(err, context.Canceled) || out.ExitCode != -1 {
		t.Fatalf("Run = %+v, %v; want it cut off with exit code -1", out, err)
	}
	cutAt := time.Now()
	for _, file := range []string{bgFile, fgFile} {
		pid := readPID(t, file)
		deadline := time.Now().Add(5 * time.Second)
		for alive(pid) {
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("remote process %d (%s) still runs 5s after the cut-off over the shared connection", pid, filepath.Base(file))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("the remote processes were gone %s after the cut-off returned", time.Since(cutAt).Round(time.Millisecond))
	// The master outlives a cut-off session: the next command reuses it.
	if out, err := sshTo(server).Run(warm, "echo still"); err != nil || out.Stdout != "still\n" {
		t.Errorf("Run after the cut-off = %+v, %v", out, err)
	}
}
