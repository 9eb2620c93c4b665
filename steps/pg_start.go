package steps

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/transport"
)

func init() {
	Register(Definition{
		Kind: "pg.start",
		Doc:  "starts a node's server and waits until it accepts connections",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: nodeSpecDoc},
			{Name: "wait", Type: params.Duration, Default: "60s", Doc: "how long pg_ctl waits for the server to accept connections (-t)"},
			{Name: "log", Type: params.String, Doc: "file on the node's host that receives the server's output (-l); default <data_dir>/switchover-start.log"},
			{Name: "command", Type: params.String,
				Doc: `shell command that starts the server instead of pg_ctl, e.g. "sudo systemctl start postgresql@15-main"; pg_ctl status must say it runs afterwards`},
		},
		New: func(v params.Values) (Step, error) {
			return &PGStart{
				Node:    v.Node("node"),
				Wait:    v.Duration("wait"),
				Log:     strings.TrimSpace(v.String("log")),
				Command: strings.TrimSpace(v.String("command")),
			}, nil
		},
	})
}

// PGStart is a step that starts a node's server, in the role its data
// directory gives it: a rollback starts the old primary again, a rejoin
// starts it as a standby. Starting a running server does nothing and
// succeeds, unless it is shutting down (a smart stop that timed out leaves
// it so, refusing connections for as long as one client stays): then the
// shutdown is finished with a fast stop and the server started again, so
// a rollback never leaves a half-stopped primary.
type PGStart struct {
	Node    string
	Wait    time.Duration
	Log     string // "" is <data_dir>/switchover-start.log
	Command string // replaces pg_ctl start when set
}

var _ Step = (*PGStart)(nil)

func (s *PGStart) logFile(n *cluster.Node) string {
	if s.Log != "" {
		return s.Log
	}
	return defaultStartLog(n)
}

func (s *PGStart) startCommand(n *cluster.Node) string {
	if s.Command != "" {
		return s.Command
	}
	return pgCtlStartCommand(n, s.Wait, s.logFile(n))
}

// escalateCommand finishes a shutdown that began but did not end.
func (s *PGStart) escalateCommand(n *cluster.Node) string {
	return fmt.Sprintf("%s stop -D %s -m fast -w -t %d", transport.ShellQuote(binPath(n, "pg_ctl")), transport.ShellQuote(dataDir(n)), waitSeconds(s.Wait))
}

// pmStatusStopping is the postmaster's status in postmaster.pid (line 8,
// PostgreSQL 10 and later) once a shutdown, of any mode, has begun.
const pmStatusStopping = "stopping"

// postmasterStatus reads the postmaster's status from postmaster.pid:
// "starting", "stopping", "ready" or "standby"; "" when the file has no
// such line (an older server) or is gone.
func postmasterStatus(ctx context.Context, ex transport.Executor, n *cluster.Node) (string, error) {
	out, err := ex.Run(ctx, "sed -n 8p "+transport.ShellQuote(path.Join(dataDir(n), "postmaster.pid"))+" 2>/dev/null; true")
	if err != nil {
		return "", fmt.Errorf("read postmaster.pid: %w", err)
	}
	return strings.TrimSpace(out.Stdout), nil
}

// Describe implements Step.
func (s *PGStart) Describe(t *cluster.Target) Effect {
	n, _ := t.Node(s.Node)
	return Effect{Node: nodeWhere(t, s.Node), Command: s.startCommand(n),
		Changes: fmt.Sprintf("starts PostgreSQL on %s, as a primary or a standby as its data directory says (nothing when it already runs; when it is still shutting down, %s first), and waits until it accepts connections", s.Node, s.escalateCommand(n))}
}

// Apply implements Step.
func (s *PGStart) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("start %q: %w", s.Node, err) }
	n, ex, err := hostNode(t, s.Node)
	if err != nil {
		return fail(err)
	}
	running, err := s.serverRunning(ctx, t, ex, n)
	if err != nil {
		return fail(err)
	}
	if running {
		status, err := postmasterStatus(ctx, ex, n)
		if err != nil {
			return fail(err)
		}
		if status != pmStatusStopping {
			t.Unchanged(fmt.Sprintf("%s is already running (pg_ctl status); nothing to do", s.Node))
			return nil
		}
		ended, err := endLingering(ctx, t, ex, n)
		if err != nil {
			return fail(err)
		}
		if ended {
			running = false
		}
	}
	if running {
		// A shutdown began and did not finish (a smart stop that timed
		// out waits for clients that may never leave): the server refuses
		// new connections and cannot leave that state by itself. Finish
		// the shutdown fast, then start it again.
		t.Print(fmt.Sprintf("%s is running but shutting down (postmaster.pid says %q): it refuses connections; finishing the shutdown fast before starting it", s.Node, pmStatusStopping))
		out, err := ex.Run(ctx, s.escalateCommand(n))
		printOutput(t, out)
		switch {
		case err != nil:
			return fail(fmt.Errorf("pg_ctl stop -m fast: %w", err))
		case out.ExitCode != 0:
			return fail(errorWithLast(fmt.Sprintf("the server was shutting down; pg_ctl stop -m fast exited %d", out.ExitCode), out))
		}
	}
	out, err := ex.Run(ctx, s.startCommand(n))
	printOutput(t, out)
	what := "pg_ctl start"
	if s.Command != "" {
		what = "start command"
	}
	switch {
	case err != nil:
		return fail(fmt.Errorf("%s: %w", what, err))
	case out.ExitCode != 0:
		if s.Command == "" {
			printLogTail(ctx, t, ex, s.logFile(n))
		}
		return fail(errorWithLast(fmt.Sprintf("%s exited %d", what, out.ExitCode), out))
	}
	if running, err := serverRunning(ctx, ex, n); err != nil || !running {
		if err == nil {
			err = fmt.Errorf("%s succeeded, but pg_ctl status says no server runs", what)
		}
		return fail(err)
	}
	t.Print(fmt.Sprintf("%s started", s.Node))
	return nil
}

// hostRetryEvery is how often pg.start asks again a host that could not be
// reached.
const hostRetryEvery = time.Second

// serverRunning is the package's serverRunning, patient with a host that
// cannot be reached (a cut link, an ssh that does not connect: nothing ran
// there): it asks again every hostRetryEvery for up to the step's wait.
// A rollback that must start the old primary again, or find it running,
// then finishes once the host is back instead of failing at once and
// leaving the clients' route to a person, while the primary may be
// running all along.
func (s *PGStart) serverRunning(ctx context.Context, t *cluster.Target, ex transport.Executor, n *cluster.Node) (bool, error) {
	begin := time.Now()
	running, err := serverRunning(ctx, ex, n)
	if !errors.Is(err, transport.ErrConnection) {
		return running, err
	}
	t.Print(fmt.Sprintf("%s's host cannot be reached (%v): nothing was run there; asking again every %s for up to %s", s.Node, err, hostRetryEvery, s.Wait))
	for errors.Is(err, transport.ErrConnection) {
		if time.Since(begin)+hostRetryEvery > s.Wait {
			return false, fmt.Errorf("%s's host cannot be reached for %s: %w; nothing was run there", s.Node, since(begin), err)
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("%s's host cannot be reached (%w), and the step was cut off: %w", s.Node, err, ctx.Err())
		case <-time.After(hostRetryEvery):
		}
		running, err = serverRunning(ctx, ex, n)
	}
	if err == nil {
		t.Print(fmt.Sprintf("%s's host answers again, %s after the first attempt", s.Node, since(begin)))
	}
	return running, err
}
