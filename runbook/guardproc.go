package runbook

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// GuardCommand is the argument with which a program that serves guards
// (ServeGuards) is started again as the guard of one of its runs.
const GuardCommand = "__guard"

// servesGuards is set by ServeGuards: runs of this process start their
// guard as this same program. A process that never called it (a test
// binary, a tool that only plans) keeps the budget without a guard.
var servesGuards atomic.Bool

// ServeGuards makes the calling program the one its runs start again as
// their guard, so that whoever runs a plan gets the guard from the same
// entry point the CLI uses. A program's main calls it before anything
// else: when the program was started as a guard (args[0] is GuardCommand),
// it runs the guard on stdin's instructions and returns served with the
// exit code for main to exit with; otherwise it notes that this process's
// runs may start guards and returns served false.
func ServeGuards(args []string, stdin io.Reader, stderr io.Writer) (served bool, code int) {
	if len(args) == 0 || args[0] != GuardCommand {
		servesGuards.Store(true)
		return false, 0
	}
	// The guard outlives the terminal and the run: hang-ups and
	// interrupts meant for the run are not for it.
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	r := bufio.NewReader(stdin)
	line, err := r.ReadBytes('\n')
	var spec GuardSpec
	if err == nil {
		err = json.Unmarshal(line, &spec)
	}
	if err != nil {
		fmt.Fprintf(stderr, "guard: read its instructions: %v\n", err)
		return true, 1
	}
	if err := Guard(context.Background(), spec, r); err != nil {
		fmt.Fprintf(stderr, "guard: %v\n", err)
		return true, 1
	}
	return true, 0
}

// startGuardProcess starts a guard for spec: this same program started
// with GuardCommand, in a session of its own (no terminal, so a hang-up
// does not reach it), told its instructions on a pipe that stays open
// while this process lives. The returned function tells the guard the
// clients go on.
func startGuardProcess(spec GuardSpec) (release func(), err error) {
	fail := func(err error) (func(), error) { return nil, fmt.Errorf("start the guard: %w", err) }
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fail(err)
	}
	defer devnull.Close()
	cmd := exec.Command(self, GuardCommand)
	cmd.Stdout, cmd.Stderr = devnull, devnull
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	w, err := cmd.StdinPipe()
	if err != nil {
		return fail(err)
	}
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	go func() { _ = cmd.Wait() }()
	b, _ := json.Marshal(spec)
	if _, err := w.Write(append(b, '\n')); err != nil {
		_ = cmd.Process.Kill()
		return fail(err)
	}
	done := false
	return func() {
		if done {
			return
		}
		done = true
		_, _ = io.WriteString(w, GuardRelease+"\n")
		_ = w.Close()
	}, nil
}
