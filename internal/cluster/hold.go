package cluster

import (
	"time"
)

// The facts of a hold: while the pooler holds clients for a run, every
// step in the window spends one budget.
const (
	// FactHeldUntil is when the clients must go on again, whatever
	// happens: the run's guard resumes the pooler itself by then.
	FactHeldUntil = "pooler.held_until"
	// FactStepsUntil is when the steps inside the window must have ended,
	// leaving the rest of the budget to roll back (or finish forward) and
	// resume the pooler before FactHeldUntil.
	FactStepsUntil = "pooler.steps_until"
)

// HoldReserve is the part of a budget kept for rolling back (or finishing
// forward) once the steps in the window ran out of time: a third, at least
// a second, at most ten.
func HoldReserve(budget time.Duration) time.Duration {
	return min(max(budget/3, time.Second), 10*time.Second, budget)
}

// SetHold records that clients are held until heldUntil, and that the steps
// inside the window must end by stepsUntil.
func (f *Facts) SetHold(heldUntil, stepsUntil time.Time) {
	f.Set(FactHeldUntil, StartTime(heldUntil))
	f.Set(FactStepsUntil, StartTime(stepsUntil))
}

// ClearHold records that the clients go on again.
func (f *Facts) ClearHold() {
	if _, _, ok := f.Hold(); ok {
		f.Set(FactHeldUntil, "")
		f.Set(FactStepsUntil, "")
	}
}

// Hold returns the hold under way: until when clients may be held and until
// when the steps inside the window may run; ok is false when none is.
func (f *Facts) Hold() (heldUntil, stepsUntil time.Time, ok bool) {
	if f == nil {
		return time.Time{}, time.Time{}, false
	}
	h, _ := f.Get(FactHeldUntil)
	s, _ := f.Get(FactStepsUntil)
	if h == "" || s == "" {
		return time.Time{}, time.Time{}, false
	}
	var err error
	if heldUntil, err = time.Parse(time.RFC3339Nano, h); err != nil {
		return time.Time{}, time.Time{}, false
	}
	if stepsUntil, err = time.Parse(time.RFC3339Nano, s); err != nil {
		return time.Time{}, time.Time{}, false
	}
	return heldUntil, stepsUntil, true
}

// ClientHold is how a step that holds clients tells the run: Begin before
// the pooler is paused (the run starts a guard that outlives it and resumes
// the pooler by until if the run does not), End once they go on again.
type ClientHold interface {
	Begin(until time.Time) error
	End()
}

// BeginHold starts a hold of at most budget on t: the facts of the budget and
// the run's guard. The caller pauses the pooler only when it returns nil.
func (t *Target) BeginHold(budget time.Duration) error {
	until := time.Now().Add(budget)
	if t.Hold != nil {
		if err := t.Hold.Begin(until); err != nil {
			return err
		}
	}
	if t.Facts != nil {
		t.Facts.SetHold(until, until.Add(-HoldReserve(budget)))
	}
	return nil
}

// EndHold records that the clients go on again and releases the guard.
func (t *Target) EndHold() {
	if t.Facts != nil {
		t.Facts.ClearHold()
	}
	if t.Hold != nil {
		t.Hold.End()
	}
}
