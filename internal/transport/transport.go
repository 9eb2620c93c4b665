// Package transport runs shell commands on the host of a node, locally or
// over ssh, with their standard input empty or, through InputRunner, read
// from what the caller gives (a file's contents, which stay off the command
// line). Checks and steps see only the Executor interface, so their logic
// does not depend on where the host is.
package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Executor runs one shell command on a host and returns what it printed.
type Executor interface {
	// Run executes command with /bin/sh -c. A command that runs and exits
	// non-zero is not an error: its exit code is in the Output. Err is for
	// commands that could not be started or were cut off by ctx.
	Run(ctx context.Context, command string) (Output, error)
	// Where names the host for messages and plans, e.g. "local".
	Where() string
}

// Output is what a command left behind.
type Output struct {
	Stdout   string
	Stderr   string
	ExitCode int
	Elapsed  time.Duration
}

// Combined returns stdout and stderr, trimmed, for one-line reports.
func (o Output) Combined() string {
	parts := []string{}
	if s := strings.TrimSpace(o.Stdout); s != "" {
		parts = append(parts, s)
	}
	if s := strings.TrimSpace(o.Stderr); s != "" {
		parts = append(parts, s)
	}
	return strings.Join(parts, "\n")
}

// maxOutput caps what is kept of a command's stdout and stderr each, so a
// chatty command cannot fill memory or the journal.
const maxOutput = 64 << 10

// pipeGrace is how long Run keeps reading output after the shell has exited
// while a process it left behind still holds stdout or stderr open, such as
// a postmaster started by pg_ctl without -l. Without it, Run would wait for
// that daemon to exit, and a successful start would look like a timeout.
const pipeGrace = time.Second

// Local runs commands on this machine, as the user switchover runs as or,
// when User is set, as that user: PostgreSQL's tools refuse to run as root,
// so a switchover run by root runs them as the database's owner.
type Local struct {
	User string
}

var _ InputRunner = Local{}

// Where implements Executor.
func (l Local) Where() string {
	if l.User != "" {
		return "local as " + l.User
	}
	return "local"
}

// credential returns how to run as l.User: nil to run as ourselves.
func (l Local) credential() (*syscall.Credential, error) {
	if l.User == "" {
		return nil, nil
	}
	u, err := user.Lookup(l.User)
	if err != nil {
		return nil, fmt.Errorf("run as %s: %w", l.User, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if uid == os.Geteuid() {
		return nil, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("run as %s: switchover runs as uid %d, not root, so it cannot switch user; run it as %s or as root", l.User, os.Geteuid(), l.User)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if groups, err := u.GroupIds(); err == nil {
		for _, g := range groups {
			if n, err := strconv.Atoi(g); err == nil {
				cred.Groups = append(cred.Groups, uint32(n))
			}
		}
	}
	return cred, nil
}

// Run implements Executor. The command runs in its own process group, so a
// timeout stops the whole pipeline it started and not only the shell, and it
// is killed if this process dies (the parent-death signal), so a killed run
// does not leave a half-finished action running behind the operator's back.
func (l Local) Run(ctx context.Context, command string) (Output, error) {
	return l.run(ctx, command, nil)
}

// RunInput implements InputRunner: the command reads input on its
// standard input, through a pipe, as the user it runs as.
func (l Local) RunInput(ctx context.Context, command string, input io.Reader) (Output, error) {
	data, err := readInput(input)
	if err != nil {
		return Output{}, err
	}
	return l.run(ctx, command, bytes.NewReader(data))
}

// run runs command with stdin as its standard input; nil is empty
// (/dev/null).
func (l Local) run(ctx context.Context, command string, stdin io.Reader) (Output, error) {
	cred, err := l.credential()
	if err != nil {
		return Output{}, err
	}
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Stdin = stdin
	var stdout, stderr capped
	stdout.limit, stderr.limit = maxOutput, maxOutput
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if cred != nil {
		// The other user may not enter our working directory, and
		// PostgreSQL's tools fail where they cannot.
		cmd.Dir = "/"
		cmd.Env = append(os.Environ(), "HOME=/", "USER="+l.User, "LOGNAME="+l.User)
	}
	cmd.WaitDelay = pipeGrace
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Output{}, fmt.Errorf("start /bin/sh: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		out := Output{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: -1, Elapsed: time.Since(start)}
		return out, fmt.Errorf("command cut off after %s: %w", out.Elapsed.Round(time.Millisecond), ctx.Err())
	}
	out := Output{Stdout: stdout.String(), Stderr: stderr.String(), Elapsed: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.Is(err, exec.ErrWaitDelay):
		// The shell exited 0; only a process it left running still held
		// the output. That is a success, not a failure to run.
	case errors.As(err, &exitErr):
		out.ExitCode = exitErr.ExitCode()
	default:
		return out, err
	}
	return out, nil
}

// capped is a buffer that keeps the first limit bytes and counts the rest.
// It is safe for concurrent use: after a cut-off Run may read it while a
// process that escaped the kill is still writing to it.
type capped struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	limit   int
	dropped int
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.limit - c.buf.Len()
	if room >= len(p) {
		return c.buf.Write(p)
	}
	if room > 0 {
		c.buf.Write(p[:room])
	}
	c.dropped += len(p) - max(room, 0)
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped > 0 {
		return c.buf.String() + fmt.Sprintf("\n[%d more bytes not kept]", c.dropped)
	}
	return c.buf.String()
}
