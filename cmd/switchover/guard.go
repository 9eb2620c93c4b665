package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/runbook"
)

// guardCommand is the hidden command a run starts, detached, before it holds
// clients; see runbook.Guard.
const guardCommand = "__guard"

// canGuard is true in the switchover program itself, which a guard runs
// again; a test calling execute in its own process keeps the budget
// without a guard.
var canGuard bool

func newGuardCmd(io *streams) *cobra.Command {
	return &cobra.Command{
		Use:    guardCommand,
		Short:  "Resume the pooler if the run that paused it dies or overruns its budget (started by run itself)",
		Hidden: true,
		Args:   exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			// The guard outlives the terminal and the run: hang-ups and
			// interrupts meant for the run are not for it.
			signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
			r := bufio.NewReader(io.in)
			line, err := r.ReadBytes('\n')
			if err != nil {
				return fmt.Errorf("guard: read its instructions: %w", err)
			}
			var spec runbook.GuardSpec
			if err := json.Unmarshal(line, &spec); err != nil {
				return fmt.Errorf("guard: read its instructions: %w", err)
			}
			return runbook.Guard(context.Background(), spec, r)
		},
	}
}

// startGuard starts a guard process for spec: this same program, in a
// session of its own (no terminal, so a hang-up does not reach it), told
// its instructions on a pipe that stays open while this process lives.
// The returned function tells the guard the clients go on.
func startGuard(spec runbook.GuardSpec) (release func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start the guard: %w", err)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("start the guard: %w", err)
	}
	defer devnull.Close()
	cmd := exec.Command(self, guardCommand)
	cmd.Stdout, cmd.Stderr = devnull, devnull
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start the guard: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the guard: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	b, _ := json.Marshal(spec)
	if _, err := w.Write(append(b, '\n')); err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("start the guard: %w", err)
	}
	done := false
	return func() {
		if done {
			return
		}
		done = true
		_, _ = io.WriteString(w, runbook.GuardRelease+"\n")
		_ = w.Close()
	}, nil
}
