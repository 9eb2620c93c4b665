package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/pgbouncer"
)

// PgBouncerPause is a step that makes every PgBouncer in front of the
// cluster hold its clients' queries: each waits for running transactions
// to finish, then lets no query through until RESUME. Clients see a pause
// instead of errors while the primary moves. The poolers are paused all or
// none: PAUSE goes to all at once under one deadline, and when one does not
// complete in time (or is refused, or cannot be reached), every one this
// run paused is resumed and the step fails with clients still on the old
// primary, before anything is stopped.
//
// A PAUSE waits for the transactions running through the pooler, and new
// clients wait behind it: a query begun a moment before, younger than any
// precondition's bound, would hold everyone for as long as it runs. So a
// PAUSE waits MaxWait at most (a small budget); then every pooler is
// resumed at once, the transactions it waited for are read on Node and
// named, and once they have ended (RetryWithin at most, with no client
// held) the PAUSE is tried again, Attempts times in all.
type PgBouncerPause struct {
	MaxWait time.Duration
	// MaxHold caps how long clients are held, from the pause to the
	// resume (see cluster.Target.BeginHold).
	MaxHold time.Duration
	// Node is where the poolers send clients, for naming what a PAUSE
	// waited for; "" names nothing and tries once.
	Node        string
	Attempts    int
	RetryWithin time.Duration
	// StageRepoint is the node a later repoint sends clients to: its
	// configuration is staged before clients are held (stageRepoint).
	StageRepoint string
}

var _ Step = (*PgBouncerPause)(nil)

// Describe implements Step.
func (s *PgBouncerPause) Describe(t *cluster.Target) Effect {
	what := "PgBouncer waits"
	if ps, err := poolers(t); err == nil && len(ps) > 1 {
		what = fmt.Sprintf("every PgBouncer (%s), at once, waits", strings.Join(t.Cluster.PoolerNames(), ", "))
	}
	retry := "every pooler is resumed and the step fails: all or none"
	if s.retries() {
		retry = fmt.Sprintf("every pooler is resumed at once, the transactions it waited for are named from %s, and once they end (%s at most, no client held) PAUSE is tried again, %d times in all", s.Node, s.RetryWithin, s.Attempts)
	}
	return Effect{Node: poolerWhere(t), Command: describeAdmin(t, "PAUSE"),
		Changes: fmt.Sprintf("%s up to %s for running transactions on %s to finish, closes its server connections, and holds new queries until RESUME; clients wait instead of failing (if one does not complete in time, %s); clients are held %s at most, whatever happens to this run",
			what, s.MaxWait, poolersDatabase(t), retry, s.MaxHold)}
}

// retries reports whether a PAUSE that does not complete is tried again.
func (s *PgBouncerPause) retries() bool { return s.Node != "" && s.Attempts > 1 }

// pausing is one pooler on its way to being paused.
type pausing struct {
	p      *cluster.Pooler
	client *pgbouncer.Client
	// err is why the pooler could not be paused; refused says PgBouncer
	// itself refused it, so this run holds nothing there.
	err      error
	refused  bool
	timedOut bool   // its PAUSE did not complete within MaxWait
	took     string // how long its PAUSE took, for output
}

// errOtherPooler cancels the PAUSEs still waiting once one has failed.
var errOtherPooler = errors.New("another pooler's PAUSE failed")

