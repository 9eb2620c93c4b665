// Tests of resuming a run: interrupted, killed mid-action and settled,
// refused, and its facts restored.

package runbook

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
)

// TestInterruptSuspendsAndResumeContinues: closing Interrupt while a check
// waits stops the run at that safe point; resume finishes the run, and no
// action runs twice.
func TestInterruptSuspendsAndResumeContinues(t *testing.T) {
	t.Parallel()
	l := &callLog{}
	var resumed atomic.Bool
	caughtUp := &fakeCheck{name: "caught-up", fn: func(*cluster.Target, int) checks.Result {
		if resumed.Load() {
			return checks.Passed("lag 0 bytes")
		}
		return checks.Failed("lag 16 MB", "lag under 1 MB")
	}}
	promote := act(l, "promote")
	promote.Requires = []*spec.Cond{within(caughtUp, 30*time.Second, 20*time.Millisecond)}
	build := func() *spec.Plan {
		return withFinally(newPlan(act(l, "checkpoint"), promote, act(l, "rejoin")), act(l, "unpause-manager"))
	}
	p := build()
	rec := &recorder{}
	o := options(t, rec)
	interrupt := make(chan struct{})
	o.Interrupt = interrupt

	ch := goRun(func() (*Result, error) { return Run(context.Background(), p, o) })
	rec.waitFor(t, "check.waiting", func(e journal.Event) bool { return e.Type == journal.EventWaiting })
	close(interrupt)
	r := await(t, "the interrupted run", 3*time.Second, ch)
	if !errors.Is(r.err, ErrDeclined) || strings.Contains(r.err.Error(), "declined: declined") {
		t.Fatalf("interrupted run: %v, want an error wrapping ErrDeclined that says so once", r.err)
	}
	if r.res.Outcome != journal.OutcomeSuspended {
		t.Errorf("Outcome = %q, want suspended", r.res.Outcome)
	}
	if got := l.list(); !sameStrings(got, []string{"checkpoint"}) {
		t.Errorf("applied %q before the interrupt, want only checkpoint (finally does not run)", got)
	}
	if tr := trace(rec.events()); tr[len(tr)-1] != "suspended" {
		t.Errorf("events end with %q, want suspended:%s", tr[len(tr)-1], lines(tr))
	}
	id := r.res.RunID
	evs, err := journal.ReadJournal(o.JournalDir, id)
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; last.Type != journal.EventRunSuspended || last.Step != "promote" {
		t.Errorf("journal ends with %+v, want run.suspended at promote", last)
	}
	if rr, err := ReadRun(o.JournalDir, id); err != nil || rr.Finished {
		t.Errorf("ReadRun: %+v, %v; want an unfinished run", rr, err)
	}

	// A new run on the cluster is refused: the suspended run has the claim.
	_, err = Run(context.Background(), newPlan(act(&callLog{}, "checkpoint")), options2(o, &recorder{}))
	var le *LockedError
	if !errors.As(err, &le) || !le.Stale || le.Holder.RunID != id {
		t.Fatalf("a new run while %s is suspended: %v, want a stale *LockedError naming it", id, err)
	}

	resumed.Store(true)
	rec2 := &recorder{}
	r = await(t, "Resume", 10*time.Second, goRun(func() (*Result, error) {
		return Resume(context.Background(), build(), id, options2(o, rec2))
	}))
	res, err := r.res, r.err
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if res.Outcome != journal.OutcomeDone || res.RunID != id {
		t.Errorf("resumed result %+v: want run %s done", res, id)
	}
	for _, name := range []string{"checkpoint", "promote", "rejoin", "unpause-manager"} {
		if n := l.count(name); n != 1 {
			t.Errorf("%s applied %d times overall, want once", name, n)
		}
	}
	if st := stepStates(rec2.events(), "checkpoint"); len(st) != 0 {
		t.Errorf("resume moved checkpoint through %v, want it skipped as done", st)
	}
	if evs := rec2.ofType(journal.EventRunResumed); len(evs) != 1 || evs[0].Run == nil {
		t.Errorf("run.resumed events %+v, want one with run info", evs)
	}
	assertJournal(t, o.JournalDir, id)
}

