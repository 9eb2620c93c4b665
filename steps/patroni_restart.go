package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/patroni"
)

func init() {
	Register(Definition{
		Kind:    "patroni.restart",
		Manager: cluster.ManagerPatroni,
		Doc:     "asks the node's own Patroni to restart its PostgreSQL (POST /restart on the member's api_url) and follows /cluster until it runs again (a replica: running or streaming, lag known) with a pg_postmaster_start_time() later than before the request, recorded as fact <node>.restarted_at",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the member to restart (the node's name is its Patroni member name)"},
			{Name: "within", Type: params.Duration, Default: "120s", Doc: "how long the member has to run again, counted from the request"},
		},
		Destructive: true,
		New: func(v params.Values) (Step, error) {
			s := &PatroniRestart{Node: v.Node("node"), Within: v.Duration("within")}
			if s.Within <= 0 {
				return nil, errors.New(`parameter "within" must be more than 0`)
			}
			return s, nil
		},
	})
}

// errNotRestarted marks a restart that was never asked of Patroni, or that
// Patroni refused outright: nothing changed.
var errNotRestarted = errors.New("nothing changed")

// restartPollInterval is how often patroni.restart reads /cluster.
const restartPollInterval = 200 * time.Millisecond

// PatroniRestart is a step that has Patroni restart one member's
// PostgreSQL, the way `patronictl restart` does, so that Patroni knows the
// stop is wanted and neither fails over nor starts it twice. The request
// goes to that member's own API (Patroni restarts only the server it
// manages). Patroni's answer is not the verdict: the step judges by /cluster
// showing the member running again before its deadline.
type PatroniRestart struct {
	Node   string
	Within time.Duration

	// startTime reads when the node's PostgreSQL started; nil reads
	// pg_postmaster_start_time() from the node. Tests replace it.
	startTime func(ctx context.Context, t *cluster.Target, node string) (time.Time, error)
}

var _ Step = (*PatroniRestart)(nil)

// Describe implements Step.
func (s *PatroniRestart) Describe(t *cluster.Target) Effect {
	first, all := patroniWhere(t)
	return Effect{Node: s.Node + " via " + all,
		Command: fmt.Sprintf("GET %s/cluster for %s's api_url, then POST <that scheme://host:port>/restart %s (an inventory url with the same host:port is used as given); then GET /cluster every %s until %s is running again (a replica: running or streaming with its lag known), for up to %s",
			first, s.Node, patroni.RestartRequest, restartPollInterval, s.Node, s.Within),
		Changes: fmt.Sprintf("Patroni stops and starts PostgreSQL on %s: its sessions are cut, and while it is down it serves no queries (a leader: no writes); pg_postmaster_start_time() must be later than before, and is recorded as fact %s", s.Node, cluster.RestartedFact(s.Node))}
}

