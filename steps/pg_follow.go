package steps

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
)

func init() {
	Register(Definition{
		Kind: "pg.follow",
		Doc:  "makes a standby, or a stopped old primary, stream from another node",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the standby, or the stopped old primary, that is to follow"},
			{Name: "upstream", Type: params.Node, Required: true, Doc: "the node to stream from, usually the new primary"},
			{Name: "slot", Type: params.String,
				Doc: `physical replication slot on the upstream to stream through, created when missing; default the node's name; "" streams without a slot`},
			{Name: "within", Type: params.Duration, Default: "60s",
				Doc: "how long the node may take to stream from the upstream once configured; then the step fails, with what a replication connection from the node's host to the upstream answers"},
			{Name: "conninfo", Type: params.String,
				Doc: "primary_conninfo to set, written as given; default the upstream's inventory conninfo resolved to host, port, user and sslmode, with application_name=<node> and never a password (the node's OS user uses its own ~/.pgpass or passfile)"},
		},
		New: func(v params.Values) (Step, error) {
			f := &PGFollow{
				Node:     v.Node("node"),
				Upstream: v.Node("upstream"),
				Slot:     v.Node("node"),
				Conninfo: strings.TrimSpace(v.String("conninfo")),
				Within:   v.Duration("within"),
			}
			if v.Has("slot") {
				f.Slot = strings.TrimSpace(v.String("slot"))
			}
			if f.Node == f.Upstream {
				return nil, fmt.Errorf("node %q cannot follow itself", f.Node)
			}
			if f.Slot != "" && !slotName.MatchString(f.Slot) {
				return nil, fmt.Errorf("slot %q: a replication slot's name has only lower-case letters, digits and _ (at most 63); set parameter \"slot\"", f.Slot)
			}
			return f, nil
		},
	})
}

// slotName is what PostgreSQL accepts as a replication slot's name.
var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// PGFollow is a step that makes a node a streaming standby of another. A
// running standby is repointed with ALTER SYSTEM and a reload (PostgreSQL 13
// or later); a stopped old primary gets standby.signal and a new
// primary_conninfo in postgresql.auto.conf, then is started. In both cases
// the step ends only once the node streams from the upstream. A running
// primary is refused: it is never demoted while it runs.
type PGFollow struct {
	Node     string
	Upstream string
	Slot     string        // "" streams without a slot
	Conninfo string        // "" builds it from the upstream's inventory conninfo
	Within   time.Duration // how long to wait for it to stream; 0: the step's limit
}

var _ Step = (*PGFollow)(nil)

// followStartWait bounds pg_ctl start of a rejoining old primary.
const followStartWait = 60 * time.Second

// primaryConninfo is the primary_conninfo the node will use: the given
// one, or the upstream's inventory conninfo resolved here to its server,
// user and sslmode, rendered without dbname or password (the node's
// OS user authenticates with its own ~/.pgpass or passfile), with
// application_name=<node>.
func (f *PGFollow) primaryConninfo(t *cluster.Target) (string, error) {
	if f.Conninfo != "" {
		return f.Conninfo, nil
	}
	up, err := t.Node(f.Upstream)
	if err != nil {
		return "", err
	}
	return up.FollowConninfo(f.Node)
}

// upstreamAddress is the host:port the node's WAL receiver is to show: the
// server the given conninfo names, else the upstream's.
func (f *PGFollow) upstreamAddress(t *cluster.Target) (string, error) {
	s := f.Conninfo
	if s == "" {
		up, err := t.Node(f.Upstream)
		if err != nil {
			return "", err
		}
		s = up.Conninfo
	}
	r, err := conninfo.Resolve(s)
	if err != nil {
		return "", fmt.Errorf("primary_conninfo: %w", err)
	}
	return r.Address(), nil
}

func (f *PGFollow) alterSQL(conninfo string) []string {
	return []string{
		"ALTER SYSTEM SET primary_conninfo = " + sqlQuote(conninfo),
		"ALTER SYSTEM SET primary_slot_name = " + sqlQuote(f.Slot),
		"SELECT pg_reload_conf()",
	}
}

