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
		Kind:    "patroni.pause",
		Manager: cluster.ManagerPatroni,
		Doc:     "puts Patroni in maintenance mode (PATCH /config pause true), so it cannot fail over on its own; succeeds when it is paused already",
		New:     func(params.Values) (Step, error) { return &PatroniPause{Pause: true}, nil },
	})
	Register(Definition{
		Kind:    "patroni.resume",
		Manager: cluster.ManagerPatroni,
		Doc:     "takes Patroni out of maintenance mode (PATCH /config pause false); succeeds when it is not paused, so finally may always run it",
		New:     func(params.Values) (Step, error) { return &PatroniPause{Pause: false}, nil },
	})
	Register(Definition{
		Kind:    "patroni.switchover",
		Manager: cluster.ManagerPatroni,
		Doc:     "asks Patroni to switch the leader over to the candidate (POST /switchover) and follows /cluster until the candidate leads and runs",
		Params: []params.Spec{
			{Name: "leader", Type: params.Node, Required: true, Doc: "the current leader (the node's name is its Patroni member name)"},
			{Name: "candidate", Type: params.Node, Required: true, Doc: "the member to become the leader"},
			{Name: "within", Type: params.Duration, Default: "60s", Doc: "how long the candidate has to become the running leader (from scheduled_at when given)"},
			{Name: "scheduled_at", Type: params.String, Doc: "when Patroni is to switch over, RFC3339 (e.g. 2025-01-02T03:00:00Z); now when not given"},
		},
		Destructive: true,
		New: func(v params.Values) (Step, error) {
			s := &PatroniSwitchover{Leader: v.Node("leader"),
				Candidate: v.Node("candidate"), Within: v.Duration("within")}
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

// patroniWhere names the APIs for plans; the first that answers is used.
func patroniWhere(t *cluster.Target) (first, all string) {
	c, err := patroni.ForTarget(t)
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
	c, err := patroni.ForTarget(t)
	if err != nil {
		return fail(err)
	}
	cfg, err := c.Config(ctx)
	if err != nil {
		return fail(fmt.Errorf("%w; nothing changed", err))
	}
	if cfg.Pause == s.Pause {
		t.Unchanged(fmt.Sprintf("patroni: GET %s shows \"pause\": %t already; nothing to %s", cfg.URL, cfg.Pause, s.verb()))
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
		case <-time.After(managerPoll):
		}
	}
}

// PatroniSwitchover is a step that asks Patroni to move the leader lock to
// the candidate and follows the switchover to its end: /cluster must show
// the candidate as the one running leader and PostgreSQL on the candidate
// must say it is out of recovery and takes writes, before its deadline.
// Patroni's own answer is not the verdict: it may say it failed while the
// switchover carries on, and it answers only when its own one-second poll
// of the DCS sees the new leader, so the step follows the cluster while the
// request is still open and ends as soon as the candidate takes writes,
// which is when clients held in the pooler may go on.
type PatroniSwitchover struct {
	Leader, Candidate string
	Within            time.Duration
	ScheduledAt       *time.Time

	// writable asks PostgreSQL on the candidate whether it takes writes;
	// nil asks the inventory's node. Tests set it.
	writable writesProbe
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
		Command: fmt.Sprintf("POST <%s's api_url>/switchover %s (the leader's own API, as GET %s/cluster names it; else the first url that answers); meanwhile %s on %s every %s and GET /cluster every %s, until /cluster shows %s as the one running leader and it takes writes, for up to %s",
			s.Leader, patroni.SwitchoverRequest(s.Leader, s.Candidate, s.ScheduledAt), first, writableSQL, s.Candidate, switchoverPoll, managerPoll, s.Candidate, s.Within),
		Changes: fmt.Sprintf("Patroni stops %s as the leader %s and promotes %s; %s comes back as a replica; writes fail until %s leads",
			s.Leader, when, s.Candidate, s.Leader, s.Candidate)}
}

// postAnswer is what Patroni answered to POST /switchover.
type postAnswer struct {
	text string
	err  error
}

// Apply implements Step.
func (s *PatroniSwitchover) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error {
		return fmt.Errorf("patroni switchover %q to %q: %w", s.Leader, s.Candidate, err)
	}
	c, err := patroni.ForTarget(t)
	if err != nil {
		return fail(err)
	}
	writable, err := candidateWrites(t, s.Candidate, s.writable)
	if err != nil {
		return fail(fmt.Errorf("%w; nothing changed", err))
	}
	start := time.Now()
	deadline := start.Add(s.Within)
	if s.ScheduledAt != nil && s.ScheduledAt.After(start) {
		deadline = s.ScheduledAt.Add(s.Within)
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	// The request goes on while the cluster is followed. An operator's
	// interrupt does not cut it off: that would undo nothing Patroni has
	// started, and Patroni logs a broken pipe with a traceback for it.
	postCtx, postCancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	var posted chan postAnswer
	// A resumed run may find the switchover done or under way: then it is
	// followed and nothing is sent, since Patroni refuses a request whose
	// leader no longer holds the lock (and a second request would be news).
	if st, err := c.Cluster(dctx); err == nil && underWay(st, s.Candidate) != "" {
		t.Print(fmt.Sprintf("patroni: %s (%s); following it, nothing sent", underWay(st, s.Candidate), st))
	} else {
		posted = make(chan postAnswer, 1)
		go func() {
			text, err := c.Switchover(postCtx, s.Leader, s.Candidate, s.ScheduledAt)
			posted <- postAnswer{text, err}
		}()
	}
	defer func() {
		if posted == nil || t == nil || t.Session == nil {
			postCancel()
			return
		}
		// Still open: the run closes it, after giving Patroni time to answer.
		t.Session.Put(fmt.Sprintf("patroni.switchover.post.%p", posted), &openPost{done: posted, cancel: postCancel})
	}()
	answer := "" // Patroni's answer, once it came
	// heard takes Patroni's answer to the request once it comes.
	heard := func() error {
		var a postAnswer
		select {
		case a = <-posted:
			posted = nil
		default:
			return nil
		}
		var he *patroni.HTTPError
		switch {
		case errors.As(a.err, &he) && he.Status >= 400 && he.Status < 500:
			// Refused before acting: 412 for a precondition, 400 for a
			// bad request. Unless the lock moved meanwhile (a switchover
			// from elsewhere, or one this run started before a kill).
			refused := fmt.Sprintf("patroni refused (%d): %s", he.Status, strings.TrimSpace(he.Body))
			if st, err := c.Cluster(dctx); err == nil && underWay(st, s.Candidate) != "" {
				answer = refused
				t.Print(fmt.Sprintf("patroni: %s, but %s (%s); following it", refused, underWay(st, s.Candidate), st))
				return nil
			}
			return fail(errors.New(refused + "; nothing changed"))
		case errors.Is(a.err, patroni.ErrNotSent):
			return fail(fmt.Errorf("%w; nothing changed", a.err))
		case a.err != nil && dctx.Err() != nil:
			// Cut off by the deadline: the follow says what the cluster shows.
		case a.err != nil:
			// 503 or no answer: Patroni may be switching over all the same.
			answer = a.err.Error()
			t.Print(fmt.Sprintf("patroni: %s (after %s); following /cluster to see what happens", answer, since(start)))
		default:
			answer = a.text
			t.Print(fmt.Sprintf("patroni: %s (answered after %s)", answer, since(start)))
		}
		return nil
	}
	f := &managerFollow[*patroni.State]{
		writable: writable,
		look:     c.Cluster,
		wake:     heard,
		// The first look waits a poll interval: a refusal comes at once,
		// and then the cluster need not be read at all.
		quiet: managerPoll,
		judge: func(st *patroni.State, writes bool) (bool, error) {
			leaders := st.Leaders()
			if len(leaders) == 1 && leaders[0].Name != s.Candidate && leaders[0].Name != s.Leader && leaders[0].SettledLeader() {
				// Patroni may take another member when the candidate does
				// not qualify at the moment it acts ("Switched over to X
				// instead of Y"); waiting on would only hold clients to the
				// deadline.
				return false, fail(fmt.Errorf("patroni made %s the leader instead of %s (patroni answered: %s); %s",
					leaders[0].Name, s.Candidate, orNone(answer), seen(st, nil)))
			}
			if !writes || len(leaders) != 1 || leaders[0].Name != s.Candidate || !leaders[0].SettledLeader() {
				return false, nil
			}
			before := ""
			if posted != nil {
				// Patroni answers only when its own poll of the DCS, once a
				// second, sees the new leader; the step does not wait for it.
				before = ", before Patroni answered the request"
			}
			t.Print(fmt.Sprintf("patroni: %s leads (running, timeline %d) and takes writes after %s%s; %s",
				s.Candidate, leaders[0].Timeline, since(start), before, st))
			return true, nil
		},
	}
	end, err := f.run(ctx, t, start, deadline)
	if err != nil || end == nil {
		return err
	}
	var last *patroni.State
	if end.Seen {
		last = end.Last
	}
	if end.Cut != nil {
		return fail(fmt.Errorf("cut off (%w) before the cluster settled, the switchover may still be going on; %s; PostgreSQL on %s: %s", end.Cut, seen(last, end.LastErr), s.Candidate, end.Postgres))
	}
	return fail(fmt.Errorf("%s is not the running leader taking writes within %s (patroni answered: %s); %s; PostgreSQL on %s: %s",
		s.Candidate, s.Within, orNone(answer), seen(last, end.LastErr), s.Candidate, end.Postgres))
}

// orNone is Patroni's answer for a message, or says there was none yet.
func orNone(answer string) string {
	if answer == "" {
		return "no answer yet"
	}
	return answer
}

// underWay says why /cluster shows a switchover to candidate done or under
// way, or "" when it does not: candidate holds the leader lock, or no
// member does (the old leader has let it go).
func underWay(st *patroni.State, candidate string) string {
	switch l := st.Leaders(); {
	case len(l) == 0:
		return "no member holds the leader lock: a switchover or failover is under way"
	case len(l) == 1 && l[0].Name == candidate:
		return candidate + " holds the leader lock already"
	}
	return ""
}

// openPost is a POST /switchover still waiting for Patroni's answer when
// the step ended; the run closes it when it ends.
type openPost struct {
	done   <-chan postAnswer
	cancel context.CancelFunc
}

// postGrace is how long the end of a run waits for Patroni to answer an
// open POST /switchover: Patroni answers within a second of seeing the new
// leader, so the switchover that settled is answered by then.
const postGrace = 3 * time.Second

// Close implements cluster.Closer.
func (p *openPost) Close() {
	select {
	case <-p.done:
	case <-time.After(postGrace):
	}
	p.cancel()
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

// Promotes implements kinds.Promoter.
func (s *PatroniSwitchover) Promotes() string { return s.Candidate }

// Demotes implements kinds.Demoter.
func (s *PatroniSwitchover) Demotes() string { return s.Leader }
