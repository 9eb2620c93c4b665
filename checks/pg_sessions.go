package checks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "pg.no_blocking_sessions",
		Doc:  "no client session on a node holds a lock or keeps a transaction open longer than max_xact_age",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "inventory node to look at, usually the candidate about to be promoted"},
			{Name: "max_xact_age", Type: params.Duration, Default: "5s",
				Doc: "a transaction open longer than this counts even when it holds no lock"},
		},
		New: newNoBlockingSessions,
	})
}

// NoBlockingSessions passes when no client session on Node holds a lock
// (advisory locks included) or keeps a transaction open longer than
// MaxXactAge. A background script holding a lock on the new primary is what
// stalled Chargify's failover (seeds/003); this check finds such a session
// before the switch instead of after it.
type NoBlockingSessions struct {
	Node       string
	MaxXactAge time.Duration
}

var _ Check = (*NoBlockingSessions)(nil)

// secondLook is how long the check looks again at the sessions it found:
// a lock that is gone by then was a query in flight (a monitoring scrape,
// a sibling check), not a session that can stall a promotion. It looks
// every lookAgainEvery, and is done as soon as they are gone: inside the
// window the first look often catches the run's own sibling check between
// pg_stat_activity and pg_locks, gone a millisecond later.
const (
	secondLook     = 250 * time.Millisecond
	lookAgainEvery = 2 * time.Millisecond
)

// lookAgain lists again, every lookAgainEvery, what the first look found,
// until none of it is left (same says whether an item listed now is one
// found at first) or secondLook has passed. It returns what is still
// there at the last look, how long it looked, and the last list's error.
func lookAgain[T any](ctx context.Context, first []T, same func(now, before T) bool, list func() ([]T, error)) ([]T, time.Duration, error) {
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil, time.Since(start), ctx.Err()
		case <-time.After(lookAgainEvery):
		}
		now, err := list()
		var still []T
		for _, x := range now {
			if slices.ContainsFunc(first, func(b T) bool { return same(x, b) }) {
				still = append(still, x)
			}
		}
		if err != nil || len(still) == 0 || time.Since(start) >= secondLook {
			return still, time.Since(start), err
		}
	}
}

func newNoBlockingSessions(v params.Values) (Check, error) {
	c := &NoBlockingSessions{Node: v.Node("node"), MaxXactAge: v.Duration("max_xact_age")}
	if c.Node == "" {
		return nil, errors.New("node is empty")
	}
	return c, nil
}

// Describe implements Check.
func (c *NoBlockingSessions) Describe(*cluster.Target) string {
	return fmt.Sprintf("no session on %s holds a lock or keeps a transaction open longer than %s", c.Node, c.MaxXactAge)
}

// Run implements Check. Sessions found at a first look are looked at again
// a moment later; only those still there count.
func (c *NoBlockingSessions) Run(ctx context.Context, t *cluster.Target) Result {
	conn, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(conn)
	first, err := pg.BlockingSessions(ctx, conn, c.MaxXactAge)
	if err != nil {
		return Errored(fmt.Errorf("list sessions on %s: %s", c.Node, queryProblem(ctx, err)))
	}
	var sessions []pg.Session
	var gone time.Duration
	if len(first) > 0 {
		sessions, gone, err = lookAgain(ctx, first, func(now, before pg.Session) bool { return now.PID == before.PID },
			func() ([]pg.Session, error) { return pg.BlockingSessions(ctx, conn, c.MaxXactAge) })
		if err != nil {
			return Errored(fmt.Errorf("list sessions on %s: %s", c.Node, queryProblem(ctx, err)))
		}
	}
	pids := make([]int, len(sessions))
	lines := make([]string, len(sessions))
	for i, s := range sessions {
		pids[i], lines[i] = s.PID, s.String()
	}
	values := map[string]any{"count": len(sessions), "pids": pids}
	what := fmt.Sprintf("holding a lock or a transaction open longer than %s", c.MaxXactAge)
	if len(sessions) == 0 {
		observed := fmt.Sprintf("no session on %s holds a lock or has a transaction open longer than %s", c.Node, c.MaxXactAge)
		if len(first) > 0 {
			observed += fmt.Sprintf(" (what %s held at a first look was gone %s later)", plural(len(first), "session"), roundDuration(gone))
		}
		r := Passed(observed)
		r.Values = values
		return r
	}
	holds := "holds a lock or has a transaction"
	if len(sessions) > 1 {
		holds = "hold locks or have transactions"
	}
	r := Failed(fmt.Sprintf("%s on %s %s open longer than %s (pid %s)", plural(len(sessions), "session"), c.Node,
		holds, c.MaxXactAge, joinInts(pids)),
		fmt.Sprintf("no session on %s %s: such a session can stall %s once it is promoted", c.Node, what, c.Node))
	r.Detail = strings.Join(lines, "\n")
	r.Values = values
	return r
}

// joinInts lists numbers for a message: 12, 345.
func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}