// rejoinScript is the shell command that turns a stopped node into a
// standby of the upstream: standby.signal, and postgresql.auto.conf with its
// primary_conninfo and primary_slot_name lines replaced (written to a temp
// file, then moved over the old one, as the node's OS user).
func (f *PGFollow) rejoinScript(n *cluster.Node, conninfo string) string {
	dd := dataDir(n)
	auto := path.Join(dd, "postgresql.auto.conf")
	tmp := auto + ".switchover"
	return fmt.Sprintf("touch %s && { [ ! -e %s ] || grep -v -E '^[[:space:]]*(primary_conninfo|primary_slot_name)[[:space:]]*=' %s || [ $? -eq 1 ]; } > %s && printf '%%s\\n' %s %s >> %s && chmod 600 %s && mv -f %s %s",
		transport.ShellQuote(path.Join(dd, "standby.signal")), transport.ShellQuote(auto), transport.ShellQuote(auto), transport.ShellQuote(tmp),
		transport.ShellQuote("primary_conninfo = "+sqlQuote(conninfo)), transport.ShellQuote("primary_slot_name = "+sqlQuote(f.Slot)),
		transport.ShellQuote(tmp), transport.ShellQuote(tmp), transport.ShellQuote(tmp), transport.ShellQuote(auto))
}

func (f *PGFollow) slotSQL() string {
	return fmt.Sprintf("SELECT pg_create_physical_replication_slot(%s)", sqlQuote(f.Slot))
}

// Describe implements Step.
func (f *PGFollow) Describe(t *cluster.Target) Effect {
	n, _ := t.Node(f.Node)
	conninfo, err := f.primaryConninfo(t)
	if err != nil {
		conninfo = fmt.Sprintf("<conninfo of %s: %v>", f.Upstream, err)
	}
	var b strings.Builder
	if f.Slot != "" {
		fmt.Fprintf(&b, "on %s, unless pg_replication_slots has it: %s\n", f.Upstream, f.slotSQL())
	}
	fmt.Fprintf(&b, "if %s runs as a standby: %s\n", f.Node, strings.Join(f.alterSQL(conninfo), "; "))
	fmt.Fprintf(&b, "if %s is stopped: %s && %s\n", f.Node, f.rejoinScript(n, conninfo), pgCtlStartCommand(n, followStartWait, defaultStartLog(n)))
	fmt.Fprintf(&b, "then wait until pg_stat_wal_receiver on %s shows it streaming from %s, on %s's timeline", f.Node, f.Upstream, f.Upstream)
	slot := "without a slot"
	if f.Slot != "" {
		slot = "through slot " + f.Slot
	}
	return Effect{Node: nodeWhere(t, f.Node), Command: b.String(),
		Changes: fmt.Sprintf("%s becomes a standby streaming from %s %s, with primary_conninfo %s; a running primary is refused, never demoted",
			f.Node, f.Upstream, slot, sqlQuote(conninfo))}
}

