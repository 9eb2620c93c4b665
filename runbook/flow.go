// Section flow: the main steps in order, then the rollback or repair a
// failure calls for, then the finally section, and how the run ends
// (finished, suspended, or stopped on an unwritable journal).

package runbook

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/kinds"
	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

// position is where a run stands: which steps are done, which were caught
// mid-action, and which recovery section was under way.
type position struct {
	done    map[string]bool
	caught  map[string]journal.StepState // running or verifying when the run was cut off
	section spec.Section                 // a recovery or finally section under way
	failure *StepError                   // what sent the run into recovery
}

// execute runs the main steps from pos, then recovery and finally.
func (e *engine) execute(ctx context.Context, pos *position, res *Result) (err error) {
	failure := pos.failure
	var failedStep *spec.Step
	if failure == nil {
		for _, s := range e.p.Steps {
			if pos.done[s.Name] {
				if s.PointOfNoReturn {
					e.pastPONR = true
				}
				e.promoted(s)
				continue
			}
			if e.interrupted() {
				if !e.holding() {
					return e.suspend(s, res)
				}
				if !e.pastPONR && !s.PointOfNoReturn {
					failure, failedStep = windowInterruptedBefore(s), s
					break
				}
				// From the point of no return on, the run finishes
				// forward until the clients go on, then stops.
			}
			err := e.askAhead(ctx, s)
			if err == nil {
				err = e.runStep(ctx, s, pos.caught[s.Name])
			} else if se := (*StepError)(nil); errors.As(err, &se) {
				s = e.p.Step(se.Step) // the step asked ahead was declined
			}
			if err == nil {
				e.promoted(s)
				if s.PointOfNoReturn {
					e.pastPONR = true
					e.note(s, "point of no return passed: from here on the engine finishes forward and never rolls back")
				}
				continue
			}
			if errors.Is(err, errInterrupted) {
				return e.suspend(s, res)
			}
			if errors.Is(err, errKilled) || isSettleStop(err) {
				return err
			}
			var se *StepError
			if !errors.As(err, &se) {
				se = &StepError{Step: s.Name, Phase: phaseAction.String(), Err: fmt.Errorf("%w: %v", ErrAction, err)}
			}
			failure, failedStep = se, s
			break
		}
	} else {
		failedStep = e.p.Step(failure.Step)
	}
	if failure != nil && errors.Is(failure, ErrPrecondition) && len(e.changed) > 0 {
		// A precondition failure means "nothing changed" (exit 3); here
		// earlier steps had acted, so the cluster may have changed.
		failure.Err = fmt.Errorf("%w: %v, after %s had acted", ErrAction, failure.Err, strings.Join(e.changed, ", "))
	}
	res.Changed = e.changed
	if e.journalFailed() {
		return e.journalStop(failure, res)
	}
	if failure != nil {
		failure.Completed = append([]string(nil), e.changed...)
		if err := e.recover(ctx, failedStep, failure, pos, res); err != nil {
			if e.journalFailed() {
				return e.journalStop(failure, res)
			}
			return err
		}
	}
	if e.journalFailed() {
		return e.journalStop(failure, res)
	}
	if finErr := e.finally(ctx, pos, res); finErr != nil {
		if e.journalFailed() {
			return e.journalStop(failure, res)
		}
		if errors.Is(finErr, errKilled) || isSettleStop(finErr) {
			return finErr
		}
		if failure == nil {
			failure = finErr
		} else {
			failure.Recovery = strings.TrimPrefix(failure.Recovery+"; "+finErr.Recovery, "; ")
			if !errors.Is(failure.Err, ErrAction) {
				failure.Err = fmt.Errorf("%w: %v (and the finally section failed)", ErrAction, failure.Err)
			}
		}
	}
	res.Changed = e.changed
	e.noteGuardLeftRefused()
	outcome := journal.OutcomeDone
	ev := journal.Event{Type: journal.EventRunFinished}
	if failure != nil {
		res.Recovery = failure.Recovery
		switch {
		case errors.Is(failure, ErrPrecondition), errors.Is(failure, ErrLocked):
			outcome = journal.OutcomePrecondition
		case errors.Is(failure, ErrDeclined):
			outcome = journal.OutcomeDeclined
		default:
			outcome = journal.OutcomeFailed
		}
		ev.Step, ev.Error = failure.Step, failure.Err.Error()
	}
	if failure == nil {
		e.recordFleetDone(ctx)
	}
	ev.Outcome = outcome
	ev.Message = e.summary(failure, res)
	res.Outcome = outcome
	_ = e.emit(ev)
	if failure != nil {
		return failure
	}
	return nil
}

