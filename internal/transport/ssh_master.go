package transport

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// One ssh connection per host for a whole run: while a reuse period is
// open (ReuseConnections), the first command to a host opens a master
// connection (OpenSSH's ControlMaster) whose control socket lives in a
// private directory this process creates, and every later command to that
// host is one more session on it, with no new TCP handshake, key exchange
// or login. The user's ssh config (or the transport's ConfigFile) applies
// to the master as to any ssh: only the options that name the control
// socket are set on the command line.
//
// The master is a child of this process in a session of its own: it holds
// neither the terminal nor stdin, it dies with this process (the
// parent-death signal), and it is stopped with ssh -O exit when the last
// reuse period ends, which also removes the directory.

// maxControlPath bounds the control socket's path: a Unix socket's path
// is limited to about 100 bytes, and ssh creates it under a temporary name
// 17 bytes longer before renaming it.
const maxControlPath = 80

// masterExitWait bounds how long closing a master waits for it to exit
// before it is killed.
const masterExitWait = 2 * time.Second

// muxPool is the process's set of master connections.
type muxPool struct {
	mu      sync.Mutex
	periods int                // open reuse periods
	dir     string             // the private directory of the control sockets; "" before the first
	masters map[string]*master // by masterKey
	shells  map[string]*shell  // by shellKey
	next    int                // the name of the next control socket
}

var pool muxPool

// master is one master connection, or the attempt to open it.
type master struct {
	ready  chan struct{} // closed when the attempt has ended
	err    error         // why it could not be opened; set before ready is closed
	socket string
	args   []string // ssh's options and destination, for ssh -O
	cmd    *exec.Cmd
	exited chan struct{} // closed when the master process has exited
}

// ReuseConnections opens a period in which SSH executors keep one
// connection to each host and run every command over it, so a command costs
// one round trip instead of a login. It returns the function that ends the
// period; when the last open period ends, every master connection is
// stopped (ssh -O exit) and its control socket and directory removed. The
// engine opens one period per run; outside any period, each command logs
// in on its own, as plain ssh does.
func ReuseConnections() (end func()) {
	pool.mu.Lock()
	pool.periods++
	pool.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			pool.mu.Lock()
			pool.periods--
			if pool.periods > 0 {
				pool.mu.Unlock()
				return
			}
			masters, shells, dir := pool.masters, pool.shells, pool.dir
			pool.masters, pool.shells, pool.dir = nil, nil, ""
			pool.mu.Unlock()
			var wg sync.WaitGroup
			for _, sh := range shells {
				wg.Add(1)
				go func() { defer wg.Done(); sh.close() }()
			}
			wg.Wait()
			for _, m := range masters {
				wg.Add(1)
				go func() { defer wg.Done(); m.close() }()
			}
			wg.Wait()
			if dir != "" {
				_ = os.RemoveAll(dir)
			}
		})
	}
}

// masterKey names the connection an SSH makes: the same config, login
// user, host and port share one master.
func (s SSH) masterKey(user, host, port string) string {
	return strings.Join([]string{s.ConfigFile, user, host, port}, "\x00")
}

