package fleet

// The waves, one after another: what each cluster of a wave needs, the
// clusters started within the limits and the window, how the run ends.

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
