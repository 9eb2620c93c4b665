package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/creack/pty"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
)

// screen is what a program wrote to its terminal, escape sequences removed.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
	// read is closed once the terminal has been read to its end (the
	// program and every process holding the terminal have closed it).
	read chan struct{}
}

// readTerminal copies what ptmx yields into a new screen until the
// terminal's end.
func readTerminal(ptmx *os.File) *screen {
	s := &screen{read: make(chan struct{})}
	go func() {
		defer close(s.read)
		_, _ = bytes.NewBuffer(nil).ReadFrom(teeReader{ptmx, s})
	}()
	return s
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\r`)

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// raw is what the program wrote, escape sequences and all.
func (s *screen) raw() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *screen) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ansi.ReplaceAllString(s.buf.String(), "")
}

// waitFor waits until the screen shows want, failing after d.
func (s *screen) waitFor(t *testing.T, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Contains(s.text(), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the terminal never showed %q; it shows:\n%s", want, s.text())
}

// interactive starts the real binary in a real pseudo-terminal.
func interactive(t *testing.T, args ...string) (*exec.Cmd, func(string), *screen, <-chan error) {
	t.Helper()
	return interactiveAt(t, 160, nil, args...)
}

// interactiveAt starts the real binary in a pseudo-terminal cols wide,
// with env added to its environment.
func interactiveAt(t *testing.T, cols uint16, env []string, args ...string) (*exec.Cmd, func(string), *screen, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, testbin.Build(t), args...)
	cmd.Env = append(os.Environ(), env...)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 60, Cols: cols})
	if err != nil {
		t.Fatalf("start in a pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	scr := readTerminal(tty)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	keys := func(k string) {
		t.Helper()
		waitRaw(t, tty, k, scr)
		if _, err := tty.Write([]byte(k)); err != nil {
			t.Fatalf("type %q: %v", k, err)
		}
	}
	return cmd, keys, scr, done
}

// waitRaw waits until the program has put the terminal behind ptmx in raw
// mode, as a prompt does before it draws itself and reads keys, failing
// after 10s. Keys typed before that go through the line discipline instead
// (echoed, held until a newline). Raw mode does not tell one prompt from
// the next (the one answered keeps it a moment after the answer), so the
// callers wait for the prompt's text first.
func waitRaw(t *testing.T, ptmx *os.File, k string, scr *screen) {
	t.Helper()
	conn, err := ptmx.SyscallConn()
	if err != nil {
		t.Fatalf("type %q: %v", k, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// On a pseudo-terminal's master side, TCGETS reads the terminal
		// modes of the side the program holds.
		var tio syscall.Termios
		var errno syscall.Errno
		if err := conn.Control(func(fd uintptr) {
			_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCGETS, uintptr(unsafe.Pointer(&tio)))
		}); err != nil || errno != 0 {
			t.Fatalf("type %q: read the terminal's modes: %v %v", k, err, errno)
		}
		if tio.Lflag&syscall.ICANON == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("type %q: the terminal is not in raw mode after 10s (local modes %#o); it shows:\n%s", k, tio.Lflag, scr.text())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type teeReader struct {
	r interface{ Read([]byte) (int, error) }
	w *screen
}

func (t teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.w.Write(p[:n])
	}
	return n, err
}

// exitOf waits (at most d) for the program to exit and then for its
// terminal to be read to the end, so that the screen holds all it wrote:
// the exit can come before the reader has taken the last lines.
func exitOf(t *testing.T, done <-chan error, d time.Duration, scr *screen) int {
	t.Helper()
	code := 0
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(d):
		t.Fatalf("the interactive run did not end within %s; the terminal shows:\n%s", d, scr.text())
	}
	select {
	case <-scr.read:
	case <-time.After(10 * time.Second):
		t.Fatalf("the program exited %d, but its terminal was not read to its end within 10s (a process it left holds it); the terminal shows:\n%s", code, scr.text())
	}
	return code
}

func primaryOf(t *testing.T, sb *sandbox.Sandbox) string {
	t.Helper()
	for _, s := range sb.Status(context.Background()) {
		if s.Err == nil && s.State.Role == pg.RolePrimary {
			return s.Node.Name
		}
	}
	return ""
}

// sgr matches an escape sequence that sets a colour or a style.
var sgr = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// An interactive switchover of the sandbox at a real terminal 100 columns
// wide, under NO_COLOR: the plan first, one prompt before the first action
// (no canary row, no checkpoint while a person reads) that shows what the
// pause, the stop and the promotion will do, a mistyped cluster name asked
// again, the switch done, its figures whole, no colour anywhere. Then a
// second run at a terminal whose output goes to a pipe (`2>&1 | tee log`)
// still asks, on the terminal, and is aborted there: exit 5, and it says
// plainly that nothing changed.
func TestInteractiveSwitchoverInAPseudoTerminal(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	jd := t.TempDir()
	_, keys, scr, done := interactiveAt(t, 100, []string{"NO_COLOR=1"}, "run", "postgres-streaming-switchover", "-i", sb.Inventory(), "--journal-dir", jd)

	scr.waitFor(t, "plan: postgres-streaming-switchover on cluster sandbox: 18 steps, 2 destructive", 20*time.Second)
	for _, want := range []string{"! 10  stop-primary", "! 11  promote", "---- point of no return", "finally (always): pooler-resumed, stop-canary"} {
		scr.waitFor(t, want, time.Second)
	}
	scr.waitFor(t, "proceed with step pause-pooler?", 20*time.Second)
	for _, want := range []string{"does:    PAUSE app", "approving it also approves", `step "stop-primary" on pg1`, `step "promote" on pg2`, "THEN pg_promote(wait =>"} {
		scr.waitFor(t, want, time.Second)
	}
	for _, early := range []string{"[10/18] stop-primary", "[5/18] sync-on-candidate", "[6/18] start-canary", "[7/18] checkpoint"} {
		if strings.Contains(scr.text(), early) {
			t.Fatalf("%s started before the prompt was answered:\n%s", early, scr.text())
		}
	}
	keys("\r")
	scr.waitFor(t, "type the cluster name (sandbox) to confirm", 10*time.Second)
	keys("sandbx\r")
	scr.waitFor(t, `typed "sandbx", not "sandbox": try again`, 10*time.Second)
	scr.waitFor(t, "to confirm, try 2 of 3", 10*time.Second)
	keys("sandbox\r")
	if code := exitOf(t, done, time.Minute, scr); code != 0 {
		t.Fatalf("interactive run: exit %d; the terminal shows:\n%s", code, scr.text())
	}
	text := scr.text()
	for _, want := range []string{"approved  by", "(prompt)", "[11/18] promote", "pg2 is a primary now", "canary: all", "0 lost", "done in"} {
		if !strings.Contains(text, want) {
			t.Errorf("the terminal does not show %q:\n%s", want, text)
		}
	}
	if strings.Count(text, "proceed with step") != 1 {
		t.Errorf("%d prompts, want exactly one: no prompt may wait while clients are held", strings.Count(text, "proceed with step"))
	}
	if m := sgr.FindString(scr.raw()); m != "" {
		t.Errorf("under NO_COLOR the terminal got the colour sequence %q", m)
	}
	// At 100 columns the canary's figures are whole, wrapped if need be.
	flat := strings.Join(strings.Fields(text), " ")
	if !regexp.MustCompile(`longest write gap \d+(\.\d+)?(ms|s)\b`).MatchString(flat) {
		t.Errorf("the longest write gap is not shown whole:\n%s", text)
	}
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "…") && regexp.MustCompile(`\d…`).MatchString(l) {
			t.Errorf("a figure was cut: %q", l)
		}
	}
	if p := primaryOf(t, sb); p != "pg2" {
		t.Fatalf("after the interactive switchover the primary is %q, want pg2", p)
	}

	// Abort at the prompt of a run piped to a log: exit 5, nothing
	// changed, clients not held.
	keys, scr, logged, done := interactiveTee(t, "run", "postgres-streaming-switchover", "-i", sb.Inventory(), "--journal-dir", jd,
		"--var", "primary=pg2", "--var", "candidate=pg1")
	scr.waitFor(t, "proceed with step pause-pooler?", 20*time.Second)
	keys("\x1b[B")
	scr.waitFor(t, "> show details", 10*time.Second)
	keys("\x1b[B")
	scr.waitFor(t, "> abort", 10*time.Second)
	keys("\r")
	if code := exitOf(t, done, time.Minute, scr); code != exitDeclined {
		t.Fatalf("aborted run: exit %d, want %d; the terminal shows:\n%s\nthe log:\n%s", code, exitDeclined, scr.text(), logged.text())
	}
	log := logged.text()
	if !strings.Contains(log, "nothing was changed: no action ran, clients were never held") {
		t.Errorf("the declined run does not say plainly that nothing changed:\n%s", log)
	}
	for _, not := range []string{"actions ran", "== rollback", "[5/18] sync-on-candidate", "start-canary"} {
		if strings.Contains(log, not) {
			t.Errorf("the declined run shows %q:\n%s", not, log)
		}
	}
	if p := primaryOf(t, sb); p != "pg2" {
		t.Fatalf("after the abort the primary is %q, want pg2 still", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pg.ConnectPooled(ctx, sb.ClientConninfo())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var recovery bool
	if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovery); err != nil || recovery {
		t.Fatalf("through the pooler after the abort: recovery=%v err=%v; want the primary answering", recovery, err)
	}
}

// interactiveTee starts the real binary with stdin on a pseudo-terminal
// (its controlling terminal) and stdout and stderr into a pipe, as
// `switchover run ... 2>&1 | tee log` does at a terminal. It returns the
// keys to type, what the terminal shows, and what went into the pipe.
func interactiveTee(t *testing.T, args ...string) (func(string), *screen, *screen, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 60, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	logged := &screen{}
	cmd := exec.CommandContext(ctx, testbin.Build(t), args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, logged, logged
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	tty.Close()
	scr := readTerminal(ptmx)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	keys := func(k string) {
		t.Helper()
		waitRaw(t, ptmx, k, scr)
		if _, err := ptmx.Write([]byte(k)); err != nil {
			t.Fatalf("type %q: %v", k, err)
		}
	}
	return keys, scr, logged, done
}