// controlSocket returns the control socket of a master connection to the
// host, opening the master first when none is open; "" when no reuse
// period is open. An error is the master's failure to connect or log in,
// which a command to the host would meet too.
func (s SSH) controlSocket(ctx context.Context, user, host, port string) (string, error) {
	key := s.masterKey(user, host, port)
	pool.mu.Lock()
	if pool.periods == 0 {
		pool.mu.Unlock()
		return "", nil
	}
	m := pool.masters[key]
	if m != nil {
		select {
		case <-m.ready:
			if m.err != nil || !m.alive() {
				// A failed attempt or a master that has gone away: try again.
				delete(pool.masters, key)
				m = nil
			}
		default:
		}
	}
	if m == nil {
		socket, err := pool.newSocket()
		if err != nil {
			pool.mu.Unlock()
			return "", err
		}
		m = &master{ready: make(chan struct{}), socket: socket}
		if pool.masters == nil {
			pool.masters = map[string]*master{}
		}
		pool.masters[key] = m
		pool.mu.Unlock()
		m.open(ctx, s, user, host, port)
	} else {
		pool.mu.Unlock()
	}
	select {
	case <-m.ready:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if m.err != nil {
		return "", m.err
	}
	return m.socket, nil
}

// newSocket returns the path of a new control socket in the pool's
// directory, creating the directory (mode 0700) when it does not exist.
// Callers hold mu.
func (p *muxPool) newSocket() (string, error) {
	if p.dir == "" {
		base := os.TempDir()
		if len(base) > maxControlPath-20 || strings.ContainsAny(base, "% ") {
			// ssh expands % in ControlPath, and a long TMPDIR would
			// leave no room for the socket's name.
			base = "/tmp"
		}
		dir, err := os.MkdirTemp(base, "swo-")
		if err != nil {
			return "", fmt.Errorf("ssh: directory for the control sockets: %w", err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			_ = os.RemoveAll(dir)
			return "", fmt.Errorf("ssh: directory for the control sockets: %w", err)
		}
		p.dir = dir
	}
	socket := filepath.Join(p.dir, strconv.Itoa(p.next))
	p.next++
	if len(socket) > maxControlPath {
		return "", fmt.Errorf("ssh: control socket path %s is longer than %d bytes", socket, maxControlPath)
	}
	return socket, nil
}

// masterAliveInterval and masterAliveCount make a master whose host has
// stopped answering (a cut link, a host gone) give up after about nine
// seconds instead of TCP's minutes: every session on it then fails at
// once, what it had queued for the host is dropped with it, and the next
// command opens a new master, which fails fast on ConnectTimeout while the
// host stays away. Without them a command sent into a cut link waits there
// and runs when the link comes back, possibly after the step that sent it
// gave up and a rollback acted (a stop landing after the rollback's start).
const (
	masterAliveInterval = 3 // seconds
	masterAliveCount    = 3
)

// masterArgs builds the master's command line: the options every ssh of
// this transport gets, then the control socket's, then -N (no command).
// ControlPersist=no keeps the master in the foreground, a child of this
// process, whatever the user's config says; so do the keepalives.
func (s SSH) masterArgs(user, host, port, socket string) []string {
	return append(s.controlArgs(port, socket), "-o", "ControlMaster=yes", "-o", "ControlPersist=no",
		"-o", "ServerAliveInterval="+strconv.Itoa(masterAliveInterval), "-o", "ServerAliveCountMax="+strconv.Itoa(masterAliveCount),
		"-N", destination(user, host))
}

// controlArgs are the options that reach the master at socket, as ssh -O
// needs them.
func (s SSH) controlArgs(port, socket string) []string {
	return append(s.options(port), "-o", "ControlPath="+socket)
}

// open starts the master and waits until its control socket exists, it
// exits, or the connection's time runs out; then it closes m.ready.
func (m *master) open(ctx context.Context, s SSH, user, host, port string) {
	defer close(m.ready)
	args := s.masterArgs(user, host, port, m.socket)
	m.args = append(s.controlArgs(port, m.socket), destination(user, host))
	stderr := newMarkedStream("\x1eswitchover:master:") // only for its last line
	cmd := exec.Command("ssh", args...)
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		m.err = fmt.Errorf("start ssh: %w", err)
		return
	}
	m.cmd, m.exited = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(m.exited)
	}()
	timeout := s.ConnectTimeout
	if timeout <= 0 {
		timeout = defaultConnectTimeout
	}
	// The login may take a while after the connection: a ProxyJump is
	// two of each.
	limit := time.NewTimer(3*timeout + 5*time.Second)
	defer limit.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(m.socket); err == nil {
			return
		}
		select {
		case <-m.exited:
			last := stderr.result().lastLine
			if last == "" {
				last = "no message from ssh"
			}
			m.err = fmt.Errorf("%s: %w: %s", s.Where(), ErrConnection, last)
			return
		case <-ctx.Done():
			m.kill()
			m.err = fmt.Errorf("%s: opening the connection cut off: %w", s.Where(), ctx.Err())
			return
		case <-limit.C:
			m.kill()
			m.err = fmt.Errorf("%s: %w: no login within %s", s.Where(), ErrConnection, 3*timeout+5*time.Second)
			return
		case <-tick.C:
		}
	}
}

// alive reports whether the master still runs with its socket in place.
func (m *master) alive() bool {
	if m.exited == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
	}
	_, err := os.Stat(m.socket)
	return err == nil
}

// kill stops the master process at once and waits for it a moment.
func (m *master) kill() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	select {
	case <-m.exited:
	case <-time.After(masterExitWait):
	}
}

// close asks the master to exit (ssh -O exit), as OpenSSH means it to be
// stopped, and kills it if it has not within masterExitWait.
func (m *master) close() {
	<-m.ready
	if m.cmd == nil {
		return
	}
	select {
	case <-m.exited:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), masterExitWait)
	defer cancel()
	args := append([]string{"-O", "exit"}, m.args...)
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	_ = cmd.Run()
	select {
	case <-m.exited:
	case <-ctx.Done():
		m.kill()
	}
	_ = os.Remove(m.socket)
}

// muxRefused reports whether a command that never started failed because
// the shared connection refused one more session, in which case it can be
// run again on a connection of its own: sshd allows a number of sessions
// per connection (MaxSessions, 10 by default), and refuses more at once.
func muxRefused(lastLine string) bool {
	l := strings.ToLower(lastLine)
	return strings.Contains(l, "mux_client") || strings.Contains(l, "session open refused") ||
		strings.Contains(l, "session request failed")
}
