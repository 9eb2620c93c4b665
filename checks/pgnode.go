package checks

// The helpers the PostgreSQL checks share: finding a node of the inventory,
// connecting to it with what is left of the check's time, saying why a
// connection or a query failed without showing the connection string,
// asking several nodes at once, comparing the addresses a server is known
// by, reading a standby's WAL receiver, and rendering versions.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/oneline"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

// defaultStatementTimeout bounds a check's statements when its context has
// no deadline.
const defaultStatementTimeout = 5 * time.Second

// timeLeft is the statement timeout of a check's queries: the time left
// until ctx's deadline, or defaultStatementTimeout when it has none. Every
// statement a check sends is bounded by it on the server too, so a check
// never leaves a query behind. It is never below a millisecond: a zero
// timeout would mean none at all.
func timeLeft(ctx context.Context) time.Duration {
	d, ok := ctx.Deadline()
	if !ok {
		return defaultStatementTimeout
	}
	return max(time.Until(d), time.Millisecond)
}

// connectNode connects to a node of the inventory with the statement
// timeout set to what is left of the check's time. A connection that fails
// returns a *connectError, which names the node, its address and why, never
// the connection string (which may hold a password).
func connectNode(ctx context.Context, t *cluster.Target, name string) (*pgx.Conn, error) {
	n, err := t.Node(name)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(n.Conninfo) == "" {
		return nil, fmt.Errorf("node %q has no conninfo in the inventory", name)
	}
	cerr := &connectError{Node: name}
	if eps, err := conninfoEndpoints(n.Conninfo); err == nil {
		cerr.Address = eps[0]
	}
	if err := ctx.Err(); err != nil {
		cerr.Reason = dialProblem(err)
		return nil, cerr
	}
	conn, err := pg.GetVia(pg.SessionCache(t.Session), ctx, n.Conninfo, timeLeft(ctx))
	if err != nil {
		cerr.Reason = connProblem(ctx, err)
		return nil, cerr
	}
	return conn, nil
}

// connectError is a failed connection to a node.
type connectError struct {
	Node    string
	Address string // host:port, "" when the connection string cannot be read
	Reason  string // e.g. "connection refused"
}

// Error implements error.
func (e *connectError) Error() string {
	return fmt.Sprintf("connect %s: %s", e.where(), e.Reason)
}

// where names the node with its address.
func (e *connectError) where() string {
	if e.Address == "" {
		return e.Node
	}
	return fmt.Sprintf("%s (%s)", e.Node, e.Address)
}

// closeConn closes a check's connection without waiting long for a server
// that has gone away.
func closeConn(conn *pgx.Conn) { pg.Release(conn) }

// connProblem says on one line why a connection was not made: the check's
// time ran out, what the server said, or why no connection was made,
// without pgx's prefix that repeats the user and database.
func connProblem(ctx context.Context, err error) string {
	if cerr := ctx.Err(); cerr != nil {
		return dialProblem(cerr)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "53300" || pe.Code == "53400") {
		// Not this check's problem but the node's: every check that
		// connects to it meets the same refusal, whichever came first.
		return fmt.Sprintf("the node refuses every new connection: %s (SQLSTATE %s): no connection slot is free (max_connections reached, the rest reserved), so its clients are refused too; this check could not look",
			pe.Message, pe.Code)
	}
	if errors.As(err, &pe) {
		return fmt.Sprintf("server said: %s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	if p := dialProblem(err); p != err.Error() {
		return p
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		if inner := ce.Unwrap(); inner != nil {
			err = inner
		}
	}
	return oneline.Of(err.Error())
}

// queryProblem says on one line why a query got no answer.
func queryProblem(ctx context.Context, err error) string {
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.Code == "57014":
		return "no answer before the time limit (statement timeout)"
	case errors.As(err, &pe):
		return fmt.Sprintf("%s (SQLSTATE %s)", pe.Message, pe.Code)
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return "no answer before the time limit"
	}
	return oneline.Of(err.Error())
}

// inspectNode connects to a node of the inventory and asks it what it is.
func inspectNode(ctx context.Context, t *cluster.Target, name string) (pg.State, error) {
	return inspectNodeWith(ctx, t, name, pg.Inspect)
}

// inspectNodeWith is inspectNode asking with inspect (pg.Inspect, or the
// lighter pg.InspectReplay of a catch-up poll).
func inspectNodeWith(ctx context.Context, t *cluster.Target, name string, inspect func(context.Context, pg.Querier) (pg.State, error)) (pg.State, error) {
	conn, err := connectNode(ctx, t, name)
	if err != nil {
		return pg.State{}, err
	}
	defer closeConn(conn)
	st, err := inspect(ctx, conn)
	if err != nil {
		return st, fmt.Errorf("inspect %s: %w", name, err)
	}
	return st, nil
}

