package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrConnection marks a Run over ssh that never reached the remote shell:
// the host was unreachable, refused the connection, or the login failed.
// Nothing ran on the host.
var ErrConnection = errors.New("connection failed")

// stdoutTap is the context key of a writer that also gets the command's
// standard output as it reaches this side: a test sees from it what Run
// has received before it cuts the command off.
type stdoutTap struct{}

// defaultConnectTimeout is how long ssh may take to connect when
// SSH.ConnectTimeout is not set.
const defaultConnectTimeout = 5 * time.Second

// SSH runs commands on a remote host through the system's ssh client, so the
// user's ssh config, agent and known_hosts apply.
//
// The command runs with /bin/sh -c on the host, as with Local, inside a small
// wrapper script that reports the command's exit status, so that a command
// exiting 255 is not mistaken for ssh failing, and a daemon the command
// leaves holding its output does not keep Run waiting. The wrapper also
// kills the command and everything it started when the connection goes
// away, so a cut-off Run does not leave the command running on the host.
// The login shell of the remote user must understand POSIX single quotes
// (sh, bash, dash, ksh, zsh do; csh and fish do not).
type SSH struct {
	// Address is [user@]host[:port], or ssh://[user@]host[:port]. Host may
	// be an alias from the ssh config. Without a user or port, ssh's config
	// and defaults decide.
	Address string
	// ConfigFile, when set, is passed as ssh -F and replaces the user's
	// and the system's ssh config.
	ConfigFile string
	// ConnectTimeout bounds the connection (ssh -o ConnectTimeout, in whole
	// seconds, rounded up); zero means 5s.
	ConnectTimeout time.Duration
	// User, when set and not the user ssh logs in as, is who the command
	// runs as, through sudo -n -u User. sudo must let the login user do
	// that without a password; when it does not, Run fails and says why.
	User string
}

var _ InputRunner = SSH{}

// Where implements Executor: "ssh postgres@db1:2222", with " as USER" when
// the command runs as another user.
func (s SSH) Where() string {
	user, host, port, err := ParseSSHAddress(s.Address)
	if err != nil {
		return "ssh " + withoutPassword(s.Address)
	}
	where := host
	if port != "" {
		where = net.JoinHostPort(host, port)
	}
	if user != "" {
		where = user + "@" + where
	}
	if s.User != "" && s.User != user {
		where += " as " + s.User
	}
	return "ssh " + where
}

// Run implements Executor. A remote command that exits non-zero is an
// Output with its code; one killed by a signal reports 128+n, as a shell
// does. Run returns an error wrapping ErrConnection when ssh could not
// connect or log in, an error naming sudo's complaint when the command could
// not be run as User, and an error wrapping ctx.Err() when ctx ends first:
// then ssh is killed with its process group, and the wrapper on the host
// kills the command when it sees the connection close.
func (s SSH) Run(ctx context.Context, command string) (Output, error) {
	return s.runInput(ctx, command, nil)
}

// RunInput implements InputRunner. Input goes through ssh's standard
// input, ahead of the connection's liveness (see wrapperScript): the
// wrapper on the host reads all of it before it starts the command, and
// runs nothing when the connection ends before it has. Through sudo,
// standard input reaches the command as it is (sudo -n asks for no
// password, and ssh -T gives it no terminal to read one from).
func (s SSH) RunInput(ctx context.Context, command string, input io.Reader) (Output, error) {
	data, err := readInput(input)
	if err != nil {
		return Output{}, err
	}
	return s.runInput(ctx, command, data)
}

// runInput runs command with input as its standard input; empty input is
// an empty standard input, as with Run.
func (s SSH) runInput(ctx context.Context, command string, input []byte) (Output, error) {
	user, host, port, err := ParseSSHAddress(s.Address)
	if err != nil {
		return Output{}, err
	}
	socket, err := s.controlSocket(ctx, user, host, port)
	if err != nil {
		return Output{}, err
	}
	if _, tapped := ctx.Value(stdoutTap{}).(io.Writer); socket != "" && input == nil && !tapped {
		asUser := s.User
		if asUser == user {
			asUser = ""
		}
		if sh := s.shellFor(ctx, shellKey(s.masterKey(user, host, port), asUser), user, host, port, socket, asUser); sh != nil {
			if out, taken, err := sh.run(ctx, s.Where(), command); taken {
				return out, err
			}
		}
	}
	out, refused, err := s.run(ctx, user, host, port, socket, command, input)
	if refused && socket != "" {
		// The shared connection has as many sessions open as sshd allows:
		// this one, which never started, logs in on its own.
		out, _, err = s.run(ctx, user, host, port, "none", command, input)
	}
	return out, err
}