// errJournal marks a run stopped because its journal could not be written.
var errJournal = errors.New("journal unwritable")

// journalStop ends a run whose journal can no longer be written: nothing
// more may act without a record, not a rollback, not a finally step. The
// error says what ran and what did not, and the run stays resumable.
func (e *engine) journalStop(failure *StepError, res *Result) error {
	e.mu.Lock()
	jerr := e.jerr
	e.mu.Unlock()
	step := e.curName()
	if failure != nil {
		step = failure.Step
	}
	ran := "no action had run"
	if len(e.changed) > 0 {
		ran = "actions that ran: " + strings.Join(e.changed, ", ")
	}
	var notRun []string
	for _, f := range e.p.Finally {
		notRun = append(notRun, f.Name)
	}
	msg := fmt.Sprintf("the journal could not be written (%v), so the run stopped before acting again at step %q: no further step, rollback or finally step ran; %s", jerr, step, ran)
	if len(notRun) > 0 {
		msg += "; finally steps not run: " + strings.Join(notRun, ", ")
	}
	msg += fmt.Sprintf("; free the space and run `switchover resume %s`", e.runID)
	res.Outcome, res.Changed = journal.OutcomeSuspended, e.changed
	return &StepError{Step: step, Phase: phaseJournal.String(), Completed: e.changed, Err: fmt.Errorf("%w: %w: %s", ErrAction, errJournal, msg)}
}

// summary is the one line that says what the run changed.
func (e *engine) summary(failure *StepError, res *Result) string {
	changed := "nothing was changed"
	if len(e.changed) > 0 {
		changed = "actions ran: " + strings.Join(e.changed, ", ")
	}
	if failure == nil {
		return changed
	}
	if errors.Is(failure, ErrDeclined) && len(e.changed) == 0 {
		// Said plainly: a rollback "not needed" is no news to a person
		// who declined before anything ran.
		return "nothing was changed: no action ran, clients were never held"
	}
	parts := []string{changed}
	if failure.Recovery != "" {
		parts = append(parts, failure.Recovery)
	}
	if len(res.ByHand) > 0 {
		parts = append(parts, "to finish by hand: "+strings.Join(res.ByHand, "; "))
	}
	return strings.Join(parts, "; ")
}

// suspend ends a run interrupted between steps: unfinished, resumable,
// the finally section not yet run.
func (e *engine) suspend(s *spec.Step, res *Result) error {
	res.Outcome = journal.OutcomeSuspended
	res.Changed = e.changed
	var pending []string
	for _, f := range e.p.Finally {
		pending = append(pending, f.Name)
	}
	msg := fmt.Sprintf("suspended before step %q; resume with `switchover resume %s`", s.Name, e.runID)
	if len(pending) > 0 {
		msg += "; the finally section has not run: " + strings.Join(pending, ", ")
	}
	_ = e.emit(journal.Event{Type: journal.EventRunSuspended, Section: s.Section, Step: s.Name, Outcome: journal.OutcomeSuspended, Message: msg})
	return &StepError{Step: s.Name, Phase: phaseInterrupted.String(), Completed: e.changed, Err: fmt.Errorf("%w; %s", errInterrupted, msg)}
}

