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

// shellOf returns the shell open for s (as its login user), or nil.
func shellOf(t *testing.T, s SSH) *shell {
	t.Helper()
	user, host, port, err := ParseSSHAddress(s.Address)
	if err != nil {
		t.Fatal(err)
	}
	pool.mu.Lock()
	defer pool.mu.Unlock()
	return pool.shells[shellKey(s.masterKey(user, host, port), "")]
}

// shellLoopPID is the PID of the shell's loop that ran a command: the
// command's parent is its session (setsid), whose parent is the loop.
// (A command that ran on its own, with no shell, gives its session's.)
func shellLoopPID(t *testing.T, ctx context.Context, ssh SSH) int {
	t.Helper()
	out, err := ssh.Run(ctx, "ps -o ppid= -p $PPID")
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(out.Stdout, &pid); err != nil {
		t.Fatalf("the shell's PID: %q: %v", out.Stdout, err)
	}
	return pid
}

// TestSSHShellFramesEveryCommand runs commands through the host's shell
// within a reuse period: each gets its own exit status, standard output
// and standard error, byte for byte, whatever they print (lines that look
// like the shell's own framing included), with stdin at its end; one
// shell takes them all, over one login.
func TestSSHShellFramesEveryCommand(t *testing.T) {
	server := startSSHD(t)
	end := ReuseConnections()
	defer end()
	ssh := sshTo(server)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := sshdLogins(server)
	cases := []struct {
		command        string
		stdout, stderr string
		code           int
	}{
		{"echo hello", "hello\n", "", 0},
		{"echo out; echo err >&2; exit 3", "out\n", "err\n", 3},
		{"printf 'E 1 0 0 0\\nX 1\\nR 2\\nS\\n'; printf 'E 9 9 9 9\\n' >&2", "E 1 0 0 0\nX 1\nR 2\nS\n", "E 9 9 9 9\n", 0},
		{"printf 'no newline'", "no newline", "", 0},
		{"cat; echo read-all", "read-all\n", "", 0},
		{"a='it''s'; b=\"two\nlines\"; echo \"$a $b\"", "its two\nlines\n", "", 0},
		{"kill -TERM $$", "", "", 128 + int(syscall.SIGTERM)},
		{"head -c 20000 /dev/zero | tr '\\0' x", strings.Repeat("x", 20000), "", 0},
	}
	for i, c := range cases {
		out, err := ssh.Run(ctx, c.command)
		if err != nil || out.Stdout != c.stdout || out.Stderr != c.stderr || out.ExitCode != c.code {
			t.Errorf("Run(%q) = stdout %q stderr %q exit %d, %v; want %q %q %d", c.command, tail(out.Stdout), out.Stderr, out.ExitCode, err, tail(c.stdout), c.stderr, c.code)
		}
		if i == 0 {
			if sh := shellOf(t, ssh); sh == nil || sh.err != nil {
				t.Fatalf("no shell runs on the host after the first command (%v)", sh)
			}
		}
	}
	sh := shellOf(t, ssh)
	if sh == nil || sh.next != len(cases) {
		t.Fatalf("the shell took %v commands, want all %d", sh, len(cases))
	}
	if got := sshdLogins(server) - before; got != 1 {
		t.Errorf("sshd logged %d logins for %d commands, want 1 (the master)", got, len(cases))
	}

	// What a command costs in the shell and as a session of its own, on
	// the same connection.
	timed := func(n int) time.Duration {
		start := time.Now()
		for i := 0; i < n; i++ {
			if _, err := ssh.Run(ctx, "true"); err != nil {
				t.Fatal(err)
			}
		}
		return time.Since(start) / time.Duration(n)
	}
	inShell := timed(10)
	t.Setenv(ShellsOff, "off")
	ownSession := timed(10)
	t.Logf("a command over ssh: %s in the host's shell, %s as a session of its own", inShell, ownSession)

	t.Setenv(ShellsOff, "")
	end()
	select {
	case <-sh.gone:
	case <-time.After(5 * time.Second):
		t.Fatalf("the shell still runs 5s after the reuse period ended")
	}
}

