package checks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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

// pgBSecondLook is how long the check waits before looking again at the
// sessions it found: a lock that is gone by then was a query in flight
// (a monitoring scrape, a sibling check), not a session that can stall a
// promotion.
const pgBSecondLook = 250 * time.Millisecond

func newNoBlockingSessions(v params.Values) (Check, error) {
	c := &NoBlockingSessions{Node: v.String("node"), MaxXactAge: v.Duration("max_xact_age")}
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
	conn, err := pgBConnect(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	defer pgBClose(conn)
	first, err := pg.BlockingSessions(ctx, conn, c.MaxXactAge)
	if err != nil {
		return Errored(fmt.Errorf("list sessions on %s: %s", c.Node, pgBQueryProblem(ctx, err)))
	}
	var sessions []pg.Session
	if len(first) > 0 {
		select {
		case <-ctx.Done():
			return Errored(fmt.Errorf("list sessions on %s: %s", c.Node, pgBQueryProblem(ctx, ctx.Err())))
		case <-time.After(pgBSecondLook):
		}
		again, err := pg.BlockingSessions(ctx, conn, c.MaxXactAge)
		if err != nil {
			return Errored(fmt.Errorf("list sessions on %s: %s", c.Node, pgBQueryProblem(ctx, err)))
		}
		seen := map[int]bool{}
		for _, s := range first {
			seen[s.PID] = true
		}
		for _, s := range again {
			if seen[s.PID] {
				sessions = append(sessions, s)
			}
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
			observed += fmt.Sprintf(" (what %s held at a first look was gone %s later)", plural(len(first), "session"), pgBSecondLook)
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
		holds, c.MaxXactAge, pgBJoinInts(pids)),
		fmt.Sprintf("no session on %s %s: such a session can stall %s once it is promoted", c.Node, what, c.Node))
	r.Detail = strings.Join(lines, "\n")
	r.Values = values
	return r
}

func pgBJoinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// The helpers below are shared by the pg.* checks of this set of files
// (sessions, prepared transactions, versions, settings, archiver,
// synchronous standbys).

// pgBDefaultTimeout bounds a check's statements when its context has no
// deadline.
const pgBDefaultTimeout = 5 * time.Second

// pgBTimeLeft is the time left until ctx's deadline, or
// pgBDefaultTimeout when it has none: every statement a check sends is
// bounded by it on the server too, so a check never leaves a query behind.
func pgBTimeLeft(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return pgBDefaultTimeout
	}
	// At least a millisecond: 0 would mean the server's default, unbounded.
	return max(time.Until(dl), time.Millisecond)
}

// pgBConnect connects to an inventory node, bounded by ctx. Its error
// names the node and says why, never with the connection string.
func pgBConnect(ctx context.Context, t *cluster.Target, node string) (*pgx.Conn, error) {
	if t == nil || t.Cluster == nil {
		return nil, fmt.Errorf("node %q: no inventory given", node)
	}
	n, ok := t.Cluster.Nodes[node]
	if !ok || n == nil {
		return nil, fmt.Errorf("node %q is not in the inventory", node)
	}
	if strings.TrimSpace(n.Conninfo) == "" {
		return nil, fmt.Errorf("node %q has no conninfo in the inventory", node)
	}
	conn, err := pg.Connect(ctx, n.Conninfo, pgBTimeLeft(ctx))
	if err != nil {
		return nil, fmt.Errorf("cannot connect to %s: %s", node, pgBConnProblem(ctx, err))
	}
	return conn, nil
}

// pgBClose closes a check's connection without waiting long for a
// server that went away.
func pgBClose(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// pgBConnProblem says on one line why a connection was not made. pgx's
// errors name the user and database, never the password.
func pgBConnProblem(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return "no connection before the time limit"
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		inner := ce.Unwrap()
		var pe *pgconn.PgError
		if errors.As(inner, &pe) {
			return fmt.Sprintf("%s (SQLSTATE %s)", pe.Message, pe.Code)
		}
		if inner != nil {
			err = inner
		}
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	// pgx says "127.0.0.1:5432 (127.0.0.1): dial error: dial tcp ...:
	// connect: connection refused"; the address and the reason suffice.
	if why := dialProblem(err); why != err.Error() {
		if addr, _, ok := strings.Cut(msg, " "); ok && strings.Contains(addr, ":") {
			return addr + ": " + why
		}
		return why
	}
	return msg
}

// pgBQueryProblem says on one line why a query got no answer.
func pgBQueryProblem(ctx context.Context, err error) string {
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.Code == "57014":
		return "no answer before the time limit (statement timeout)"
	case errors.As(err, &pe):
		return fmt.Sprintf("%s (SQLSTATE %s)", pe.Message, pe.Code)
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return "no answer before the time limit"
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// pgBNodeNames returns the named nodes, or every node of the inventory
// when none is named.
func pgBNodeNames(t *cluster.Target, names []string) ([]string, error) {
	if len(names) > 0 {
		return names, nil
	}
	if t == nil || t.Cluster == nil {
		return nil, errors.New("no nodes named and no inventory given to take them from")
	}
	if len(t.Cluster.Nodes) == 0 {
		return nil, errors.New("no nodes named and the inventory has none")
	}
	return t.Cluster.NodeNames(), nil
}

// pgBAnswer is what one node answered to a question asked of several.
type pgBAnswer[T any] struct {
	Node string
	Val  T
	Err  error // says which node and why
}

// pgBAskNodes connects to every node at once and asks each the same question,
// so a check over many standbys takes as long as the slowest, not the sum.
// The answers come back in the order of names.
func pgBAskNodes[T any](ctx context.Context, t *cluster.Target, names []string,
	ask func(ctx context.Context, conn *pgx.Conn) (T, error)) []pgBAnswer[T] {
	out := make([]pgBAnswer[T], len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		out[i].Node = name
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgBConnect(ctx, t, name)
			if err != nil {
				out[i].Err = err
				return
			}
			defer pgBClose(conn)
			v, err := ask(ctx, conn)
			if err != nil {
				out[i].Err = fmt.Errorf("%s: %w", name, err)
				return
			}
			out[i].Val = v
		}()
	}
	wg.Wait()
	return out
}

// pgBDedupe trims names, drops empty ones and repeats, keeping the order.
func pgBDedupe(names []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out
}