// run runs command once with input as its standard input, over the master
// connection at socket when it is not "". refused reports that the master
// refused the session before anything ran on the host.
func (s SSH) run(ctx context.Context, user, host, port, socket, command string, input []byte) (_ Output, refused bool, _ error) {
	asUser := s.User
	if asUser == user {
		asUser = ""
	}
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce) // never fails on Linux
	stderr := newMarkedStream("\x1eswitchover:" + hex.EncodeToString(nonce) + ":")
	remote := "/bin/sh -c " + ShellQuote(wrapperScript(stderr.prefix, asUser, len(input))) + " /bin/sh " + ShellQuote(command)

	cmd := exec.Command("ssh", s.args(user, host, port, socket, remote)...)
	var stdout capped
	stdout.limit = maxOutput
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if tap, ok := ctx.Value(stdoutTap{}).(io.Writer); ok {
		cmd.Stdout = io.MultiWriter(&stdout, tap)
	}
	// ssh's stdin carries the command's input, then stays open for the
	// whole run: the wrapper on the host takes its end as the sign that
	// this side is gone.
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return Output{}, false, fmt.Errorf("ssh: %w", err)
	}
	defer stdinW.Close()
	cmd.Stdin = stdinR
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = pipeGrace
	start := time.Now()
	err = cmd.Start()
	stdinR.Close()
	if err != nil {
		return Output{}, false, fmt.Errorf("start ssh: %w", err)
	}
	if len(input) > 0 {
		// The write blocks while the host has not read what went
		// before; closing stdinW on return ends it.
		go func() { _, _ = stdinW.Write(input) }()
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		// The end of ssh's stdin is the host's sign that this side is
		// gone, and it must not wait for ssh: over a shared connection
		// the master holds that stdin (the client passed it on), so the
		// killed client's end is no sign; this one is.
		_ = stdinW.Close()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}
	exited := stderr.exited
	var grace <-chan time.Time
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-exited:
			// The remote shell has exited. Give ssh the same grace as
			// Local gives a daemon that still holds the output.
			exited, grace = nil, time.After(pipeGrace)
		case <-grace:
			stop()
			break wait
		case <-ctx.Done():
			stop()
			out := Output{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: -1, Elapsed: time.Since(start)}
			return out, false, fmt.Errorf("command cut off after %s: %w", out.Elapsed.Round(time.Millisecond), ctx.Err())
		}
	}
	out := Output{Stdout: stdout.String(), Stderr: stderr.String(), Elapsed: time.Since(start)}
	m := stderr.result()
	if m.exited {
		out.ExitCode = m.code
		return out, false, nil
	}
	out.ExitCode = -1
	if m.input != "" {
		return out, false, fmt.Errorf("%s: the command's input did not all reach the host (%s of %d bytes); the command did not run", s.Where(), m.input, len(input))
	}
	if m.sudo != "" {
		return out, false, fmt.Errorf("%s: cannot run the command as %s: %s", s.Where(), s.User, m.sudo)
	}
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		return out, false, fmt.Errorf("%s: %w", s.Where(), err)
	}
	last := m.lastLine
	if asUser != "" && m.started && !m.switched && code != 255 {
		// sudo ran and exited without running the shell as asUser: what
		// it said last is why.
		if last == "" {
			last = fmt.Sprintf("sudo exited %d", code)
		}
		return out, false, fmt.Errorf("%s: cannot run the command as %s: %s", s.Where(), s.User, last)
	}
	if last == "" {
		last = "no message from ssh"
	}
	switch {
	case !m.started && code == 255:
		return out, socket != "" && socket != "none" && muxRefused(last), fmt.Errorf("%s: %w: %s", s.Where(), ErrConnection, last)
	case !m.started:
		return out, false, fmt.Errorf("%s: the login shell did not run the command (exit code %d): %s", s.Where(), code, last)
	default:
		return out, false, fmt.Errorf("%s: the session ended before the command finished (ssh exit code %d): %s", s.Where(), code, last)
	}
}

// args builds ssh's command line. BatchMode makes ssh fail instead of asking
// for a password or passphrase; -T keeps stderr apart from stdout even when
// the config asks for a terminal; LogLevel=ERROR keeps ssh's warnings, such
// as a host key being added to known_hosts, out of the command's stderr.
// With a control socket, the command runs as a session of the master
// connection listening there (ControlMaster=no: this ssh never becomes a
// master itself); without one, ssh does as the user's config says.
func (s SSH) args(user, host, port, socket, remote string) []string {
	args := s.options(port)
	if socket != "" {
		args = append(args, "-o", "ControlMaster=no", "-o", "ControlPath="+socket)
	}
	return append(args, destination(user, host), "--", remote)
}