// Apply implements Step.
func (f *PGFollow) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("follow %q to %q: %w", f.Node, f.Upstream, err) }
	n, err := t.Node(f.Node)
	if err != nil {
		return fail(err)
	}
	up, err := t.Node(f.Upstream)
	if err != nil {
		return fail(err)
	}
	conninfo, err := f.primaryConninfo(t)
	if err != nil {
		return fail(err)
	}
	want, err := f.upstreamAddress(t)
	if err != nil {
		return fail(err)
	}

	conn, connErr := connectNode(ctx, t, n, remaining(ctx))
	if connErr == nil {
		err := f.repoint(ctx, t, conn, up, conninfo)
		var delayed bool
		if err == nil {
			st, ierr := pg.Inspect(ctx, conn)
			delayed = ierr == nil && st.Delayed()
		}
		closeConn(conn)
		if err != nil {
			return fail(err)
		}
		if delayed {
			if err := f.delayedRepointed(ctx, t, n, want); err != nil {
				return fail(err)
			}
			return nil
		}
	} else {
		if err := f.rejoin(ctx, t, n, up, conninfo, connErr); err != nil {
			return fail(err)
		}
	}
	upTimeline, err := timelineOf(ctx, t, up)
	if err != nil {
		return fail(fmt.Errorf("read the timeline of %s: %w", f.Upstream, err))
	}
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if f.Within > 0 {
		wctx, cancel = context.WithTimeout(ctx, f.Within)
	}
	st, err := f.waitStreaming(wctx, n, want, upTimeline)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			err = fmt.Errorf("%w%s", err, f.probe(ctx, t, n, conninfo))
		}
		return fail(fmt.Errorf("%s is configured to stream from %s and runs, but %w", f.Node, f.Upstream, err))
	}
	slot := "without a slot"
	if st.SlotName != "" {
		slot = "through slot " + st.SlotName
	}
	t.Print(fmt.Sprintf("%s streams from %s (%s) %s, on timeline %d", f.Node, f.Upstream, st.Upstream, slot, st.Timeline))
	return nil
}

// repoint makes a running standby stream from the upstream.
func (f *PGFollow) repoint(ctx context.Context, t *cluster.Target, conn *pgx.Conn, up *cluster.Node, conninfo string) error {
	var recovery bool
	var version int
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery(), current_setting('server_version_num')::int").Scan(&recovery, &version); err != nil {
		return fmt.Errorf("ask %s its role: %w", f.Node, err)
	}
	if !recovery {
		return fmt.Errorf("%s is a running primary: following %s would need it stopped first (pg.stop), and a running primary is never demoted; nothing done", f.Node, f.Upstream)
	}
	if version < 130000 {
		return fmt.Errorf("%s runs PostgreSQL %d, where primary_conninfo takes a restart: stop it first (pg.stop), then follow; nothing done", f.Node, version/10000)
	}
	if err := f.ensureSlot(ctx, t, up); err != nil {
		return err
	}
	// The errors name the setting, never the SQL: it may hold a password.
	for i, q := range f.alterSQL(conninfo) {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", []string{"set primary_conninfo", "set primary_slot_name", "pg_reload_conf()"}[i], err)
		}
	}
	t.Print(fmt.Sprintf("%s: primary_conninfo and primary_slot_name set (ALTER SYSTEM), configuration reloaded", f.Node))
	return nil
}

// rejoin makes a stopped node a standby of the upstream and starts it.
func (f *PGFollow) rejoin(ctx context.Context, t *cluster.Target, n, up *cluster.Node, conninfo string, connErr error) error {
	if err := needDataDir(n); err != nil {
		return fmt.Errorf("%w (and %v)", err, connErr)
	}
	ex, err := t.Executor(f.Node)
	if err != nil {
		return err
	}
	running, err := serverRunning(ctx, ex, n)
	if err != nil {
		return fmt.Errorf("%s does not answer (%v), and %w", f.Node, connErr, err)
	}
	if running {
		ended, err := endLingering(ctx, t, ex, n)
		if err != nil {
			return err
		}
		if !ended {
			return fmt.Errorf("pg_ctl status says %s runs, but it does not answer: %w; nothing done", f.Node, connErr)
		}
	}
	if cd, err := controlData(ctx, ex, n); err == nil {
		t.Print(fmt.Sprintf("%s is stopped (pg_controldata: %s; latest checkpoint %s on timeline %s)",
			f.Node, cd[controlState], cd[controlCheckpoint], cd[controlTimeline]))
	}
	if err := f.ensureSlot(ctx, t, up); err != nil {
		return err
	}
	if _, err := run(ctx, ex, "writing standby.signal and postgresql.auto.conf", f.rejoinScript(n, conninfo)); err != nil {
		return err
	}
	t.Print(fmt.Sprintf("%s: standby.signal written; primary_conninfo and primary_slot_name set in postgresql.auto.conf", f.Node))
	log := defaultStartLog(n)
	out, err := ex.Run(ctx, pgCtlStartCommand(n, followStartWait, log))
	printOutput(t, out)
	switch {
	case err != nil:
		return fmt.Errorf("configured as a standby, but pg_ctl start: %w", err)
	case out.ExitCode != 0:
		printLogTail(ctx, t, ex, log)
		return errorWithLast(fmt.Sprintf("configured as a standby, but pg_ctl start exited %d", out.ExitCode), out)
	}
	return nil
}

