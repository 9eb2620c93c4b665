// Package testbin runs the real switchover binary the way an operator or a
// script runs it, for tests: built once per test process, no terminal
// (stdin is /dev/null), a directory and a state home of the test's own,
// exit codes and output read from outside the process, and every wait
// bounded. Only tests import it.
package testbin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildTimeout bounds the one build of the binary.
const buildTimeout = 90 * time.Second

// killWait bounds the wait for a process to die after SIGKILL.
const killWait = 5 * time.Second

var (
	buildOnce sync.Once
	binDir    string // holds the binary; removed by Remove
	binPath   string
	buildErr  error
)

// Build builds cmd/switchover once per test process and returns the
// binary's path.
func Build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "switchover-bin-")
		if buildErr != nil {
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		binPath = filepath.Join(binDir, "switchover")
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		// By import path: the tests that build it live in different
		// directories of the module.
		cmd := exec.CommandContext(ctx, goTool, "build", "-o", binPath, "github.com/switchover/switchover/cmd/switchover")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Remove deletes the binary Build made, if any. A package's TestMain
// calls it once the tests have run.
func Remove() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// Result is how a run of the binary ended.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// String shows the exit code, then stdout and stderr, for a failure's
// message.
func (r Result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// Output is stdout followed by stderr.
func (r Result) Output() string { return r.Stdout + r.Stderr }

// command prepares the binary with stdin from /dev/null, in dir, with
// XDG_STATE_HOME pointing into dir so that a forgotten --journal-dir never
// writes to the real home, and NO_COLOR set; ctx bounds it.
func command(t testing.TB, ctx context.Context, dir string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, Build(t), args...)
	cmd.Dir = dir
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devnull.Close() })
	cmd.Stdin = devnull
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, ".state"), "NO_COLOR=1")
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Run runs the binary in dir to completion. One that does not finish
// within limit is killed and fails the test.
func Run(t testing.TB, limit time.Duration, dir string, args ...string) Result {
	t.Helper()
	return RunEnv(t, limit, nil, dir, args...)
}

// RunEnv is Run with env added to the binary's environment.
func RunEnv(t testing.TB, limit time.Duration, env []string, dir string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := command(t, ctx, dir, args...)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("switchover %s: did not finish within %s\n%s%s", strings.Join(args, " "), limit, stdout.String(), stderr.String())
	}
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("switchover %s: %v", strings.Join(args, " "), err)
		}
		r.Code = ee.ExitCode()
	}
	return r
}

// SyncBuffer is a bytes.Buffer safe to read while the process writes it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p, as the process's output arrives.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Proc is the binary running in the background.
type Proc struct {
	Cmd            *exec.Cmd
	Stdout, Stderr *SyncBuffer

	t     testing.TB
	args  []string
	limit time.Duration
	done  chan struct{}
	code  int
}

// Start runs the binary in dir in the background (see command), killed
// with SIGKILL if it still runs after limit. Cleanup kills it if the test
// has not already waited for it.
func Start(t testing.TB, limit time.Duration, dir string, args ...string) *Proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	p := &Proc{t: t, args: args, limit: limit, Stdout: &SyncBuffer{}, Stderr: &SyncBuffer{}, done: make(chan struct{})}
	p.Cmd = command(t, ctx, dir, args...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Stdout, p.Stderr
	if err := p.Cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start switchover %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		err := p.Cmd.Wait()
		p.code = p.Cmd.ProcessState.ExitCode()
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		defer cancel()
		if p.Exited() {
			return
		}
		_ = p.Cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(killWait):
			t.Errorf("switchover %s (pid %d) did not die after SIGKILL", strings.Join(args, " "), p.Cmd.Process.Pid)
		}
	})
	return p
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit and returns how it did. It waits
// no longer than the process may live (Start's limit) and the time its
// kill then takes.
func (p *Proc) Wait() Result {
	p.t.Helper()
	return p.WaitWithin(p.limit + killWait)
}

// WaitWithin waits for the process to exit and returns how it did; one
// still running after limit fails the test.
func (p *Proc) WaitWithin(limit time.Duration) Result {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		p.t.Fatalf("switchover %s (pid %d) still running after %s\n--- stdout:\n%s--- stderr:\n%s",
			strings.Join(p.args, " "), p.Cmd.Process.Pid, limit, p.Stdout, p.Stderr)
	}
	return Result{Code: p.code, Stdout: p.Stdout.String(), Stderr: p.Stderr.String()}
}

// Kill sends SIGKILL to the process and waits until it is gone. It
// reports whether the kill is what ended it (false: it had exited
// already).
func (p *Proc) Kill() bool {
	p.t.Helper()
	_ = p.Cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(killWait):
		p.t.Fatalf("switchover %s (pid %d) did not die after SIGKILL", strings.Join(p.args, " "), p.Cmd.Process.Pid)
	}
	ws, ok := p.Cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// MustKill is Kill for a process that must still be running: one that
// exited by itself before the kill fails the test.
func (p *Proc) MustKill() {
	p.t.Helper()
	if !p.Kill() {
		p.t.Fatalf("switchover %s: exited by itself before the kill: %s", strings.Join(p.args, " "), p.WaitWithin(time.Second))
	}
}
