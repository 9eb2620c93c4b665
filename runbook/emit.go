// Event emission and redaction: every event is numbered, journaled and
// handed to the observer, with the run's secrets masked first.

package runbook

import (
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/kinds"
	"github.com/switchover/switchover/internal/secret"
	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

// emit journals an event and hands it to the observer. Secrets are masked
// first. A journal that cannot be written stops the run at the next step.
func (e *engine) emit(ev journal.Event) error {
	if ev.Type == journal.EventRunFinished && !e.o.DryRun {
		ev.Canary = canaryFigures(e.facts) // before e.mu: facts call emit
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	ev.Seq, ev.RunID, ev.DryRun = e.seq, e.runID, e.o.DryRun
	if ev.Time.IsZero() {
		ev.Time = e.o.now()
	}
	switch ev.Type {
	case journal.EventRunStarted, journal.EventRunResumed:
		e.started = ev.Time
	case journal.EventRunFinished:
		e.finishedFigures(&ev)
	}
	e.redactEvent(&ev)
	var err error
	if e.j != nil && e.jerr == nil {
		if err = e.j.Append(ev); err != nil {
			e.jerr = err
		}
	}
	e.obs.Observe(ev)
	if err == nil {
		err = e.jerr
	}
	return err
}

// finishedFigures adds run.finished's duration and new primary.
func (e *engine) finishedFigures(ev *journal.Event) {
	if !e.started.IsZero() {
		d := ev.Time.Sub(e.started).Milliseconds()
		ev.DurationMS = &d
	}
	if e.pastPONR && !e.o.DryRun {
		ev.NewPrimary, ev.OldPrimary = e.newPrimary, e.oldPrimary
	}
}

// canaryFigures reads the canary's figures from the run's facts, as
// numbers; nil when the run recorded none.
func canaryFigures(f *cluster.Facts) *journal.CanaryFigures {
	if f == nil {
		return nil
	}
	m := map[string]string{}
	for _, k := range []string{journal.FactCanaryAcked, journal.FactCanaryLost, journal.FactCanaryErrors, journal.FactCanaryWindowMS} {
		if v, ok := f.Get(k); ok {
			m[k] = v
		}
	}
	if len(m) == 0 {
		return nil
	}
	c := journal.CanaryFrom(m)
	return &journal.CanaryFigures{Acked: c.Acked, Lost: c.Lost, Errors: c.Errors, WindowMS: c.LongestGapMS}
}

// redactEvent masks the secrets in every text an event carries.
func (e *engine) redactEvent(ev *journal.Event) {
	r := e.red.Redact
	ev.Output, ev.Message, ev.Error = r(ev.Output), r(ev.Message), r(ev.Error)
	if ev.Check != nil {
		c := *ev.Check
		c.Describe, c.Observed, c.Wanted, c.Detail = r(c.Describe), r(c.Observed), r(c.Wanted), r(c.Detail)
		ev.Check = &c
	}
	if ev.Effect != nil {
		f := e.redactEffect(*ev.Effect)
		ev.Effect = &f
	}
	if ev.Fact != nil {
		ev.Fact = &journal.Fact{Key: ev.Fact.Key, Value: r(ev.Fact.Value)}
	}
	if ev.Run != nil {
		info := *ev.Run
		info.Vars = map[string]string{}
		for k, v := range ev.Run.Vars {
			if secret.LooksSecret(k) {
				v = secret.Mask
			}
			info.Vars[k] = r(v)
		}
		ev.Run = &info
	}
}

// redactEffect masks the secrets in an effect, for events and for the
// operator's questions alike.
func (e *engine) redactEffect(f kinds.Effect) kinds.Effect {
	r := e.red.Redact
	f.Command, f.Node, f.Changes = r(f.Command), r(f.Node), r(f.Changes)
	return f
}

// transition journals a step's move to state st, in phase ph.
func (e *engine) transition(s *spec.Step, st journal.StepState, ph phase, msg string, cause error) error {
	ev := journal.Event{Type: journal.EventStep, Section: s.Section, Step: s.Name, State: st, Phase: ph.String(), Message: msg}
	if cause != nil {
		ev.Error = cause.Error()
	}
	return e.emit(ev)
}

// note emits a line of explanation, about step s when it is not nil.
func (e *engine) note(s *spec.Step, msg string) {
	ev := journal.Event{Type: journal.EventNote, Message: msg}
	if s != nil {
		ev.Section, ev.Step = s.Section, s.Name
	}
	_ = e.emit(ev)
}

// journalFailed reports whether a journal write has failed in this run.
func (e *engine) journalFailed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.jerr != nil
}

// maskedError is an error whose text has its secrets masked; it still
// unwraps to the original, so the sentinels and exit codes hold.
type maskedError struct {
	err  error
	text string
}

func (m *maskedError) Error() string { return m.text }
func (m *maskedError) Unwrap() error { return m.err }
