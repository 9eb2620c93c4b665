package steps

import (
	"context"
	"fmt"
	"math"
	"path"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
)

// This file holds what the PostgreSQL steps share: finding a node in the
// inventory and resolving its conninfo, naming it for plans, connecting to
// it, and building its command lines.

// nodeSpecDoc documents the node parameter of the PostgreSQL steps.
const nodeSpecDoc = "inventory node the step acts on"

// nodeWhere names a node for plans and prompts, with the host its commands
// run on: "pg1 (local as postgres)". It never fails: what is wrong with the
// inventory is shown in place of the host.
func nodeWhere(t *cluster.Target, node string) string {
	ex, err := executor(t, node)
	if err != nil {
		return fmt.Sprintf("%s (%v)", node, err)
	}
	return fmt.Sprintf("%s (%s)", node, ex.Where())
}

// nodeConninfo resolves the inventory conninfo of node to the one server
// it names, which is what the steps write onto other servers.
func nodeConninfo(t *cluster.Target, node string) (conninfo.Resolved, error) {
	n, err := t.Node(node)
	if err != nil {
		return conninfo.Resolved{}, err
	}
	r, err := conninfo.Resolve(n.Conninfo)
	if err != nil {
		return conninfo.Resolved{}, fmt.Errorf("conninfo of %q: %w", node, err)
	}
	return r, nil
}

// needDataDir fails when the inventory gives no data directory for n, which
// the steps that run PostgreSQL's tools on its host need.
func needDataDir(n *cluster.Node) error {
	if strings.TrimSpace(n.DataDir) == "" {
		return fmt.Errorf("the inventory gives no data_dir for node %q", n.Name)
	}
	return nil
}

// hostNode returns an inventory node that has a data directory, and the
// executor of its host: what a step needs that runs pg_ctl and friends.
func hostNode(t *cluster.Target, name string) (*cluster.Node, transport.Executor, error) {
	n, err := t.Node(name)
	if err != nil {
		return nil, nil, err
	}
	if err := needDataDir(n); err != nil {
		return nil, nil, err
	}
	ex, err := t.Executor(name)
	if err != nil {
		return nil, nil, err
	}
	return n, ex, nil
}

// dataDir returns n's data directory, or a placeholder for plans.
func dataDir(n *cluster.Node) string {
	if n == nil || n.DataDir == "" {
		return "<data_dir>"
	}
	return n.DataDir
}

// binPath returns the path of one of PostgreSQL's programs on n's host: in
// its bin_dir, or found on the PATH when the inventory gives none.
func binPath(n *cluster.Node, program string) string {
	if n == nil || n.BinDir == "" {
		return program
	}
	return path.Join(n.BinDir, program)
}

// sqlQuote renders s as an SQL string literal (standard_conforming_strings
// on, the default since PostgreSQL 9.1). postgresql.auto.conf uses the same
// form for its values.
func sqlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// waitSeconds turns a wait into the whole seconds pg_ctl -t and pg_promote
// take, rounding up and never below one.
func waitSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// remaining is how long ctx has left, or 0 when it has no deadline. Steps
// use it as the statement timeout, so that a statement cut off by ctx stops
// on the server too and does not run on behind the operator's back.
func remaining(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return max(time.Until(dl), time.Millisecond)
}

// connectNode opens a connection to node with its inventory conninfo.
func connectNode(ctx context.Context, t *cluster.Target, n *cluster.Node, statementTimeout time.Duration) (*pgx.Conn, error) {
	var cache *pg.Cache
	if t != nil {
		cache = pg.SessionCache(t.Session)
	}
	conn, err := pg.GetVia(cache, ctx, n.Conninfo, statementTimeout)
	if err != nil {
		return nil, fmt.Errorf("connect to %q: %w", n.Name, err)
	}
	return conn, nil
}

// closeConn closes a connection without waiting long on a peer that has
// gone away.
func closeConn(conn *pgx.Conn) { pg.Release(conn) }

// run runs command through ex, prints nothing, and turns a non-zero exit
// into an error that names what ran (what, e.g. "pg_ctl stop") and the last
// line it printed.
func run(ctx context.Context, ex transport.Executor, what, command string) (transport.Output, error) {
	out, err := ex.Run(ctx, command)
	if err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	if out.ExitCode != 0 {
		return out, errorWithLast(fmt.Sprintf("%s exited %d", what, out.ExitCode), out)
	}
	return out, nil
}

// pgCtlStatusCommand is the command line that asks whether n's server runs.
func pgCtlStatusCommand(n *cluster.Node) string {
	return fmt.Sprintf("%s status -D %s", transport.ShellQuote(binPath(n, "pg_ctl")), transport.ShellQuote(dataDir(n)))
}

// serverRunning asks pg_ctl status whether n's postmaster runs: exit 0 is
// running, 3 is not running; anything else (4: no data directory) is an
// error.
func serverRunning(ctx context.Context, ex transport.Executor, n *cluster.Node) (bool, error) {
	out, err := ex.Run(ctx, "LC_ALL=C "+pgCtlStatusCommand(n))
	if err != nil {
		return false, fmt.Errorf("pg_ctl status: %w", err)
	}
	switch out.ExitCode {
	case 0:
		return true, nil
	case 3:
		return false, nil
	}
	return false, errorWithLast(fmt.Sprintf("pg_ctl status exited %d", out.ExitCode), out)
}

// pgCtlStartCommand is the command line that starts n's server and waits
// until it accepts connections.
func pgCtlStartCommand(n *cluster.Node, wait time.Duration, logFile string) string {
	return fmt.Sprintf("%s start -D %s -w -t %d -l %s",
		transport.ShellQuote(binPath(n, "pg_ctl")), transport.ShellQuote(dataDir(n)), waitSeconds(wait), transport.ShellQuote(logFile))
}

// defaultStartLog is where pg_ctl start sends the server's output when the
// runbook does not say.
func defaultStartLog(n *cluster.Node) string { return path.Join(dataDir(n), "switchover-start.log") }

// printLogTail prints the last lines of a server log after a failed start,
// since pg_ctl itself only says to look there.
func printLogTail(ctx context.Context, t *cluster.Target, ex transport.Executor, logFile string) {
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	out, err := ex.Run(tctx, "tail -n 10 "+transport.ShellQuote(logFile))
	if err != nil || out.ExitCode != 0 {
		return
	}
	t.Print("last lines of " + logFile + ":")
	for _, l := range splitLines(out.Stdout) {
		t.Print("  " + l)
	}
}

// poll calls probe every interval until it reports done, returns an error,
// or ctx ends; then the error says what the last probe saw. A probe cut
// short by ctx's end saw only that end: the one before it says what the
// node showed.
func poll(ctx context.Context, interval time.Duration, probe func(ctx context.Context) (done bool, seen string, err error)) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var seen string
	for {
		done, s, err := probe(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if ctx.Err() == nil || seen == "" {
			seen = s
		}
		select {
		case <-ctx.Done():
			if seen != "" {
				return fmt.Errorf("%s: %w", seen, ctx.Err())
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// since says how long ago start was, for output: "12ms", or "under 1ms".
func since(start time.Time) string {
	d := time.Since(start)
	if d < time.Millisecond {
		return "under 1ms"
	}
	return d.Round(time.Millisecond).String()
}
