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
		Kind: "patroni.pause",
		Doc:  "puts Patroni in maintenance mode (PATCH /config pause true), so it cannot fail over on its own; succeeds when it is paused already",
		New:  func(params.Values) (Step, error) { return &PatroniPause{Pause: true}, nil },
	})
	Register(Definition{
		Kind: "patroni.resume",
		Doc:  "takes Patroni out of maintenance mode (PATCH /config pause false); succeeds when it is not paused, so finally may always run it",
		New:  func(params.Values) (Step, error) { return &PatroniPause{Pause: false}, nil },
	})
	Register(Definition{
		Kind: "patroni.switchover",
		Doc:  "asks Patroni to switch the leader over to the candidate (POST /switchover) and follows /cluster until the candidate leads and runs",
		Params: []params.Spec{
			{Name: "leader", Type: params.Node, Required: true, Doc: "the current leader (the node's name is its Patroni member name)"},
			{Name: "candidate", Type: params.Node, Required: true, Doc: "the member to become the leader"},
			{Name: "within", Type: params.Duration, Default: "60s", Doc: "how long the candidate has to become the running leader (from scheduled_at when given)"},
			{Name: "scheduled_at", Type: params.String, Doc: "when Patroni is to switch over, RFC3339 (e.g. 2025-01-02T03:00:00Z); now when not given"},
		},
		Destructive: true,
		New: func(v params.Values) (Step, error) {
			s := &PatroniSwitchover{Leader: strings.TrimSpace(v.String("leader")),
				Candidate: strings.TrimSpace(v.String("candidate")), Within: v.Duration("within")}
			if s.Within <= 0 {
				return nil, errors.New(`parameter "within" must be more than 0`)
			}
			if s.Leader == s.Candidate {
				return nil, fmt.Errorf("leader and candidate are both %q", s.Leader)
			}
			if at := strings.TrimSpace(v.String("scheduled_at")); at != "" {
				tm, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return nil, fmt.Errorf(`parameter "scheduled_at": want an RFC3339 time such as 2025-01-02T03:00:00Z, got %q`, at)
				}
				s.ScheduledAt = &tm
			}
			return s, nil
		},
	})
}

// pollInterval is how often patroni.switchover reads /cluster.
const pollInterval = 100 * time.Millisecond

// patroniClient returns a client for the inventory's manager.
func patroniClient(t *cluster.Target) (*patroni.Client, error) {
	if t == nil || t.Cluster == nil || t.Cluster.Manager == nil {
		return nil, errors.New("the inventory has no manager (kind: patroni, urls: ...)")
	}
	return patroni.New(t.Cluster.Manager)
}

// patroniWhere names the APIs for plans; the first that answers is used.
func patroniWhere(t *cluster.Target) (first, all string) {
	c, err := patroniClient(t)
	if err != nil {
		return "<patroni url>", fmt.Sprintf("patroni (%v)", err)
	}
	urls := c.URLs()
	return urls[0], "patroni REST API (" + strings.Join(urls, ", ") + ")"
}

// PatroniPause is a step that sets (Pause) or clears Patroni's maintenance
// mode. A paused Patroni leaves PostgreSQL alone: it neither fails over nor
// restarts a server it sees stop. Setting what is already set succeeds
// without a request, and the result is read back from /config.
type PatroniPause struct {
	Pause bool
}

var _ Step = (*PatroniPause)(nil)

func (s *PatroniPause) verb() string {
	if s.Pause {
		return "pause"
	}
	return "resume"
}

// Describe implements Step.
func (s *PatroniPause) Describe(t *cluster.Target) Effect {
	first, all := patroniWhere(t)
	e := Effect{Node: all,
		Command: fmt.Sprintf(`PATCH %s/config {"pause": %t} (to the first url that answers), unless GET /config shows it already; then GET /config must show "pause": %t`, first, s.Pause, s.Pause)}
	if s.Pause {
		e.Changes = "Patroni enters maintenance mode: it no longer fails over or restarts PostgreSQL on its own"
	} else {
		e.Changes = "Patroni leaves maintenance mode: it fails over and restarts PostgreSQL on its own again"
	}
	return e
}

// Apply implements Step.
func (s *PatroniPause) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("patroni %s: %w", s.verb(), err) }
	c, err := patroniClient(t)
	if err != nil {
		return fail(err)
	}
	cfg, err := c.Config(ctx)
	if err != nil {
		return fail(fmt.Errorf("%w; nothing changed", err))
	}
	if cfg.Pause == s.Pause {
		t.Print(fmt.Sprintf("patroni: GET %s shows \"pause\": %t already; nothing to %s", cfg.URL, cfg.Pause, s.verb()))
		return nil
	}
	where, err := c.Pause(ctx, s.Pause)
	if err != nil {
		return fail(fmt.Errorf("%w; maintenance mode may be unchanged (\"pause\": %t)", err, cfg.Pause))
	}
	t.Print(fmt.Sprintf(`patroni: PATCH %s {"pause": %t} accepted`, where, s.Pause))
	// Read it back: another member may answer, from the DCS.
	deadline := time.Now().Add(patroni.DefaultTimeout)
	for {
		cfg, err = c.Config(ctx)
		if err == nil && cfg.Pause == s.Pause {
			t.Print(fmt.Sprintf("patroni: GET %s shows \"pause\": %t", cfg.URL, s.Pause))
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				return fail(fmt.Errorf("PATCH %s was accepted, but reading it back failed: %w", where, err))
			}
			return fail(fmt.Errorf("PATCH %s was accepted, but GET %s still shows \"pause\": %t", where, cfg.URL, cfg.Pause))
		}
		select {
		case <-ctx.Done():
		case <-time.After(pollInterval):
		}
	}
}