// ensureSlot creates the physical slot on the upstream when it is missing.
func (f *PGFollow) ensureSlot(ctx context.Context, t *cluster.Target, up *cluster.Node) error {
	if f.Slot == "" {
		return nil
	}
	conn, err := connectNode(ctx, t, up, remaining(ctx))
	if err != nil {
		return err
	}
	defer closeConn(conn)
	var kind string
	err = conn.QueryRow(ctx, "SELECT slot_type FROM pg_replication_slots WHERE slot_name = $1", f.Slot).Scan(&kind)
	switch {
	case err == nil && kind == "physical":
		t.Print(fmt.Sprintf("replication slot %s exists on %s", f.Slot, f.Upstream))
		return nil
	case err == nil:
		return fmt.Errorf("slot %s on %s is a %s slot, not a physical one; nothing done", f.Slot, f.Upstream, kind)
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("look up slot %s on %s: %w", f.Slot, f.Upstream, err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_create_physical_replication_slot($1)", f.Slot); err != nil {
		return fmt.Errorf("create slot %s on %s: %w", f.Slot, f.Upstream, err)
	}
	t.Print(fmt.Sprintf("created physical replication slot %s on %s", f.Slot, f.Upstream))
	return nil
}

// delayedRepointed verifies what can be verified of a delayed standby
// just repointed: it opens no WAL receiver until its delayed replay
// reaches the end of the WAL it has (an hour, with an hour's delay), so
// waiting for it to stream would hold the run for nothing. Its
// primary_conninfo must name the upstream once the reload is read (the
// slot was made sure of before); then it is reported as one that streams
// later.
func (f *PGFollow) delayedRepointed(ctx context.Context, t *cluster.Target, n *cluster.Node, want string) error {
	within := delayedVerifyWithin
	if r := remaining(ctx); r > 0 {
		within = min(within, r)
	}
	pctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var st pg.State
	err := poll(pctx, 100*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		conn, err := connectNode(ctx, nil, n, 5*time.Second)
		if err != nil {
			return false, fmt.Sprintf("%s does not answer: %v", f.Node, err), nil
		}
		defer closeConn(conn)
		s, err := pg.Inspect(ctx, conn)
		if err != nil {
			return false, fmt.Sprintf("inspecting %s failed: %v", f.Node, err), nil
		}
		st = s
		if s.Configured == "" {
			return false, fmt.Sprintf("%s shows no primary_conninfo it can be read from (pg_read_all_settings)", f.Node), nil
		}
		if !pg.SameEndpoint(ctx, s.Configured, want) {
			return false, fmt.Sprintf("%s's primary_conninfo names %s, not %s yet", f.Node, s.Configured, want), nil
		}
		return true, "", nil
	})
	if err != nil {
		return fmt.Errorf("%s applies WAL %s late and was repointed, but %w", f.Node, st.ApplyDelayText(), err)
	}
	slot := ""
	if f.Slot != "" {
		slot = fmt.Sprintf(" through slot %s (on %s)", f.Slot, f.Upstream)
	}
	stream := "streams from it now"
	if !st.Streaming || !pg.SameEndpoint(ctx, st.Upstream, want) {
		stream = "opens its WAL receiver once its delayed replay reaches the end of the WAL it has, not within this run"
	}
	t.Print(fmt.Sprintf("%s applies WAL %s late (recovery_min_apply_delay): primary_conninfo names %s (%s)%s; it %s", f.Node, st.ApplyDelayText(), f.Upstream, want, slot, stream))
	return nil
}

