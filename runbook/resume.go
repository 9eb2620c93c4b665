// Resuming a run from its journal: replay where it stood, then settle a
// step the interruption caught mid-action before the run goes on.

package runbook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/internal/transport"
)

// RunRecord is what a journal says about a run, enough to rebuild its plan.
type RunRecord struct {
	ID       string
	Info     journal.RunInfo
	Events   []journal.Event
	Summary  journal.RunSummary
	Finished bool
}

// ReadRun reads the journal of a run.
func ReadRun(dir, id string) (*RunRecord, error) {
	evs, err := journal.ReadJournal(dir, id)
	if err != nil {
		return nil, err
	}
	s := running(dir, journal.Summarize(dir, id, evs))
	return &RunRecord{ID: id, Info: *evs[0].Run, Events: evs, Summary: s, Finished: s.Finished()}, nil
}

// ListRuns returns the journaled runs in dir, newest first; a run whose
// process still holds its cluster's lock there is "running".
func ListRuns(dir string) ([]journal.RunSummary, error) {
	runs, err := journal.ListRuns(dir)
	for i := range runs {
		runs[i] = running(dir, runs[i])
	}
	return runs, err
}

// running marks s "running" when the journal calls it interrupted but its
// process still holds the cluster's lock in dir.
func running(dir string, s journal.RunSummary) journal.RunSummary {
	if s.Status == "interrupted" && !s.DryRun {
		if h, held := lockHeld(dir, s.Cluster); held && h.RunID == s.ID {
			s.Status = "running"
		}
	}
	return s
}

// LatestUnfinished returns the id of the newest run in dir that did not
// finish, or "" when there is none.
func LatestUnfinished(dir string) (string, error) {
	runs, err := ListRuns(dir)
	if err != nil {
		return "", err
	}
	for _, r := range runs {
		if !r.Finished() && !r.DryRun {
			return r.ID, nil
		}
	}
	return "", nil
}

// Resume continues an unfinished run from its journal: done steps are
// skipped, a step cut off mid-action is settled (see settle), a recovery or
// finally section under way goes on where it stopped. The plan must be
// built from the same runbook and inventory the run started with.
func Resume(ctx context.Context, p *spec.Plan, id string, o Options) (*Result, error) {
	e, err := newEngine(p, o)
	if err != nil {
		return nil, err
	}
	// One ssh connection per host for the whole run, closed after what
	// the session holds.
	defer transport.ReuseConnections()()
	defer e.session.CloseAll()
	rec, err := ReadRun(e.o.JournalDir, id)
	if err != nil {
		return nil, err
	}
	info := rec.Info
	switch {
	case rec.Events[0].DryRun:
		return nil, fmt.Errorf("%w: run %s was a dry run; there is nothing to resume", ErrInvalid, id)
	case rec.Finished:
		return nil, fmt.Errorf("%w: run %s already finished (%s); start a new run", ErrInvalid, id, rec.Summary.Status)
	case rec.Summary.Status == "running":
		h, _ := lockHeld(e.o.JournalDir, info.Cluster)
		return nil, &LockedError{Cluster: info.Cluster, Holder: h}
	case info.RunbookDigest != p.Runbook.Digest:
		return nil, fmt.Errorf("%w: runbook %s changed since run %s started; resume needs the runbook it started with", ErrInvalid, p.Runbook.File, id)
	case p.Inventory != nil && info.InventoryDigest != p.Inventory.Digest:
		return nil, fmt.Errorf("%w: inventory %s changed since run %s started; resume needs the inventory it started with", ErrInvalid, p.Inventory.File, id)
	case info.Cluster != p.LockName:
		return nil, fmt.Errorf("%w: run %s is on cluster %q, not %q", ErrInvalid, id, info.Cluster, p.LockName)
	}
	e.runID = id
	if e.o.Fleet == "" {
		e.o.Fleet = info.Fleet // the fleet run that started it
	}
	h := Holder{RunID: id, User: e.o.Identity.User, Host: e.o.Identity.Host, PID: os.Getpid(), Since: e.o.now()}
	lock, err := acquireLock(e.o.JournalDir, p.LockName, h, id, o.TakeOver)
	if err != nil {
		return nil, notStarted(err)
	}
	e.resuming = id
	if err := e.takeClaim(ctx, false); err != nil {
		lock.release(false)
		return nil, notStarted(err)
	}
	e.j, err = journal.Open(e.o.JournalDir, id)
	if err != nil {
		lock.release(false)
		return nil, notStarted(err)
	}
	defer e.j.Close()
	res := &Result{RunID: id, Journal: e.j.Path()}
	pos := e.replay(rec.Events)
	now := e.runInfo()
	if err := e.emit(journal.Event{Type: journal.EventRunResumed, Run: now, Message: fmt.Sprintf("resumed by %s@%s", now.User, now.Host)}); err != nil {
		lock.release(false)
		return res, notStarted(err)
	}
	if err := e.preapprove(pos.done); err != nil {
		lock.release(false)
		return res, err
	}
	e.settleHold(ctx)
	err = e.execute(ctx, pos, res)
	e.finish(ctx, lock, res, err)
	return res, err
}