// Apply implements Step.
func (s *PgBouncerPause) Apply(ctx context.Context, t *cluster.Target) error {
	ps, err := poolers(t)
	if skipNoPooler(t, err, "pause") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pause pgbouncer: %w", err)
	}
	fail := func(err error) error {
		if len(ps) == 1 {
			return fmt.Errorf("pause pgbouncer (%s): %w", adminCommand("PAUSE", ps[0]), err)
		}
		return fmt.Errorf("pause pgbouncer (%s): %w", strings.TrimSuffix(describeAdmin(t, "PAUSE"), " (at once)"), err)
	}
	all := make([]*pausing, len(ps))
	for i, p := range ps {
		all[i] = &pausing{p: p}
	}
	defer func() {
		for _, a := range all {
			a.client.Close()
		}
	}()
	// Every admin console answers, and no pause is there already, before
	// anything is held.
	if err := s.ready(ctx, t, all, fail); err != nil {
		return err
	}
	// What the repoint will rewrite, read (and, with StageRepoint,
	// written beside it repointed) while nobody is held yet.
	for _, p := range ps {
		keepPoolerConfig(ctx, t, p)
		if s.StageRepoint != "" {
			stageRepoint(ctx, t, p, s.StageRepoint)
		}
	}
	attempts := 1
	if s.retries() {
		attempts = s.Attempts
	}
	for attempt := 1; ; attempt++ {
		// The budget and the guard before anything is held.
		if err := t.BeginHold(s.MaxHold); err != nil {
			setPausedAll(t, pausedNo)
			return fail(fmt.Errorf("%w; nothing paused", err))
		}
		// Journaled before PAUSE is sent: a run killed while it waits has
		// paused every pooler as far as anyone can tell, and its resume
		// sends RESUME to each.
		setPausedAll(t, pausedSent)
		sent := time.Now()
		s.pauseAll(ctx, all)
		var failed []*pausing
		timedOut := false
		for _, a := range all {
			if a.err != nil {
				failed = append(failed, a)
			}
			timedOut = timedOut || a.timedOut
		}
		if len(failed) == 0 {
			setPausedAll(t, pausedYes)
			for _, a := range all {
				t.Print(fmt.Sprintf("%s paused %s in %s: clients wait until RESUME, %s at most (fact %s)", label(t, a.p), poolerDatabase(a.p), a.took, s.MaxHold, PausedFact))
				// Left for the repoint's RELOAD (or a resume), which then
				// does not connect while clients are held.
				keepAdmin(t, a.p, a.client)
				a.client = nil
			}
			return nil
		}
		// What the PAUSE waits for, read while it still waits: the
		// transactions open since before it was sent.
		var holders []pg.OpenXact
		var holdersErr error
		if timedOut && s.Node != "" {
			holders, holdersErr = s.holders(ctx, t, time.Since(sent))
		}
		err := s.undo(ctx, t, all, failed, fail)
		if !timedOut || s.Node == "" {
			return err
		}
		named := describeHolders(s.Node, holders, holdersErr)
		if attempt >= attempts || holdersErr != nil || len(holders) == 0 || ctx.Err() != nil {
			return fmt.Errorf("%w; %s", err, named)
		}
		t.Print(fmt.Sprintf("PAUSE waited %s for %s; clients went on at once. Waiting up to %s, with no client held, for them to end, then PAUSE again (attempt %d of %d)",
			s.MaxWait, named, s.RetryWithin, attempt+1, attempts))
		if werr := s.awaitEnd(ctx, t, holders); werr != nil {
			return fmt.Errorf("%w; %w", err, werr)
		}
		// A PAUSE cut off by its deadline closed its admin connection:
		// every pooler gets a fresh one, and is looked at again.
		for _, a := range all {
			a.client.Close()
			a.client, a.err, a.refused, a.timedOut, a.took = nil, nil, false, false, ""
		}
		if err := s.ready(ctx, t, all, fail); err != nil {
			return err
		}
	}
}

