package steps

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
)

// The pg_controldata fields and states the stop, start and follow steps read.
const (
	controlState      = "Database cluster state"
	controlCheckpoint = "Latest checkpoint location"
	controlTimeline   = "Latest checkpoint's TimeLineID"
	stateShutDown     = "shut down"             // a primary stopped cleanly
	stateShutDownRecv = "shut down in recovery" // a standby stopped cleanly
)

func init() {
	Register(Definition{
		Kind: "pg.stop",
		Doc:  "stops a node's server cleanly and records its shutdown checkpoint LSN",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: nodeSpecDoc},
			{Name: "mode", Type: params.String, Default: "fast", Enum: []string{"fast", "smart"},
				Doc: "pg_ctl's shutdown mode: fast rolls back open transactions and disconnects clients; smart waits for clients to leave"},
			{Name: "wait", Type: params.Duration, Default: "60s", Doc: "how long pg_ctl waits for the shutdown (-t)"},
			{Name: "command", Type: params.String,
				Doc: `shell command that stops the server instead of pg_ctl, e.g. "sudo systemctl stop postgresql@15-main"; the clean shutdown is still checked with pg_controldata`},
		},
		New: func(v params.Values) (Step, error) {
			return &PGStop{
				Node:    v.Node("node"),
				Mode:    v.String("mode"),
				Wait:    v.Duration("wait"),
				Command: strings.TrimSpace(v.String("command")),
			}, nil
		},
	})
}

// PGStop is a step that shuts a node's server down cleanly and proves it did:
// pg_controldata must say "shut down" (a primary) or "shut down in
// recovery" (a standby). It records the shutdown checkpoint's LSN as the
// fact <node>.shutdown_lsn: a standby that has replayed past it holds every
// commit the stopped primary acknowledged. Stopping a server that is
// already stopped cleanly does nothing and succeeds.
type PGStop struct {
	Node    string
	Mode    string // "fast" or "smart"
	Wait    time.Duration
	Command string // replaces pg_ctl stop when set
}

var _ Step = (*PGStop)(nil)

// stopCommand is the command line that stops the server. pg_ctl's own
// wait (-w) looks for the end of the shutdown every 100 ms; this script
// signals it (-W) and looks every 5 ms, then reads the control file in the
// same call, so a stop costs the shutdown itself and one round trip.
func (s *PGStop) stopCommand(n *cluster.Node) string {
	if s.Command != "" {
		return s.Command
	}
	pid := transport.ShellQuote(path.Join(dataDir(n), "postmaster.pid"))
	return fmt.Sprintf("if [ -e %[1]s ]; then %[2]s stop -D %[3]s -m %[4]s -W || exit $?; n=0; "+
		"while [ -e %[1]s ]; do n=$((n+1)); if [ $n -gt %[5]d ]; then echo \"still running after %[6]ds\" >&2; exit 3; fi; sleep 0.005; done; "+
		"else echo %[7]s; fi; %[8]s",
		pid, transport.ShellQuote(binPath(n, "pg_ctl")), transport.ShellQuote(dataDir(n)), s.Mode, waitSeconds(s.Wait)*200, waitSeconds(s.Wait), notRunning, controlDataCommand(n))
}

// notRunning is what the stop script prints when no server ran.
const notRunning = "switchover:not-running"

// Describe implements Step.
func (s *PGStop) Describe(t *cluster.Target) Effect {
	n, _ := t.Node(s.Node)
	how := "fast: open transactions are rolled back and clients disconnected"
	if s.Mode == "smart" {
		how = "smart: it waits for every client to disconnect first"
	}
	if s.Command != "" {
		how = "with the given command"
	}
	return Effect{Node: nodeWhere(t, s.Node), Command: s.stopCommand(n),
		Changes: fmt.Sprintf("stops PostgreSQL on %s (%s); then %s must report a clean shutdown, and its latest checkpoint location is recorded as %s.shutdown_lsn",
			s.Node, how, controlDataCommand(n), s.Node)}
}

// controlDataCommand is the command line that reads n's control file, in
// English whatever the host's locale.
func controlDataCommand(n *cluster.Node) string {
	return fmt.Sprintf("LC_ALL=C %s -D %s", transport.ShellQuote(binPath(n, "pg_controldata")), transport.ShellQuote(dataDir(n)))
}