// TestSSHShellCutOffKeepsTheShell: a command cut off in the shell is
// killed on the host with everything it started, and the same shell takes
// the next command.
func TestSSHShellCutOffKeepsTheShell(t *testing.T) {
	server := startSSHD(t)
	end := ReuseConnections()
	defer end()
	ssh := sshTo(server)
	warm, cancelWarm := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelWarm()
	if _, err := ssh.Run(warm, "true"); err != nil {
		t.Fatal(err)
	}
	sh := shellOf(t, ssh)
	if sh == nil {
		t.Fatal("no shell after the first command")
	}
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	out, err := ssh.Run(ctx, fmt.Sprintf("sleep 30 & echo $! > %s; wait", pidFile))
	if !errors.Is(err, context.DeadlineExceeded) || out.ExitCode != -1 {
		t.Fatalf("Run = %+v, %v; want it cut off with exit code -1", out, err)
	}
	pid := readPID(t, pidFile)
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the cut-off command's child %d still runs 5s after", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out, err := ssh.Run(warm, "echo next"); err != nil || out.Stdout != "next\n" {
		t.Fatalf("Run after the cut-off = %+v, %v", out, err)
	}
	if now := shellOf(t, ssh); now != sh || sh.next != 3 {
		t.Errorf("after the cut-off the host's shell is %p (took %d commands), want the same %p with 3", now, sh.next, sh)
	}
}

