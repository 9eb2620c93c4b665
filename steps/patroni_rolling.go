package steps

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
)

func init() {
	Register(Definition{
		Kind:    "patroni.restart_replicas",
		Manager: cluster.ManagerPatroni,
		Doc:     "restarts every replica of the inventory through Patroni, one at a time in the inventory's order, each after an optional patch command on its host, and waits until it streams from the leader again before the next; records fact <node>.restarted_at (the restarted server's pg_postmaster_start_time()), so that a resumed run neither patches nor restarts that replica again",
		Params: []params.Spec{
			{Name: "leader", Type: params.Node, Required: true, Doc: "the current leader, left alone; every other node of the inventory is restarted"},
			{Name: "patch_command", Type: params.String, Doc: "run with /bin/sh -c on each replica's host just before its restart (the package upgrade); none when empty"},
			{Name: "within", Type: params.Duration, Default: "120s", Doc: "how long each replica has, from its restart request, to stream from the leader again"},
			{Name: "max_lag", Type: params.Bytes, Default: "16MB", Doc: "most lag Patroni may show for a restarted replica before the next one is touched"},
		},
		Destructive: true,
		New: func(v params.Values) (Step, error) {
			s := &PatroniRestartReplicas{Leader: v.Node("leader"),
				PatchCommand: strings.TrimSpace(v.String("patch_command")),
				Within:       v.Duration("within"), MaxLag: v.Int("max_lag")}
			if s.Within <= 0 {
				return nil, errors.New(`parameter "within" must be more than 0`)
			}
			return s, nil
		},
	})
}

// PatroniRestartReplicas is a step that restarts a Patroni cluster's
// replicas one at a time, so that at most one is down at any moment and
// the leader keeps a streaming replica to fail over to. It refuses before
// touching anything when /cluster and the inventory disagree about who the
// replicas are: a member it does not know of would be left unpatched, and
// one that is not a replica would be restarted while it serves writes.
type PatroniRestartReplicas struct {
	Leader       string
	PatchCommand string // "" runs none
	Within       time.Duration
	MaxLag       int64

	// standby reads a node's recovery state and WAL receiver; nil reads
	// them from PostgreSQL. Tests replace it.
	standby func(ctx context.Context, t *cluster.Target, node string) (standbyState, error)
}

var _ Step = (*PatroniRestartReplicas)(nil)

// standbyState is what PostgreSQL itself says of a replica, to cross-check
// Patroni's view.
type standbyState struct {
	Recovery bool      // pg_is_in_recovery()
	Receiver string    // pg_stat_wal_receiver.status; "" when none runs
	Sender   string    // sender_host:sender_port; "" when not known
	Started  time.Time // pg_postmaster_start_time()
}

func (s standbyState) String() string {
	switch {
	case !s.Recovery:
		return "pg_is_in_recovery() is false"
	case s.Receiver == "":
		return "in recovery, no WAL receiver running"
	case s.Sender == "":
		return "in recovery, WAL receiver " + s.Receiver
	}
	return fmt.Sprintf("in recovery, WAL receiver %s from %s", s.Receiver, s.Sender)
}

// replicas returns the nodes to restart, in the inventory's order.
func (s *PatroniRestartReplicas) replicas(t *cluster.Target) []string {
	var out []string
	if t == nil {
		return nil
	}
	for _, n := range t.Cluster.NodeOrder() {
		if n != s.Leader {
			out = append(out, n)
		}
	}
	return out
}