// Apply implements Step.
func (s *PatroniRestart) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("patroni restart %q: %w", s.Node, err) }
	c, err := patroni.ForTarget(t)
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	deadline := start.Add(s.Within)
	// When the server running now started: the restart is proven by a
	// later one. A node that does not answer now is not compared.
	bctx, cancel := context.WithTimeout(ctx, min(5*time.Second, s.Within/4))
	before, beforeErr := s.started(bctx, t)
	cancel()
	where, answer, err := c.Restart(ctx, s.Node, s.Within)
	var he *patroni.HTTPError
	// Patroni refuses while another of its tasks runs on the member (the
	// demote of a switchover just done): that restarted nothing, so ask again.
	for errors.As(err, &he) && he.Status == 503 && strings.Contains(he.Body, "already in progress") &&
		time.Until(deadline) > restartPollInterval && ctx.Err() == nil {
		t.Print(fmt.Sprintf("patroni: %v; asking again", err))
		select {
		case <-ctx.Done():
		case <-time.After(restartPollInterval):
		}
		where, answer, err = c.Restart(ctx, s.Node, time.Until(deadline))
		he = nil
	}
	switch {
	case errors.Is(err, patroni.ErrNotSent):
		return fail(fmt.Errorf("%w; %w", err, errNotRestarted))
	case errors.As(err, &he) && he.Status >= 400 && he.Status < 500:
		return fail(fmt.Errorf("patroni refused (%d): %s; %w", he.Status, strings.TrimSpace(he.Body), errNotRestarted))
	case errors.As(err, &he):
		// 503: the conditions did not match, a restart is already under way,
		// or PostgreSQL did not start in time. /cluster tells which.
		answer = err.Error()
		t.Print("patroni: " + answer + "; following /cluster to see what happens")
	case err != nil:
		// No answer in time: the restart may be going on all the same.
		answer = err.Error()
		t.Print("patroni: " + answer + "; following /cluster to see what happens")
	default:
		t.Print(fmt.Sprintf("patroni: POST %s %s: %s", where, patroni.RestartRequest, answer))
	}
	var last *patroni.State
	var lastErr error
	for {
		pctx, cancel := context.WithDeadline(ctx, deadline)
		st, err := c.Cluster(pctx)
		cancel()
		if err == nil {
			last, lastErr = st, nil
			if m, ok := st.Member(s.Node); ok && runsAgain(m) {
				if he != nil {
					// Patroni said no and the member runs: nothing says it restarted.
					return fail(fmt.Errorf("%s; %s runs, but nothing shows it restarted; %s", answer, s.Node, seen(last, nil)))
				}
				t.Print(fmt.Sprintf("patroni: %s runs again after %s: %s", s.Node, time.Since(start).Round(time.Millisecond), m))
				return s.record(ctx, t, deadline, before, beforeErr)
			}
		} else if time.Now().Before(deadline) {
			lastErr = err
		}
		if ctx.Err() != nil {
			return fail(fmt.Errorf("cut off (%w) before %s ran again, the restart may still be going on; %s", ctx.Err(), s.Node, seen(last, lastErr)))
		}
		if !time.Now().Before(deadline) {
			return fail(fmt.Errorf("%s does not run again within %s (patroni answered: %s); %s", s.Node, s.Within, answer, seen(last, lastErr)))
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(restartPollInterval, time.Until(deadline))):
		}
	}
}

// runsAgain reports whether a member is back in service: a settled leader,
// or a settled replica with a lag Patroni can tell.
func runsAgain(m patroni.Member) bool {
	return m.SettledLeader() || m.SettledReplica() && m.Lag.Known
}

// started reads when the node's PostgreSQL started.
func (s *PatroniRestart) started(ctx context.Context, t *cluster.Target) (time.Time, error) {
	if s.startTime != nil {
		return s.startTime(ctx, t, s.Node)
	}
	return postmasterStart(ctx, t, s.Node)
}

// record proves the restart by the server's start time, later than the one
// before the request (when that was known), and records it as fact
// <node>.restarted_at: a resumed run tells by it that this run restarted
// the node. The server may take a moment to take connections after
// Patroni reports it running; it has until the step's deadline.
func (s *PatroniRestart) record(ctx context.Context, t *cluster.Target, deadline time.Time, before time.Time, beforeErr error) error {
	var after time.Time
	var last string
	for {
		rctx, cancel := context.WithDeadline(ctx, deadline)
		at, err := s.started(rctx, t)
		cancel()
		switch {
		case err != nil:
			last = fmt.Sprintf("its start time cannot be read: %v", err)
		case beforeErr == nil && !at.After(before):
			last = fmt.Sprintf("its PostgreSQL still runs the server started at %s, before the request", cluster.StartTime(at))
		default:
			after = at
		}
		if !after.IsZero() {
			break
		}
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			return fmt.Errorf("patroni restart %q: patroni shows %s running again, but %s", s.Node, s.Node, last)
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(restartPollInterval, time.Until(deadline))):
		}
	}
	was := "not known before the request"
	if beforeErr == nil {
		was = "was " + cluster.StartTime(before)
	}
	if t.Facts != nil {
		t.Facts.SetRestarted(s.Node, after)
	}
	t.Print(fmt.Sprintf("%s: PostgreSQL started at %s (%s); fact %s", s.Node, cluster.StartTime(after), was, cluster.RestartedFact(s.Node)))
	return nil
}

// postmasterStart reads pg_postmaster_start_time() on a node, through a
// fresh connection: a cached one from before a restart is dead.
func postmasterStart(ctx context.Context, t *cluster.Target, node string) (time.Time, error) {
	n, err := t.Node(node)
	if err != nil {
		return time.Time{}, err
	}
	conn, err := connectNode(ctx, nil, n, 5*time.Second)
	if err != nil {
		return time.Time{}, err
	}
	defer closeConn(conn)
	var at time.Time
	if err := conn.QueryRow(ctx, "SELECT pg_postmaster_start_time()").Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("%s: pg_postmaster_start_time(): %w", node, err)
	}
	return at, nil
}
