package steps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "pg.promote",
		Doc:  "promotes a standby to primary with pg_promote and waits until recovery has ended",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: nodeSpecDoc},
			{Name: "wait", Type: params.Duration, Default: "60s", Doc: "how long pg_promote waits for recovery to end (wait_seconds, whole seconds)"},
		},
		New: func(v params.Values) (Step, error) {
			return &PGPromote{Node: v.Node("node"), Wait: v.Duration("wait")}, nil
		},
	})
}

// PGPromote is a step that ends a standby's recovery: it becomes a primary on
// a new timeline and accepts writes. In a switchover it is the point of no
// return.
type PGPromote struct {
	Node string
	Wait time.Duration
}

var _ Step = (*PGPromote)(nil)

// sql signals the promotion if the node is in recovery, in one round trip:
// NULL when it is not, else pg_promote's answer. pg_promote(wait => true)
// would look for the end of recovery every 100 ms; the step asks every
// 2 ms instead, with the same deadline, which takes up to a tenth of a
// second off the time clients cannot write.
func (p *PGPromote) sql() string {
	return "SELECT CASE WHEN pg_is_in_recovery() THEN pg_promote(wait => false) END"
}

// wakeEvery bounds how often the step wakes a startup process that sleeps
// out wal_retrieve_retry_interval (see retryWait).
const wakeEvery = 50 * time.Millisecond

// pollSQL is asked until recovery has ended: whether it has, and what the
// startup process waits for.
const pollSQL = "SELECT pg_is_in_recovery(), coalesce((SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'startup'), '')"

// retryWait is the wait event of a startup process sleeping out
// wal_retrieve_retry_interval after its WAL source failed.
//
// A standby whose WAL receiver has just lost the old primary (it stopped
// a moment before) sleeps out wal_retrieve_retry_interval, 5 s unless set,
// before it tries the next WAL source, and it acts on a promotion only
// between sources: signalled in that moment, the promotion waited those
// seconds with clients held (seen 2 switchovers in 12 on a busy host,
// "received promote request" followed by "waiting for WAL to become
// available" and then 5 s of nothing). A reload wakes it (its SIGHUP sets
// the latch it sleeps on), and it promotes at once. The playbooks reload
// the candidate's configuration in the run already (its synchronous
// standbys); this reload changes nothing else.
const retryWait = "RecoveryRetrieveRetryInterval"

// Describe implements Step.
func (p *PGPromote) Describe(t *cluster.Target) Effect {
	return Effect{Node: nodeWhere(t, p.Node), Command: fmt.Sprintf("%s; then SELECT pg_is_in_recovery() every 2ms until false, at most %ds; SELECT pg_reload_conf() should its startup process sleep out wal_retrieve_retry_interval (it wakes it)", p.sql(), waitSeconds(p.Wait)),
		Changes: fmt.Sprintf("ends recovery on %s: it becomes a primary on a new timeline and accepts writes; other nodes must follow it", p.Node)}
}

// Apply implements Step. A node that is already a primary is refused: that
// is either a resumed run the postconditions settle, or the wrong node.
func (p *PGPromote) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("promote %q: %w", p.Node, err) }
	n, err := t.Node(p.Node)
	if err != nil {
		return fail(err)
	}
	// The server stops waiting by itself after wait_seconds; the statement
	// timeout only keeps a hung promotion from outliving the step.
	timeout := time.Duration(waitSeconds(p.Wait))*time.Second + 10*time.Second
	if r := remaining(ctx); r > 0 {
		timeout = min(timeout, r)
	}
	conn, err := connectNode(ctx, t, n, timeout)
	if err != nil {
		return fail(err)
	}
	defer closeConn(conn)
	start := time.Now()
	var signalled *bool
	if err := conn.QueryRow(ctx, p.sql()).Scan(&signalled); err != nil {
		return fail(fmt.Errorf("pg_promote: %w (the promotion may still complete: check the node's role)", err))
	}
	switch {
	case signalled == nil:
		return fail(errors.New("it is not in recovery: it is a primary already; nothing done"))
	case !*signalled:
		return fail(errors.New("pg_promote could not signal the promotion; nothing done"))
	}
	var recovery bool
	deadline := start.Add(time.Duration(waitSeconds(p.Wait)) * time.Second)
	var woken int
	var lastWake time.Time
	for {
		var wait string
		if err := conn.QueryRow(ctx, pollSQL).Scan(&recovery, &wait); err != nil {
			return fail(fmt.Errorf("promotion signalled, but asking whether recovery ended failed: %w (check the node's role)", err))
		}
		if !recovery {
			break
		}
		if wait == retryWait && time.Since(lastWake) >= wakeEvery {
			if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
				return fail(fmt.Errorf("promotion signalled; the startup process sleeps out wal_retrieve_retry_interval, and waking it with pg_reload_conf() failed: %w (check the node's role)", err))
			}
			woken++
			lastWake = time.Now()
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("recovery did not end within %ds; the promotion may still complete: check the node's role", waitSeconds(p.Wait)))
		}
		select {
		case <-ctx.Done():
			return fail(fmt.Errorf("promotion signalled, but %w before recovery ended (check the node's role)", ctx.Err()))
		case <-time.After(2 * time.Millisecond):
		}
	}
	st, err := pg.Inspect(ctx, conn)
	if err != nil {
		return fail(fmt.Errorf("promoted, but inspecting the new primary failed: %w", err))
	}
	if woken > 0 {
		t.Print(fmt.Sprintf("%s's startup process was sleeping out wal_retrieve_retry_interval when the promotion was signalled: woken with pg_reload_conf()", p.Node))
	}
	t.Print(fmt.Sprintf("%s is a primary now, on timeline %d at %s (promotion took %s)",
		p.Node, st.Timeline, st.CurrentLSN, since(start)))
	return nil
}

// Promotes implements kinds.Promoter.
func (s *PGPromote) Promotes() string { return s.Node }
