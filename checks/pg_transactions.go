package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "pg.no_long_transactions",
		Doc:  "no client session on a node has a transaction open longer than max_xact_age or sits idle in transaction",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "inventory node to look at, usually the primary about to be stopped"},
			{Name: "max_xact_age", Type: params.Duration, Default: "5s",
				Doc: "a transaction open longer than this counts, whatever its state"},
		},
		New: newNoLongTransactions,
	})
}

// NoLongTransactions passes when no client session on Node, through the
// pooler or direct, has a transaction open longer than MaxXactAge or sits
// idle in transaction. PgBouncer's PAUSE waits for every server connection
// to finish its transaction: one long query or one forgotten BEGIN holds
// every client for the whole pause budget and fails the run; found here,
// the run is refused before a single client waits.
//
// Switchover's own sessions (application_name switchover) and idle server
// connections of the pooler (no transaction) do not count.
type NoLongTransactions struct {
	Node       string
	MaxXactAge time.Duration
}

var _ Check = (*NoLongTransactions)(nil)

func newNoLongTransactions(v params.Values) (Check, error) {
	c := &NoLongTransactions{Node: v.Node("node"), MaxXactAge: v.Duration("max_xact_age")}
	if c.Node == "" {
		return nil, errors.New("node is empty")
	}
	return c, nil
}

// Describe implements Check.
func (c *NoLongTransactions) Describe(*cluster.Target) string {
	return fmt.Sprintf("no session on %s has a transaction open longer than %s or sits idle in transaction", c.Node, c.MaxXactAge)
}

// Run implements Check. What a first look finds is looked at again for a
// moment (secondLook): only a transaction still open then, the same one,
// counts. A busy application's sessions are idle in transaction for
// microseconds between statements; that is not what stalls a pause.
func (c *NoLongTransactions) Run(ctx context.Context, t *cluster.Target) Result {
	conn, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(conn)
	problem := func(err error) Result {
		return Errored(fmt.Errorf("list transactions on %s: %s", c.Node, queryProblem(ctx, err)))
	}
	first, err := pg.OpenTransactions(ctx, conn, c.MaxXactAge)
	if err != nil {
		return problem(err)
	}
	var sessions []pg.OpenXact
	var ended time.Duration
	if len(first) > 0 {
		sessions, ended, err = lookAgain(ctx, first,
			func(now, before pg.OpenXact) bool {
				return now.PID == before.PID && now.XactStart.Equal(before.XactStart)
			},
			func() ([]pg.OpenXact, error) { return pg.OpenTransactions(ctx, conn, c.MaxXactAge) })
		if err != nil {
			return problem(err)
		}
	}
	return c.judge(len(first), ended, sessions)
}

// judge turns the sessions still open at the last look into a verdict;
// firstLook is how many the first look found, ended how long after it
// they were gone.
func (c *NoLongTransactions) judge(firstLook int, ended time.Duration, sessions []pg.OpenXact) Result {
	pids := make([]int, len(sessions))
	lines := make([]string, len(sessions))
	idle := 0
	for i, s := range sessions {
		pids[i], lines[i] = s.PID, s.String()
		if strings.HasPrefix(s.State, "idle in transaction") {
			idle++
		}
	}
	values := map[string]any{"count": len(sessions), "idle_in_transaction": idle, "pids": pids}
	if len(sessions) == 0 {
		observed := fmt.Sprintf("no session on %s has a transaction open longer than %s or is idle in transaction", c.Node, c.MaxXactAge)
		if firstLook > 0 {
			observed += fmt.Sprintf(" (the %s a first look found ended within %s)", plural(firstLook, "transaction"), roundDuration(ended))
		}
		r := Passed(observed)
		r.Values = values
		return r
	}
	var what []string
	if long := len(sessions) - idle; long > 0 {
		what = append(what, fmt.Sprintf("%s open longer than %s", plural(long, "transaction"), c.MaxXactAge))
	}
	if idle > 0 {
		what = append(what, fmt.Sprintf("%s idle in transaction", plural(idle, "session")))
	}
	r := Failed(fmt.Sprintf("%s on %s (pid %s): %s", strings.Join(what, " and "), c.Node, joinInts(pids), strings.Join(lines, "; ")),
		fmt.Sprintf("no transaction on %s open longer than %s and no session idle in transaction: PgBouncer's PAUSE waits for every transaction to end, holding every client meanwhile, and a stop cuts them off; end them, or wait until they are done",
			c.Node, c.MaxXactAge))
	if len(lines) > 1 {
		r.Detail = strings.Join(lines, "\n") // one line each; with one, the observed line says it all
	}
	r.Values = values
	return r
}