// killMidAction runs p until the action of step name has started, then
// cancels the run's context, as a second Ctrl-C or a lost session would:
// the journal's last word on that step is "running". It returns the run id.
func killMidAction(t *testing.T, p *spec.Plan, o Options, name string) string {
	t.Helper()
	f := fake(p.Step(name))
	f.started = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := goRun(func() (*Result, error) { return Run(ctx, p, o) })
	select {
	case <-f.started:
	case <-time.After(5 * time.Second):
		t.Fatalf("step %s never started", name)
	}
	cancel()
	r := await(t, "the killed run", 5*time.Second, ch)
	if !errors.Is(r.err, ErrDeclined) {
		t.Fatalf("killed run: %v, want an error wrapping ErrDeclined", r.err)
	}
	evs, err := journal.ReadJournal(o.JournalDir, r.res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if st := stepStates(evs, name); len(st) == 0 || st[len(st)-1] != journal.StateRunning {
		t.Fatalf("journal states of %s: %v, want it last seen running", name, st)
	}
	return r.res.RunID
}

// settlePlan: checkpoint, then stop-primary whose first Apply hangs until
// its context ends, then promote; a rollback and a finally section.
func settlePlan(l *callLog, ensures string, idempotent bool) *spec.Plan {
	stop := act(l, "stop-primary")
	stop.Idempotent = idempotent
	stop.OnFailure = "restore"
	fake(stop).apply = onFirstCall(untilCtxDone, nil)
	stop.Ensures = []*spec.Cond{cond(script("primary-stopped", ensures))}
	cp := act(l, "checkpoint")
	cp.OnFailure = "restore"
	p := withRollback(newPlan(cp, stop, act(l, "promote")), "restore", act(l, "start-primary"))
	return withFinally(p, act(l, "unpause-manager"))
}

func TestResumeSettlesAStepCaughtRunning(t *testing.T) {
	t.Parallel()
	type attempt struct {
		opts      func(o *Options)
		wantErr   error // nil: no error
		wantInErr string
	}
	tests := []struct {
		name        string
		ensures     string // verdicts of stop-primary's postcondition after the kill
		idempotent  bool
		resumes     []attempt
		wantOutcome journal.Outcome
		wantApplied []string // over the killed run and every resume
		check       func(t *testing.T, evs []journal.Event, o Options)
	}{
		{
			name:        "postconditions hold: done, not applied again",
			ensures:     "p",
			resumes:     []attempt{{}},
			wantOutcome: journal.OutcomeDone,
			wantApplied: []string{"checkpoint", "stop-primary", "promote", "unpause-manager"},
		},
		{
			name:        "postconditions fail and the step is idempotent: applied again",
			ensures:     "fp",
			idempotent:  true,
			resumes:     []attempt{{}},
			wantOutcome: journal.OutcomeDone,
			wantApplied: []string{"checkpoint", "stop-primary", "stop-primary", "promote", "unpause-manager"},
		},
		{
			name:    "not idempotent, nobody to ask: the run stays unfinished; --settle rerun runs it again",
			ensures: "ffp",
			resumes: []attempt{
				{wantErr: ErrAction, wantInErr: "--settle rerun"},
				{opts: func(o *Options) { o.Settle = SettleRerun }},
			},
			wantOutcome: journal.OutcomeDone,
			wantApplied: []string{"checkpoint", "stop-primary", "stop-primary", "promote", "unpause-manager"},
		},
		{
			name:    "not idempotent, nobody to ask: the run stays unfinished; --settle done marks it done",
			ensures: "f",
			resumes: []attempt{
				{wantErr: ErrAction, wantInErr: "a person must decide"},
				{opts: func(o *Options) { o.Settle = SettleDone }},
			},
			wantOutcome: journal.OutcomeDone,
			wantApplied: []string{"checkpoint", "stop-primary", "promote", "unpause-manager"},
			check: func(t *testing.T, evs []journal.Event, o Options) {
				var marked bool
				for _, e := range evs {
					if e.Type == journal.EventApproval && e.Step == "stop-primary" && e.Phase == "settle" {
						marked = e.Approval.How == "--settle" && e.Approval.User == "dba"
					}
				}
				if !marked {
					t.Errorf("no settle approval by dba with --settle journaled")
				}
			},
		},
		{
			name:    "the operator aborts: a failure, and the rollback runs",
			ensures: "f",
			resumes: []attempt{{
				opts:    func(o *Options) { o.Operator = &fakeOperator{answers: []Answer{{Choice: SettleAbort}}} },
				wantErr: ErrAction,
			}},
			wantOutcome: journal.OutcomeFailed,
			wantApplied: []string{"checkpoint", "stop-primary", "start-primary", "unpause-manager"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := &callLog{}
			p := settlePlan(l, tc.ensures, tc.idempotent)
			o := options(t, &recorder{})
			id := killMidAction(t, p, o, "stop-primary")
			var res *Result
			for i, a := range tc.resumes {
				ro := options2(o, &recorder{})
				if a.opts != nil {
					a.opts(&ro)
				}
				r := await(t, "Resume", 10*time.Second, goRun(func() (*Result, error) {
					return Resume(context.Background(), p, id, ro)
				}))
				res = r.res
				if a.wantErr == nil && r.err != nil {
					t.Fatalf("resume %d: %v", i+1, r.err)
				}
				if a.wantErr != nil {
					if !errors.Is(r.err, a.wantErr) || !strings.Contains(r.err.Error(), a.wantInErr) {
						t.Fatalf("resume %d: %v, want an error wrapping %v that says %q", i+1, r.err, a.wantErr, a.wantInErr)
					}
				}
				if i < len(tc.resumes)-1 {
					rr, err := ReadRun(o.JournalDir, id)
					if err != nil || rr.Finished {
						t.Fatalf("after resume %d: %+v, %v; want the run unfinished", i+1, rr, err)
					}
				}
				if op, ok := ro.Operator.(*fakeOperator); ok {
					qs := op.asked()
					if len(qs) != 1 || qs[0].Kind != AskSettle || qs[0].Step.Name != "stop-primary" || len(qs[0].Choices) != 3 {
						t.Errorf("questions %+v: want one settle question about stop-primary", qs)
					}
				}
			}
			if res.Outcome != tc.wantOutcome {
				t.Errorf("Outcome = %q, want %q", res.Outcome, tc.wantOutcome)
			}
			if got := l.list(); !sameStrings(got, tc.wantApplied) {
				t.Errorf("applied %q, want %q", got, tc.wantApplied)
			}
			evs := assertJournal(t, o.JournalDir, id)
			if tc.check != nil {
				tc.check(t, evs, o)
			}
		})
	}
}

func TestResumeRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		setup     func(t *testing.T, l *callLog, o Options) (p *spec.Plan, id string)
		wantInErr string
	}{
		{
			name: "a finished run",
			setup: func(t *testing.T, l *callLog, o Options) (*spec.Plan, string) {
				p := newPlan(act(l, "checkpoint"))
				res, err := Run(context.Background(), p, o)
				if err != nil {
					t.Fatal(err)
				}
				return p, res.RunID
			},
			wantInErr: "already finished",
		},
		{
			name: "a dry run",
			setup: func(t *testing.T, l *callLog, o Options) (*spec.Plan, string) {
				p := newPlan(act(l, "checkpoint"))
				o.DryRun = true
				res, err := Run(context.Background(), p, o)
				if err != nil {
					t.Fatal(err)
				}
				return p, res.RunID
			},
			wantInErr: "dry run",
		},
		{
			name: "a runbook that changed since the run started",
			setup: func(t *testing.T, l *callLog, o Options) (*spec.Plan, string) {
				p := settlePlan(l, "p", false)
				id := killMidAction(t, p, o, "stop-primary")
				changed := *p
				rb := *p.Runbook
				rb.Digest = "sha256:edited"
				changed.Runbook = &rb
				return &changed, id
			},
			wantInErr: "changed since run",
		},
		{
			name: "a run that does not exist",
			setup: func(t *testing.T, l *callLog, o Options) (*spec.Plan, string) {
				return newPlan(act(l, "checkpoint")), "20250101T000000Z-000000"
			},
			wantInErr: "no run",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := &callLog{}
			o := options(t, &recorder{})
			p, id := tc.setup(t, l, o)
			before := len(l.list())
			rec := &recorder{}
			res, err := Resume(context.Background(), p, id, options2(o, rec))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantInErr) {
				t.Fatalf("Resume: %v, want an ErrInvalid error saying %q", err, tc.wantInErr)
			}
			if res != nil || len(l.list()) != before || len(rec.events()) != 0 {
				t.Errorf("a refused resume did something: result %+v, applied %q, %d events", res, l.list(), len(rec.events()))
			}
		})
	}
}

