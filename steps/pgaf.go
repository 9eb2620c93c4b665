package steps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pgaf"
)

func init() {
	Register(Definition{
		Kind:    "pgaf.perform_promotion",
		Manager: cluster.ManagerPgAutoFailover,
		Doc:     "asks the pg_auto_failover monitor to promote the candidate (pgautofailover.perform_promotion, the supported way to choose it) and follows the monitor and PostgreSQL until the candidate is the primary and takes writes",
		Params: []params.Spec{
			{Name: "primary", Type: params.Node, Required: true, Doc: "the current primary (the node's name is its pg_auto_failover node name)"},
			{Name: "candidate", Type: params.Node, Required: true, Doc: "the node to become the primary"},
			{Name: "within", Type: params.Duration, Default: "60s", Doc: "how long the candidate has to become the primary taking writes"},
		},
		Destructive: true,
		New: func(v params.Values) (Step, error) {
			s := &PgafPromotion{Primary: v.Node("primary"), Candidate: v.Node("candidate"), Within: v.Duration("within")}
			if s.Within <= 0 {
				return nil, errors.New(`parameter "within" must be more than 0`)
			}
			if s.Primary == s.Candidate {
				return nil, fmt.Errorf("primary and candidate are both %q", s.Primary)
			}
			return s, nil
		},
	})
}

// PgafPromotion is a step that has the pg_auto_failover monitor promote
// the candidate, and follows the promotion until the candidate takes
// writes. Before it asks, it fences the old primary (see pg.ApplyFence):
// the monitor promotes the candidate once the old primary's keeper reports
// it stopped or, when the keeper is late, once its demote timeout expires;
// without synchronous replication to the candidate the old primary would
// acknowledge commits until then that the new primary never receives. With a monitor in charge this is the only safe way: a server
// stopped or promoted behind its back is one the monitor fails over from,
// or demotes again. The monitor drains the old primary, has the standbys
// report their LSN, promotes the candidate and lets it take writes once it
// has seen the old primary demoted; the step ends at that moment, which is
// when clients held in the pooler may go on, and leaves the rest (the old
// primary rejoining as a secondary) to the monitor.
type PgafPromotion struct {
	Primary, Candidate string
	Within             time.Duration

	// writable asks PostgreSQL on the candidate whether it takes writes;
	// nil asks the inventory's node. Tests set it.
	writable writesProbe
}

var _ Step = (*PgafPromotion)(nil)

// Describe implements Step.
func (s *PgafPromotion) Describe(t *cluster.Target) Effect {
	where, formation := "the monitor", "default"
	if c, err := pgaf.ForTarget(t); err == nil {
		where, formation = c.Where(), c.Formation()
	}
	return Effect{Node: "pg_auto_failover monitor " + where,
		Command: fmt.Sprintf("unless the monitor shows %[4]s promoted or being promoted already: on %[10]s %[11]s (what it replaces in postgresql.auto.conf recorded as fact %[12]s), then SELECT pgautofailover.perform_promotion('%[1]s', '%[2]s') on the monitor at %[3]s; then %[5]s on %[4]s every %[6]s and the monitor's pgautofailover.node every %[7]s, until the monitor assigns %[4]s a primary's state and it takes writes, for up to %[9]s",
			formation, s.Candidate, where, s.Candidate, writableSQL, switchoverPoll, managerPoll, s.Candidate, s.Within, s.Primary, fenceSQL, FenceFact(s.Primary)),
		Changes: fmt.Sprintf("%[1]s is fenced first: from then on it acknowledges no commit and its client sessions are ended, so that it cannot take writes beside %[2]s however late its keeper stops it (pgaf.unfence lifts the fence once it is a standby, or at once when the monitor refuses), and fenced again should its keeper write over the fence while the monitor has it in wait_primary; the monitor drains and demotes %[1]s and promotes %[2]s; writes fail until %[2]s takes them; %[1]s rejoins as a secondary on its own",
			s.Primary, s.Candidate)}
}

// promoting says why the view shows the candidate promoted or being
// promoted, or "" when it does not.
func promoting(v *pgaf.View, candidate string) string {
	n, ok := v.Node(candidate)
	if !ok {
		return ""
	}
	switch n.Goal {
	case pgaf.StatePreparePromotion, pgaf.StateStopReplication:
		return fmt.Sprintf("the monitor is promoting %s (assigned %s)", candidate, n.Goal)
	}
	if n.Goal.IsPrimary() {
		return fmt.Sprintf("the monitor assigns %s %s already", candidate, n.Goal)
	}
	return ""
}