// holders reads on Node the transactions open longer than age: those a
// PAUSE sent age ago waits for.
func (s *PgBouncerPause) holders(ctx context.Context, t *cluster.Target, age time.Duration) ([]pg.OpenXact, error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	n, err := t.Node(s.Node)
	if err != nil {
		return nil, err
	}
	conn, err := connectNode(rctx, t, n, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer closeConn(conn)
	all, err := pg.OpenTransactions(rctx, conn, age)
	if err != nil {
		return nil, err
	}
	// Idle in transaction counts only when it began before the PAUSE.
	var out []pg.OpenXact
	for _, x := range all {
		if x.XactAge >= age {
			out = append(out, x)
		}
	}
	return out, nil
}

// describeHolders names what a PAUSE waited for, for output and errors.
func describeHolders(node string, holders []pg.OpenXact, err error) string {
	switch {
	case err != nil:
		return fmt.Sprintf("transactions on %s that could not be named (%v)", node, err)
	case len(holders) == 0:
		return fmt.Sprintf("no transaction on %s open since before it (one ended meanwhile, or it runs on another server)", node)
	}
	parts := make([]string, len(holders))
	for i, h := range holders {
		parts[i] = h.String()
	}
	return fmt.Sprintf("%s on %s open since before it: %s", plural(len(holders), "1 transaction", fmt.Sprintf("%d transactions", len(holders))), node, strings.Join(parts, "; "))
}

// awaitEnd waits, RetryWithin at most, until none of the transactions
// holders names is open any more (the same pid with the same start).
func (s *PgBouncerPause) awaitEnd(ctx context.Context, t *cluster.Target, holders []pg.OpenXact) error {
	wctx, cancel := context.WithTimeout(ctx, s.RetryWithin)
	defer cancel()
	n, err := t.Node(s.Node)
	if err != nil {
		return err
	}
	start := time.Now()
	for {
		still, err := stillOpen(wctx, t, n, holders)
		if err == nil && len(still) == 0 {
			t.Print(fmt.Sprintf("the transactions PAUSE waited for ended %s later", since(start)))
			return nil
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				return fmt.Errorf("whether the transactions PAUSE waited for ended is not known after %s: %w; clients are on the old primary, nothing stopped", s.RetryWithin, err)
			}
			return fmt.Errorf("still open after %s: %s; clients are on the old primary, nothing stopped: let it finish or end it, then run again", s.RetryWithin, describeHolders(s.Node, still, nil))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stillOpen returns those of holders whose transaction is still open.
func stillOpen(ctx context.Context, t *cluster.Target, n *cluster.Node, holders []pg.OpenXact) ([]pg.OpenXact, error) {
	conn, err := connectNode(ctx, t, n, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer closeConn(conn)
	now, err := pg.OpenTransactions(ctx, conn, 0)
	if err != nil {
		return nil, err
	}
	var still []pg.OpenXact
	for _, h := range holders {
		for _, x := range now {
			if x.PID == h.PID && x.XactStart.Equal(h.XactStart) {
				still = append(still, x)
			}
		}
	}
	return still, nil
}

// ready connects to every pooler's admin console at once and looks for a
// pause already there: PgBouncer takes a second PAUSE of a paused database
// without a word, so a pause already there is someone else's (another run,
// an operator), and this run must neither add to it nor, later, lift it.
func (s *PgBouncerPause) ready(ctx context.Context, t *cluster.Target, all []*pausing, fail func(error) error) error {
	var wg sync.WaitGroup
	by := make([]string, len(all))
	for i, a := range all {
		wg.Go(func() {
			client, err := pgbouncer.Connect(ctx, a.p.Admin)
			if err != nil {
				a.err = fmt.Errorf("connect to the admin console: %w", err)
				return
			}
			a.client = client
			by[i], a.err = pausedAlready(ctx, client, a.p)
		})
	}
	wg.Wait()
	var problems []string
	othersPause := false
	for i, a := range all {
		prefix := ""
		if len(all) > 1 {
			prefix = a.p.Name + ": "
		}
		switch {
		case a.err != nil:
			problems = append(problems, prefix+a.err.Error())
		case by[i] != "":
			othersPause = true
			problems = append(problems, fmt.Sprintf("%s%s is paused already (%s), by another run or an operator", prefix, poolerDatabase(a.p), by[i]))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	if othersPause {
		setPausedAll(t, pausedNo)
		return fail(fmt.Errorf("%s: this run paused nothing and will not resume it", strings.Join(problems, "; ")))
	}
	return fail(fmt.Errorf("%s; nothing paused", strings.Join(problems, "; ")))
}

// pauseAll sends PAUSE to every pooler at once, under one deadline
// (MaxWait); the first to fail cuts the others short.
func (s *PgBouncerPause) pauseAll(ctx context.Context, all []*pausing) {
	base, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	pctx, cancel := context.WithTimeout(base, s.MaxWait)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for _, a := range all {
		wg.Go(func() {
			err := a.client.Pause(pctx, a.p.Database)
			a.took = since(start)
			if err == nil {
				return
			}
			var pe *pgconn.PgError
			switch {
			case ctx.Err() != nil:
				a.err = fmt.Errorf("cut off after %s before it completed: %w", since(start), ctx.Err())
			case errors.Is(context.Cause(base), errOtherPooler):
				a.err = fmt.Errorf("stopped after %s: %w", since(start), errOtherPooler)
			case pctx.Err() != nil:
				a.err, a.timedOut = fmt.Errorf("running transactions did not finish within %s", s.MaxWait), true
			case errors.As(err, &pe):
				// PgBouncer refused it: this run paused nothing there.
				a.err, a.refused = pe, true
			default:
				// The step's error names the PAUSE already.
				a.err = fmt.Errorf("no answer: %w", errors.Unwrap(err))
			}
			abort(errOtherPooler)
		})
	}
	wg.Wait()
}

// undo resumes every pooler PAUSE was sent to and not refused, at once,
// after one of them failed: PgBouncer goes on pausing a database whose
// PAUSE was cut short, so those clients too would be stuck until someone
// resumes. Each RESUME has a fresh admin connection and a deadline of its
// own: the pause's context may be what ran out.
func (s *PgBouncerPause) undo(ctx context.Context, t *cluster.Target, all, failed []*pausing, fail func(error) error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	st := pauseStates{}
	var resumeErrs = make([]error, len(all))
	var wg sync.WaitGroup
	for i, a := range all {
		if a.refused {
			st[a.p.Name] = pausedNo
			continue
		}
		wg.Go(func() {
			resume := func(c *pgbouncer.Client) error { return c.Resume(rctx, a.p.Database) }
			if err := withAdmin(rctx, a.p, resume); err != nil && !pgbouncer.NotPaused(err) {
				resumeErrs[i] = err
			}
		})
	}
	wg.Wait()
	var resumed, stuck []string
	for i, a := range all {
		if a.refused {
			continue
		}
		if resumeErrs[i] != nil {
			st[a.p.Name] = pausedSent
			stuck = append(stuck, fmt.Sprintf("%s: %v", label(t, a.p), resumeErrs[i]))
			continue
		}
		st[a.p.Name] = pausedNo
		resumed = append(resumed, label(t, a.p)+" "+adminCommand("RESUME", a.p))
	}
	writePaused(t, st)
	if len(stuck) == 0 {
		// Whatever happened, the clients are not held by this pause.
		t.EndHold()
	}
	var causes []string
	for _, a := range failed {
		if len(all) == 1 {
			causes = append(causes, a.err.Error())
			continue
		}
		if !errors.Is(a.err, errOtherPooler) {
			causes = append(causes, fmt.Sprintf("%s: %v", a.p.Name, a.err))
		}
	}
	cause := strings.Join(causes, "; ")
	if len(all) > 1 {
		cause = "PAUSE failed on " + cause
	}
	single := len(all) == 1
	switch {
	case len(stuck) > 0:
		return fail(fmt.Errorf("%s; then RESUME failed too, so clients may be left waiting in %s", cause, strings.Join(stuck, "; ")))
	case len(resumed) == 0:
		return fail(fmt.Errorf("%s; nothing paused", cause))
	case single:
		t.Print(fmt.Sprintf("%s did not complete (%s); %s issued", adminCommand("PAUSE", all[0].p), cause, adminCommand("RESUME", all[0].p)))
		return fail(fmt.Errorf("%s; %s issued: clients resumed on the old primary", cause, adminCommand("RESUME", all[0].p)))
	}
	t.Print(fmt.Sprintf("%s; issued %s: all or none, so no pooler is left paused", cause, strings.Join(resumed, ", ")))
	return fail(fmt.Errorf("%s; issued %s: every pooler resumed, clients on the old primary, nothing paused", cause, strings.Join(resumed, ", ")))
}

// PgBouncerResume is a step that lets the clients waiting in every
// PgBouncer this run paused go on, to whatever each one's entries point at
// now. It acts only on the poolers this run paused (the fact
// pgbouncer.pause journaled): a run refused or failed before its pause, or
// one whose pause was refused, sends nothing, so a pause held by another
// run or an operator stays. Resuming a database that is not paused
// succeeds, so a finally section may always run it.
type PgBouncerResume struct{}

var _ Step = (*PgBouncerResume)(nil)

// Describe implements Step.
func (s *PgBouncerResume) Describe(t *cluster.Target) Effect {
	return Effect{Node: poolerWhere(t), Command: describeAdmin(t, "RESUME"),
		Changes: fmt.Sprintf("PgBouncer lets the clients of %s go on, to the server its entry points at; sent only if this run paused it (fact %s), nothing when it is not paused; a database the run's guard closed (fact %s) is enabled again first", poolersDatabase(t), PausedFact, RefusedFact)}
}

// Apply implements Step.
func (s *PgBouncerResume) Apply(ctx context.Context, t *cluster.Target) error {
	ps, err := poolers(t)
	if skipNoPooler(t, err, "resume") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resume pgbouncer: %w", err)
	}
	refused, err := ReadRefused(t)
	if err != nil {
		return fmt.Errorf("resume pgbouncer: %w", err)
	}
	if err := enableRefused(ctx, t); err != nil {
		return fmt.Errorf("resume pgbouncer: %w", err)
	}
	st := readPaused(t)
	held := false
	for _, p := range ps {
		if ours, _ := pausedByRun(st, p.Name); ours {
			held = true
		}
	}
	var mu sync.Mutex
	resumed := false // a RESUME sent and taken: something changed
	errs := eachPooler(t, ps, func(p *cluster.Pooler, print func(string)) error {
		if ours, why := pausedByRun(st, p.Name); !ours {
			if st[p.Name] == pausedNo {
				print(fmt.Sprintf("%s: nothing to resume: %s (fact %s)", label(t, p), why, PausedFact))
				return nil
			}
			print(fmt.Sprintf("%s: RESUME %s not sent: %s (fact %s), and a pause it did not make is not its to lift", label(t, p), poolerDatabase(p), why, PausedFact))
			return nil
		}
		err := withKeptAdmin(ctx, t, p, func(c *pgbouncer.Client) error { return c.Resume(ctx, p.Database) })
		switch {
		case pgbouncer.NotPaused(err):
			print(fmt.Sprintf("%s: %s was not paused; nothing to resume", label(t, p), poolerDatabase(p)))
		case err != nil:
			return fmt.Errorf("%s: %w", label(t, p), err)
		default:
			print(fmt.Sprintf("%s resumed %s: waiting clients go on", label(t, p), poolerDatabase(p)))
			mu.Lock()
			resumed = true
			mu.Unlock()
		}
		mu.Lock()
		st[p.Name] = pausedNo
		mu.Unlock()
		return nil
	})
	var failed []string
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err.Error())
		}
	}
	still := false
	for _, p := range ps {
		if ours, _ := pausedByRun(st, p.Name); ours {
			still = true
		}
	}
	if held && !still {
		t.EndHold()
	}
	if held {
		writePaused(t, st)
	}
	if len(failed) > 0 {
		return fmt.Errorf("resume pgbouncer: %s; clients may still be waiting", strings.Join(failed, "; "))
	}
	if !resumed && len(refused) == 0 && t.NoChange != nil {
		t.NoChange() // no RESUME taken anywhere: not an action that changed something
	}
	return nil
}

// ReleasesClients implements ClientReleaser.
func (s *PgBouncerResume) ReleasesClients() bool { return true }