// TestFactsSurviveResume: a fact an action learns is journaled, and a
// resumed run knows it.
func TestFactsSurviveResume(t *testing.T) {
	t.Parallel()
	const lsn = "0/3000060"
	l := &callLog{}
	var resumed atomic.Bool
	var seen atomic.Value
	stop := act(l, "stop-primary")
	fake(stop).apply = func(_ context.Context, t *cluster.Target, _ int) error {
		t.Facts.Set("shutdown_lsn", lsn)
		return nil
	}
	received := &fakeCheck{name: "candidate-received", fn: func(t *cluster.Target, _ int) checks.Result {
		if !resumed.Load() {
			return checks.Failed("not yet", "the shutdown checkpoint")
		}
		v, _ := t.Facts.Get("shutdown_lsn")
		seen.Store(v)
		if v != lsn {
			return checks.Failed("shutdown_lsn "+v, lsn)
		}
		return checks.Passed("received " + v)
	}}
	promote := act(l, "promote")
	promote.Requires = []*spec.Cond{within(received, 30*time.Second, 20*time.Millisecond)}
	p := newPlan(stop, promote)
	rec := &recorder{}
	o := options(t, rec)
	interrupt := make(chan struct{})
	o.Interrupt = interrupt
	ch := goRun(func() (*Result, error) { return Run(context.Background(), p, o) })
	rec.waitFor(t, "check.waiting", func(e journal.Event) bool { return e.Type == journal.EventWaiting })
	close(interrupt)
	r := await(t, "the interrupted run", 3*time.Second, ch)
	if r.res == nil || r.res.Outcome != journal.OutcomeSuspended {
		t.Fatalf("interrupted run: %+v, %v; want suspended", r.res, r.err)
	}
	var journaled bool
	for _, e := range assertJournal(t, o.JournalDir, r.res.RunID) {
		if e.Type == journal.EventFact && e.Step == "stop-primary" && e.Fact.Key == "shutdown_lsn" && e.Fact.Value == lsn {
			journaled = true
		}
	}
	if !journaled {
		t.Error("the fact was not journaled")
	}
	resumed.Store(true)
	r = await(t, "Resume", 10*time.Second, goRun(func() (*Result, error) {
		return Resume(context.Background(), p, r.res.RunID, options2(o, &recorder{}))
	}))
	if r.err != nil {
		t.Fatalf("Resume: %v (the check saw shutdown_lsn %v)", r.err, seen.Load())
	}
	if got := l.list(); !sameStrings(got, []string{"stop-primary", "promote"}) {
		t.Errorf("applied %q, want stop-primary then promote, once each", got)
	}
}