// options are the options every ssh of this transport gets, the master
// included.
func (s SSH) options(port string) []string {
	timeout := s.ConnectTimeout
	if timeout <= 0 {
		timeout = defaultConnectTimeout
	}
	seconds := int((timeout + time.Second - 1) / time.Second)
	args := []string{"-o", "BatchMode=yes", "-o", "ConnectTimeout=" + strconv.Itoa(seconds), "-o", "LogLevel=ERROR", "-T"}
	if s.ConfigFile != "" {
		args = append(args, "-F", s.ConfigFile)
	}
	if port != "" {
		args = append(args, "-p", port)
	}
	return args
}

// destination is ssh's [user@]host argument.
func destination(user, host string) string {
	if user != "" {
		return user + "@" + host
	}
	return host
}

// ParseSSHAddress splits [user@]host[:port] or ssh://[user@]host[:port] into
// its parts; user and port are empty when not given. An IPv6 host is written
// in brackets when a port follows ([::1]:2222); it is returned without them.
func ParseSSHAddress(s string) (user, host, port string, err error) {
	bad := func(why string) (string, string, string, error) {
		return "", "", "", fmt.Errorf("bad ssh address %q: %s", withoutPassword(s), why)
	}
	if strings.TrimSpace(s) == "" {
		return bad("empty")
	}
	if strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return bad("contains a space or control character")
	}
	rest := s
	if after, ok := strings.CutPrefix(rest, "ssh://"); ok {
		rest = after
		if strings.ContainsAny(rest, "/?#") {
			return bad("want ssh://[user@]host[:port], with nothing after the port")
		}
	} else if strings.Contains(rest, "://") {
		return bad("the only scheme allowed is ssh://")
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		user, rest = rest[:i], rest[i+1:]
		switch {
		case user == "":
			return bad("empty user before @")
		case strings.Contains(user, "@"):
			return bad("more than one @")
		case strings.HasPrefix(user, "-"):
			return bad("user starts with -")
		case strings.Contains(user, ":"):
			return bad("a password has no place in it; ssh logs in with keys")
		}
	}
	switch {
	case strings.HasPrefix(rest, "["):
		end := strings.Index(rest, "]")
		if end < 0 {
			return bad("missing ] after an IPv6 address")
		}
		host, rest = rest[1:end], rest[end+1:]
		switch {
		case rest == "":
		case strings.HasPrefix(rest, ":"):
			port = rest[1:]
			if port == "" {
				return bad("empty port after :")
			}
		default:
			return bad(fmt.Sprintf("unexpected %q after ]", rest))
		}
	case strings.Count(rest, ":") == 1:
		host, port, _ = strings.Cut(rest, ":")
		if port == "" {
			return bad("empty port after :")
		}
	default:
		// No colon, or several: a bare IPv6 address, which cannot
		// carry a port.
		host = rest
	}
	if host == "" {
		return bad("empty host")
	}
	if strings.HasPrefix(host, "-") {
		return bad("host starts with -")
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '+' {
			return bad(fmt.Sprintf("port %q is not a number from 1 to 65535", port))
		}
	}
	return user, host, port, nil
}

// withoutPassword returns address with what follows a colon in its user
// part, a password given by mistake, replaced by xxxxx, for messages.
func withoutPassword(address string) string {
	scheme, rest := "", address
	if after, ok := strings.CutPrefix(rest, "ssh://"); ok {
		scheme, rest = "ssh://", after
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return address
	}
	user, _, ok := strings.Cut(rest[:at], ":")
	if !ok {
		return address
	}
	return scheme + user + ":xxxxx" + rest[at:]
}

