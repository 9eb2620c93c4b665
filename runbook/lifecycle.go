// The step lifecycle: checking, awaiting approval, running, verifying,
// done or failed, each transition journaled before it is acted on; the
// action run under its timeout and a recover(), and the verdicts of a
// step's checks reported and turned into its failure.

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

// runStep takes one step through its lifecycle. caught is the state a
// resumed run found it in (running or verifying), or "".
func (e *engine) runStep(ctx context.Context, s *spec.Step, caught journal.StepState) error {
	e.cur = s
	ctx, intr, stop := e.window(ctx, s)
	defer stop()
	e.intr = intr
	if caught == journal.StateRunning || caught == journal.StateVerifying {
		return e.settle(ctx, s, caught)
	}
	if err := e.transition(s, journal.StateChecking, phaseUnknown, "", nil); err != nil {
		return err
	}
	if err := e.conds(ctx, s, s.Requires, phaseRequires, true); err != nil {
		return e.fail(s, phaseRequires, windowCause(ctx, err))
	}
	if err := e.approveStep(ctx, s); err != nil {
		return err
	}
	return e.act(ctx, s)
}

// fail journals a step's failure in phase ph and returns it as a
// *StepError wrapping the sentinel of its outcome, its text masked.
func (e *engine) fail(s *spec.Step, ph phase, err error) error {
	if errors.Is(err, errInterrupted) || errors.Is(err, errKilled) {
		return err
	}
	if jerr := e.transition(s, journal.StateFailed, ph, "", err); jerr != nil {
		err = fmt.Errorf("%w (and the journal could not record it: %v)", err, jerr)
	}
	if !errors.Is(err, ErrPrecondition) && !errors.Is(err, ErrAction) && !errors.Is(err, ErrDeclined) && !errors.Is(err, ErrLocked) {
		err = fmt.Errorf("%w: %v", ph.sentinel(), err)
	}
	return &StepError{Step: s.Name, Phase: ph.String(), Err: &maskedError{err: err, text: e.red.Redact(err.Error())}}
}

// act runs the action and the postconditions of a step whose
// preconditions and approval are settled.
func (e *engine) act(ctx context.Context, s *spec.Step) error {
	if s.Action != nil {
		// The claim comes before the run's first change; a finally step
		// of a run that changed nothing acts on nothing of the cluster's.
		if s.Section == spec.SectionSteps {
			if err := e.takeClaim(ctx, true); err != nil {
				return e.fail(s, phaseRequires, err)
			}
		}
		t := e.target()
		eff := s.Action.Describe(t)
		if err := e.emit(journal.Event{Type: journal.EventEffect, Section: s.Section, Step: s.Name, Effect: &eff}); err != nil {
			return e.fail(s, phaseAction, err)
		}
		if err := e.transition(s, journal.StateRunning, phaseUnknown, "", nil); err != nil {
			return e.fail(s, phaseAction, err)
		}
		e.changed = append(e.changed, s.Name)
		e.noChange.Store(false)
		start := time.Now()
		if !s.Manual {
			if err := e.apply(ctx, s, t); err != nil {
				if killed(ctx) {
					return errKilled
				}
				return e.fail(s, phaseAction, windowCause(ctx, fmt.Errorf("%s after %s: %w", s.ActionKind, time.Since(start).Round(time.Millisecond), err)))
			}
		}
	}
	if len(s.Ensures) > 0 {
		if err := e.transition(s, journal.StateVerifying, phaseUnknown, "", nil); err != nil {
			return e.fail(s, phaseEnsures, err)
		}
		if err := e.conds(ctx, s, s.Ensures, phaseEnsures, true); err != nil {
			return e.fail(s, phaseEnsures, windowCause(ctx, err))
		}
	}
	done := journal.Event{Type: journal.EventStep, Section: s.Section, Step: s.Name, State: journal.StateDone}
	if s.Action != nil && !s.Manual && e.noChange.Load() {
		// The action found nothing to do: it is not among what changed.
		done.Unchanged = true
		e.changed = withoutName(e.changed, s.Name)
	}
	if err := e.emit(done); err != nil {
		return e.fail(s, phaseEnsures, err)
	}
	return nil
}