// nodeNames returns the named nodes, or every node of the inventory when
// none is named.
func nodeNames(t *cluster.Target, names []string) ([]string, error) {
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

// dedupe trims names, drops empty ones and repeats, keeping the order.
func dedupe(names []string) []string {
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

// nameList returns the names a list parameter gives, trimmed and without
// repeats, in their order. Unlike dedupe, it rejects an empty name: in
// these parameters it is a slip, not something to skip.
func nameList(v params.Values, param string) ([]string, error) {
	var out []string
	for _, s := range v.Strings(param) {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, fmt.Errorf("%s holds an empty name", param)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// describeNodes names a list of nodes for Describe, or every node.
func describeNodes(nodes []string) string {
	if len(nodes) == 0 {
		return "all nodes"
	}
	return strings.Join(nodes, ", ")
}

// answer is what one node answered to a question asked of several.
type answer[T any] struct {
	Node string
	Val  T
	Err  error // says which node and why
}

// askNodes connects to every node at once and asks each the same question,
// so a check over many standbys takes as long as the slowest, not the sum.
// The answers come back in the order of names.
func askNodes[T any](ctx context.Context, t *cluster.Target, names []string,
	ask func(ctx context.Context, q pg.Querier) (T, error)) []answer[T] {
	out := make([]answer[T], len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		out[i].Node = name
		wg.Go(func() {
			conn, err := connectNode(ctx, t, name)
			if err != nil {
				out[i].Err = err
				return
			}
			defer closeConn(conn)
			v, err := ask(ctx, conn)
			if err != nil {
				out[i].Err = fmt.Errorf("%s: %w", name, err)
				return
			}
			out[i].Val = v
		})
	}
	wg.Wait()
	return out
}

// conninfoEndpoints returns the host:port of the one server a connection
// string resolves to (see conninfo.Resolve), as a list for matchesEndpoint.
// Its error never quotes the string, which may hold a password.
func conninfoEndpoints(s string) ([]string, error) {
	r, err := conninfo.Resolve(s)
	if err != nil {
		return nil, err
	}
	return []string{r.Address()}, nil
}

// matchesEndpoint reports whether addr, a host:port, is the same server as
// one of endpoints. An empty addr matches none.
func matchesEndpoint(ctx context.Context, addr string, endpoints []string) bool {
	if addr == "" {
		return false
	}
	for _, ep := range endpoints {
		if pg.SameEndpoint(ctx, addr, ep) {
			return true
		}
	}
	return false
}

// walReceiver is a standby's WAL receiver as pg_stat_wal_receiver shows it.
type walReceiver struct {
	Status string // streaming, starting, waiting, …; "" when none runs
	Host   string // sender host; "" when not yet known
	Port   int
}

// readWALReceiver reads a standby's WAL receiver.
func readWALReceiver(ctx context.Context, q pg.Querier) (walReceiver, error) {
	var r walReceiver
	var status, host *string
	var port *int
	err := q.QueryRow(ctx, `SELECT status, sender_host, sender_port FROM pg_stat_wal_receiver`).Scan(&status, &host, &port)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("read pg_stat_wal_receiver: %w", err)
	}
	if status != nil {
		r.Status = *status
	}
	if host != nil {
		r.Host = *host
	}
	if port != nil {
		r.Port = *port
	}
	return r, nil
}

// Streaming reports whether the receiver streams.
func (r walReceiver) Streaming() bool { return r.Status == "streaming" }

// Sender is the host:port the receiver connects to, or "".
func (r walReceiver) Sender() string {
	if r.Host == "" || r.Port == 0 {
		return ""
	}
	return net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
}

// String describes the replication link in a few words.
func (r walReceiver) String() string {
	switch {
	case r.Status == "":
		return "no WAL receiver running"
	case r.Streaming() && r.Sender() != "":
		return "streaming from " + r.Sender()
	case r.Streaming():
		return "streaming"
	case r.Sender() != "":
		return fmt.Sprintf("WAL receiver %s, not streaming, sender %s", r.Status, r.Sender())
	}
	return fmt.Sprintf("WAL receiver %s, not streaming", r.Status)
}

// serverVersion renders server_version_num as PostgreSQL prints it: 150008
// is 15.8, 90624 is 9.6.24.
func serverVersion(num int) string {
	if num >= 100000 {
		return fmt.Sprintf("%d.%d", num/10000, num%10000)
	}
	return fmt.Sprintf("%d.%d.%d", num/10000, num/100%100, num%100)
}

// majorVersion renders the major version of server_version_num: 15, or 9.6.
func majorVersion(num int) string {
	if num >= 100000 {
		return strconv.Itoa(num / 10000)
	}
	return fmt.Sprintf("%d.%d", num/10000, num/100%100)
}

// withWanted fills in what a result wanted when the check could not say it
// itself (an Error before it got that far): the check's description.
func withWanted(r Result, c Check, t *cluster.Target) Result {
	if r.Wanted == "" {
		r.Wanted = c.Describe(t)
	}
	return r
}

// notAStandby returns the failing result for a check that needs a standby
// and found a primary.
func notAStandby(node string, st pg.State, wanted string) Result {
	r := Failed(fmt.Sprintf("%s is a primary (not in recovery) at %s on timeline %d", node, st.CurrentLSN, st.Timeline), wanted)
	r.Values = map[string]any{"role": string(st.Role), "current_lsn": st.CurrentLSN.String(), "timeline": st.Timeline}
	return r
}
