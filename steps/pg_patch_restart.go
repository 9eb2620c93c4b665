package steps

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
)

func init() {
	Register(Definition{
		Kind: "pg.patch_restart",
		Doc: "patches and restarts standbys one at a time, in the inventory's order: the patch command on each one's host, then pg_ctl restart -m fast -w; " +
			"each must come back with a later pg_postmaster_start_time() (recorded as fact <node>.restarted_at) and stream from the upstream, caught up, before the next is touched; " +
			"a resumed run neither patches nor restarts again a node this run did",
		Params: []params.Spec{
			{Name: "upstream", Type: params.Node, Required: true, Doc: "the primary the standbys stream from; it is never restarted by this step"},
			{Name: "nodes", Type: params.Nodes, Doc: "the standbys to patch and restart, in this order; empty means every node of the inventory but the upstream and those in except"},
			{Name: "except", Type: params.Nodes, Doc: "nodes left alone (e.g. the primary, patched last, after the switchover)"},
			{Name: "patch_command", Type: params.String, Doc: "run with /bin/sh -c on each node's host, as the inventory's transport runs commands there, just before its restart (the package upgrade); none when empty"},
			{Name: "within", Type: params.Duration, Default: "120s", Doc: "how long each node has, from its restart, to run again and stream from the upstream, caught up"},
			{Name: "max_lag", Type: params.Bytes, Default: "16MB", Doc: "how far a restarted node's replay may be behind the upstream's current WAL before the next node is touched"},
			{Name: "wait", Type: params.Duration, Default: "60s", Doc: "how long pg_ctl waits for each of the shutdown and the start (-t)"},
		},
		Destructive: true,
		New: func(v params.Values) (Step, error) {
			s := &PGPatchRestart{Upstream: v.Node("upstream"), Nodes: v.Nodes("nodes"), Except: v.Nodes("except"),
				PatchCommand: strings.TrimSpace(v.String("patch_command")),
				Within:       v.Duration("within"), MaxLag: v.Int("max_lag"), Wait: v.Duration("wait")}
			switch {
			case s.Within <= 0:
				return nil, errors.New(`parameter "within" must be more than 0`)
			case s.Wait <= 0:
				return nil, errors.New(`parameter "wait" must be more than 0`)
			case slices.Contains(s.Nodes, s.Upstream):
				return nil, fmt.Errorf("the upstream %s is among the nodes to restart: a primary is never restarted by this step", s.Upstream)
			}
			return s, nil
		},
	})
}

// PGPatchRestart is a step that patches and restarts the standbys of a
// streaming cluster one at a time, so that at most one is down at any
// moment and the primary always keeps the others. Each restart is proven
// by the server's start time, later than before, and journaled with what
// led to it (the start time before, the patch done), so that a run cut off
// and resumed neither patches nor restarts a node twice. It refuses before
// touching anything when the upstream is not a primary, or a node to
// restart is a primary or does not answer.
type PGPatchRestart struct {
	Upstream     string
	Nodes        []string // "" in order: every node but Upstream and Except
	Except       []string
	PatchCommand string // "" runs none
	Within       time.Duration
	MaxLag       int64
	Wait         time.Duration
}

var _ Step = (*PGPatchRestart)(nil)

// patchPollInterval is how often the step looks at a restarted node.
const patchPollInterval = 100 * time.Millisecond

// PatchBeforeFact is the fact that records the start time of a node's
// server before this run patched and restarted it: journaled before the
// patch command runs, so that a resumed run tells a restart it did (a
// later start time) from one it did not get to.
func PatchBeforeFact(node string) string { return node + ".patch_before" }

// PatchedFact is the fact that records when the patch command succeeded on
// a node's host: a resumed run does not run it there again.
func PatchedFact(node string) string { return node + ".patched_at" }

