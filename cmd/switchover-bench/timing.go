package main

import (
	"fmt"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

// timing is where a run's time went, from its events.
type timing struct {
	totalMS   float64            // run.started to run.finished
	precondMS float64            // main steps: checking to the step's next event
	steps     map[string]float64 // checking to done
	precond   map[string]float64 // per main step: checking to the step's next event
	order     []string           // steps in the order they started
	section   map[string]spec.Section
	// phases splits each main step's time: its preconditions (checking
	// to running), its action (running to verifying or done) and its
	// postconditions with their polls (verifying to done).
	phases map[string]phaseTimes
}

// phaseTimes is one step's time by phase, in ms.
type phaseTimes struct {
	checks, action, ensures float64
}

// analyse times a run by its events: the whole run, each step from
// checking to done, and each main step's preconditions (checking to the
// step's next state).
func analyse(evs []journal.Event) timing {
	t := timing{steps: map[string]float64{}, precond: map[string]float64{}, section: map[string]spec.Section{}, phases: map[string]phaseTimes{}}
	var started time.Time
	// last is when each main step entered its current state, and which.
	type at struct {
		state journal.StepState
		time  time.Time
	}
	last := map[string]at{}
	checking := map[string]time.Time{}
	open := map[string]bool{} // checking seen, next step event not yet
	for _, ev := range evs {
		switch ev.Type {
		case journal.EventRunStarted:
			started = ev.Time
		case journal.EventRunFinished:
			if !started.IsZero() {
				t.totalMS = msSince(started, ev.Time)
			}
		case journal.EventStep:
			if ev.Section == spec.SectionSteps {
				if prev, ok := last[ev.Step]; ok && ev.State != journal.StateChecking {
					d := msSince(prev.time, ev.Time)
					ph := t.phases[ev.Step]
					switch prev.state {
					case journal.StateChecking, journal.StateAwaitingApproval:
						ph.checks += d
					case journal.StateRunning:
						ph.action += d
					case journal.StateVerifying:
						ph.ensures += d
					}
					t.phases[ev.Step] = ph
				}
				last[ev.Step] = at{ev.State, ev.Time}
			}
			if ev.State == journal.StateChecking {
				checking[ev.Step] = ev.Time
				open[ev.Step] = true
				if _, seen := t.section[ev.Step]; !seen {
					t.order = append(t.order, ev.Step)
				}
				t.section[ev.Step] = ev.Section
				continue
			}
			from, ok := checking[ev.Step]
			if !ok {
				continue
			}
			if open[ev.Step] {
				open[ev.Step] = false
				if ev.Section == spec.SectionSteps {
					d := msSince(from, ev.Time)
					t.precond[ev.Step] += d
					t.precondMS += d
				}
			}
			if ev.State == journal.StateDone {
				t.steps[ev.Step] = msSince(from, ev.Time)
			}
		}
	}
	return t
}

func msSince(from, to time.Time) float64 { return float64(to.Sub(from).Microseconds()) / 1000 }

// slowest is the step that took longest, and how long.
func (t *timing) slowest() (string, float64) {
	name, d := "", 0.0
	for _, n := range t.order {
		if t.steps[n] > d {
			name, d = n, t.steps[n]
		}
	}
	return name, d
}

// eventsOf renders a step's events with their offsets, to explain an
// outlier.
func eventsOf(evs []journal.Event, step string) []string {
	var out []string
	var from time.Time
	for _, ev := range evs {
		if ev.Step != step {
			continue
		}
		if from.IsZero() {
			from = ev.Time
		}
		line := fmt.Sprintf("%8s ms  %s %s", ms(msSince(from, ev.Time)), ev.Type, ev.State)
		switch {
		case ev.Output != "":
			line += ": " + ev.Output
		case ev.Check != nil:
			line += fmt.Sprintf(": %s %s %s", ev.Check.Kind, ev.Check.Status, ev.Check.Observed)
		case ev.Error != "":
			line += ": " + ev.Error
		}
		out = append(out, line)
	}
	return out
}
