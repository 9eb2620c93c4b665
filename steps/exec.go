package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/transport"
)

// maxPrintedLines caps how many lines of a command's output an exec step
// sends to the observer, so a chatty command cannot drown the run's report.
const maxPrintedLines = 200

func init() {
	Register(Definition{
		Kind: "exec",
		Doc:  "runs a shell command on this machine or on the host of an inventory node",
		Params: []params.Spec{
			{Name: "command", Type: params.String, Required: true, Doc: "the shell command, run with /bin/sh -c"},
			{Name: "node", Type: params.Node, Doc: "inventory node whose host runs the command; empty for this machine"},
		},
		New: func(v params.Values) (Step, error) {
			e := &Exec{Command: v.String("command"), Node: v.Node("node")}
			if strings.TrimSpace(e.Command) == "" {
				return nil, errors.New(`parameter "command" is empty`)
			}
			return e, nil
		},
	})
}

// Exec is a step that runs one shell command, for the actions no dedicated
// step kind covers yet (notify a chat room, copy a file, reload a service).
type Exec struct {
	Command string
	Node    string // inventory node whose host runs Command; "" is this machine
}

var _ Step = (*Exec)(nil)

// Describe implements Step.
func (e *Exec) Describe(t *cluster.Target) Effect {
	return Effect{Node: e.where(t), Command: e.Command, Changes: "runs a shell command"}
}

// where names the host for plans: "local", or "pg1 (local)" for a node.
func (e *Exec) where(t *cluster.Target) string {
	if e.Node == "" {
		return "local"
	}
	ex, err := executor(t, e.Node)
	if err != nil {
		return fmt.Sprintf("%s (%v)", e.Node, err)
	}
	return fmt.Sprintf("%s (%s)", e.Node, ex.Where())
}

// Apply implements Step. Every line the command printed goes to t.Print,
// stdout first, then stderr, whether or not the command succeeded.
func (e *Exec) Apply(ctx context.Context, t *cluster.Target) error {
	ex, err := executor(t, e.Node)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("command not started: %w", err)
	}
	out, err := ex.Run(ctx, e.Command)
	printOutput(t, out)
	if err != nil {
		return err
	}
	switch {
	case out.ExitCode == 0:
		return nil
	case out.ExitCode < 0:
		return errorWithLast("command killed by a signal", out)
	}
	return errorWithLast(fmt.Sprintf("command exited %d", out.ExitCode), out)
}

// executor is Target.Executor that also accepts a nil target, which has no
// inventory.
func executor(t *cluster.Target, node string) (transport.Executor, error) {
	if t == nil {
		var c *cluster.Cluster
		return c.Executor(node)
	}
	return t.Executor(node)
}

// errorWithLast adds the last line of stderr (or, when stderr is empty, of
// stdout) to msg: it is usually the line that says what went wrong.
func errorWithLast(msg string, out transport.Output) error {
	for _, s := range []string{out.Stderr, out.Stdout} {
		if lines := splitLines(s); len(lines) > 0 {
			return fmt.Errorf("%s: %s", msg, lines[len(lines)-1])
		}
	}
	return errors.New(msg)
}

// printOutput sends stdout then stderr to t.Print, line by line, up to
// maxPrintedLines lines, then one line saying how many more were left out.
func printOutput(t *cluster.Target, out transport.Output) {
	lines := append(splitLines(out.Stdout), splitLines(out.Stderr)...)
	shown := min(len(lines), maxPrintedLines)
	for _, l := range lines[:shown] {
		t.Print(l)
	}
	if rest := len(lines) - shown; rest > 0 {
		t.Print(fmt.Sprintf("[%d more lines not shown]", rest))
	}
}

// splitLines splits s into lines without their line endings and drops
// trailing blank lines; an empty s has no lines.
func splitLines(s string) []string {
	s = strings.TrimRight(s, "\r\n\t ")
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}