// TestSSHShellKilled: the shell on the host killed between two commands,
// or while one runs. The command sent to a dead shell runs on its own
// (nothing of it had run); the one running when the shell died fails,
// saying the session ended; the next starts a new shell.
func TestSSHShellKilled(t *testing.T) {
	server := startSSHD(t)
	end := ReuseConnections()
	defer end()
	ssh := sshTo(server)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	loopPID := func() int { t.Helper(); return shellLoopPID(t, ctx, ssh) }
	pid := loopPID()
	sh := shellOf(t, ssh)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if out, err := ssh.Run(ctx, "echo after"); err != nil || out.Stdout != "after\n" {
		t.Fatalf("Run after the shell was killed = %+v, %v", out, err)
	}
	select {
	case <-sh.gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the killed shell is not seen gone")
	}
	pid = loopPID()
	if now := shellOf(t, ssh); now == nil || now == sh {
		t.Fatalf("no new shell after the first was killed")
	}

	// Killed while a command runs.
	done := make(chan error, 1)
	var out Output
	go func() {
		var err error
		out, err = ssh.Run(ctx, "sleep 20")
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "session ended before the command finished") || out.ExitCode != -1 {
			t.Errorf("Run while the shell was killed = %+v, %v; want the session ended, exit code -1", out, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still waits 10s after its shell was killed")
	}
	if out, err := ssh.Run(ctx, "echo again"); err != nil || out.Stdout != "again\n" {
		t.Fatalf("Run after the second kill = %+v, %v", out, err)
	}
}

// TestSSHShellConcurrent runs commands at once on one host: one at a time
// in the shell, the others as sessions of their own; each gets its own
// output.
func TestSSHShellConcurrent(t *testing.T) {
	server := startSSHD(t)
	end := ReuseConnections()
	defer end()
	ssh := sshTo(server)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := ssh.Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := ssh.Run(ctx, fmt.Sprintf("sleep 0.2; echo %d; echo e%d >&2; exit %d", i, i, i))
			if err != nil || out.Stdout != fmt.Sprintf("%d\n", i) || out.Stderr != fmt.Sprintf("e%d\n", i) || out.ExitCode != i {
				errs <- fmt.Errorf("command %d: %+v, %v", i, out, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if sh := shellOf(t, ssh); sh == nil || sh.next < 2 {
		t.Errorf("the shell took %v commands, want the first and at least one of the eight", sh)
	}
}

// TestSSHShellHostCutOff: the connection to the host ends (its master
// killed) while a command runs in the shell. The command fails saying the
// session ended, the host kills it, and the next command connects again.
func TestSSHShellHostCutOff(t *testing.T) {
	server := startSSHD(t)
	end := ReuseConnections()
	defer end()
	ssh := sshTo(server)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := ssh.Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	m := masterOf(t, ssh)
	pidFile := filepath.Join(t.TempDir(), "sleep.pid")
	done := make(chan error, 1)
	go func() {
		_, err := ssh.Run(ctx, fmt.Sprintf("sleep 30 & echo $! > %s; wait", pidFile))
		done <- err
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(pidFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command did not start within 15s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.kill()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "session ended before the command finished") {
			t.Errorf("Run cut off with its connection: %v; want the session ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still waits 10s after its connection was cut")
	}
	pid := readPID(t, pidFile)
	deadline = time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the command's child %d still runs on the host 5s after its connection ended", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out, err := ssh.Run(ctx, "echo back"); err != nil || out.Stdout != "back\n" {
		t.Fatalf("Run after the connection was cut = %+v, %v", out, err)
	}
}

// TestSSHShellAsUser: within a reuse period, commands as another user run
// in one shell started through sudo once; a user sudo refuses gets the
// same error as outside a period, from a command of its own.
func TestSSHShellAsUser(t *testing.T) {
	if skip := needRootAndRunuser(nil); skip != "" {
		t.Skip(skip)
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		t.Skip(needRootAndRunuser(err))
	}
	bin, sudoLog := fakeSudo(t)
	server := startSSHD(t, "SetEnv PATH="+bin+":/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
	end := ReuseConnections()
	defer end()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ssh := SSH{Address: "test", ConfigFile: server.ConfigFile, User: "nobody"}
	for i := 0; i < 3; i++ {
		out, err := ssh.Run(ctx, "id -un")
		if err != nil || out.Stdout != "nobody\n" {
			t.Fatalf("Run %d as nobody = %+v, %v", i+1, out, err)
		}
	}
	data, _ := os.ReadFile(sudoLog)
	if got := strings.Count(string(data), "nobody"); got != 1 {
		t.Errorf("sudo ran %d times for three commands as nobody, want once (the shell)", got)
	}
	refused := SSH{Address: "test", ConfigFile: server.ConfigFile, User: "nopass"}
	out, err := refused.Run(ctx, "echo ran")
	want := "ssh test as nopass: cannot run the command as nopass: sudo: a password is required"
	if err == nil || err.Error() != want || strings.Contains(out.Stdout, "ran") {
		t.Errorf("Run as a user sudo refuses = %+v, %v; want the error %q", out, err, want)
	}
}

// TestSSHShellPartialCommandNeverRuns: a command whose frame is cut short
// (the shell's input ends before its end line) is not run.
func TestSSHShellPartialCommandNeverRuns(t *testing.T) {
	server := startSSHD(t)
	end := ReuseConnections()
	defer end()
	ssh := sshTo(server)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ssh.Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	sh := shellOf(t, ssh)
	if sh == nil {
		t.Fatal("no shell after the first command")
	}
	marker := filepath.Join(t.TempDir(), "ran")
	command := "touch " + ShellQuote(marker)
	// The whole command, but not its end line; a second in which a shell
	// that ran it would have; then the input ends.
	sh.busy.Lock()
	if _, err := fmt.Fprintf(sh.stdin, "C 99 %d\n%s", len(command), command); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = sh.stdin.Close()
	select {
	case <-sh.gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the shell still runs 10s after its input ended")
	}
	sh.busy.Unlock()
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the command cut short before its end line ran")
	}
}

// TestSSHShellLeavesNoDirectory: a shell's working directory on the host
// goes with it when it hangs up (its connection or sshd gone), and one
// left by a shell killed outright is removed by the next shell.
func TestSSHShellLeavesNoDirectory(t *testing.T) {
	server := startSSHD(t)
	end := ReuseConnections()
	defer end()
	ssh := sshTo(server)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	loopPID := func() int { t.Helper(); return shellLoopPID(t, ctx, ssh) }
	dirsOf := func(pid int) []string {
		d, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("switchover-shell.%d.*", pid)))
		return d
	}
	waitGone := func(pid int, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(dirsOf(pid)) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v still there after 10s", what, dirsOf(pid))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	pid := loopPID()
	if len(dirsOf(pid)) != 1 {
		t.Fatalf("the shell %d has directories %v, want one", pid, dirsOf(pid))
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitGone(pid, "a shell that hung up")

	// The next command may find the old shell still taken for alive and
	// run on its own (no shell, no directory); one after it has a shell.
	newShell := func(old int) int {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			p := loopPID()
			if p != old && len(dirsOf(p)) == 1 {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("no new shell with its directory within 10s (the last command's parent %d has %v; the old shell was %d)", p, dirsOf(p), old)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	killed := newShell(pid)
	if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if len(dirsOf(killed)) != 1 {
		t.Fatalf("the premise: a shell killed outright leaves its directory, found %v", dirsOf(killed))
	}
	newShell(killed)
	waitGone(killed, "the directory of a shell killed outright, once the next shell ran")
}
