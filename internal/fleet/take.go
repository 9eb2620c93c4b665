package fleet

// One cluster taken on: a new run (tried again while another run holds
// the cluster), a resume, or a wait for a run of an earlier fleet
// process; how it ended, and the halt rules.

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// take takes one cluster on: waits for its run, resumes it, or starts a
// new one.
func (d *Driver) take(ctx context.Context, c *Cluster, wk work) error {
	switch wk.mode {
	case ModeWait:
		if err := d.record(Record{Event: EventClusterWaiting, Cluster: c.Name, RunID: wk.runID, Mode: ModeWait,
			Message: fmt.Sprintf("run %s of %s still runs (started by a fleet process before this one): waiting for it", wk.runID, c.Name)}); err != nil {
			return err
		}
		rs, ok := d.wait(ctx, c, wk.runID)
		if !ok {
			return nil
		}
		if rs.Finished() {
			return d.finished(c, rs.Outcome)
		}
		return d.resume(ctx, c, wk.runID) // it died unfinished
	case ModeResume:
		return d.resume(ctx, c, wk.runID)
	}
	return d.newRun(ctx, c)
}

// wait waits for run id, run by another process, to stop running; false
// when ctx ended first.
func (d *Driver) wait(ctx context.Context, c *Cluster, id string) (RunState, bool) {
	last := ""
	for {
		rs, err := d.Runs.Run(id)
		if err == nil && rs.Status != "running" {
			return rs, true
		}
		if err == nil && rs.Step != last {
			last = rs.Step
			d.show(Record{Event: "cluster.step", Cluster: c.Name, RunID: id, Step: rs.Step})
		}
		select {
		case <-ctx.Done():
			return rs, false
		case <-time.After(d.poll()):
		}
	}
}

// output names where a cluster run's output goes: unique in the fleet
// run (the journal's sequence number goes with it).
func (d *Driver) output(c *Cluster, mode string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return filepath.Join(OutputDir(d.dir(), d.st.ID), fmt.Sprintf("%s-%s-%d", c.Name, mode, d.st.Seq))
}

// progress journals what a cluster run says as it comes: its process,
// its run id; each step it comes to is shown.
func (d *Driver) progress(c *Cluster) func(Progress) {
	return func(p Progress) {
		switch {
		case p.PID != 0:
			_ = d.record(Record{Event: EventClusterSpawned, Cluster: c.Name, PID: p.PID})
		case p.Step != "":
			d.show(Record{Event: "cluster.step", Cluster: c.Name, RunID: p.RunID, Step: p.Step})
		case p.RunID != "":
			if d.state(c.Name).RunID != p.RunID {
				_ = d.record(Record{Event: EventClusterStarted, Cluster: c.Name, RunID: p.RunID})
			}
		}
	}
}

// resume resumes cluster c's interrupted run id.
func (d *Driver) resume(ctx context.Context, c *Cluster, id string) error {
	if err := d.record(Record{Event: EventClusterStarting, Cluster: c.Name, RunID: id, Mode: ModeResume,
		Message: fmt.Sprintf("resuming run %s of %s through its journal", id, c.Name)}); err != nil {
		return err
	}
	o := d.Runner.Resume(ctx, c, id, d.output(c, ModeResume), d.progress(c))
	if o.Unfinished {
		return nil
	}
	return d.finished(c, o)
}

// newRun starts a new run of cluster c, unless the fleet switched it
// already. A run refused because another run holds the cluster (exit 6)
// is tried again once the cluster's claim is let go, for LockedWait at
// most; a cluster found switched by another run of this fleet meanwhile
// is skipped.
func (d *Driver) newRun(ctx context.Context, c *Cluster) error {
	lockedWait := d.LockedWait
	if lockedWait <= 0 {
		lockedWait = 10 * time.Minute
	}
	deadline := d.now().Add(lockedWait)
	for {
		if skipped, err := d.doneElsewhere(ctx, c); skipped || err != nil {
			return err
		}
		if err := d.record(Record{Event: EventClusterStarting, Cluster: c.Name, Mode: ModeRun, Attempt: d.state(c.Name).Attempts + 1}); err != nil {
			return err
		}
		o := d.Runner.Run(ctx, c, d.output(c, ModeRun), d.progress(c))
		if o.Unfinished {
			return nil
		}
		if o.ExitCode != ExitLocked {
			return d.finished(c, o)
		}
		if err := d.record(Record{Event: EventClusterFinished, Cluster: c.Name, Outcome: &o, State: StateLocked,
			Message: "another run holds the cluster: waiting for it to let go; " + firstLine(o.Error, 300)}); err != nil {
			return err
		}
		for {
			if skipped, err := d.doneElsewhere(ctx, c); skipped || err != nil {
				return err
			}
			h, err := d.Records.Held(ctx, c)
			if err == nil && h == nil {
				break // let go: try again
			}
			if d.now().After(deadline) {
				who := "another run"
				if h != nil {
					who = h.String()
				}
				return d.breach(c, fmt.Sprintf("held by %s for longer than the fleet waits (%s)", who, lockedWait))
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(d.poll()):
			}
		}
	}
}

// doneElsewhere skips cluster c when the record kept in it says that
// another run of this fleet switched it.
func (d *Driver) doneElsewhere(ctx context.Context, c *Cluster) (bool, error) {
	done, err := d.Records.Done(ctx, c, d.Fleet.Key())
	if err != nil || done == nil {
		return false, nil // unknown: the run itself looks again under its claim
	}
	return true, d.record(Record{Event: EventClusterSkipped, Cluster: c.Name, State: StateSkipped, RunID: done.RunID,
		Reason: "done by another run of this fleet: " + done.String()})
}

// finished journals how cluster c's run ended and applies the halt rules.
func (d *Driver) finished(c *Cluster, o Outcome) error {
	st := stateOf(o)
	if err := d.record(Record{Event: EventClusterFinished, Cluster: c.Name, RunID: o.RunID, Outcome: &o, State: st}); err != nil {
		return err
	}
	if why := d.Fleet.Halt.Breach(o); why != "" {
		return d.breach(c, why)
	}
	return nil
}

// breach halts the fleet: no new cluster starts.
func (d *Driver) breach(c *Cluster, why string) error {
	d.mu.Lock()
	d.halted = true
	d.mu.Unlock()
	return d.record(Record{Event: EventHalted, Cluster: c.Name, Reason: why, Message: fmt.Sprintf("halted by %s: %s", c.Name, why)})
}