// replay rebuilds where a run stood from its events.
func (e *engine) replay(evs []journal.Event) *position {
	pos := &position{done: map[string]bool{}, caught: map[string]journal.StepState{}}
	states := map[string]journal.Event{}
	ran := map[string]bool{}
	runs := map[string]int{} // running events per step
	var lastRecovery spec.Section
	for _, ev := range evs {
		e.seq = max(e.seq, ev.Seq) // the resumed run's events number on
		switch ev.Type {
		case journal.EventStep:
			if ev.State == journal.StateVerifying && phase(ev.Phase) == phaseSettle {
				// Settling re-checks a step cut off earlier; it says
				// nothing new about whether its action finished.
				continue
			}
			states[ev.Step] = ev
			if ev.State == journal.StateRunning {
				if !ran[ev.Step] {
					e.changed = append(e.changed, ev.Step)
				}
				ran[ev.Step] = true
				runs[ev.Step]++
			}
			if ev.State == journal.StateDone && ev.Unchanged && runs[ev.Step] == 1 {
				// Its one action found nothing to do; an earlier attempt
				// that was cut off may have changed something.
				e.changed = withoutName(e.changed, ev.Step)
			}
		case journal.EventApproval:
			if ev.Approval != nil && ev.Approval.Granted && phase(ev.Phase) != phaseSettle {
				e.approved[ev.Step] = true
				if ev.Approval.Note == "cluster name typed" {
					e.askedCluster = true
				}
			}
		case journal.EventFact:
			if ev.Fact != nil {
				e.facts.Restore(ev.Fact.Key, ev.Fact.Value)
			}
		case journal.EventSection:
			if ev.DryRun {
				continue
			}
			pos.section = ev.Section
			if ev.Section != spec.SectionFinally {
				lastRecovery = ev.Section
				pos.failure = &StepError{Step: ev.Step, Phase: ev.Phase, Err: journaledFailure(ev.Phase, ev.Error)}
			} else if pos.failure != nil {
				pos.failure.Recovery = fmt.Sprintf("%s ran before the interruption", lastRecovery)
			}
		}
	}
	for name, ev := range states {
		switch ev.State {
		case journal.StateDone:
			pos.done[name] = true
		case journal.StateRunning, journal.StateVerifying:
			pos.caught[name] = ev.State
		}
	}
	if pos.section == "" {
		for _, s := range e.p.Steps {
			ev, ok := states[s.Name]
			if ok && (ev.State == journal.StateFailed || ev.State == journal.StateSkipped) {
				pos.failure = &StepError{Step: s.Name, Phase: ev.Phase, Err: journaledFailure(ev.Phase, ev.Error+ev.Message)}
				break
			}
		}
	}
	for _, s := range e.p.Steps {
		if s.PointOfNoReturn && pos.done[s.Name] {
			e.pastPONR = true
		}
	}
	return pos
}

// journaledError is a failure read back from the journal: its text as it
// was recorded, and the sentinel that text began with.
type journaledError struct {
	msg      string
	sentinel error
}

func (e *journaledError) Error() string { return e.msg }
func (e *journaledError) Unwrap() error { return e.sentinel }

// journaledFailure rebuilds a journaled failure without wrapping it twice:
// a recorded text that starts with a sentinel's text keeps that sentinel.
func journaledFailure(ph, msg string) error {
	for _, s := range []error{ErrPrecondition, ErrAction, ErrDeclined} {
		if strings.HasPrefix(msg, s.Error()+": ") {
			return &journaledError{msg: msg, sentinel: s}
		}
	}
	return fmt.Errorf("%w: %s", phase(ph).sentinel(), msg)
}