// targets are the nodes the step patches and restarts, in order.
func (s *PGPatchRestart) targets(t *cluster.Target) []string {
	if len(s.Nodes) > 0 {
		var out []string
		for _, n := range s.Nodes {
			if !slices.Contains(s.Except, n) && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out
	}
	var out []string
	if t == nil || t.Cluster == nil {
		return nil
	}
	for _, n := range t.Cluster.NodeOrder() {
		if n != s.Upstream && !slices.Contains(s.Except, n) {
			out = append(out, n)
		}
	}
	return out
}

// restartCommand is the command line that restarts n's server: only when
// the control file in its data_dir has sysID (the node's cluster), then
// pg_ctl restart, fast, waiting until it accepts connections again, its
// output going where pg.start sends it.
func (s *PGPatchRestart) restartCommand(n *cluster.Node, sysID string) string {
	return fmt.Sprintf("%s; %s", sameClusterGuard(n, sysID), s.pgCtlRestart(n))
}

// pgCtlRestart is the pg_ctl part of restartCommand, shown by Describe.
func (s *PGPatchRestart) pgCtlRestart(n *cluster.Node) string {
	return fmt.Sprintf("%s restart -D %s -m fast -w -t %d -l %s",
		transport.ShellQuote(binPath(n, "pg_ctl")), transport.ShellQuote(dataDir(n)), waitSeconds(s.Wait), transport.ShellQuote(defaultStartLog(n)))
}

// Describe implements Step.
func (s *PGPatchRestart) Describe(t *cluster.Target) Effect {
	nodes := s.targets(t)
	var b strings.Builder
	as := "each of %s as a standby"
	if len(nodes) == 1 {
		as = "%s as a standby"
	}
	fmt.Fprintf(&b, "once, before anything: %s must answer as a primary, and "+as+" (SELECT pg_is_in_recovery(), pg_postmaster_start_time()); else nothing is done. Then one node at a time:",
		s.Upstream, listOr(nodes, "no node"))
	for i, m := range nodes {
		n, _ := t.Node(m)
		fmt.Fprintf(&b, "\n  %d. %s: ", i+1, nodeWhere(t, m))
		if s.PatchCommand != "" {
			fmt.Fprintf(&b, "/bin/sh -c %s; then ", transport.ShellQuote(s.PatchCommand))
		}
		fmt.Fprintf(&b, "only if the control file in its data_dir has %s's system identifier: %s; then until pg_postmaster_start_time() is later than before and pg_stat_wal_receiver streams from %s with replay at most %s behind pg_current_wal_lsn() on %s, every %s, for up to %s from the restart",
			m, s.pgCtlRestart(n), s.Upstream, params.FormatBytes(s.MaxLag), s.Upstream, patchPollInterval, s.Within)
	}
	if len(nodes) == 0 {
		b.WriteString(" none")
	} else {
		fmt.Fprintf(&b, "\neach node's start time before is journaled (fact <node>.patch_before) before its patch, the patch's success after it (fact <node>.patched_at), the restart after it (fact <node>.restarted_at): a resumed run neither patches nor restarts again what this run did, and only waits until it streams")
	}
	patch := "no patch command"
	if s.PatchCommand != "" {
		patch = "the patch command"
	}
	return Effect{Node: listOr(nodes, "no node"), Command: b.String(),
		Changes: fmt.Sprintf("%s, then a restart of PostgreSQL on %s, one at a time, in that order: each one's sessions are cut, and it serves no queries while it is down; %s is not restarted",
			patch, listOr(nodes, "no node"), s.Upstream)}
}

// Apply implements Step.
func (s *PGPatchRestart) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("patch and restart standbys of %q: %w", s.Upstream, err) }
	nodes := s.targets(t)
	if err := s.refuse(ctx, t, nodes); err != nil {
		return fail(fmt.Errorf("%w; nothing patched or restarted", err))
	}
	if len(nodes) == 0 {
		t.Print(fmt.Sprintf("no node to patch and restart but %s: nothing to do", s.Upstream))
		return nil
	}
	begin := time.Now()
	for i, m := range nodes {
		t.Print(fmt.Sprintf("%s (%d of %d): %s into the step", m, i+1, len(nodes), since(begin)))
		if err := s.one(ctx, t, m); err != nil {
			return fail(fmt.Errorf("%w; done before it: %s; not touched: %s", err, listOr(nodes[:i], "none"), listOr(nodes[i+1:], "none")))
		}
	}
	t.Print(fmt.Sprintf("%s patched, restarted and streaming from %s, in %s", strings.Join(nodes, ", "), s.Upstream, since(begin)))
	return nil
}

