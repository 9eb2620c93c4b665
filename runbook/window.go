// The window: while the pooler holds clients for the run, every step in it
// spends one budget, and an interrupt ends the window instead of leaving
// the clients waiting. Before the point of no return, a step that runs out
// of the budget, or is interrupted, fails and the rollback resumes the
// clients on the old primary; from the point of no return on, the run
// finishes forward to the step that lets them go on. The run's guard (see
// guard.go) keeps the same cap if the process itself dies.

package runbook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/kinds"
)

var (
	// errOverBudget ends a step in the window that ran out of the budget.
	errOverBudget = errors.New("clients were held for the run's whole budget for this part (pause_max_hold, less the time kept to roll back)")
	// errWindowInterrupted ends a step in the window the operator
	// interrupted (Ctrl-C, SIGTERM, or a hang-up of the terminal).
	errWindowInterrupted = errors.New("interrupted while clients were held")
)

// holding reports whether the pooler holds clients for this run now.
func (e *engine) holding() bool {
	_, _, ok := e.facts.Hold()
	return ok
}

// releasesClients reports whether s's action is one that lets held clients
// go on (repoint, resume): it runs whatever the budget says.
func releasesClients(s *spec.Step) bool {
	r, ok := s.Action.(kinds.ClientReleaser)
	return ok && r.ReleasesClients()
}

// window returns the context step s runs under, and the channel that ends
// its checks' waits on an interrupt (nil: none does). Outside the window a
// main step is the same as ever; recovery and finally steps are the remedy
// and are not cut short by a first interrupt. Inside the window, before the
// point of no return, the step's context ends at the budget's deadline or
// at an interrupt; from the point of no return on, neither ends it.
func (e *engine) window(ctx context.Context, s *spec.Step) (context.Context, <-chan struct{}, func()) {
	if s.Section != spec.SectionSteps {
		return ctx, nil, func() {}
	}
	_, stepsUntil, held := e.facts.Hold()
	switch {
	case !held:
		return ctx, e.o.Interrupt, func() {}
	case e.pastPONR || s.PointOfNoReturn || releasesClients(s):
		return ctx, nil, func() {}
	}
	cctx, cancel := context.WithCancelCause(ctx)
	dctx, dcancel := context.WithDeadlineCause(cctx, stepsUntil, errOverBudget)
	done := make(chan struct{})
	go func() {
		select {
		case <-e.o.Interrupt:
			cancel(errWindowInterrupted)
		case <-done:
		}
	}()
	return dctx, nil, func() {
		close(done)
		dcancel()
		cancel(nil)
	}
}

// killed reports whether ctx ended because the operator stopped the run at
// once, rather than because the window's budget ran out or an interrupt
// ended the window.
func killed(ctx context.Context) bool {
	if ctx.Err() == nil {
		return false
	}
	c := context.Cause(ctx)
	return !errors.Is(c, errOverBudget) && !errors.Is(c, errWindowInterrupted)
}

// windowCause wraps err with why the window ended a step, if it did.
func windowCause(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	c := context.Cause(ctx)
	switch {
	case errors.Is(c, errWindowInterrupted):
		return fmt.Errorf("%w: %w: %v", ErrDeclined, errWindowInterrupted, err)
	case errors.Is(c, errOverBudget):
		return fmt.Errorf("%w: %v", errOverBudget, err)
	}
	return err
}

// windowInterruptedBefore is the failure of a run interrupted between two
// steps while clients were held, before the point of no return: the
// rollback resumes them on the old primary.
func windowInterruptedBefore(s *spec.Step) *StepError {
	return &StepError{Step: s.Name, Phase: phaseInterrupted.String(),
		Err: fmt.Errorf("%w: %v before step %q: rolling back so that they go on", ErrDeclined, errWindowInterrupted, s.Name)}
}

// Begin implements cluster.ClientHold: it starts the run's guard, when the
// run has one, before the pooler is paused.
func (e *engine) Begin(until time.Time) error {
	if e.o.Guard == nil {
		return nil
	}
	e.endGuard()
	release, err := e.o.Guard(GuardSpec{RunID: e.runID, JournalDir: e.o.JournalDir, Until: until, Cluster: e.p.Cluster})
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.guardRelease = release
	e.mu.Unlock()
	return nil
}