// PatroniSwitchover is a step that asks Patroni to move the leader lock to
// the candidate, then follows /cluster until the candidate is the running
// leader or its deadline passes. Patroni's own answer is not the verdict:
// it may say it failed while the switchover carries on, so the step judges
// by what the cluster shows once it has settled.
type PatroniSwitchover struct {
	Leader, Candidate string
	Within            time.Duration
	ScheduledAt       *time.Time
}

var _ Step = (*PatroniSwitchover)(nil)

// Describe implements Step.
func (s *PatroniSwitchover) Describe(t *cluster.Target) Effect {
	first, all := patroniWhere(t)
	when := "now"
	if s.ScheduledAt != nil {
		when = "at " + s.ScheduledAt.Format(time.RFC3339)
	}
	return Effect{Node: all,
		Command: fmt.Sprintf("POST %s/switchover %s (to the first url that answers); then GET /cluster every %s until %s is the leader and running, for up to %s",
			first, patroni.SwitchoverRequest(s.Leader, s.Candidate, s.ScheduledAt), pollInterval, s.Candidate, s.Within),
		Changes: fmt.Sprintf("Patroni stops %s as the leader %s and promotes %s; %s comes back as a replica; writes fail until %s leads",
			s.Leader, when, s.Candidate, s.Leader, s.Candidate)}
}

// Apply implements Step.
func (s *PatroniSwitchover) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error {
		return fmt.Errorf("patroni switchover %q to %q: %w", s.Leader, s.Candidate, err)
	}
	c, err := patroniClient(t)
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	answer, err := c.Switchover(ctx, s.Leader, s.Candidate, s.ScheduledAt)
	var he *patroni.HTTPError
	switch {
	case errors.As(err, &he) && he.Status >= 400 && he.Status < 500:
		// Refused before acting: 412 for a precondition, 400 for a bad request.
		return fail(fmt.Errorf("patroni refused (%d): %s; nothing changed", he.Status, strings.TrimSpace(he.Body)))
	case errors.Is(err, patroni.ErrNotSent):
		return fail(fmt.Errorf("%w; nothing changed", err))
	case err != nil:
		// 503 or no answer: Patroni may be switching over all the same.
		answer = err.Error()
		t.Print("patroni: " + answer + "; following /cluster to see what happens")
	default:
		t.Print("patroni: " + answer)
	}
	deadline := start.Add(s.Within)
	if s.ScheduledAt != nil && s.ScheduledAt.After(start) {
		deadline = s.ScheduledAt.Add(s.Within)
	}
	var last *patroni.State
	var lastErr error
	for {
		pctx, cancel := context.WithDeadline(ctx, deadline)
		st, err := c.Cluster(pctx)
		cancel()
		if err == nil {
			last, lastErr = st, nil
			leaders := st.Leaders()
			if len(leaders) == 1 && leaders[0].Name == s.Candidate && leaders[0].State == "running" {
				t.Print(fmt.Sprintf("patroni: %s leads (running, timeline %d) after %s: %s",
					s.Candidate, leaders[0].Timeline, time.Since(start).Round(time.Millisecond), st))
				return nil
			}
		} else if time.Now().Before(deadline) {
			lastErr = err // not merely cut off by the deadline
		}
		if ctx.Err() != nil {
			return fail(fmt.Errorf("cut off (%w) before the cluster settled, the switchover may still be going on; %s", ctx.Err(), seen(last, lastErr)))
		}
		if !time.Now().Before(deadline) {
			return fail(fmt.Errorf("%s is not the running leader within %s (patroni answered: %s); %s",
				s.Candidate, s.Within, answer, seen(last, lastErr)))
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(pollInterval, time.Until(deadline))):
		}
	}
}

// seen says what /cluster showed last.
func seen(last *patroni.State, lastErr error) string {
	switch {
	case last == nil && lastErr != nil:
		return fmt.Sprintf("/cluster could not be read: %v", lastErr)
	case last == nil:
		return "/cluster was not read"
	case lastErr != nil:
		return fmt.Sprintf("GET %s last showed: %s; then it could not be read: %v", last.URL, last, lastErr)
	}
	return fmt.Sprintf("GET %s shows: %s", last.URL, last)
}