// withoutName returns list without name's last occurrence.
func withoutName(list []string, name string) []string {
	for i := len(list) - 1; i >= 0; i-- {
		if list[i] == name {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}

// apply runs an action under its timeout and a recover(). An action that
// ignores its context is abandoned a few seconds after its deadline and
// reported as possibly still running.
func (e *engine) apply(ctx context.Context, s *spec.Step, t *cluster.Target) (err error) {
	if releasesClients(s) {
		e.absorbRefused()
	}
	actx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("the action panicked: %v", r)
			}
		}()
		done <- s.Action.Apply(actx, t)
	}()
	select {
	case err := <-done:
		if err != nil && actx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			return fmt.Errorf("timed out after %s: %w", s.Timeout, err)
		}
		return err
	case <-actx.Done():
	}
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("timed out after %s: %w", s.Timeout, err)
	case <-time.After(abandonGrace):
		return fmt.Errorf("did not stop within %s of its %s timeout; it may still be running", abandonGrace, s.Timeout)
	}
}

// abandonGrace is how long an action may overrun its deadline before the
// engine stops waiting for it.
const abandonGrace = 3 * time.Second

// conds evaluates a list of checks (see evaluator) and reports each in the
// order written; the first that failed for good fails the step. poll
// honours within:.
func (e *engine) conds(ctx context.Context, s *spec.Step, list []*spec.Cond, ph phase, poll bool) error {
	if len(list) == 0 {
		return nil
	}
	t := e.target()
	ev := &evaluator{target: t, poll: poll, interrupt: e.intr, onWait: func(a attempt) {
		_ = e.emit(journal.Event{Type: journal.EventWaiting, Section: s.Section, Step: s.Name, Phase: ph.String(), Check: &journal.CheckEvent{
			Kind: a.cond.Kind, Describe: a.cond.Check.Describe(t), Status: a.result.Status.String(), Observed: a.result.Observed,
			Wanted: a.result.Wanted, Attempt: a.n, WithinMS: a.cond.Within.Milliseconds(),
			ElapsedMS: a.elapsed.Milliseconds(),
		}})
	}}
	verdicts := ev.run(ctx, list)
	if killed(ctx) {
		return errKilled
	}
	// The window ended the waits (its budget, or an interrupt): a check
	// cut short is a failure then, not a sibling's casualty.
	windowEnded := ctx.Err() != nil
	var firstFail error
	interrupted := false
	for i, c := range list {
		v := verdicts[i]
		r := v.result
		interrupted = interrupted || v.interrupted
		ce := &journal.CheckEvent{
			Kind: c.Kind, Describe: c.Check.Describe(t), Status: r.Status.String(), Observed: r.Observed,
			Wanted: r.Wanted, Detail: r.Detail, Values: r.Values, ElapsedMS: v.elapsed.Milliseconds(),
			WithinMS: c.Within.Milliseconds(),
		}
		if v.cut && r.Status != kinds.Pass && !windowEnded {
			ce.Status, ce.NotEvaluated = kinds.Unknown.String(), "not waited for: another check of this step failed"
			if r.Observed != "" {
				ce.Observed = "last seen: " + r.Observed
			}
		}
		if err := e.emit(journal.Event{Type: journal.EventCheck, Section: s.Section, Step: s.Name, Phase: ph.String(), Check: ce}); err != nil && firstFail == nil {
			firstFail = err
		}
		if r.Status != kinds.Pass && (!v.cut || windowEnded) && firstFail == nil {
			firstFail = checkFailure(c, r, ph)
		}
	}
	if interrupted && e.interrupted() && firstFail != nil {
		return errInterrupted
	}
	return firstFail
}

// checkFailure is the error of a check that failed for good in phase ph.
func checkFailure(c *spec.Cond, r kinds.Result, ph phase) error {
	msg := fmt.Sprintf("%s %s: %s", ph, c.Kind, r.Status)
	if r.Observed != "" {
		msg += ": " + r.Observed
	}
	if r.Wanted != "" {
		msg += "; wanted " + r.Wanted
	}
	if c.Within > 0 {
		msg += fmt.Sprintf(" (within %s)", c.Within)
	}
	return fmt.Errorf("%w: %s", ph.sentinel(), msg)
}
