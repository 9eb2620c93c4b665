package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Driver runs a fleet: its plan, its run wave after wave, its resume, and
// its status. Every record is journaled (and synced) before the fleet
// acts on it, and handed to Observe.
type Driver struct {
	Fleet *Fleet
	// JournalDir is the cluster runs' journal directory; the fleet's own
	// journals and lock are under Fleet.JournalDir(JournalDir).
	JournalDir string
	Runner     Runner
	Runs       Runs
	Records    Records
	User, Host string
	// Observe receives every record as it is journaled, and each step a
	// cluster run comes to (cluster.step, not journaled); nil: none.
	Observe func(Record)
	// ApproveWave, when set, is asked before each wave that has work;
	// an error declines the wave, and the fleet run stops there.
	ApproveWave func(ctx context.Context, w Wave) error
	// Interrupt, when closed, stops the fleet from starting clusters:
	// the running ones finish by their own rules, and the fleet run ends
	// interrupted, to be resumed.
	Interrupt <-chan struct{}
	// Retry names failed clusters that resume takes on again.
	Retry []string
	// NewID makes a fleet run's id (sorting by start time).
	NewID func() string
	Now   func() time.Time
	// LockedWait bounds how long a cluster another run holds is waited
	// for; 0 is 10 minutes.
	LockedWait time.Duration
	// StartGrace bounds how long a run journaled as starting, whose
	// process still runs, is looked for in the journal directory; 0 is
	// 15 seconds.
	StartGrace time.Duration
	// Poll is how often a run of another process, a cluster's claim, or
	// a run being looked for is looked at again; 0 is 1 second.
	Poll time.Duration

	mu        sync.Mutex
	j         *Journal
	st        *Replay
	estimates map[string]time.Duration
	halted    bool
	windowEnd bool
}

// Result is how a fleet run (or a resume of it) ended.
type Result struct {
	FleetRun string
	Journal  string
	// Result is done, halted, window-ended, interrupted, declined, or
	// failed (clusters left failed, for a person).
	Result string
	// Halt is the breach that halted the fleet, when it did.
	Halt *Record
	// Left are the clusters not done (not started, refused, failed);
	// Failed those whose run failed.
	Left, Failed []string
}

// ResultFailed ends a fleet run whose waves are over with clusters left
// failed (their runs may have changed them; a person decides).
const ResultFailed = "failed"

// Errors a fleet run refuses with before it starts anything.
var (
	// ErrUnfinished: the fleet's last run is unfinished; resume it.
	ErrUnfinished = errors.New("unfinished fleet run")
	// ErrRefused: the plan refused clusters, and --skip-refused was not
	// given.
	ErrRefused = errors.New("refused by the plan")
	// ErrWindow: outside the fleet's window.
	ErrWindow = errors.New("outside the window")
	// ErrNothing: no fleet run to resume, or it finished.
	ErrNothing = errors.New("nothing to resume")
	// ErrChanged: the fleet file changed since the fleet run started.
	ErrChanged = errors.New("fleet file changed")
)

func (d *Driver) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Driver) poll() time.Duration {
	if d.Poll > 0 {
		return d.Poll
	}
	return time.Second
}

func (d *Driver) dir() string { return d.Fleet.JournalDir(d.JournalDir) }

