package transport

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLocalRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		command string
		want    Output // Elapsed is not compared
	}{
		{name: "stdout", command: "echo hello", want: Output{Stdout: "hello\n"}},
		{name: "stderr", command: "echo oops >&2", want: Output{Stderr: "oops\n"}},
		{name: "both and an exit code", command: "echo out; echo err >&2; exit 3", want: Output{Stdout: "out\n", Stderr: "err\n", ExitCode: 3}},
		{name: "a shell pipeline", command: "printf 'b\\na\\n' | sort", want: Output{Stdout: "a\nb\n"}},
		{name: "command not found", command: "no-such-command-here 2>/dev/null", want: Output{ExitCode: 127}},
		{name: "killed by a signal", command: "kill -KILL $$", want: Output{ExitCode: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, err := Local{}.Run(ctx, tt.command)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got.Elapsed <= 0 {
				t.Errorf("Elapsed = %s, want it measured", got.Elapsed)
			}
			got.Elapsed = 0
			if got != tt.want {
				t.Errorf("Run(%q) = %+v, want %+v", tt.command, got, tt.want)
			}
		})
	}
}

func TestLocalWhere(t *testing.T) {
	t.Parallel()
	if got := (Local{}).Where(); got != "local" {
		t.Errorf("Where() = %q, want local", got)
	}
}

// TestLocalRunCutOff checks that a ctx cut-off stops the command and every
// process it started, not only the shell.
func TestLocalRunCutOff(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	command := fmt.Sprintf("echo started; sleep 30 & echo $! > %s; sleep 30", pidFile)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	out, err := Local{}.Run(ctx, command)
	took := time.Since(start)

	if took > 2500*time.Millisecond {
		t.Errorf("Run took %s after a 300ms deadline, want about 300ms", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run error = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if err != nil && !strings.Contains(err.Error(), "command cut off after") {
		t.Errorf("Run error = %q, want it to say the command was cut off", err)
	}
	if out.ExitCode != -1 || out.Stdout != "started\n" {
		t.Errorf("Run output = %+v, want exit code -1 and what was printed before the cut-off", out)
	}

	pid := readPID(t, pidFile)
	// The grandchild was killed with the group. Its parent, the shell, is
	// dead too, so it waits as a zombie for init to reap it; a zombie has
	// stopped running, so it counts as gone.
	deadline := time.Now().Add(3 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("background child %d still runs 3s after the cut-off", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLocalRunLeavesDaemon checks that a command that starts a daemon
// holding its stdout (like pg_ctl start without -l) returns when the shell
// exits, not when the daemon does, and reports success.
func TestLocalRunLeavesDaemon(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "daemon.pid")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	out, err := Local{}.Run(ctx, fmt.Sprintf("sleep 30 & echo $! > %s; echo started", pidFile))
	took := time.Since(start)
	t.Cleanup(func() { _ = syscall.Kill(readPID(t, pidFile), syscall.SIGKILL) })
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if took > pipeGrace+time.Second {
		t.Errorf("Run took %s, want about %s (the grace for a daemon's output)", took, pipeGrace)
	}
	if out.ExitCode != 0 || out.Stdout != "started\n" {
		t.Errorf("Run output = %+v, want exit code 0 and stdout %q", out, "started\n")
	}
}

// TestLocalRunCutOffEscaped checks that a cut-off returns in bounded time
// even when a process left the group (setsid) and still holds the output.
func TestLocalRunCutOffEscaped(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	pidFile := filepath.Join(t.TempDir(), "escaped.pid")
	command := fmt.Sprintf("setsid sh -c 'while :; do echo tick; sleep 0.05; done' & echo $! > %s; sleep 30", pidFile)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Local{}.Run(ctx, command)
	took := time.Since(start)
	t.Cleanup(func() { _ = syscall.Kill(readPID(t, pidFile), syscall.SIGKILL) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run error = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if took > 2500*time.Millisecond {
		t.Errorf("Run took %s after a 300ms deadline, want it bounded by about 2s", took)
	}
}

// readPID reads a process id a test command wrote to path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the command did not record its background child: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		t.Fatalf("bad pid %q in %s", data, path)
	}
	return pid
}

// alive reports whether pid is a running process: it exists (signal 0 can
// be sent) and is not a zombie waiting to be reaped.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	_, rest, ok := strings.Cut(string(stat), ") ")
	return !ok || (rest[0] != 'Z' && rest[0] != 'X')
}

func TestLocalRunCapsOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		command     string
		stream      func(Output) string
		wantDropped int // bytes beyond maxOutput; 0 for no marker
	}{
		{name: "stdout beyond the cap", command: fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x", maxOutput+1000), stream: func(o Output) string { return o.Stdout }, wantDropped: 1000},
		{name: "stderr beyond the cap", command: fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x >&2", 3*maxOutput), stream: func(o Output) string { return o.Stderr }, wantDropped: 2 * maxOutput},
		{name: "exactly the cap", command: fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x", maxOutput), stream: func(o Output) string { return o.Stdout }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out, err := Local{}.Run(ctx, tt.command)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := tt.stream(out)
			kept := strings.Repeat("x", maxOutput)
			want := kept
			if tt.wantDropped > 0 {
				want += fmt.Sprintf("\n[%d more bytes not kept]", tt.wantDropped)
			}
			if got != want {
				t.Errorf("kept %d bytes ending %q, want %d bytes ending %q", len(got), tail(got), len(want), tail(want))
			}
		})
	}
}

func tail(s string) string { return s[max(0, len(s)-40):] }

func TestCappedWrites(t *testing.T) {
	t.Parallel()
	c := capped{limit: 10}
	for _, p := range []string{"abcd", "efgh", "ijkl", "mnop"} {
		n, err := c.Write([]byte(p))
		if n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v; want %d, nil (a capped writer never fails its caller)", p, n, err, len(p))
		}
	}
	if got, want := c.String(), "abcdefghij\n[6 more bytes not kept]"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestOutputCombined(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		out  Output
		want string
	}{
		{name: "both", out: Output{Stdout: "out\n", Stderr: "  err\n"}, want: "out\nerr"},
		{name: "stdout only", out: Output{Stdout: "out\n"}, want: "out"},
		{name: "stderr only", out: Output{Stderr: "err\n"}, want: "err"},
		{name: "blank", out: Output{Stdout: " \n", Stderr: "\n"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.out.Combined(); got != tt.want {
				t.Errorf("Combined() = %q, want %q", got, tt.want)
			}
		})
	}
}