// Describe implements Step.
func (s *PatroniRestartReplicas) Describe(t *cluster.Target) Effect {
	first, all := patroniWhere(t)
	reps := s.replicas(t)
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s/cluster once: %s must be the leader, %s its replicas, and no other member listed; else nothing is done. Then one member at a time:",
		first, s.Leader, listOr(reps, "no other node"))
	for i, m := range reps {
		fmt.Fprintf(&b, "\n  %d. %s: ", i+1, m)
		if s.PatchCommand != "" {
			fmt.Fprintf(&b, "on %s: /bin/sh -c %s; then ", nodeWhere(t, m), transport.ShellQuote(s.PatchCommand))
		}
		fmt.Fprintf(&b, "POST <%s's api_url>/restart %s; then until %s streams from %s again (pg_is_in_recovery() true, pg_stat_wal_receiver streaming from %s) and GET /cluster shows its lag at most %s, every %s, for up to %s from the request",
			m, patroni.RestartRequest, m, s.Leader, s.Leader, params.FormatBytes(s.MaxLag), restartPollInterval, s.Within)
	}
	if len(reps) == 0 {
		b.WriteString(" none: the inventory has no node but the leader")
	} else {
		b.WriteString("\na resumed run skips the patch and restart of a replica this run restarted already (fact <node>.restarted_at, and pg_postmaster_start_time() not earlier), and only waits until it streams")
	}
	return Effect{Node: listOr(reps, "no replica") + " via " + all, Command: b.String(),
		Changes: fmt.Sprintf("Patroni stops and starts PostgreSQL on %s, one at a time, in that order: each one's sessions are cut, and it serves no queries while it is down; %s is not restarted",
			listOr(reps, "no replica"), s.Leader)}
}

// Apply implements Step.
func (s *PatroniRestartReplicas) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("restart replicas of %q: %w", s.Leader, err) }
	c, err := patroni.ForTarget(t)
	if err != nil {
		return fail(err)
	}
	if _, err := t.Node(s.Leader); err != nil {
		return fail(fmt.Errorf("%w; nothing restarted", err))
	}
	reps := s.replicas(t)
	st, err := c.Cluster(ctx)
	if err != nil {
		return fail(fmt.Errorf("%w; nothing restarted", err))
	}
	if err := s.agrees(st, reps); err != nil {
		return fail(fmt.Errorf("%w; nothing restarted", err))
	}
	if len(reps) == 0 {
		t.Print(fmt.Sprintf("no node of the inventory but %s: no replica to restart", s.Leader))
		return nil
	}
	t.Print(fmt.Sprintf("GET %s: %s leads; restarting %s one at a time", st.URL, s.Leader, strings.Join(reps, ", ")))
	begin := time.Now()
	for i, m := range reps {
		var requested bool
		var err error
		started, skipped := s.restartedBefore(ctx, t, m)
		if skipped {
			t.Print(fmt.Sprintf("%s (%d of %d): restarted by this run before it was interrupted (its PostgreSQL started at %s, fact %s): not patched or restarted again",
				m, i+1, len(reps), cluster.StartTime(started), cluster.RestartedFact(m)))
			err = s.waitStreaming(ctx, t, c, m, time.Now(), false)
		} else {
			t.Print(fmt.Sprintf("%s (%d of %d): starting, %s into the step", m, i+1, len(reps), since(begin)))
			requested, err = s.restartOne(ctx, t, c, m)
		}
		if err == nil {
			continue
		}
		what := fmt.Sprintf("%s was asked to restart and may still be restarting, or down", m)
		switch {
		case skipped:
			what = fmt.Sprintf("%s was restarted before the interruption and does not stream from %s", m, s.Leader)
		case !requested:
			what = fmt.Sprintf("%s was not restarted (its patch command did not succeed; what it changed stays)", m)
			if s.PatchCommand == "" {
				what = fmt.Sprintf("%s was not restarted", m)
			}
		}
		return fail(fmt.Errorf("%s: %w; stopped there: %s; restarted before it: %s; not restarted: %s",
			m, err, what, listOr(reps[:i], "none"), listOr(reps[i+1:], "none")))
	}
	t.Print(fmt.Sprintf("all %d replicas restarted and streaming from %s, in %s", len(reps), s.Leader, since(begin)))
	return nil
}

