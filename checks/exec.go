package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/transport"
)

func init() {
	Register(Definition{
		Kind: "exec",
		Doc:  "a shell command exits 0 on this machine or on the host of a node",
		Params: []params.Spec{
			{Name: "command", Type: params.String, Required: true,
				Doc: "shell command run with /bin/sh -c; it must only look, never change anything"},
			{Name: "node", Type: params.Node,
				Doc: "inventory node whose host runs the command; empty means this machine"},
		},
		New: newExec,
	})
}

// Exec passes when a shell command exits 0. It lets a runbook state a
// condition no built-in check covers, such as a mounted volume or a file that
// must exist. The command is trusted to be read-only.
type Exec struct {
	Command string // run with /bin/sh -c
	Node    string // inventory node whose host runs it; "" is this machine
}

var (
	_ Check        = (*Exec)(nil)
	_ RemotePoller = (*Exec)(nil)
)

func newExec(v params.Values) (Check, error) {
	c := &Exec{Command: v.String("command"), Node: v.Node("node")}
	if strings.TrimSpace(c.Command) == "" {
		return nil, errors.New("command is empty")
	}
	return c, nil
}

// Describe implements Check.
func (c *Exec) Describe(t *cluster.Target) string {
	return fmt.Sprintf("%q exits 0 on %s", c.Command, c.where())
}

// Run implements Check.
func (c *Exec) Run(ctx context.Context, t *cluster.Target) Result { return c.run(ctx, t, nil) }

// PollRemote implements RemotePoller: the command runs again on its host
// until it exits 0.
func (c *Exec) PollRemote(ctx context.Context, t *cluster.Target, p Poll) Result {
	return c.run(ctx, t, &p)
}

// run runs the command once, or polled on its host when p is set.
func (c *Exec) run(ctx context.Context, t *cluster.Target, p *Poll) Result {
	ex, err := c.executor(t)
	if err != nil {
		return Errored(fmt.Errorf("%q: %w", c.Command, err))
	}
	out, err := ex.Run(ctx, pollCommand(p, c.Command, `[ "$rc" -eq 0 ]`))
	tail := tailLines(out.Combined(), 5, 300)
	values := map[string]any{"exit_code": out.ExitCode, "elapsed": out.Elapsed.String()}
	if err != nil {
		r := Errored(fmt.Errorf("%q on %s: %w", c.Command, c.where(), err))
		r.Detail, r.Values = tail, values
		return r
	}
	if out.ExitCode == 0 {
		r := Passed(fmt.Sprintf("%q exited 0 on %s", c.Command, c.where()))
		r.Values = values
		return r
	}
	observed := fmt.Sprintf("%q exited %d on %s", c.Command, out.ExitCode, c.where())
	if tail != "" {
		observed += ": " + strings.ReplaceAll(tail, "\n", " | ")
	} else {
		observed += " with no output"
	}
	r := Failed(observed, "exit 0")
	r.Detail, r.Values = tail, values
	return r
}

// where names the host the command runs on, for messages.
func (c *Exec) where() string {
	if c.Node == "" {
		return transport.Local{}.Where()
	}
	return c.Node
}

// executor finds how to run the command; a nil target is tolerated for the
// local machine.
func (c *Exec) executor(t *cluster.Target) (transport.Executor, error) {
	if t == nil {
		var cl *cluster.Cluster
		return cl.Executor(c.Node)
	}
	return t.Executor(c.Node)
}

// tailLines returns at most the last n non-empty lines of s, trimmed, and at
// most limit bytes of them, cut at a character boundary with a leading "…".
func tailLines(s string, n, limit int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	kept := make([]string, 0, n)
	for i := len(lines) - 1; i >= 0 && len(kept) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			kept = append(kept, l)
		}
	}
	for i, j := 0, len(kept)-1; i < j; i, j = i+1, j-1 {
		kept[i], kept[j] = kept[j], kept[i]
	}
	out := strings.ToValidUTF8(strings.Join(kept, "\n"), "?")
	if len(out) <= limit {
		return out
	}
	cut := len(out) - limit
	for cut < len(out) && !utf8.RuneStart(out[cut]) {
		cut++
	}
	return "…" + out[cut:]
}
