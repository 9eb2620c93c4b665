package transport

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// One shell per host and user for a whole run: while a reuse period is
// open, the first command to a host over its master connection also starts
// a shell there (as the command's user: sudo runs once, for the shell),
// which then runs every later command to that host, one at a time, each
// framed with its own exit status, standard output and standard error. A
// command then costs the shell a fork and one round trip on the open
// connection, instead of an ssh client, a session, a login shell and sudo.
//
// Each command runs in a session of its own on the host (setsid), with
// stdin from /dev/null and its output in files of the shell's private
// directory, so nothing it prints can be taken for the shell's framing
// and a daemon it starts holds no pipe. Cut off (its context ends), the
// command's process group is killed before the shell takes another; the
// shell itself, when its connection ends, kills the command it was
// running and exits. A command to a host whose shell is busy (another
// command of this process runs there), could not be started, or has died
// runs as a command of its own over the master, as outside a reuse
// period: nothing is sent to a shell that cannot take it.

// shellStartWait bounds how long a shell may take to start and say so
// over an open master connection.
const shellStartWait = 10 * time.Second

// shellKillWait bounds how long a cut-off command's kill may take to be
// confirmed before the shell is given up.
const shellKillWait = 2 * time.Second

// ShellsOff is the environment variable that, set to "off", keeps every
// command over ssh a command of its own (one session each), as before
// shells; for comparisons and as a way out.
const ShellsOff = "SWITCHOVER_SSH_SHELLS"

func shellsDisabled() bool { return os.Getenv(ShellsOff) == "off" }

// shell is one long-lived shell on a host.
type shell struct {
	busy    sync.Mutex // held while a command runs
	ready   chan struct{}
	err     error // why it could not start; set before ready is closed
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	frames  chan frame    // what the shell reports, in order
	gone    chan struct{} // closed when the shell's output has ended
	stderr  *capped
	next    int
	closing sync.Once
}

// frame is one report of the shell: R (a command is taken), E (a command
// ended: its status and output) or X (a cut-off command is gone).
type frame struct {
	op     byte
	id     int
	code   int
	stdout string
	stderr string
}

// shellScript is the shell's loop. Each command runs in a session of its
// own (setsid), under a watcher that kills the session when the loop has
// gone (killed on the host): a command never outlives its shell by more
// than a second, and its result is then reported as lost with the
// session.
//
// Its working directory ($t, named with its PID) goes with it: at its
// exit, at a hang-up (the connection or sshd gone) or a TERM; one killed
// outright leaves it, and the next shell of that user on the host removes
// the directories of shells that are no longer running.
//
// The loop reads frames from stdin: "C id n" followed by the n bytes of a
// command and a line "." runs it, having said "R id" (the command is
// taken); a command cut short (its input ended before the "." line) is
// never run; "K id" kills
// the running command's process group unless it has ended, and answers
// "X id" once it has gone. It reports "S" once it runs, and "E id status
// outlen errlen" followed by the command's output when a command ends. At
// the end of its input (the connection closed) it kills a command still
// running and exits.
const shellScript = `command -v setsid >/dev/null 2>&1 || { echo "switchover: setsid is not installed" >&2; exit 1; }
r=${TMPDIR:-/tmp}
for o in "$r"/switchover-shell.*.*; do
  q=${o##*/switchover-shell.}; q=${q%%.*}
  [ -O "$o" ] && ! kill -0 "$q" 2>/dev/null && rm -rf "$o"
done
t=$(mktemp -d "$r/switchover-shell.$$.XXXXXX") || exit 1
trap 'rm -rf "$t"' EXIT
trap 'exit 129' HUP
trap 'exit 143' TERM
p=
run='d=$1; exec 2>/dev/null
(while kill -0 "$4"; do sleep 1; done; kill -KILL 0) </dev/null >/dev/null 2>&1 &
w=$!
(exec /bin/sh -c "$2") </dev/null >"$d/o" 2>"$d/e"
s=$?
kill "$w"
: >"$d/d"
printf "E %s %s %s %s\n" "$3" "$s" $(wc -c <"$d/o") $(wc -c <"$d/e")
cat "$d/o" "$d/e"'
echo S
while read -r op id n; do
  case $op in
  C)
    c=$(head -c "$n"; echo .)
    IFS= read -r end && [ "$end" = . ] || exit 1
    echo "R $id"
    rm -f "$t/d"
    setsid /bin/sh -c "$run" sh "$t" "${c%.}" "$id" "$$" </dev/null &
    p=$! ;;
  K)
    if [ -n "$p" ] && [ ! -e "$t/d" ]; then kill -KILL -"$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; fi
    [ -n "$p" ] && wait "$p" 2>/dev/null
    p=
    echo "X $id" ;;
  esac
done
if [ -n "$p" ] && [ ! -e "$t/d" ]; then kill -KILL -"$p" 2>/dev/null; fi
`

