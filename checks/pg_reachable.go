package checks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "pg.reachable",
		Doc:  "a node accepts a SQL connection and answers a query",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "inventory node to connect to, with its connection string"},
		},
		New: newPGReachable,
	})
}

// PGReachable passes when a node answers SQL: it connects with the node's
// connection string and runs SELECT 1. A port that accepts TCP is not
// enough: a server still starting up, or one refusing our user, is not
// reachable in the sense a switchover needs.
type PGReachable struct {
	Node string
}

var _ Check = (*PGReachable)(nil)

func newPGReachable(v params.Values) (Check, error) {
	c := &PGReachable{Node: strings.TrimSpace(v.String("node"))}
	if c.Node == "" {
		return nil, errors.New("node is empty")
	}
	return c, nil
}

// Describe implements Check.
func (c *PGReachable) Describe(*cluster.Target) string {
	return fmt.Sprintf("%s accepts a connection and answers SELECT 1", c.Node)
}

// Run implements Check.
func (c *PGReachable) Run(ctx context.Context, t *cluster.Target) Result {
	return pgAWanted(c.run(ctx, t), c, t)
}

// run evaluates the check once; Run fills in what it wanted when it
// ended in an error before saying so.
func (c *PGReachable) run(ctx context.Context, t *cluster.Target) Result {
	start := time.Now()
	conn, err := pgAConnect(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	defer pgAClose(conn)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return Errored(fmt.Errorf("%s: SELECT 1: %w", c.Node, err))
	}
	elapsed := time.Since(start)
	st, err := pg.Inspect(ctx, conn)
	if err != nil {
		return Errored(fmt.Errorf("%s answered SELECT 1 but not the inspection: %w", c.Node, err))
	}
	r := Passed(fmt.Sprintf("%s answered in %s: %s, PostgreSQL %s", c.Node, roundDuration(elapsed),
		st.Role, pgAVersion(st.Version)))
	r.Wanted = fmt.Sprintf("%s answers SQL", c.Node)
	r.Values = map[string]any{
		"role":               string(st.Role),
		"version":            pgAVersion(st.Version),
		"server_version_num": st.Version,
		"connect_time":       elapsed.String(),
	}
	return r
}

// The helpers below are shared by the pg.* and quorum checks of this set of
// files. They carry a pgA prefix so that they cannot clash with the helpers
// of the other PostgreSQL checks of the package.

// pgADefaultTimeout bounds the statements of a check whose context has no
// deadline.
const pgADefaultTimeout = 5 * time.Second

// pgATimeLeft is the statement timeout of a check's queries: the time left
// until ctx's deadline, or pgADefaultTimeout when it has none. It is never
// below a millisecond: a zero timeout would mean none at all.
func pgATimeLeft(ctx context.Context) time.Duration {
	d, ok := ctx.Deadline()
	if !ok {
		return pgADefaultTimeout
	}
	return max(time.Until(d), time.Millisecond)
}

// pgANode finds a node of the inventory.
func pgANode(t *cluster.Target, name string) (*cluster.Node, error) {
	if t == nil || t.Cluster == nil {
		return nil, fmt.Errorf("node %q: no inventory given", name)
	}
	n, ok := t.Cluster.Nodes[name]
	if !ok || n == nil {
		return nil, fmt.Errorf("node %q is not in the inventory", name)
	}
	return n, nil
}

// pgAConnect connects to a node of the inventory with the statement timeout
// set to what is left of the check's time. A connection that fails returns
// a *pgAConnectError, which names the node, its address and why, never the
// connection string (which may hold a password).
func pgAConnect(ctx context.Context, t *cluster.Target, name string) (*pgx.Conn, error) {
	n, err := pgANode(t, name)
	if err != nil {
		return nil, err
	}
	cerr := &pgAConnectError{Node: name}
	if eps, err := pgAEndpoints(n.Conninfo); err == nil {
		cerr.Address = eps[0]
	}
	if err := ctx.Err(); err != nil {
		cerr.Reason = dialProblem(err)
		return nil, cerr
	}
	conn, err := pg.Connect(ctx, n.Conninfo, pgATimeLeft(ctx))
	if err != nil {
		cerr.Reason = pgAConnProblem(err)
		return nil, cerr
	}
	return conn, nil
}

// pgAConnectError is a failed connection to a node.
type pgAConnectError struct {
	Node    string
	Address string // host:port, "" when the connection string cannot be read
	Reason  string // e.g. "connection refused"
}

// Error implements error.
func (e *pgAConnectError) Error() string {
	return fmt.Sprintf("connect %s: %s", e.where(), e.Reason)
}

// where names the node with its address.
func (e *pgAConnectError) where() string {
	if e.Address == "" {
		return e.Node
	}
	return fmt.Sprintf("%s (%s)", e.Node, e.Address)
}

