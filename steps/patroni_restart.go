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
		Manager: "patroni",
		Doc:     "asks the node's own Patroni to restart its PostgreSQL (POST /restart on the member's api_url) and follows /cluster until it runs again (a replica: running or streaming, lag known)",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the member to restart (the node's name is its Patroni member name)"},
			{Name: "within", Type: params.Duration, Default: "120s", Doc: "how long the member has to run again, counted from the request"},
		},
		Destructive: true,
		New: func(v params.Values) (Step, error) {
			s := &PatroniRestart{Node: strings.TrimSpace(v.String("node")), Within: v.Duration("within")}
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
}

var _ Step = (*PatroniRestart)(nil)

// Describe implements Step.
func (s *PatroniRestart) Describe(t *cluster.Target) Effect {
	first, all := patroniWhere(t)
	return Effect{Node: s.Node + " via " + all,
		Command: fmt.Sprintf("GET %s/cluster for %s's api_url, then POST <that scheme://host:port>/restart %s (an inventory url with the same host:port is used as given); then GET /cluster every %s until %s is running again (a replica: running or streaming with its lag known), for up to %s",
			first, s.Node, patroni.RestartRequest, restartPollInterval, s.Node, s.Within),
		Changes: fmt.Sprintf("Patroni stops and starts PostgreSQL on %s: its sessions are cut, and while it is down it serves no queries (a leader: no writes)", s.Node)}
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
				return nil
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

// runsAgain reports whether a member is back in service: a leader running,
// a replica running or streaming with a lag Patroni can tell.
func runsAgain(m patroni.Member) bool {
	if m.IsLeader() {
		return m.State == "running"
	}
	return (m.State == "running" || m.State == "streaming") && m.Lag.Known
}