// shellRemote is the command line that starts the shell on the host, as
// asUser when it is not "" (sudo once, for the shell).
func shellRemote(asUser string) string {
	loop := "/bin/sh -c " + ShellQuote(shellScript)
	if asUser == "" {
		return "exec " + loop
	}
	u := ShellQuote(asUser)
	return `if [ "$(id -un)" = ` + u + ` ]; then exec ` + loop + "; fi; exec sudo -n -u " + u + " -- " + loop
}

// shellKey names a shell: one per master connection and user.
func shellKey(masterKey, asUser string) string { return masterKey + "\x00" + asUser }

// shellFor returns the shell for key, starting it over the master at
// socket when there is none; nil when shells are off or none can run
// there (then the command runs on its own).
func (s SSH) shellFor(ctx context.Context, key, user, host, port, socket, asUser string) *shell {
	if shellsDisabled() {
		return nil
	}
	pool.mu.Lock()
	if pool.periods == 0 {
		pool.mu.Unlock()
		return nil
	}
	sh := pool.shells[key]
	if sh != nil {
		select {
		case <-sh.gone:
			if sh.err == nil {
				// It died (its connection ended): the next command
				// starts another.
				delete(pool.shells, key)
				sh = nil
			}
		default:
		}
	}
	if sh == nil {
		sh = &shell{ready: make(chan struct{}), frames: make(chan frame, 2), gone: make(chan struct{}), stderr: &capped{limit: maxOutput}}
		if pool.shells == nil {
			pool.shells = map[string]*shell{}
		}
		pool.shells[key] = sh
		pool.mu.Unlock()
		sh.start(s, user, host, port, socket, asUser)
	} else {
		pool.mu.Unlock()
	}
	select {
	case <-sh.ready:
	case <-ctx.Done():
		return nil
	}
	if sh.err != nil {
		return nil
	}
	return sh
}

// start starts the shell over the master at socket and waits until it
// says it runs, fails, or shellStartWait passes; then it closes ready.
// A shell that could not start stays so for the reuse period.
func (sh *shell) start(s SSH, user, host, port, socket, asUser string) {
	defer close(sh.ready)
	cmd := exec.Command("ssh", s.args(user, host, port, socket, shellRemote(asUser))...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		sh.fail(err)
		return
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		sh.fail(err)
		return
	}
	cmd.Stderr = sh.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		sh.fail(err)
		return
	}
	sh.cmd, sh.stdin = cmd, stdin
	started := make(chan error, 1)
	go sh.read(bufio.NewReaderSize(stdout, 64<<10), started)
	select {
	case err = <-started:
	case <-time.After(shellStartWait):
		err = fmt.Errorf("no answer within %s", shellStartWait)
	}
	if err != nil {
		sh.kill()
		sh.err = fmt.Errorf("%s: no shell: %w (%s)", s.Where(), err, strings.TrimSpace(sh.stderr.String()))
	}
}

func (sh *shell) fail(err error) {
	sh.err = err
	close(sh.gone)
}

// read parses the shell's reports until its output ends.
func (sh *shell) read(r *bufio.Reader, started chan<- error) {
	defer func() {
		close(sh.gone)
		_ = sh.cmd.Wait()
	}()
	line, err := r.ReadString('\n')
	if err != nil || line != "S\n" {
		started <- fmt.Errorf("the shell did not start (%q)", strings.TrimSpace(line))
		return
	}
	started <- nil
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f, outLen, errLen, ok := parseFrame(line)
		if !ok {
			continue
		}
		if f.op == 'E' {
			if f.stdout, err = readCapped(r, outLen); err != nil {
				return
			}
			if f.stderr, err = readCapped(r, errLen); err != nil {
				return
			}
		}
		sh.frames <- f
	}
}