// Plan dry-runs every cluster, in parallel within the fleet's limits. A
// cluster the fleet switched already (the record in the cluster) is not
// planned: its verdict says by which run. One another run holds while its
// dry run failed is busy, not refused.
func (d *Driver) Plan(ctx context.Context) []Verdict {
	out := make([]Verdict, len(d.Fleet.Clusters))
	index := map[*Cluster]int{}
	for i, c := range d.Fleet.Clusters {
		index[c] = i
	}
	pool(d.Fleet.Clusters, nil, d.Fleet.Limits, func(*Cluster) bool { return ctx.Err() != nil }, func(c *Cluster) {
		var v Verdict
		if done, err := d.Records.Done(ctx, c, d.Fleet.Key()); err == nil && done != nil {
			v = Verdict{Cluster: c.Name, Ready: true, Done: true, Why: fmt.Sprintf("switched by fleet %s: %s", done.Fleet, done)}
		} else {
			v = d.Runner.Plan(ctx, c)
			v.Cluster = c.Name
			// A dry run beside another run's switchover sees that run's
			// sessions and its moving primary: not a refusal of this
			// cluster, which a run of the fleet waits for (see take).
			if !v.Ready {
				if h, err := d.Records.Held(ctx, c); err == nil && h != nil {
					v = Verdict{Cluster: c.Name, Ready: true, Busy: true, Why: fmt.Sprintf("another run holds it now: %s; a fleet run waits for it, then looks again", h)}
				}
			}
		}
		v.Wave = d.Fleet.Waves[c.Wave].Name
		if v.Runbook == "" && !filepath.IsAbs(d.Fleet.Playbook) {
			v.Runbook = d.Fleet.Playbook
		}
		v.Estimate = Estimate(d.Runs.Durations(v.Runbook))
		out[index[c]] = v
	})
	return out
}

// Estimate is how long a run is expected to take from how long the last
// done runs of its runbook took (newest first): the longest of the last
// five, 0 (unknown) without any.
func Estimate(durations []time.Duration) time.Duration {
	var longest time.Duration
	for _, d := range durations[:min(5, len(durations))] {
		longest = max(longest, d)
	}
	return longest
}

func (d *Driver) start() *Start {
	return &Start{File: d.Fleet.File, Digest: d.Fleet.Digest, Key: d.Fleet.Key(), Playbook: d.Fleet.Playbook, PID: os.Getpid(), Waves: d.Fleet.Waves, Select: d.Fleet.Selection}
}

func (d *Driver) lock(run string) (*Lock, error) {
	return AcquireLock(d.dir(), d.Fleet.Name, Holder{FleetRun: run, User: d.User, Host: d.Host, PID: os.Getpid(), Since: d.now()})
}

// inWindow refuses a fleet run outside its window.
func (d *Driver) inWindow() error {
	w, now := d.Fleet.Window, d.now()
	const layout = "2006-01-02 15:04:05 MST"
	switch {
	case !w.NotBefore.IsZero() && now.Before(w.NotBefore):
		return fmt.Errorf("%w: it is %s, before the window opens at %s (window: not_before); nothing was done", ErrWindow, now.Format(layout), w.NotBefore.Format(layout))
	case !w.NotAfter.IsZero() && !now.Before(w.NotAfter):
		return fmt.Errorf("%w: it is %s, after the window closed at %s (window: not_after); nothing was done", ErrWindow, now.Format(layout), w.NotAfter.Format(layout))
	}
	return nil
}

// record journals r, applies it to the fleet run's state and shows it.
func (d *Driver) record(r Record) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	r.Time = d.now()
	r.FleetRun, r.Fleet = d.st.ID, d.Fleet.Name
	if r.Wave == "" && r.Cluster != "" {
		r.Wave = d.Fleet.WaveOf(r.Cluster)
	}
	if err := d.j.append(&r); err != nil {
		return err
	}
	d.st.apply(r)
	if d.Observe != nil {
		d.Observe(r)
	}
	return nil
}

// show hands a record that is not journaled to Observe.
func (d *Driver) show(r Record) {
	if d.Observe == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r.Time, r.FleetRun, r.Fleet = d.now(), d.st.ID, d.Fleet.Name
	r.Wave = d.Fleet.WaveOf(r.Cluster)
	d.Observe(r)
}

func (d *Driver) state(name string) ClusterState {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.st.Clusters[name]; c != nil {
		return *c
	}
	return ClusterState{Name: name, State: StatePending}
}

func (d *Driver) interrupted() bool {
	if d.Interrupt == nil {
		return false
	}
	select {
	case <-d.Interrupt:
		return true
	default:
		return false
	}
}

func (d *Driver) stopped(ctx context.Context) bool {
	d.mu.Lock()
	stop := d.halted || d.windowEnd
	d.mu.Unlock()
	return stop || ctx.Err() != nil || d.interrupted()
}