// settleWithin bounds how long a resume waits for the postconditions of a
// step cut off mid-action: long enough for what the action had set going
// (a shutdown signalled, a promotion under way) to take effect, short
// enough not to hold clients for a full within: when the action never ran.
// A step whose action completed (caught verifying) gets its full within.
const settleWithin = 3 * time.Second

// capWithin returns copies of conds whose within is at most d.
func capWithin(conds []*spec.Cond, d time.Duration) []*spec.Cond {
	out := make([]*spec.Cond, len(conds))
	for i, c := range conds {
		cc := *c
		if cc.Within > d {
			cc.Within = d
		}
		out[i] = &cc
	}
	return out
}

// settle decides what a step caught mid-action by an interruption
// becomes: done if its postconditions hold, run again if it is idempotent
// (or the operator says so), otherwise the operator's call.
func (e *engine) settle(ctx context.Context, s *spec.Step, caught journal.StepState) error {
	e.note(s, fmt.Sprintf("step %q was cut off while %s; checking its postconditions", s.Name, caught))
	if len(s.Ensures) > 0 {
		if err := e.transition(s, journal.StateVerifying, phaseSettle, "", nil); err != nil {
			return e.fail(s, phaseSettle, err)
		}
		ensures := s.Ensures
		if caught == journal.StateRunning {
			ensures = capWithin(ensures, settleWithin)
		}
		err := e.conds(ctx, s, ensures, phaseEnsures, true)
		if err == nil {
			return e.transition(s, journal.StateDone, phaseSettle, "postconditions hold: counted as done", nil)
		}
		if errors.Is(err, errInterrupted) || errors.Is(err, errKilled) {
			return err
		}
		if caught == journal.StateVerifying {
			return e.fail(s, phaseEnsures, err)
		}
	}
	if s.Action == nil {
		return e.act(ctx, s)
	}
	why := "its postconditions do not hold"
	if len(s.Ensures) == 0 {
		why = "it has no postconditions to tell whether it finished"
	}
	choice := ""
	switch {
	case s.Idempotent:
		choice = SettleRerun
		e.note(s, fmt.Sprintf("step %q: %s; it is idempotent, so it runs again", s.Name, why))
	case e.o.Settle != "":
		choice = e.o.Settle
	case e.o.Operator != nil:
		ans, err := e.o.Operator.Ask(ctx, Question{Kind: AskSettle, Step: s, Cluster: e.p.LockName,
			Effect: e.redactEffect(s.Action.Describe(e.target())), Detail: fmt.Sprintf("step %q was cut off while its action ran, and %s", s.Name, why),
			Choices: []string{SettleRerun, SettleDone, SettleAbort}})
		if err != nil {
			return &settleStop{msg: fmt.Sprintf("step %q: no answer to settle it: %v", s.Name, err)}
		}
		choice = ans.Choice
	default:
		return &settleStop{msg: fmt.Sprintf("step %q was cut off while its action ran, and %s; "+
			"a person must decide: resume at a terminal, or pass --settle rerun (run it again) or --settle done (it finished; checked by hand)", s.Name, why)}
	}
	a := &journal.Approval{Granted: true, User: e.o.Identity.User, Host: e.o.Identity.Host, How: "prompt", Note: "settle: " + choice}
	if e.o.Settle != "" && !s.Idempotent {
		a.How = "--settle"
	}
	if s.Idempotent {
		a.How = "idempotent"
	}
	if err := e.emit(journal.Event{Type: journal.EventApproval, Section: s.Section, Step: s.Name, Phase: phaseSettle.String(), Approval: a}); err != nil {
		return e.fail(s, phaseSettle, err)
	}
	switch choice {
	case SettleRerun:
		return e.act(ctx, s)
	case SettleDone:
		return e.transition(s, journal.StateDone, phaseSettle, "marked done by "+a.User+" ("+a.How+")", nil)
	}
	return e.fail(s, phaseSettle, fmt.Errorf("%w: the operator aborted at step %q", ErrAction, s.Name))
}

// settleStop is returned when a resumed step needs a person's decision
// that no one can give: the run stays unfinished.
type settleStop struct{ msg string }

func (s *settleStop) Error() string   { return s.msg }
func (s *settleStop) Is(t error) bool { return t == ErrAction }

func isSettleStop(err error) bool {
	var s *settleStop
	return errors.As(err, &s)
}