// delayedVerifyWithin bounds the wait for a delayed standby to read its
// new primary_conninfo.
const delayedVerifyWithin = 30 * time.Second

// waitStreaming polls the node every 100ms, until ctx ends, until its WAL
// receiver streams from one of the upstream's addresses (through the slot,
// when there is one).
func (f *PGFollow) waitStreaming(ctx context.Context, n *cluster.Node, want string, upTimeline int) (pg.State, error) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			closeConn(conn)
		}
	}()
	wanted := []string{want}
	var st pg.State
	err := poll(ctx, 100*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		if conn == nil {
			c, err := connectNode(ctx, nil, n, 5*time.Second)
			if err != nil {
				return false, fmt.Sprintf("%s does not answer: %v", f.Node, err), nil
			}
			conn = c
		}
		s, err := pg.Inspect(ctx, conn)
		if err != nil {
			closeConn(conn)
			conn = nil
			return false, fmt.Sprintf("inspecting %s failed: %v", f.Node, err), nil
		}
		if s.Role != pg.RoleStandby {
			return false, "", fmt.Errorf("%s is not a standby (pg_is_in_recovery() is false)", f.Node)
		}
		ok := s.Streaming && (f.Slot == "" || s.SlotName == f.Slot)
		if ok {
			ok = false
			for _, w := range wanted {
				if s.Upstream == w {
					ok = true
				}
			}
		}
		if ok && s.Timeline < upTimeline {
			// Streaming the old timeline up to the switch point is the
			// way to the new one, not yet following the upstream.
			return false, fmt.Sprintf("%s streams from %s but still receives timeline %d; %s is on timeline %d",
				f.Node, s.Upstream, s.Timeline, f.Upstream, upTimeline), nil
		}
		if ok {
			st = s
			return true, "", nil
		}
		seen := "no WAL receiver"
		if s.Upstream != "" {
			seen = fmt.Sprintf("WAL receiver on %s (streaming %t, slot %q)", s.Upstream, s.Streaming, s.SlotName)
		}
		return false, fmt.Sprintf("%s does not stream from %s yet: %s", f.Node, strings.Join(wanted, " or "), seen), nil
	})
	return st, err
}

// timelineOf is the timeline the upstream is on: its own when it is a
// primary, the one it receives when it is a standby itself.
func timelineOf(ctx context.Context, t *cluster.Target, n *cluster.Node) (int, error) {
	conn, err := connectNode(ctx, t, n, remaining(ctx))
	if err != nil {
		return 0, err
	}
	defer closeConn(conn)
	st, err := pg.Inspect(ctx, conn)
	if err != nil {
		return 0, err
	}
	return st.Timeline, nil
}

// probe says what a replication connection from n's host to the upstream
// answers, with conninfo (no password: the command line is visible on the
// host), for the error of a node that does not stream: "" when it opens.
func (f *PGFollow) probe(ctx context.Context, t *cluster.Target, n *cluster.Node, conninfo string) string {
	ex, err := t.Executor(f.Node)
	if err != nil {
		return ""
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	out, err := ex.Run(pctx, "LC_ALL=C; export LC_ALL; "+pg.ReplicationProbe(n.BinDir, conninfo))
	switch {
	case err != nil:
		return fmt.Sprintf("; a replication connection from %s's host to %s could not be tried: %v", f.Node, f.Upstream, err)
	case out.ExitCode != 0:
		return fmt.Sprintf("; a replication connection from %s's host to %s, as its primary_conninfo makes it, fails: %s",
			f.Node, f.Upstream, lastOf(splitLines(out.Combined()), 3))
	}
	return fmt.Sprintf("; a replication connection from %s's host to %s opens (IDENTIFY_SYSTEM answers), so look at %s's log for why its WAL receiver does not", f.Node, f.Upstream, f.Node)
}

// lastOf joins the last n lines, for an error on one line.
func lastOf(lines []string, n int) string {
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}
