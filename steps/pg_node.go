package steps

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
)

// This file holds what the PostgreSQL steps share: finding a node in the
// inventory, naming it for plans, connecting to it, building its command
// lines, and reading and writing libpq connection strings.

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

// lookupNode returns the inventory entry of node, or nil when there is no
// inventory or no such node; Describe uses it, and shows placeholders.
func lookupNode(t *cluster.Target, node string) *cluster.Node {
	if t == nil || t.Cluster == nil {
		return nil
	}
	return t.Cluster.Nodes[node]
}

// inventoryNode returns the inventory entry of node, or an error that says
// why there is none.
func inventoryNode(t *cluster.Target, node string) (*cluster.Node, error) {
	if t == nil || t.Cluster == nil {
		return nil, fmt.Errorf("node %q: no inventory given", node)
	}
	n, ok := t.Cluster.Nodes[node]
	if !ok || n == nil {
		return nil, fmt.Errorf("node %q is not in the inventory", node)
	}
	return n, nil
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
	n, err := inventoryNode(t, name)
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
// or ctx ends; then the error says what the last probe saw.
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
		seen = s
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

// conninfoParam is one keyword=value pair of a libpq connection string. In
// a string of the keyword/value form, start and end delimit the value's
// text (quotes included), so a rewrite can keep everything else as it was.
type conninfoParam struct {
	Key, Value string
	start, end int
}

// parseConninfo reads a libpq connection string in the keyword/value form
// or as a postgres:// URL.
func parseConninfo(s string) ([]conninfoParam, error) {
	trimmed := strings.TrimSpace(s)
	if strings.HasPrefix(trimmed, "postgres://") || strings.HasPrefix(trimmed, "postgresql://") {
		return parseConninfoURL(trimmed)
	}
	return parseConninfoKV(s)
}

// parseConninfoKV reads the keyword/value form, by libpq's rules: values are
// bare words or single-quoted, and a backslash escapes the next character.
// Its errors never quote the string, which may hold a password.
func parseConninfoKV(s string) ([]conninfoParam, error) {
	var out []conninfoParam
	space := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' }
	i := 0
	for {
		for i < len(s) && space(s[i]) {
			i++
		}
		if i == len(s) {
			return out, nil
		}
		k := i
		for i < len(s) && s[i] != '=' && !space(s[i]) {
			i++
		}
		key := s[k:i]
		for i < len(s) && space(s[i]) {
			i++
		}
		if i == len(s) || s[i] != '=' {
			return nil, fmt.Errorf("connection string: missing \"=\" after %q", key)
		}
		i++
		for i < len(s) && space(s[i]) {
			i++
		}
		start := i
		var val strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					val.WriteByte(s[i+1])
					i += 2
					continue
				}
				i++
				if c == '\'' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("connection string: unterminated quoted value of %q", key)
			}
		} else {
			for i < len(s) && !space(s[i]) {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
				i++
			}
		}
		out = append(out, conninfoParam{Key: key, Value: val.String(), start: start, end: i})
	}
}

// parseConninfoURL reads a postgres:// URL into keyword/value pairs.
func parseConninfoURL(s string) ([]conninfoParam, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("connection string: not a valid postgres:// URL")
	}
	var out []conninfoParam
	add := func(k, v string) {
		if v != "" {
			out = append(out, conninfoParam{Key: k, Value: v})
		}
	}
	var hosts, ports []string
	for _, hp := range strings.Split(u.Host, ",") {
		h, p := hp, ""
		if i := strings.LastIndex(hp, ":"); i >= 0 && !strings.HasSuffix(hp, "]") {
			h, p = hp[:i], hp[i+1:]
		}
		hosts = append(hosts, strings.Trim(h, "[]"))
		ports = append(ports, p)
	}
	add("host", strings.Trim(strings.Join(hosts, ","), ","))
	add("port", strings.Trim(strings.Join(ports, ","), ","))
	if u.User != nil {
		add("user", u.User.Username())
		pw, _ := u.User.Password()
		add("password", pw)
	}
	add("dbname", strings.TrimPrefix(u.Path, "/"))
	q := u.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys) // query parameters have no order of their own; keep plans stable
	for _, k := range keys {
		add(k, q.Get(k))
	}
	return out, nil
}

// conninfoValue returns the value of key, and whether it is there.
func conninfoValue(ps []conninfoParam, key string) (string, bool) {
	for i := len(ps) - 1; i >= 0; i-- { // libpq: the last one wins
		if ps[i].Key == key {
			return ps[i].Value, true
		}
	}
	return "", false
}

// quoteConninfoValue renders a value for a keyword/value connection string.
func quoteConninfoValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\f\v'\\") {
		return v
	}
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(v) + "'"
}

// renderConninfo writes pairs in the keyword/value form.
func renderConninfo(ps []conninfoParam) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.Key + "=" + quoteConninfoValue(p.Value)
	}
	return strings.Join(parts, " ")
}

// hostPort is a server address as pg_stat_wal_receiver and PgBouncer show
// it.
type hostPort struct{ Host, Port string }

func (h hostPort) String() string { return h.Host + ":" + h.Port }

// addresses returns the host:port pairs a connection string names (libpq
// allows lists), with libpq's default port.
func addresses(ps []conninfoParam) []hostPort {
	h, _ := conninfoValue(ps, "host")
	if h == "" {
		h, _ = conninfoValue(ps, "hostaddr")
	}
	p, _ := conninfoValue(ps, "port")
	hosts, ports := strings.Split(h, ","), strings.Split(p, ",")
	out := make([]hostPort, len(hosts))
	for i, host := range hosts {
		port := ports[0]
		if len(ports) == len(hosts) {
			port = ports[i]
		}
		if port == "" {
			port = "5432"
		}
		out[i] = hostPort{Host: strings.TrimSpace(host), Port: strings.TrimSpace(port)}
	}
	return out
}

// since says how long ago start was, for output: "12ms", or "under 1ms".
func since(start time.Time) string {
	d := time.Since(start)
	if d < time.Millisecond {
		return "under 1ms"
	}
	return d.Round(time.Millisecond).String()
}