// controlData runs pg_controldata on n's host and parses what it printed.
func controlData(ctx context.Context, ex transport.Executor, n *cluster.Node) (map[string]string, error) {
	out, err := run(ctx, ex, "pg_controldata", controlDataCommand(n))
	if err != nil {
		return nil, err
	}
	cd := pg.ParseControlData(out.Stdout)
	if cd[controlState] == "" {
		return nil, fmt.Errorf("pg_controldata printed no %q", controlState)
	}
	return cd, nil
}

// cleanlyShutDown reports whether a control file's state is a clean
// shutdown.
func cleanlyShutDown(cd map[string]string) bool {
	st := cd[controlState]
	return st == stateShutDown || st == stateShutDownRecv
}

// Apply implements Step.
func (s *PGStop) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("stop %q: %w", s.Node, err) }
	n, ex, err := hostNode(t, s.Node)
	if err != nil {
		return fail(err)
	}
	if s.Command != "" {
		return s.applyCommand(ctx, t, ex, n)
	}
	out, err := ex.Run(ctx, s.stopCommand(n))
	if err != nil {
		return fail(fmt.Errorf("pg_ctl stop: %w", err))
	}
	if out.ExitCode != 0 {
		printOutput(t, out)
		err := errorWithLast(fmt.Sprintf("pg_ctl stop exited %d", out.ExitCode), out)
		if out.ExitCode == 3 {
			// The shutdown began and did not end: the server refuses new
			// connections and, in smart mode, waits for every client to
			// leave. It is left so (still serving the sessions it has); a
			// pg.start, as the rollback runs it, finishes the shutdown fast
			// and starts the server again.
			err = fmt.Errorf("%w; the server is still shutting down (%s mode) and refuses new connections: pg.start finishes the shutdown fast and starts it again", err, s.Mode)
		}
		return fail(err)
	}
	wasRunning := !strings.HasPrefix(out.Stdout, notRunning)
	cd := pg.ParseControlData(out.Stdout)
	if cd[controlState] == "" {
		return fail(fmt.Errorf("pg_controldata printed no %q", controlState))
	}
	if !wasRunning {
		// Nothing ran. That is done only if the last shutdown was clean; a
		// crashed server is not "stopped" for us.
		if !cleanlyShutDown(cd) {
			return fail(fmt.Errorf("no server runs, but it was not shut down cleanly (pg_controldata: %q): it crashed or was killed; nothing done", cd[controlState]))
		}
		t.Print(fmt.Sprintf("%s is already stopped cleanly (pg_controldata: %s); nothing to do", s.Node, cd[controlState]))
		return s.record(t, cd)
	}
	if !cleanlyShutDown(cd) {
		return fail(fmt.Errorf("pg_ctl stop succeeded, but pg_controldata says %q, not a clean shutdown", cd[controlState]))
	}
	t.Print(fmt.Sprintf("%s shut down cleanly (pg_controldata: %s)", s.Node, cd[controlState]))
	return s.record(t, cd)
}

// applyCommand stops the server with the runbook's own command (systemctl,
// say), then checks the control file.
func (s *PGStop) applyCommand(ctx context.Context, t *cluster.Target, ex transport.Executor, n *cluster.Node) error {
	fail := func(err error) error { return fmt.Errorf("stop %q: %w", s.Node, err) }
	out, err := ex.Run(ctx, s.Command)
	printOutput(t, out)
	switch {
	case err != nil:
		return fail(fmt.Errorf("stop command: %w", err))
	case out.ExitCode != 0:
		return fail(errorWithLast(fmt.Sprintf("stop command exited %d", out.ExitCode), out))
	}
	cd, err := controlData(ctx, ex, n)
	if err != nil {
		return fail(fmt.Errorf("stop command succeeded, but checking the shutdown failed: %w", err))
	}
	if !cleanlyShutDown(cd) {
		return fail(fmt.Errorf("stop command succeeded, but pg_controldata says %q, not a clean shutdown", cd[controlState]))
	}
	t.Print(fmt.Sprintf("%s shut down cleanly (pg_controldata: %s)", s.Node, cd[controlState]))
	return s.record(t, cd)
}

func (s *PGStop) record(t *cluster.Target, cd map[string]string) error {
	lsn, err := pg.ParseLSN(cd[controlCheckpoint])
	if err != nil {
		return fmt.Errorf("stop %q: pg_controldata's %q: %w", s.Node, controlCheckpoint, err)
	}
	key := s.Node + ".shutdown_lsn"
	if t.Facts != nil {
		t.Facts.Set(key, lsn.String())
	}
	t.Print(fmt.Sprintf("shutdown checkpoint of %s at %s on timeline %s (fact %s)", s.Node, lsn, cd[controlTimeline], key))
	return nil
}