// parseFrame reads "E id status outlen errlen" or "X id".
func parseFrame(line string) (f frame, outLen, errLen int64, ok bool) {
	fields := strings.Fields(line)
	if len(fields) < 2 || len(fields[0]) != 1 {
		return f, 0, 0, false
	}
	f.op = fields[0][0]
	id, err := strconv.Atoi(fields[1])
	if err != nil {
		return f, 0, 0, false
	}
	f.id = id
	switch {
	case (f.op == 'X' || f.op == 'R') && len(fields) == 2:
		return f, 0, 0, true
	case f.op == 'E' && len(fields) == 5:
		code, err1 := strconv.Atoi(fields[2])
		o, err2 := strconv.ParseInt(fields[3], 10, 64)
		e, err3 := strconv.ParseInt(fields[4], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || o < 0 || e < 0 {
			return f, 0, 0, false
		}
		f.code = code
		return f, o, e, true
	}
	return f, 0, 0, false
}

// readCapped reads n bytes of r and keeps the first maxOutput of them.
func readCapped(r io.Reader, n int64) (string, error) {
	c := capped{limit: maxOutput}
	if _, err := io.CopyN(&c, r, n); err != nil {
		return "", err
	}
	return c.String(), nil
}

// run runs command in the shell. ok is false when the shell could not
// take it (busy, or gone): then nothing was sent, and the caller runs the
// command on its own.
func (sh *shell) run(ctx context.Context, where, command string) (out Output, taken bool, err error) {
	if !sh.busy.TryLock() {
		return Output{}, false, nil
	}
	defer sh.busy.Unlock()
	select {
	case <-sh.gone:
		return Output{}, false, nil
	default:
	}
	sh.next++
	id := sh.next
	start := time.Now()
	if _, err := fmt.Fprintf(sh.stdin, "C %d %d\n%s.\n", id, len(command), command); err != nil {
		// The shell is gone, or its input broke: a command whose end
		// line did not come is never run (see shellScript), so nothing
		// of this one ran, and it runs on its own.
		sh.kill()
		return Output{}, false, nil
	}
	// Until the shell has taken the command, a shell that dies has run
	// nothing of it: the command runs on its own instead.
	accepted := false
	for !accepted {
		select {
		case f := <-sh.frames:
			accepted = f.op == 'R' && f.id == id
		case <-sh.gone:
			return Output{}, false, nil
		case <-ctx.Done():
			sh.kill()
			return Output{ExitCode: -1, Elapsed: time.Since(start)}, true, fmt.Errorf("command cut off after %s, before the shell on the host said it had taken it: %w", time.Since(start).Round(time.Millisecond), ctx.Err())
		}
	}
	for {
		select {
		case f := <-sh.frames:
			if f.op != 'E' || f.id != id {
				continue // a report of a command given up earlier
			}
			return Output{Stdout: f.stdout, Stderr: f.stderr, ExitCode: f.code, Elapsed: time.Since(start)}, true, nil
		case <-sh.gone:
			out := Output{ExitCode: -1, Elapsed: time.Since(start)}
			last := lastLine(sh.stderr.String())
			if last == "" {
				last = "no message from ssh"
			}
			return out, true, fmt.Errorf("%s: the session ended before the command finished: %s", where, last)
		case <-ctx.Done():
			out := Output{ExitCode: -1, Elapsed: time.Since(start)}
			sh.cutOff(id)
			return out, true, fmt.Errorf("command cut off after %s: %w", out.Elapsed.Round(time.Millisecond), ctx.Err())
		}
	}
}

// cutOff kills the command id and waits for the shell to confirm it has
// gone; a shell that does not confirm in time is given up, and, when its
// connection ends, kills the command itself.
func (sh *shell) cutOff(id int) {
	if _, err := fmt.Fprintf(sh.stdin, "K %d\n", id); err != nil {
		sh.kill()
		return
	}
	limit := time.NewTimer(shellKillWait)
	defer limit.Stop()
	for {
		select {
		case f := <-sh.frames:
			if f.op == 'X' && f.id == id {
				return
			}
		case <-sh.gone:
			return
		case <-limit.C:
			sh.kill()
			return
		}
	}
}

// kill ends the shell's ssh at once: its end is the host's sign to kill
// what the shell runs.
func (sh *shell) kill() {
	sh.closing.Do(func() {
		if sh.stdin != nil {
			_ = sh.stdin.Close()
		}
		if sh.cmd != nil && sh.cmd.Process != nil {
			_ = syscall.Kill(-sh.cmd.Process.Pid, syscall.SIGKILL)
		}
	})
}

// close ends the shell: the end of its input makes it exit; one that
// does not within masterExitWait is killed.
func (sh *shell) close() {
	<-sh.ready
	if sh.stdin != nil {
		_ = sh.stdin.Close()
	}
	select {
	case <-sh.gone:
	case <-time.After(masterExitWait):
		sh.kill()
		<-sh.gone
	}
}

// lastLine is the last non-blank line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
