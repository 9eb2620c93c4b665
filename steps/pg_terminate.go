package steps

import (
	"context"
	"fmt"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind:        "pg.terminate_sessions",
		Doc:         "terminates the sessions on a node that hold locks or old transactions and would stall a switchover",
		Destructive: true, // clients lose their connection and their open transaction
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: nodeSpecDoc},
			{Name: "max_xact_age", Type: params.Duration, Default: "5s",
				Doc: "a session whose transaction has been open longer than this is terminated, as is one that holds a lock (advisory locks included)"},
		},
		New: func(v params.Values) (Step, error) {
			return &PGTerminateSessions{Node: v.Node("node"), MaxXactAge: v.Duration("max_xact_age")}, nil
		},
	})
}

// PGTerminateSessions is a step that ends the client sessions that would
// stall a switchover on a node, as pg.no_blocking_sessions lists them: a
// background job holding an advisory lock on the candidate is what turned
// a routine switchover into an outage (seeds/003).
type PGTerminateSessions struct {
	Node       string
	MaxXactAge time.Duration
}

var _ Step = (*PGTerminateSessions)(nil)

// terminateGoneWithin bounds the wait for terminated backends to exit.
const terminateGoneWithin = 10 * time.Second

// terminateSQL is run once for each session to terminate.
const terminateSQL = "SELECT pg_terminate_backend($1)"

// Describe implements Step.
func (s *PGTerminateSessions) Describe(t *cluster.Target) Effect {
	return Effect{Node: nodeWhere(t, s.Node),
		Command: fmt.Sprintf("%s for each pid listed by pg.BlockingSessions: client backends, other than switchover's own, holding a granted lock (advisory locks included, their own transaction's ids excepted) or with a transaction open longer than %s (pg_stat_activity joined with pg_locks)",
			terminateSQL, s.MaxXactAge),
		Changes: fmt.Sprintf("terminates those sessions on %s: their open transactions roll back and their clients are disconnected", s.Node)}
}

// Apply implements Step. It prints each session before terminating it,
// then waits until every terminated session has gone.
func (s *PGTerminateSessions) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("terminate sessions on %q: %w", s.Node, err) }
	n, err := t.Node(s.Node)
	if err != nil {
		return fail(err)
	}
	conn, err := connectNode(ctx, t, n, remaining(ctx))
	if err != nil {
		return fail(err)
	}
	defer closeConn(conn)
	sessions, err := pg.BlockingSessions(ctx, conn, s.MaxXactAge)
	if err != nil {
		return fail(fmt.Errorf("list blocking sessions: %w", err))
	}
	if len(sessions) == 0 {
		t.Unchanged(fmt.Sprintf("no session on %s holds a lock or a transaction older than %s; nothing to do", s.Node, s.MaxXactAge))
		return nil
	}
	var pids []int
	for _, ses := range sessions {
		var ok bool
		if err := conn.QueryRow(ctx, terminateSQL, ses.PID).Scan(&ok); err != nil {
			return fail(fmt.Errorf("terminate pid %d: %w (%d of %d terminated before it)", ses.PID, err, len(pids), len(sessions)))
		}
		if !ok {
			t.Print("already gone: " + ses.String())
			continue
		}
		t.Print("terminated: " + ses.String())
		pids = append(pids, ses.PID)
	}
	// pg_terminate_backend only signals; confirm the backends are gone. A
	// backend takes a moment at most, unless it is stuck in I/O.
	gctx, cancel := context.WithTimeout(ctx, terminateGoneWithin)
	defer cancel()
	err = poll(gctx, 100*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		var left []int
		if err := conn.QueryRow(ctx, "SELECT coalesce(array_agg(pid ORDER BY pid), '{}') FROM pg_stat_activity WHERE pid = ANY($1)", pids).Scan(&left); err != nil {
			return false, "", fmt.Errorf("check the sessions are gone: %w", err)
		}
		if len(left) == 0 {
			return true, "", nil
		}
		return false, fmt.Sprintf("pids %v terminated but still present", left), nil
	})
	if err != nil {
		return fail(err)
	}
	t.Print(fmt.Sprintf("%d %s terminated on %s", len(pids), plural(len(pids), "session", "sessions"), s.Node))
	return nil
}