// refuse looks at the upstream and every node before anything is done: the
// upstream must be a primary, each node a standby (a node that does not
// answer passes only when this run began its restart before it was cut
// off: it is then restarted).
func (s *PGPatchRestart) refuse(ctx context.Context, t *cluster.Target, nodes []string) error {
	up, err := inspectNamed(ctx, t, s.Upstream)
	if err != nil {
		return fmt.Errorf("upstream %s: %w", s.Upstream, err)
	}
	if up.Role != pg.RolePrimary {
		return fmt.Errorf("upstream %s is not a primary (pg_is_in_recovery() is true)", s.Upstream)
	}
	var problems []string
	for _, m := range nodes {
		if _, err := t.Node(m); err != nil {
			return err
		}
		st, err := inspectNamed(ctx, t, m)
		switch {
		case err != nil && s.began(t, m):
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s does not answer: %v", m, err))
		case st.Role == pg.RolePrimary:
			problems = append(problems, fmt.Sprintf("%s is a primary (pg_is_in_recovery() is false): a primary is never restarted by this step", m))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// began reports whether this run (or the one a resume continues) journaled
// the start of node's patch and restart.
func (s *PGPatchRestart) began(t *cluster.Target, node string) bool {
	_, ok := fact(t, PatchBeforeFact(node))
	return ok
}

// one patches and restarts one node, or finishes what an interrupted run
// began there, and waits until it streams from the upstream, caught up.
func (s *PGPatchRestart) one(ctx context.Context, t *cluster.Target, m string) error {
	now, nowErr := postmasterStart(ctx, t, m)
	if at, ok, err := t.Facts.Restarted(m); err != nil {
		return fmt.Errorf("%s: %w", m, err)
	} else if ok {
		switch {
		case nowErr != nil:
			t.Print(fmt.Sprintf("%s: restarted by this run at %s (fact %s), not again; it does not answer now (%v)", m, cluster.StartTime(at), cluster.RestartedFact(m), nowErr))
		case now.Before(at):
			return fmt.Errorf("%s: restarted by this run at %s (fact %s), but its PostgreSQL says it started at %s, before: something else put an older server there; not restarted again",
				m, cluster.StartTime(at), cluster.RestartedFact(m), cluster.StartTime(now))
		default:
			t.Print(fmt.Sprintf("%s: patched and restarted by this run before it was cut off (its PostgreSQL started at %s, fact %s): not patched or restarted again", m, cluster.StartTime(now), cluster.RestartedFact(m)))
		}
		return s.waitCaughtUp(ctx, t, m, time.Now())
	}

	var before time.Time
	if v, ok := fact(t, PatchBeforeFact(m)); ok {
		// An interrupted run began here. A later server than the one it saw
		// is its restart.
		b, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return fmt.Errorf("%s: fact %s is %q, not an RFC 3339 time", m, PatchBeforeFact(m), v)
		}
		before = b
		if nowErr == nil && now.After(before) && t.Facts != nil {
			t.Facts.SetRestarted(m, now)
			t.Print(fmt.Sprintf("%s: restarted by this run before it was cut off (its PostgreSQL started at %s, after %s): not patched or restarted again; fact %s",
				m, cluster.StartTime(now), cluster.StartTime(before), cluster.RestartedFact(m)))
			return s.waitCaughtUp(ctx, t, m, time.Now())
		}
		if _, patched := fact(t, PatchedFact(m)); s.PatchCommand != "" && !patched {
			t.Print(fmt.Sprintf("%s: a run was cut off during its patch command, or just before it (fact %s, no fact %s): running the patch command again", m, PatchBeforeFact(m), PatchedFact(m)))
		}
	} else {
		if nowErr != nil {
			return fmt.Errorf("%s does not answer: %w; not patched or restarted", m, nowErr)
		}
		before = now
		if t.Facts != nil {
			t.Facts.Set(PatchBeforeFact(m), cluster.StartTime(before))
		}
	}

	if err := s.patch(ctx, t, m); err != nil {
		return err
	}
	return s.restart(ctx, t, m, before)
}

// patch runs the patch command on m's host, unless there is none or this
// run ran it there already.
func (s *PGPatchRestart) patch(ctx context.Context, t *cluster.Target, m string) error {
	if s.PatchCommand == "" {
		return nil
	}
	if at, ok := fact(t, PatchedFact(m)); ok {
		t.Print(fmt.Sprintf("%s: patch command done by this run at %s (fact %s): not run again", m, at, PatchedFact(m)))
		return nil
	}
	start := time.Now()
	if err := (&Exec{Command: s.PatchCommand, Node: m}).Apply(ctx, t); err != nil {
		return fmt.Errorf("%s: patch command: %w; not restarted (what the command changed stays)", m, err)
	}
	done := time.Now().UTC().Format(time.RFC3339Nano)
	if t.Facts != nil {
		t.Facts.Set(PatchedFact(m), done)
	}
	t.Print(fmt.Sprintf("%s: patch command done in %s (fact %s)", m, since(start), PatchedFact(m)))
	return nil
}

// restart restarts m's server and proves it by a start time later than
// before, recorded as fact <node>.restarted_at, then waits until it
// streams from the upstream, caught up.
func (s *PGPatchRestart) restart(ctx context.Context, t *cluster.Target, m string, before time.Time) error {
	n, ex, err := hostNode(t, m)
	if err != nil {
		return fmt.Errorf("%s: %w; not restarted", m, err)
	}
	sysID, err := (&PGStop{Node: m}).systemID(ctx, t)
	if err != nil {
		return fmt.Errorf("%s: %w; not restarted", m, err)
	}
	start := time.Now()
	out, err := ex.Run(ctx, s.restartCommand(n, sysID))
	if err != nil {
		return fmt.Errorf("%s: pg_ctl restart: %w; it may be down or restarting", m, err)
	}
	if found, ok := strings.CutPrefix(out.Stdout, otherCluster); ok && out.ExitCode == otherClusterExit {
		return fmt.Errorf("%s: %w", m, (&PGStop{Node: m}).otherClusterError(n, ex, sysID, strings.TrimSpace(found)))
	}
	if out.ExitCode != 0 {
		printOutput(t, out)
		printLogTail(ctx, t, ex, defaultStartLog(n))
		return fmt.Errorf("%s: %w; it may be down", m, errorWithLast(fmt.Sprintf("pg_ctl restart exited %d", out.ExitCode), out))
	}
	deadline := start.Add(s.Within)
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var after time.Time
	err = poll(wctx, patchPollInterval, func(ctx context.Context) (bool, string, error) {
		at, err := postmasterStart(ctx, t, m)
		switch {
		case err != nil:
			return false, fmt.Sprintf("its start time cannot be read: %v", err), nil
		case !at.After(before):
			return false, fmt.Sprintf("its PostgreSQL still says it started at %s, as before the restart", cluster.StartTime(at)), nil
		}
		after = at
		return true, "", nil
	})
	if err != nil {
		return fmt.Errorf("%s: pg_ctl restart succeeded, but no later start time within %s: %w", m, s.Within, err)
	}
	if t.Facts != nil {
		t.Facts.SetRestarted(m, after)
	}
	t.Print(fmt.Sprintf("%s restarted in %s: PostgreSQL started at %s (was %s); fact %s",
		m, since(start), cluster.StartTime(after), cluster.StartTime(before), cluster.RestartedFact(m)))
	return s.waitCaughtUp(ctx, t, m, start)
}

// waitCaughtUp waits, up to Within from start, until m is a standby whose
// WAL receiver streams from the upstream and whose replay is at most
// MaxLag behind the upstream's current WAL.
func (s *PGPatchRestart) waitCaughtUp(ctx context.Context, t *cluster.Target, m string, start time.Time) error {
	want, err := upstreamAddr(t, s.Upstream)
	if err != nil {
		return fmt.Errorf("%s: %w", m, err)
	}
	wctx, cancel := context.WithDeadline(ctx, start.Add(s.Within))
	defer cancel()
	var seen string
	err = poll(wctx, patchPollInterval, func(ctx context.Context) (bool, string, error) {
		st, err := inspectNamed(ctx, t, m)
		if err != nil {
			return false, fmt.Sprintf("%s does not answer: %v", m, err), nil
		}
		if st.Role != pg.RoleStandby {
			return false, "", fmt.Errorf("%s is not a standby after its restart (pg_is_in_recovery() is false)", m)
		}
		if !st.Streaming || !sameAddress(st.Upstream, want) {
			recv := "no WAL receiver streaming"
			if st.Upstream != "" {
				recv = fmt.Sprintf("WAL receiver on %s (streaming %t)", st.Upstream, st.Streaming)
			}
			return false, fmt.Sprintf("%s does not stream from %s (%s) yet: %s", m, s.Upstream, want, recv), nil
		}
		up, err := inspectNamed(ctx, t, s.Upstream)
		if err != nil {
			return false, fmt.Sprintf("upstream %s does not answer: %v", s.Upstream, err), nil
		}
		if up.Role != pg.RolePrimary {
			return false, "", fmt.Errorf("upstream %s is no longer a primary", s.Upstream)
		}
		var lag int64
		if up.CurrentLSN > st.ReplayLSN {
			lag = int64(up.CurrentLSN - st.ReplayLSN)
		}
		if lag > s.MaxLag {
			return false, fmt.Sprintf("%s streams from %s but replays %s behind %s (want at most %s)",
				m, s.Upstream, params.FormatBytes(lag), up.CurrentLSN, params.FormatBytes(s.MaxLag)), nil
		}
		seen = fmt.Sprintf("replay at %s, %d bytes behind %s's %s", st.ReplayLSN, lag, s.Upstream, up.CurrentLSN)
		return true, "", nil
	})
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return fmt.Errorf("%s: cut off before it streamed from %s again: %w", m, s.Upstream, err)
	case wctx.Err() != nil:
		return fmt.Errorf("%s: does not stream from %s, caught up, within %s of its restart: %w", m, s.Upstream, s.Within, err)
	default:
		return fmt.Errorf("%s: %w", m, err)
	}
	t.Print(fmt.Sprintf("%s streams from %s again, %s after its restart (%s)", m, s.Upstream, since(start), seen))
	return nil
}

// inspectNamed asks an inventory node what it is, on a connection of its
// own (one cached from before a restart would be dead), within a few
// seconds of ctx's time.
func inspectNamed(ctx context.Context, t *cluster.Target, name string) (pg.State, error) {
	n, err := t.Node(name)
	if err != nil {
		return pg.State{}, err
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := connectNode(ictx, nil, n, 5*time.Second)
	if err != nil {
		return pg.State{}, err
	}
	defer closeConn(conn)
	return pg.Inspect(ictx, conn)
}

// upstreamAddr is the host:port a standby's WAL receiver shows when it
// streams from node: the server node's conninfo names.
func upstreamAddr(t *cluster.Target, node string) (string, error) {
	n, err := t.Node(node)
	if err != nil {
		return "", err
	}
	r, err := conninfo.Resolve(n.Conninfo)
	if err != nil {
		return "", fmt.Errorf("conninfo of %q: %w", node, err)
	}
	return r.Address(), nil
}

// sameAddress reports whether two host:port addresses name one server;
// loopback addresses count as one.
func sameAddress(a, b string) bool {
	if a == b {
		return true
	}
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb {
		return false
	}
	return strings.EqualFold(ha, hb) || pg.IsLoopback(ha) && pg.IsLoopback(hb)
}

// fact returns a fact of the run, tolerating a target without facts.
func fact(t *cluster.Target, key string) (string, bool) {
	if t == nil || t.Facts == nil {
		return "", false
	}
	return t.Facts.Get(key)
}
