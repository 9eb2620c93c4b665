package main

import (
	"sync"
	"time"

	"github.com/switchover/switchover/internal/fleet"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
)

// journalRuns reads the cluster runs of a fleet in the journal directory
// with the engine's own functions (fleet.Runs): a run whose process still
// holds its cluster's lock is running.
type journalRuns struct {
	dir       string
	mu        sync.Mutex
	durations map[string][]time.Duration // by runbook name
}

var _ fleet.Runs = (*journalRuns)(nil)

func newJournalRuns(dir string) *journalRuns {
	return &journalRuns{dir: dir, durations: map[string][]time.Duration{}}
}

// Run implements fleet.Runs.
func (r *journalRuns) Run(id string) (fleet.RunState, error) {
	rec, err := runbook.ReadRun(r.dir, id)
	if err != nil {
		return fleet.RunState{}, err
	}
	return runState(rec.Summary, rec.Events), nil
}

// runState is a run as the fleet reads it: its status, its last step,
// and, finished, its outcome with the figures of its run.finished.
func runState(s journal.RunSummary, evs []journal.Event) fleet.RunState {
	rs := fleet.RunState{ID: s.ID, Status: s.Status, Step: s.LastStep, Started: s.Started}
	for _, e := range evs {
		if e.Type != journal.EventRunFinished {
			continue
		}
		o := fleet.Outcome{RunID: s.ID, Status: string(e.Outcome), Step: e.Step, Error: e.Error,
			NewPrimary: e.NewPrimary, OldPrimary: e.OldPrimary, ExitCode: outcomeExit(e.Outcome)}
		o.DurationMS = e.Time.Sub(s.Started).Milliseconds()
		if o.OldPrimary == "" && o.NewPrimary != "" {
			o.OldPrimary = evs[0].Run.Vars[primaryVar] // the primary the run started from
		}
		if c := e.Canary; c != nil {
			o.Figures = fleet.Figures{Acked: c.Acked, Lost: c.Lost, Errors: c.Errors, WindowMS: c.WindowMS}
		}
		rs.Outcome = o
	}
	return rs
}

// outcomeExit is the exit code a run that ended with o exited with.
func outcomeExit(o journal.Outcome) int {
	switch o {
	case journal.OutcomeDone:
		return exitOK
	case journal.OutcomePrecondition:
		return exitPrecondition
	case journal.OutcomeDeclined, journal.OutcomeSuspended:
		return exitDeclined
	}
	return exitAction
}

// Find implements fleet.Runs.
func (r *journalRuns) Find(key, inventory string, since time.Time) ([]fleet.RunState, error) {
	runs, err := runbook.ListRuns(r.dir)
	if err != nil {
		return nil, err
	}
	var out []fleet.RunState
	for i := len(runs) - 1; i >= 0; i-- { // oldest first
		s := runs[i]
		if s.Started.Before(since) || s.DryRun {
			continue
		}
		evs, err := journal.ReadJournal(r.dir, s.ID)
		if err != nil || evs[0].Run.Fleet != key || evs[0].Run.Inventory != inventory {
			continue
		}
		out = append(out, runState(s, evs))
	}
	return out, nil
}

// Durations implements fleet.Runs: how long the last done runs of
// runbook took, newest first (ten at most).
func (r *journalRuns) Durations(runbookName string) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.durations[runbookName]; ok {
		return d
	}
	var out []time.Duration
	runs, _ := journal.ListRuns(r.dir)
	for _, s := range runs {
		if len(out) == 10 {
			break
		}
		if s.DryRun || s.Status != string(journal.OutcomeDone) {
			continue
		}
		evs, err := journal.ReadJournal(r.dir, s.ID)
		if err != nil || evs[0].Run.RunbookName != runbookName {
			continue
		}
		out = append(out, evs[len(evs)-1].Time.Sub(s.Started))
	}
	r.durations[runbookName] = out
	return out
}