// agrees checks /cluster against the inventory before anything is done.
func (s *PatroniRestartReplicas) agrees(st *patroni.State, reps []string) error {
	leaders := st.Leaders()
	if len(leaders) != 1 || leaders[0].Name != s.Leader {
		names := make([]string, len(leaders))
		for i, l := range leaders {
			names[i] = l.Name
		}
		return fmt.Errorf("GET %s shows %s as the leader, not %s; members: %s", st.URL, listOr(names, "no member"), s.Leader, st)
	}
	var problems []string
	for _, m := range reps {
		pm, ok := st.Member(m)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("inventory node %s is not a Patroni member", m))
		case !pm.Role.IsReplica():
			problems = append(problems, fmt.Sprintf("%s is a %s, not a replica", m, pm.Role))
		}
	}
	for _, pm := range st.Members {
		if pm.Name == s.Leader {
			continue
		}
		known := false
		for _, m := range reps {
			known = known || m == pm.Name
		}
		if !known {
			problems = append(problems, fmt.Sprintf("member %s is not in the inventory (it would be left unrestarted)", pm.Name))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("GET %s: %s; members: %s", st.URL, strings.Join(problems, "; "), st)
	}
	return nil
}

// restartOne patches and restarts one replica and waits until it streams
// from the leader again. requested says whether the restart was asked for.
func (s *PatroniRestartReplicas) restartOne(ctx context.Context, t *cluster.Target, c *patroni.Client, m string) (requested bool, err error) {
	if s.PatchCommand != "" {
		if err := (&Exec{Command: s.PatchCommand, Node: m}).Apply(ctx, t); err != nil {
			return false, fmt.Errorf("patch command: %w", err)
		}
	}
	start := time.Now()
	restart := &PatroniRestart{Node: m, Within: s.Within, startTime: func(ctx context.Context, t *cluster.Target, node string) (time.Time, error) {
		ss, err := s.readStandby(ctx, t, node)
		return ss.Started, err
	}}
	if err := restart.Apply(ctx, t); err != nil {
		return !errors.Is(err, errNotRestarted), err
	}
	return true, s.waitStreaming(ctx, t, c, m, start, true)
}

// restartedBefore reports whether a run interrupted earlier (whose facts a
// resume restored) restarted the replica, and its server has not been
// started before that since: then its patch and restart are done.
func (s *PatroniRestartReplicas) restartedBefore(ctx context.Context, t *cluster.Target, m string) (time.Time, bool) {
	if t == nil {
		return time.Time{}, false
	}
	at, ok, err := t.Facts.Restarted(m)
	if err != nil {
		t.Print(fmt.Sprintf("%s: %v: restarting it again", m, err))
		return time.Time{}, false
	}
	if !ok {
		return time.Time{}, false
	}
	ss, err := s.readStandby(ctx, t, m)
	switch {
	case err != nil:
		t.Print(fmt.Sprintf("%s: restarted by this run before, but its start time cannot be read (%v): restarting it again", m, err))
		return time.Time{}, false
	case ss.Started.Before(at):
		t.Print(fmt.Sprintf("%s: restarted by this run at %s, but its PostgreSQL says it started at %s: restarting it again",
			m, cluster.StartTime(at), cluster.StartTime(ss.Started)))
		return time.Time{}, false
	}
	return ss.Started, true
}