// End implements cluster.ClientHold: the clients go on; the guard is
// released.
func (e *engine) End() { e.endGuard() }

func (e *engine) endGuard() {
	e.mu.Lock()
	release := e.guardRelease
	e.guardRelease = nil
	e.mu.Unlock()
	if release != nil {
		release()
	}
}

var _ cluster.ClientHold = (*engine)(nil)

// settleHold, on resume, says what became of clients the interrupted run
// held: its guard resumed the pooler when that run's process ended, so the
// hold is over and the resumed run's steps spend no budget of it.
func (e *engine) settleHold(ctx context.Context) {
	e.awaitGuard(ctx)
	e.absorbRefused()
	recs, _ := ReadGuard(e.o.JournalDir, e.runID)
	for _, r := range recs {
		if r.Event != "acted" && r.Event != "note" {
			continue
		}
		msg := "the run's guard: " + r.Message
		if r.Why != "" {
			msg = fmt.Sprintf("the run's guard (%s): %s", r.Why, r.Message)
		}
		if r.Error != "" {
			msg += "; it failed: " + r.Error
		}
		_ = e.emit(journal.Event{Type: journal.EventNote, Message: e.red.Redact(msg)})
	}
	if e.holding() {
		e.facts.ClearHold()
		_ = e.emit(journal.Event{Type: journal.EventNote, Message: "the interrupted run held clients in the pooler; they were let go when it ended (by its guard, or by hand), so this run holds none until it pauses again"})
	}
}

// absorbRefused takes into the run's facts the databases its guard closed
// to clients (cluster.RefusedByGuardFact), once, so that the run's resume of the
// pooler enables them again: the guard acts in a process of its own, and
// may have acted while this run still lives (the budget ran out) or
// before it was resumed.
func (e *engine) absorbRefused() {
	if _, known := e.facts.Get(cluster.RefusedByGuardFact); known {
		return
	}
	recs, _ := ReadGuard(e.o.JournalDir, e.runID)
	for _, r := range recs {
		if r.Event == "acted" && len(r.Refused) > 0 {
			e.facts.Set(cluster.RefusedByGuardFact, r.Refused.String())
		}
	}
}

// awaitGuard, on resume, waits for the interrupted run's guard while it is
// still at work: killed while its clients were held, the run left a guard
// that may still be waiting for the one node it can send them to (a
// manager's switchover under way). Two actors on the pooler at once could
// undo each other, so the resumed run acts only once the guard has (by the
// end of its budget at the latest).
func (e *engine) awaitGuard(ctx context.Context) {
	recs, _ := ReadGuard(e.o.JournalDir, e.runID)
	until, live := guardLive(recs)
	if !live {
		return
	}
	_ = e.emit(journal.Event{Type: journal.EventNote, Message: fmt.Sprintf("the interrupted run's guard is still deciding where its held clients go; waiting for it (until %s at most)", until.UTC().Format("15:04:05.000"))})
	for live && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(guardPoll):
		}
		recs, _ = ReadGuard(e.o.JournalDir, e.runID)
		until, live = guardLive(recs)
	}
}

// noteGuardLeftRefused says, at the end of a run, what its guard closed to
// clients and nothing enabled again: the guard acted while the run went on
// (its budget ran out mid-step) and after the run's own resume of the
// pooler. The operator enables it once the routing is checked.
func (e *engine) noteGuardLeftRefused() {
	if v, known := e.facts.Get(cluster.RefusedByGuardFact); known && v == "" {
		return // enabled again by this run
	}
	recs, _ := ReadGuard(e.o.JournalDir, e.runID)
	for _, r := range recs {
		if r.Event == "acted" && len(r.Refused) > 0 {
			_ = e.emit(journal.Event{Type: journal.EventNote, Message: fmt.Sprintf("the run's guard closed %s to clients at %s (%s) and this run did not enable it again: send ENABLE on the pooler's admin console once it routes to the primary", r.Refused.Describe(), r.Time.UTC().Format("15:04:05"), r.Why)})
		}
	}
}
