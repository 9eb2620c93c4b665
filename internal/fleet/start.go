package fleet

// Starting a fleet run, and resuming one from its journal.

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Run starts a fleet run: the plan's refused clusters are skipped (with
// skipRefused; else nothing starts), then the waves run one after
// another. The operator has approved the plan.
func (d *Driver) Run(ctx context.Context, verdicts []Verdict, skipRefused bool) (*Result, error) {
	var refused []string
	for _, v := range verdicts {
		if !v.Ready {
			refused = append(refused, v.Cluster)
		}
	}
	if len(refused) > 0 && !skipRefused {
		return nil, fmt.Errorf("%w: %s (--skip-refused skips them)", ErrRefused, strings.Join(refused, ", "))
	}
	if err := d.inWindow(); err != nil {
		return nil, err
	}
	lock, err := d.lock("")
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	if id, err := Latest(d.dir()); err != nil {
		return nil, err
	} else if id != "" {
		recs, err := ReadJournal(d.dir(), id)
		if err != nil {
			return nil, err
		}
		if st := replay(id, recs); st.Unfinished() {
			why := "it was killed or is still starting"
			if st.Finished != nil {
				why = "it ended " + st.Finished.Result
			}
			return nil, fmt.Errorf("%w: fleet %s's run %s did not finish (%s); `switchover fleet resume` continues it", ErrUnfinished, d.Fleet.Name, id, why)
		}
	}
	id := d.NewID()
	d.j, err = createJournal(d.dir(), id)
	if err != nil {
		return nil, err
	}
	defer d.j.close()
	d.st, d.halted, d.windowEnd = &Replay{ID: id, Clusters: map[string]*ClusterState{}}, false, false
	d.estimates = map[string]time.Duration{}
	for _, v := range verdicts {
		d.estimates[v.Cluster] = v.Estimate
	}
	if err := d.record(Record{Event: EventFleetStarted, Start: d.start(), User: d.User, Host: d.Host,
		Message: fmt.Sprintf("%d clusters%s, %d waves; %s; %s", len(d.Fleet.Clusters), selectedText(d.Fleet), len(d.Fleet.Waves), d.Fleet.Limits, d.Fleet.Halt)}); err != nil {
		return nil, err
	}
	for _, v := range verdicts {
		switch {
		case v.Done:
			err = d.record(Record{Event: EventClusterSkipped, Cluster: v.Cluster, Wave: v.Wave, State: StateSkipped, Reason: v.Why})
		case !v.Ready:
			err = d.record(Record{Event: EventClusterSkipped, Cluster: v.Cluster, Wave: v.Wave, State: StateSkipped, Reason: "refused by the plan (--skip-refused): " + v.Why})
		}
		if err != nil {
			return nil, err
		}
	}
	return d.drive(ctx)
}

// Resumable reads the fleet's last run for resume: its state, and an
// error when there is none or it finished.
func (d *Driver) Resumable() (*Replay, error) {
	id, err := Latest(d.dir())
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("%w: fleet %s has no run in %s; start one with `switchover fleet run`", ErrNothing, d.Fleet.Name, d.JournalDir)
	}
	recs, err := ReadJournal(d.dir(), id)
	if err != nil {
		return nil, err
	}
	st := replay(id, recs)
	if !st.Unfinished() {
		return nil, fmt.Errorf("%w: fleet %s's run %s finished (%s); start a new one with `switchover fleet run`", ErrNothing, d.Fleet.Name, id, st.Finished.Result)
	}
	if st.Start.Digest != d.Fleet.Digest {
		return nil, fmt.Errorf("%w: %s changed since fleet run %s started; resume needs the fleet file it started with", ErrChanged, d.Fleet.File, id)
	}
	return st, nil
}

// Resume continues the fleet's last run, killed, halted, out of its
// window or interrupted: a finished cluster is never taken on again; a
// run that was interrupted is resumed through its own journal; a run that
// still runs is waited for; a cluster journaled as starting is looked for
// in the journal directory first. The operator has acknowledged the halt,
// if any (st.Halt).
func (d *Driver) Resume(ctx context.Context) (*Result, error) {
	if err := d.inWindow(); err != nil {
		return nil, err
	}
	lock, err := d.lock("")
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	st, err := d.Resumable()
	if err != nil {
		return nil, err
	}
	d.st, d.halted, d.windowEnd = st, false, false
	d.j, err = openJournal(d.dir(), st.ID, st.Seq)
	if err != nil {
		return nil, err
	}
	defer d.j.close()
	d.estimates = map[string]time.Duration{}
	if err := d.record(Record{Event: EventFleetResumed, Start: d.start(), User: d.User, Host: d.Host}); err != nil {
		return nil, err
	}
	if h := st.Halt; h != nil {
		if err := d.record(Record{Event: EventHaltAcknowledged, Cluster: h.Cluster, Reason: h.Reason, User: d.User, Host: d.Host,
			Message: fmt.Sprintf("halt acknowledged by %s@%s: %s: %s", d.User, d.Host, h.Cluster, h.Reason)}); err != nil {
			return nil, err
		}
	}
	for _, name := range d.Retry {
		c := st.Clusters[name]
		if c == nil || c.State != StateFailed {
			return nil, fmt.Errorf("--retry %s: not a failed cluster of fleet run %s", name, st.ID)
		}
		c.State = StatePending
	}
	return d.drive(ctx)
}

// selectedText says a fleet's selection: " (select {dc: a}: 3 of 8)", or
// "" for the whole fleet.
func selectedText(f *Fleet) string {
	if len(f.Selection) == 0 {
		return ""
	}
	return fmt.Sprintf(" (select %s: %d of %d)", selector(f.Selection), len(f.Clusters), len(f.Clusters)+f.Unselected)
}