// waitStreaming waits until the replica streams from the leader, within
// the step's bound from start (the restart request when asked).
func (s *PatroniRestartReplicas) waitStreaming(ctx context.Context, t *cluster.Target, c *patroni.Client, m string, start time.Time, asked bool) error {
	deadline := start.Add(s.Within)
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	// last is the last answer that said why not yet; silent, a request
	// that got no answer since (the last one may be cut off by the
	// deadline itself), said after it.
	var seen, last, silent string
	probe := func(ctx context.Context) (bool, string, error) {
		st, err := c.Cluster(ctx)
		if err != nil {
			silent = err.Error()
			return false, silent, nil
		}
		silent = ""
		if l := st.Leaders(); len(l) != 1 || l[0].Name != s.Leader {
			return false, "", fmt.Errorf("%s no longer leads: GET %s shows %s", s.Leader, st.URL, st)
		}
		pm, ok := st.Member(m)
		switch {
		case !ok:
			return false, fmt.Sprintf("GET %s lists no member %s", st.URL, m), nil
		case !pm.SettledReplica():
			return false, "patroni shows " + pm.String(), nil
		case !pm.Lag.Known || pm.Lag.Bytes > s.MaxLag:
			return false, fmt.Sprintf("patroni shows %s, want lag at most %s", pm, params.FormatBytes(s.MaxLag)), nil
		}
		ss, err := s.readStandby(ctx, t, m)
		if err != nil {
			return false, fmt.Sprintf("patroni shows %s, but %v", pm, err), nil
		}
		leader, _ := st.Member(s.Leader)
		if !ss.Recovery || ss.Receiver != "streaming" || !s.fromLeader(t, leader, ss.Sender) {
			return false, fmt.Sprintf("patroni shows %s, but PostgreSQL on %s: %s (want streaming from %s)", pm, m, ss, s.Leader), nil
		}
		seen = fmt.Sprintf("lag %s bytes in patroni, WAL receiver streaming from %s", pm.Lag, ss.Sender)
		return true, "", nil
	}
	err := poll(wctx, restartPollInterval, func(ctx context.Context) (bool, string, error) {
		done, why, err := probe(ctx)
		if why != "" && silent == "" {
			last = why
		}
		return done, why, err
	})
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return fmt.Errorf("cut off before %s streamed again: %w", m, err)
	case wctx.Err() != nil:
		from := "of its restart request"
		if !asked {
			from = "of the resume"
		}
		switch {
		case last == "":
			last = silent
		case silent != "":
			last += "; then no answer: " + silent
		}
		return fmt.Errorf("%s does not stream from %s within %s %s; last seen: %s", m, s.Leader, s.Within, from, last)
	default:
		return err
	}
	if asked {
		t.Print(fmt.Sprintf("%s streams from %s again, %s after its restart request (%s)", m, s.Leader, since(start), seen))
	} else {
		t.Print(fmt.Sprintf("%s streams from %s (%s)", m, s.Leader, seen))
	}
	return nil
}

// readStandby asks PostgreSQL on node whether it is in recovery and what
// its WAL receiver does.
func (s *PatroniRestartReplicas) readStandby(ctx context.Context, t *cluster.Target, node string) (standbyState, error) {
	if s.standby != nil {
		return s.standby(ctx, t, node)
	}
	n, err := t.Node(node)
	if err != nil {
		return standbyState{}, err
	}
	// A fresh connection each time: one cached from before the restart is dead.
	conn, err := connectNode(ctx, nil, n, 5*time.Second)
	if err != nil {
		return standbyState{}, err
	}
	defer closeConn(conn)
	var st standbyState
	var status, host *string
	var port *int
	err = conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), r.status, r.sender_host, r.sender_port, pg_postmaster_start_time()
		FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver r ON true`).Scan(&st.Recovery, &status, &host, &port, &st.Started)
	if err != nil {
		return st, fmt.Errorf("read pg_stat_wal_receiver on %s: %w", node, err)
	}
	if status != nil {
		st.Receiver = *status
	}
	if host != nil && port != nil {
		st.Sender = net.JoinHostPort(*host, strconv.Itoa(*port))
	}
	return st, nil
}

// fromLeader reports whether a WAL receiver's sender is the leader: the
// host:port /cluster gives for it (what Patroni writes in primary_conninfo)
// or one its inventory conninfo names. Loopback addresses count as one.
func (s *PatroniRestartReplicas) fromLeader(t *cluster.Target, leader patroni.Member, sender string) bool {
	h, p, err := net.SplitHostPort(sender)
	if err != nil {
		return false
	}
	var want []hostPort
	if leader.Host != "" && leader.Port != 0 {
		want = append(want, hostPort{Host: leader.Host, Port: strconv.Itoa(leader.Port)})
	}
	if r, err := nodeConninfo(t, s.Leader); err == nil {
		want = append(want, hostPort{Host: r.Host, Port: r.PortString()})
	}
	for _, w := range want {
		if w.Port == p && (strings.EqualFold(w.Host, h) || (pg.IsLoopback(w.Host) && pg.IsLoopback(h))) {
			return true
		}
	}
	return false
}

// listOr joins names with commas, or returns none when there are none.
func listOr(names []string, none string) string {
	if len(names) == 0 {
		return none
	}
	return strings.Join(names, ", ")
}
