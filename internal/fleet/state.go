package fleet

import (
	"time"
)

// State is where a cluster stands in a fleet run. The zero value is
// unknown.
type State string

// The states of a cluster. Starting and running are caught between a
// cluster.starting and its cluster.finished; the others follow a
// cluster.finished or a cluster.skipped, or nothing (pending).
const (
	StatePending  State = "pending"
	StateStarting State = "starting" // journaled as about to start; no run id known yet
	StateRunning  State = "running"
	StateDone     State = "done"
	StateRefused  State = "refused"  // its run stopped at a precondition: nothing was changed
	StateDeclined State = "declined" // its run was declined or interrupted before acting
	StateLocked   State = "locked"   // another run held the cluster for longer than the fleet waits
	StateFailed   State = "failed"   // its run failed: the cluster may have changed
	StateSkipped  State = "skipped"
)

// Final reports whether a cluster in state s is never taken on again by
// this fleet run: done, skipped, or failed (a failed run may have changed
// the cluster: a person decides; fleet resume --retry takes it on again).
func (s State) Final() bool {
	return s == StateDone || s == StateSkipped || s == StateFailed
}

// stateOf is the state of a cluster whose run ended with o: a run that
// changed nothing (refused, declined, locked) leaves it to be run again.
func stateOf(o Outcome) State {
	switch {
	case o.ExitCode == ExitDone:
		return StateDone
	case o.ExitCode == ExitLocked:
		return StateLocked
	case o.Status == "precondition-failed" || o.ExitCode == ExitPrecondition:
		return StateRefused
	case o.ExitCode == ExitDeclined && o.Status != "suspended" && o.Status != "failed":
		return StateDeclined
	}
	return StateFailed
}

// ClusterState is one cluster as a fleet journal leaves it.
type ClusterState struct {
	Name  string
	State State
	RunID string
	PID   int
	// Since is when the cluster was last taken on (cluster.starting).
	Since time.Time
	// Mode is how it was last taken on: run, resume or wait.
	Mode    string
	Outcome *Outcome
	Reason  string // a skip's why
	// Attempts counts the cluster runs started for it in this fleet run.
	Attempts int
}

// Replay is a fleet run as its journal tells it.
type Replay struct {
	ID       string
	Start    Start
	Started  time.Time
	Clusters map[string]*ClusterState
	// Halt is the last halt not acknowledged since, or nil.
	Halt *Record
	// WindowEnded is the last window.ended since the fleet run last
	// started or resumed, or nil.
	WindowEnded *Record
	// Finished is the fleet.finished since it last started or resumed,
	// or nil: killed, or still running.
	Finished *Record
	Seq      int
}

// Unfinished reports whether the fleet run is to be resumed rather than
// started anew: killed, halted, out of its window, interrupted.
func (r *Replay) Unfinished() bool {
	return r.Finished == nil || r.Finished.Result != ResultDone
}

// replay rebuilds a fleet run's state from its records.
func replay(id string, recs []Record) *Replay {
	r := &Replay{ID: id, Clusters: map[string]*ClusterState{}}
	for _, rec := range recs {
		r.apply(rec)
	}
	return r
}

func (r *Replay) cluster(name string) *ClusterState {
	c := r.Clusters[name]
	if c == nil {
		c = &ClusterState{Name: name, State: StatePending}
		r.Clusters[name] = c
	}
	return c
}

// apply moves the state on by one record.
func (r *Replay) apply(rec Record) {
	r.Seq = rec.Seq
	switch rec.Event {
	case EventFleetStarted:
		r.Start, r.Started = *rec.Start, rec.Time
		for _, w := range rec.Start.Waves {
			for _, name := range w.Clusters {
				r.cluster(name)
			}
		}
	case EventFleetResumed:
		r.Finished, r.WindowEnded = nil, nil
	case EventClusterStarting:
		c := r.cluster(rec.Cluster)
		c.State, c.Since, c.Mode, c.PID, c.RunID = StateStarting, rec.Time, rec.Mode, 0, rec.RunID
		if rec.RunID != "" {
			c.State = StateRunning // a resume of a run known
		}
		if rec.Mode == ModeRun {
			c.Attempts++
		}
	case EventClusterSpawned:
		r.cluster(rec.Cluster).PID = rec.PID
	case EventClusterStarted, EventClusterWaiting:
		c := r.cluster(rec.Cluster)
		c.State, c.RunID = StateRunning, rec.RunID
	case EventClusterFinished:
		c := r.cluster(rec.Cluster)
		c.State, c.Outcome = rec.State, rec.Outcome
		if rec.Outcome != nil && rec.Outcome.RunID != "" {
			c.RunID = rec.Outcome.RunID
		}
	case EventClusterSkipped:
		c := r.cluster(rec.Cluster)
		c.State, c.Reason, c.RunID, c.Outcome = StateSkipped, rec.Reason, rec.RunID, nil
	case EventHalted:
		h := rec
		r.Halt = &h
	case EventHaltAcknowledged:
		r.Halt = nil
	case EventWindowEnded:
		w := rec
		r.WindowEnded = &w
	case EventFleetFinished:
		f := rec
		r.Finished = &f
	}
}