// Apply implements Step.
func (s *PgafPromotion) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error {
		return fmt.Errorf("pg_auto_failover promotion of %q (from %q): %w", s.Candidate, s.Primary, err)
	}
	c, err := pgaf.ForTarget(t)
	if err != nil {
		return fail(err)
	}
	writable, err := candidateWrites(t, s.Candidate, s.writable)
	if err != nil {
		return fail(fmt.Errorf("%w; nothing changed", err))
	}
	start := time.Now()
	deadline := start.Add(s.Within)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	// A resumed run may find the promotion done or under way: then it is
	// followed, and the monitor is not asked again (it would refuse, or
	// start another one from the new primary).
	v, err := c.View(dctx)
	if err != nil {
		return fail(fmt.Errorf("%w; nothing changed", err))
	}
	if why := promoting(v, s.Candidate); why != "" {
		t.Print(fmt.Sprintf("pg_auto_failover: %s (%s); following it, nothing asked", why, v))
	} else {
		// The old primary is fenced before the monitor is asked: the
		// monitor promotes the candidate once the old primary's keeper
		// reports it stopped, or when its demote timeout expires, and a
		// keeper that is late (a starved host) leaves the old primary
		// acknowledging commits that the candidate never receives.
		if err := s.fence(dctx, t); err != nil {
			return fail(fmt.Errorf("fencing %s before the monitor is asked: %w; %s; nothing asked of the monitor", s.Primary, err, s.lift(ctx, t, c)))
		}
		if _, err := c.Promote(dctx, s.Candidate); err != nil {
			return fail(fmt.Errorf("%w; the monitor showed %s; %s", err, v, s.lift(ctx, t, c)))
		}
		t.Print(fmt.Sprintf("pg_auto_failover: the monitor at %s accepted perform_promotion('%s', '%s')", c.Where(), c.Formation(), s.Candidate))
	}
	var shown progressShown
	raced := false
	var refenced time.Time
	refenceFailed := false
	f := &managerFollow[*pgaf.View]{
		writable: writable,
		look:     c.View,
		judge: func(v *pgaf.View, writes bool) (bool, error) {
			if line := s.progress(v, start, &shown); line != "" {
				t.Print(line)
			}
			if why := s.raced(v); why != "" {
				if !raced {
					raced = true
					t.Facts.Set(PgafRaceFact, why)
					t.Print("pg_auto_failover: " + why)
				}
				// The keeper, carrying out wait_primary, writes its own
				// synchronous_standby_names over the fence's.
				if time.Since(refenced) >= refenceEvery {
					refenced = time.Now()
					rctx, cancel := context.WithTimeout(dctx, 2*time.Second)
					did, err := s.refence(rctx, t)
					cancel()
					switch {
					case err != nil && !refenceFailed:
						// A stopped old primary takes no commit: said once.
						refenceFailed = true
						t.Print(fmt.Sprintf("pg_auto_failover: could not look whether %s is still fenced: %v", s.Primary, err))
					case did != "":
						t.Print("pg_auto_failover: " + did)
					}
				}
			}
			if p := v.Primary(); p != "" && p != s.Candidate && p != s.Primary {
				return false, fail(fmt.Errorf("the monitor made %s the primary instead of %s (%s)", p, s.Candidate, v))
			}
			if n, found := v.Node(s.Candidate); !writes || !found || !n.Goal.IsPrimary() {
				return false, nil
			}
			t.Print(fmt.Sprintf("pg_auto_failover: %s takes writes after %s; the monitor shows %s", s.Candidate, since(start), v))
			return true, nil
		},
	}
	end, err := f.run(ctx, t, start, deadline)
	if err != nil || end == nil {
		return err
	}
	var last *pgaf.View
	if end.Seen {
		last = end.Last
	}
	if end.Cut != nil {
		return fail(fmt.Errorf("cut off (%w) before %s took writes, the promotion may still be going on; %s; PostgreSQL on %s: %s; %s stays fenced", end.Cut, s.Candidate, pgafSeen(last, end.LastErr), s.Candidate, end.Postgres, s.Primary))
	}
	return fail(fmt.Errorf("%s is not the primary taking writes within %s; %s; PostgreSQL on %s: %s; %s", s.Candidate, s.Within, pgafSeen(last, end.LastErr), s.Candidate, end.Postgres, s.lift(ctx, t, c)))
}