// wrapperScript is what the remote login shell runs, with the command as $1.
// It marks on stderr, each on a line of its own that starts with prefix,
// that it started ("start"), that it runs as asUser ("as"), why it could not
// become asUser ("sudo MSG", when sudo is missing), that the command's input
// fell short ("input N", the bytes that came), and the command's exit
// status ("exit N"). One sudo switches user: when it refuses, no "as" follows
// and its message is the last line of stderr. The command runs with stdin from
// /dev/null, as with Local, or, when input bytes (more than 0) come first on
// the wrapper's stdin, with exactly those: the wrapper reads them all into a
// variable before the command starts (dd, one byte at a time, so nothing
// after them is taken) and passes them on with the shell's printf builtin,
// so they are on no command line. The wrapper's own stdin is ssh's, and a
// watcher reading the rest of it kills the whole process group when it
// ends, that is when the connection closes before the command has finished.
// The wrapper's own stderr goes to /dev/null, so a shell's "Killed" notice
// for a command killed by a signal does not reach the output, as with Local;
// the command runs in a subshell so that its stderr is set in the child only.
func wrapperScript(prefix, asUser string, input int) string {
	mark := "printf '" + strings.ReplaceAll(prefix, "\x1e", `\036`) + `%s\n' `
	inner := "exec 3<&0 </dev/null 4>&2 2>/dev/null\n"
	command := `(exec /bin/sh -c "$1") 2>&4 4>&-`
	if input > 0 {
		// The "." keeps the input's trailing newlines from the command
		// substitution; wc -c counts bytes whatever the locale.
		inner += "i=$(dd bs=1 count=" + strconv.Itoa(input) + " <&3; echo .)\n" +
			`n=$(($(printf %s "$i" | wc -c) - 1))` + "\n" +
			`if [ "$n" -ne ` + strconv.Itoa(input) + ` ]; then ` + mark + `"input $n" >&4; exit 1; fi` + "\n"
		command = `printf %s "${i%.}" | ` + command
	}
	inner += `(cat >/dev/null; kill -KILL 0) <&3 >/dev/null &
w=$!
exec 3<&-
` + command + `
s=$?
kill "$w"
` + mark + `"exit $s" >&4
exit "$s"
`
	if asUser == "" {
		return mark + "start >&2\nexec /bin/sh -c " + ShellQuote(inner) + ` /bin/sh "$1"` + "\n"
	}
	u := ShellQuote(asUser)
	runInner := `/bin/sh -c ` + ShellQuote(mark+"as >&2\n"+inner) + ` /bin/sh "$1"`
	return mark + "start >&2\n" +
		`if [ "$(id -un)" = ` + u + ` ]; then exec ` + runInner + "; fi\n" +
		`if ! command -v sudo >/dev/null 2>&1; then ` + mark + `'sudo sudo is not installed on the host' >&2; exit 1; fi` + "\n" +
		`exec sudo -n -u ` + u + ` -- ` + runInner + "\n"
}

// markedStream passes a remote command's stderr to a capped buffer, minus
// the wrapper's marker lines, which it records. It keeps the last line
// passed through, for ssh's own error messages. It is safe for concurrent
// use, like capped.
type markedStream struct {
	prefix string
	exited chan struct{} // closed on the "exit" marker

	mu     sync.Mutex
	out    capped
	held   []byte // the start of what may be a marker line
	tail   []byte // the last bytes passed through
	marked markers
}

// markers is what the wrapper reported.
type markers struct {
	started  bool   // the wrapper ran
	switched bool   // it runs as the user asked for (sudo let it)
	exited   bool   // the command finished
	code     int    // its exit status
	sudo     string // why sudo could not run the command
	input    string // how many bytes of the input came, when not all
	lastLine string // the last non-blank line of stderr, markers aside
}

// maxMarker bounds a marker line; longer, it is taken as ordinary output.
const maxMarker = 4096

func newMarkedStream(prefix string) *markedStream {
	m := &markedStream{prefix: prefix, exited: make(chan struct{})}
	m.out.limit = maxOutput
	return m
}

func (m *markedStream) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	data := append(m.held, p...)
	m.held = nil
	prefix := []byte(m.prefix)
	for len(data) > 0 {
		i := bytes.IndexByte(data, prefix[0])
		if i < 0 {
			m.pass(data)
			break
		}
		m.pass(data[:i])
		data = data[i:]
		n := min(len(data), len(prefix))
		if !bytes.Equal(data[:n], prefix[:n]) {
			m.pass(data[:1])
			data = data[1:]
			continue
		}
		end := bytes.IndexByte(data, '\n')
		if n < len(prefix) || end < 0 {
			if len(data) > maxMarker {
				m.pass(data[:1])
				data = data[1:]
				continue
			}
			m.held = bytes.Clone(data)
			break
		}
		m.record(string(data[len(prefix):end]))
		data = data[end+1:]
	}
	return len(p), nil
}

// pass keeps p as output. Callers hold mu.
func (m *markedStream) pass(p []byte) {
	m.out.Write(p)
	m.tail = append(m.tail, p...)
	if len(m.tail) > 2*maxMarker {
		m.tail = bytes.Clone(m.tail[len(m.tail)-maxMarker:])
	}
}

// record notes a marker. Callers hold mu.
func (m *markedStream) record(marker string) {
	kind, value, _ := strings.Cut(marker, " ")
	switch kind {
	case "start":
		m.marked.started = true
	case "as":
		m.marked.switched = true
	case "sudo":
		m.marked.sudo = value
	case "input":
		m.marked.input = value
	case "exit":
		code, err := strconv.Atoi(value)
		if err != nil || m.marked.exited {
			return
		}
		m.marked.exited, m.marked.code = true, code
		close(m.exited)
	}
}

// flush passes on what was held back as a possible marker. Callers hold mu.
func (m *markedStream) flush() {
	m.pass(m.held)
	m.held = nil
}

func (m *markedStream) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flush()
	return m.out.String()
}

// result returns the markers seen so far and the last line of stderr.
func (m *markedStream) result() markers {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flush()
	r := m.marked
	lines := strings.Split(strings.TrimSpace(string(m.tail)), "\n")
	r.lastLine = strings.TrimSpace(lines[len(lines)-1])
	return r
}
