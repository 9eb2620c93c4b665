package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Driver runs a fleet: its plan, its run wave after wave, its resume, and
// its status. Every record is journaled (and synced) before the fleet
// acts on it, and handed to Observe.
type Driver struct {
	Fleet *Fleet
	// JournalDir is the cluster runs' journal directory; the fleet's own
	// journals and lock are under Dir(JournalDir, Fleet.Name).
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

func (d *Driver) dir() string { return Dir(d.JournalDir, d.Fleet.Name) }

// Plan dry-runs every cluster, in parallel within the fleet's limits. A
// cluster the fleet switched already (the record in the cluster) is not
// planned: its verdict says by which run.
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
		Message: fmt.Sprintf("%d clusters, %d waves; %s; %s", len(d.Fleet.Clusters), len(d.Fleet.Waves), d.Fleet.Limits, d.Fleet.Halt)}); err != nil {
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

func (d *Driver) start() *Start {
	return &Start{File: d.Fleet.File, Digest: d.Fleet.Digest, Key: d.Fleet.Key(), Playbook: d.Fleet.Playbook, PID: os.Getpid(), Waves: d.Fleet.Waves}
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

// work is how a cluster is taken on in a wave.
type work struct {
	mode  string
	runID string
}

// drive runs the waves in order: the clusters of each that are not
// final, within the limits, until a halt, the window's end or an
// interrupt.
func (d *Driver) drive(ctx context.Context) (*Result, error) {
	for _, w := range d.Fleet.Waves {
		if d.stopped(ctx) {
			break
		}
		todo, err := d.waveWork(ctx, w)
		if err != nil {
			return nil, err
		}
		if len(todo) == 0 || d.stopped(ctx) {
			continue
		}
		if d.ApproveWave != nil {
			if err := d.ApproveWave(ctx, w); err != nil {
				return d.finish(ResultDeclined, fmt.Sprintf("wave %s not approved: %v", w.Name, err))
			}
			if err := d.record(Record{Event: EventWaveApproved, Wave: w.Name, User: d.User, Host: d.Host}); err != nil {
				return nil, err
			}
		}
		if err := d.record(Record{Event: EventWaveStarted, Wave: w.Name, Message: fmt.Sprintf("wave %s: %s", w.Name, strings.Join(w.Clusters, ", "))}); err != nil {
			return nil, err
		}
		if err := d.runWave(ctx, todo); err != nil {
			return nil, err
		}
	}
	switch {
	case ctx.Err() != nil:
		return d.finish(ResultInterrupted, "stopped at once: the cluster runs under way go on; `switchover fleet resume` follows them")
	case d.halted:
		return d.finish(ResultHalted, "no new cluster started after the breach; `switchover fleet resume` continues once it is understood")
	case d.windowEnd:
		return d.finish(ResultWindowEnded, "the window has no room left: no new cluster started")
	case d.interrupted():
		return d.finish(ResultInterrupted, "no new cluster started after the interrupt; the running ones finished; `switchover fleet resume` continues")
	}
	var failed []string
	for _, c := range d.Fleet.Clusters {
		if d.state(c.Name).State == StateFailed {
			failed = append(failed, c.Name)
		}
	}
	if len(failed) > 0 {
		return d.finish(ResultFailed, "clusters left failed: "+strings.Join(failed, ", ")+" (see their reports; `switchover fleet resume --retry NAME` takes one on again)")
	}
	return d.finish(ResultDone, "every cluster done or skipped")
}

// finish journals fleet.finished and returns the result.
func (d *Driver) finish(result, msg string) (*Result, error) {
	res := &Result{FleetRun: d.st.ID, Journal: d.j.Path(), Result: result}
	for _, c := range d.Fleet.Clusters {
		s := d.state(c.Name).State
		if s != StateDone && s != StateSkipped {
			res.Left = append(res.Left, c.Name)
		}
		if s == StateFailed {
			res.Failed = append(res.Failed, c.Name)
		}
	}
	d.mu.Lock()
	res.Halt = d.st.Halt
	d.mu.Unlock()
	err := d.record(Record{Event: EventFleetFinished, Result: result, Left: res.Left, Message: msg})
	return res, err
}

// waveWork says how each cluster of wave w is taken on, settling first
// what a fleet process before this one left: a cluster journaled as
// starting is looked for in the journal directory, a run that finished
// since is journaled as finished (and its halt rules apply).
func (d *Driver) waveWork(ctx context.Context, w Wave) (map[string]work, error) {
	todo := map[string]work{}
	for _, name := range w.Clusters {
		c := d.Fleet.Cluster(name)
		cs := d.state(name)
		if cs.State == StateStarting {
			found, err := d.lookFor(ctx, c, cs)
			if err != nil {
				return nil, err
			}
			if found != "" {
				if err := d.record(Record{Event: EventClusterStarted, Cluster: name, RunID: found,
					Message: fmt.Sprintf("found run %s of %s, started by a fleet process before this one", found, name)}); err != nil {
					return nil, err
				}
				cs = d.state(name)
			}
		}
		switch cs.State {
		case StateDone, StateSkipped, StateFailed:
			continue
		case StateRunning:
			rs, err := d.Runs.Run(cs.RunID)
			switch {
			case err != nil:
				return nil, fmt.Errorf("cluster %s: run %s: %w", name, cs.RunID, err)
			case rs.Status == "running":
				todo[name] = work{mode: ModeWait, runID: cs.RunID}
			case !rs.Finished():
				todo[name] = work{mode: ModeResume, runID: cs.RunID}
			default:
				// It ended while no fleet process followed it.
				if err := d.finished(c, rs.Outcome); err != nil {
					return nil, err
				}
				if !d.state(name).State.Final() && !d.stopped(ctx) {
					todo[name] = work{mode: ModeRun}
				}
			}
		default:
			todo[name] = work{mode: ModeRun}
		}
	}
	return todo, nil
}

// lookFor finds the run of cluster c that a fleet process journaled as
// starting and could not journal as started (it was killed in between):
// a run of this fleet on c's inventory started since. While the process
// it spawned still runs, its journal may not be written yet: it is
// looked for again, for StartGrace at most.
func (d *Driver) lookFor(ctx context.Context, c *Cluster, cs ClusterState) (string, error) {
	grace := d.StartGrace
	if grace <= 0 {
		grace = 15 * time.Second
	}
	deadline := d.now().Add(grace)
	for {
		runs, err := d.Runs.Find(d.Fleet.Key(), c.Inventory, cs.Since.Add(-2*time.Second))
		if err != nil {
			return "", err
		}
		if len(runs) > 0 {
			return runs[len(runs)-1].ID, nil
		}
		if cs.PID == 0 || !ourChild(cs.PID) || d.now().After(deadline) {
			return "", nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(d.poll()):
		}
	}
}

// ourChild reports whether pid is a live cluster run of a fleet (a run
// of this program with --fleet), not a process that reuses the number.
func ourChild(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return true // no /proc to tell: alive is all we know
	}
	return strings.Contains(string(b), "\x00--fleet\x00")
}

// runWave takes on the clusters of a wave within the limits, stopping
// to start new ones at a halt, the window's end or an interrupt.
func (d *Driver) runWave(ctx context.Context, todo map[string]work) error {
	var waiting, rest []*Cluster
	for _, c := range d.Fleet.Clusters {
		if wk, ok := todo[c.Name]; ok {
			if wk.mode == ModeWait {
				waiting = append(waiting, c)
			} else {
				rest = append(rest, c)
			}
		}
	}
	var mu sync.Mutex
	var firstErr error
	left := pool(rest, waiting, d.Fleet.Limits, func(c *Cluster) bool { return d.stopped(ctx) || !d.fits(c) }, func(c *Cluster) {
		if err := d.take(ctx, c, todo[c.Name]); err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	})
	if firstErr != nil {
		return firstErr
	}
	d.mu.Lock()
	ended := d.windowEnd
	d.mu.Unlock()
	if ended && len(left) > 0 {
		var names []string
		for _, c := range d.Fleet.Clusters {
			if !d.state(c.Name).State.Final() && d.state(c.Name).State != StateRunning {
				names = append(names, c.Name)
			}
		}
		return d.record(Record{Event: EventWindowEnded, Left: names,
			Message: fmt.Sprintf("the window closes at %s: too little time left to start %s", d.Fleet.Window.NotAfter.Format(time.RFC3339), strings.Join(names, ", "))})
	}
	return nil
}

// fits reports whether cluster c may still start in the window: the time
// left is at least its estimated duration (unknown: any time left).
func (d *Driver) fits(c *Cluster) bool {
	end := d.Fleet.Window.NotAfter
	if end.IsZero() {
		return true
	}
	est := d.estimate(c)
	if d.now().Add(est).Before(end) {
		return true
	}
	d.mu.Lock()
	d.windowEnd = true
	d.mu.Unlock()
	return false
}

func (d *Driver) estimate(c *Cluster) time.Duration {
	d.mu.Lock()
	est, ok := d.estimates[c.Name]
	d.mu.Unlock()
	if ok {
		return est
	}
	name := d.Fleet.Playbook
	if filepath.IsAbs(name) {
		return 0 // a runbook file: its name is in its runs, not known here
	}
	est = Estimate(d.Runs.Durations(name))
	d.mu.Lock()
	d.estimates[c.Name] = est
	d.mu.Unlock()
	return est
}

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