// pgafQuiet is how long the step follows the promotion without a word;
// past it, it says what the monitor shows at every change, and every
// pgafRepeat when nothing changes, so that a slow promotion is explained
// as it happens.
const (
	pgafQuiet  = 2 * time.Second
	pgafRepeat = 5 * time.Second
)

// progressShown is what the step said last about a slow promotion.
type progressShown struct {
	view      string
	at        time.Time
	explained bool
}

// progress says what the monitor shows once the promotion is slow: at a
// change of view, or pgafRepeat after the last line; "" otherwise.
func (s *PgafPromotion) progress(v *pgaf.View, start time.Time, shown *progressShown) string {
	now := time.Now()
	if now.Sub(start) < pgafQuiet {
		return ""
	}
	view := v.String()
	if view == shown.view && now.Sub(shown.at) < pgafRepeat {
		return ""
	}
	shown.view, shown.at = view, now
	line := fmt.Sprintf("pg_auto_failover: after %s the monitor shows %s", since(start), view)
	if n, ok := v.Node(s.Primary); ok && n.Reported.IsPrimary() && !n.Goal.IsPrimary() && !shown.explained {
		shown.explained = true
		line += fmt.Sprintf("; %s's keeper has not reported it stopped (%s is fenced meanwhile): the monitor lets %s take writes once it does, or when its demote timeout expires (pgautofailover.primary_demote_timeout, 30s unless set)",
			s.Primary, s.Primary, s.Candidate)
	}
	return line
}

// PgafRaceFact records that the monitor moved the old primary to
// wait_primary in the middle of the promotion (see raced): the
// switchover then waits for the monitor's demote timeout.
const PgafRaceFact = "pgaf.old_primary_wait_primary"

// raced says, when the view shows it, that the monitor has moved the old
// primary to wait_primary while it promotes the candidate: a race in the
// monitor (pg_auto_failover 2.0), which reads the old primary before the
// promotion and its standby after, counts no healthy standby, and sends
// the old primary to wait_primary, emptying its synchronous_standby_names.
// The old primary's keeper has no way from wait_primary to the drain, so
// the monitor promotes the candidate only when its demote timeout
// expires. "" when the view does not show it.
func (s *PgafPromotion) raced(v *pgaf.View) string {
	old, ok := v.Node(s.Primary)
	cand, ok2 := v.Node(s.Candidate)
	if !ok || !ok2 || (old.Goal != pgaf.StateWaitPrimary && old.Reported != pgaf.StateWaitPrimary) {
		return ""
	}
	switch cand.Goal {
	case pgaf.StatePreparePromotion, pgaf.StateStopReplication:
	default:
		return ""
	}
	return fmt.Sprintf("the monitor moved %[1]s to wait_primary while it promotes %[2]s (%[3]s): a race in the monitor, which counted no healthy standby once %[2]s was being promoted. %[1]s's keeper cannot drain from wait_primary, so the monitor lets %[2]s take writes only when its demote timeout expires (pgautofailover.primary_demote_timeout, 30s unless set); %[1]s is fenced meanwhile, and clients wait in the pooler",
		s.Primary, s.Candidate, v)
}

// pgafSeen says what the monitor showed last.
func pgafSeen(last *pgaf.View, lastErr error) string {
	switch {
	case last == nil && lastErr != nil:
		return fmt.Sprintf("the monitor could not be read: %v", lastErr)
	case last == nil:
		return "the monitor was not read"
	case lastErr != nil:
		return fmt.Sprintf("the monitor at %s last showed: %s; then it could not be read: %v", last.Monitor, last, lastErr)
	}
	return fmt.Sprintf("the monitor at %s shows: %s", last.Monitor, last)
}

// Promotes implements kinds.Promoter.
func (s *PgafPromotion) Promotes() string { return s.Candidate }

// Demotes implements kinds.Demoter.
func (s *PgafPromotion) Demotes() string { return s.Primary }