// recover runs what a failure calls for: before the point of no return, the
// step's rollback section (when something had changed); after it, the
// step's repair section, or a list of what must be finished by hand.
func (e *engine) recover(ctx context.Context, failed *spec.Step, failure *StepError, pos *position, res *Result) error {
	var sec spec.Section
	var list []*spec.Step
	switch {
	case pos.section != "" && pos.section != spec.SectionFinally:
		sec = pos.section
	case pos.section == spec.SectionFinally:
		return nil
	case e.pastPONR && failed != nil && failed.OnFailure != "":
		sec = spec.RepairSection(failed.OnFailure)
	case e.pastPONR:
		res.ByHand = e.byHand(failed)
		failure.Recovery = "past the point of no return: no rollback"
		e.note(failed, "past the point of no return, so no rollback; to finish by hand: "+strings.Join(res.ByHand, "; "))
		return nil
	case failed != nil && failed.OnFailure != "" && len(e.changed) > 0:
		sec = spec.RollbackSection(failed.OnFailure)
	case failed != nil && failed.OnFailure != "":
		failure.Recovery = fmt.Sprintf("rollback %s not needed: no action had run", failed.OnFailure)
		return nil
	default:
		return nil
	}
	name := strings.SplitN(string(sec), ":", 2)[1]
	if strings.HasPrefix(string(sec), "rollback:") {
		list = e.p.Rollback[name]
	} else {
		list = e.p.Repair[name]
	}
	if pos.section != sec {
		if err := e.emit(journal.Event{Type: journal.EventSection, Section: sec, Step: failure.Step, Phase: failure.Phase, Error: failure.Err.Error(),
			Message: fmt.Sprintf("step %q failed: running %s", failure.Step, sec)}); err != nil {
			return err
		}
	}
	for _, s := range list {
		if pos.done[s.Name] {
			continue
		}
		err := e.runStep(ctx, s, pos.caught[s.Name])
		if errors.Is(err, errKilled) || isSettleStop(err) {
			return err
		}
		if err != nil {
			failure.Recovery = fmt.Sprintf("%s failed at step %q: %v", sec, s.Name, err)
			if !errors.Is(failure.Err, ErrAction) {
				failure.Err = fmt.Errorf("%w: %v, and %s failed", ErrAction, failure.Err, sec)
			}
			if e.pastPONR { // a failed repair leaves the rest to a person
				res.ByHand = e.byHand(failed)
			}
			return nil
		}
	}
	failure.Recovery = fmt.Sprintf("%s: done", sec)
	return nil
}

// byHand lists what a failure past the point of no return leaves to do.
func (e *engine) byHand(failed *spec.Step) []string {
	var out []string
	started := false
	t := e.target()
	for _, s := range e.p.Steps {
		if s == failed {
			started = true
		}
		if !started {
			continue
		}
		item := s.Name
		if s.Action != nil {
			eff := s.Action.Describe(t)
			item += fmt.Sprintf(" (%s on %s)", eff.Command, eff.Node)
		}
		out = append(out, e.red.Redact(item))
	}
	return out
}

// finally runs every finally step that has not run, each whatever the
// others did: resuming the pooler must not depend on unpausing the manager.
func (e *engine) finally(ctx context.Context, pos *position, res *Result) *StepError {
	if len(e.p.Finally) == 0 {
		return nil
	}
	if pos.section != spec.SectionFinally {
		if err := e.emit(journal.Event{Type: journal.EventSection, Section: spec.SectionFinally, Message: "running the finally section"}); err != nil {
			return &StepError{Step: "finally", Phase: phaseAction.String(), Err: fmt.Errorf("%w: %v", ErrAction, err)}
		}
	}
	var failed []string
	var first *StepError
	for _, s := range e.p.Finally {
		if pos.done[s.Name] {
			continue
		}
		err := e.runStep(ctx, s, pos.caught[s.Name])
		if errors.Is(err, errKilled) || isSettleStop(err) {
			return &StepError{Step: s.Name, Phase: phaseAction.String(), Err: err}
		}
		if err != nil {
			failed = append(failed, s.Name)
			if first == nil {
				first = &StepError{Step: s.Name, Phase: phaseAction.String(), Completed: e.changed, Err: fmt.Errorf("%w: %v", ErrAction, err)}
			}
		}
	}
	if first != nil {
		first.Recovery = "finally section failed at " + strings.Join(failed, ", ")
	}
	return first
}

// promoted notes the node a done step made the primary (kinds.Promoter),
// and the one it took the role from (kinds.Demoter), for run.finished.
func (e *engine) promoted(s *spec.Step) {
	if p, ok := s.Action.(kinds.Promoter); ok {
		e.newPrimary = p.Promotes()
	}
	if d, ok := s.Action.(kinds.Demoter); ok {
		e.oldPrimary = d.Demotes()
	}
}