// pgAClose closes a connection without waiting long for a server that has
// gone away.
func pgAClose(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// pgAConnProblem says in a few words why a connection failed: what the
// server said, or why no connection was made, without pgx's prefix that
// repeats the user and database.
func pgAConnProblem(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Sprintf("server said: %s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	if p := dialProblem(err); p != err.Error() {
		return p
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		if inner := errors.Unwrap(ce); inner != nil {
			return strings.ReplaceAll(inner.Error(), "\n", "; ")
		}
	}
	return err.Error()
}

// pgAEndpoints returns the host:port pairs a connection string names, the
// first one first (a libpq string may list several hosts). A Unix socket
// directory stands as the host.
func pgAEndpoints(conninfo string) ([]string, error) {
	cfg, err := pgconn.ParseConfig(conninfo)
	if err != nil {
		// The parse error may quote the string: keep it out of messages.
		return nil, errors.New("cannot parse the connection string")
	}
	out := []string{net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))}
	for _, f := range cfg.Fallbacks {
		ep := net.JoinHostPort(f.Host, strconv.Itoa(int(f.Port)))
		if !strings.EqualFold(ep, out[len(out)-1]) {
			out = append(out, ep)
		}
	}
	return out, nil
}

// pgASameEndpoint reports whether two host:port pairs are the same server:
// the same port, and hosts that are equal, both loopback (localhost,
// 127.0.0.1, ::1), or names that resolve to a common address. Socket
// directories match only when equal.
func pgASameEndpoint(ctx context.Context, a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb {
		return false
	}
	if strings.EqualFold(ha, hb) {
		return true
	}
	if strings.HasPrefix(ha, "/") || strings.HasPrefix(hb, "/") {
		return false
	}
	if pgALoopback(ha) && pgALoopback(hb) {
		return true
	}
	addrsA, errA := net.DefaultResolver.LookupHost(ctx, ha)
	addrsB, errB := net.DefaultResolver.LookupHost(ctx, hb)
	if errA != nil || errB != nil {
		return false
	}
	for _, x := range addrsA {
		for _, y := range addrsB {
			if net.ParseIP(x).Equal(net.ParseIP(y)) {
				return true
			}
		}
	}
	return false
}

// pgALoopback reports whether host is this machine's loopback interface.
func pgALoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// pgAReceiver is a standby's WAL receiver as pg_stat_wal_receiver shows it.
type pgAReceiver struct {
	Status string // streaming, starting, waiting, …; "" when none runs
	Host   string // sender host; "" when not yet known
	Port   int
}

// pgAReadReceiver reads a standby's WAL receiver.
func pgAReadReceiver(ctx context.Context, q pg.Querier) (pgAReceiver, error) {
	var r pgAReceiver
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
func (r pgAReceiver) Streaming() bool { return r.Status == "streaming" }

// Sender is the host:port the receiver connects to, or "".
func (r pgAReceiver) Sender() string {
	if r.Host == "" || r.Port == 0 {
		return ""
	}
	return net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
}

// String describes the replication link in a few words.
func (r pgAReceiver) String() string {
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

// pgAVersion renders server_version_num as PostgreSQL prints it: 150008
// is 15.8, 90624 is 9.6.24.
func pgAVersion(num int) string {
	if num >= 100000 {
		return fmt.Sprintf("%d.%d", num/10000, num%10000)
	}
	return fmt.Sprintf("%d.%d.%d", num/10000, num/100%100, num%100)
}

// pgABytes renders a size the way runbooks write it: 16MB, 512kB, or a
// plain byte count when it is not a whole number of a unit.
func pgABytes(n int64) string {
	units := []struct {
		suffix string
		mult   int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}}
	for _, u := range units {
		if n >= u.mult && n%u.mult == 0 {
			return fmt.Sprintf("%d%s", n/u.mult, u.suffix)
		}
	}
	if n == 1 {
		return "1 byte"
	}
	return fmt.Sprintf("%d bytes", n)
}

// pgALimit renders a byte bound for a wanted line: "16777216 bytes (16MB)",
// or just "184 bytes" when it has no shorter form.
func pgALimit(n int64) string {
	short := pgABytes(n)
	if strings.HasSuffix(short, "byte") || strings.HasSuffix(short, "bytes") {
		return short
	}
	return fmt.Sprintf("%d bytes (%s)", n, short)
}

// pgAWanted fills in what a result wanted when the check could not say it
// itself (an Error before it got that far): the check's description.
func pgAWanted(r Result, c Check, t *cluster.Target) Result {
	if r.Wanted == "" {
		r.Wanted = c.Describe(t)
	}
	return r
}

// pgANotAStandby returns the failing result for a check that needs a
// standby and found a primary.
func pgANotAStandby(node string, st pg.State, wanted string) Result {
	r := Failed(fmt.Sprintf("%s is a primary (not in recovery) at %s on timeline %d", node, st.CurrentLSN, st.Timeline), wanted)
	r.Values = map[string]any{"role": string(st.Role), "current_lsn": st.CurrentLSN.String(), "timeline": st.Timeline}
	return r
}
