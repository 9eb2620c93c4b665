// Check evaluation: the checks of one step run concurrently, each under its
// timeout and a recover(), polled to their within: deadline, and no longer
// waited for once one of them has failed for good.

package runbook

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/kinds"
)

// checkGrace is how long a check may overrun its timeout before the
// evaluator stops waiting for it and reports no answer.
const checkGrace = 250 * time.Millisecond

// interruptedObserved is what a check interrupted by the operator while
// it was being polled is reported to have seen.
const interruptedObserved = "interrupted by the operator"

// evaluator runs the checks of one step. It neither journals nor decides
// what a failure means: it returns a verdict per check, and reports each
// attempt of a check that will be polled again to onWait.
type evaluator struct {
	target *cluster.Target
	// poll honours within: (poll until the check passes or its deadline);
	// without it every check runs once.
	poll bool
	// interrupt, when closed, ends polling at once; the check being
	// polled is then an error, marked interrupted.
	interrupt <-chan struct{}
	// onWait, when set, is told of each failed attempt that will be
	// retried. It is called from the checks' goroutines.
	onWait func(attempt) // may be nil
}

// attempt is one try of a polled check that did not pass yet.
type attempt struct {
	cond    *spec.Cond
	result  kinds.Result
	n       int           // 1 for the first try
	elapsed time.Duration // since the check's first try
}

// verdict is what one check came to.
type verdict struct {
	result  kinds.Result
	elapsed time.Duration
	// cut: the check was not waited for to the end, because another check
	// of the step failed for good or the context ended; its result is the
	// last it saw.
	cut bool
	// interrupted: the operator interrupted it while it was polled.
	interrupted bool
}

// run evaluates list concurrently and returns a verdict per check, in the
// order of list. Once one check has failed for good the step fails
// whatever the others say, so the others are no longer waited for.
func (v *evaluator) run(ctx context.Context, list []*spec.Cond) []verdict {
	sctx, stopSiblings := context.WithCancel(ctx)
	defer stopSiblings()
	out := make([]verdict, len(list))
	var wg sync.WaitGroup
	for i, c := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			out[i] = v.evaluate(sctx, c)
			out[i].elapsed = time.Since(start)
			if out[i].result.Status != kinds.Pass && !out[i].cut {
				stopSiblings()
			}
		}()
	}
	wg.Wait()
	return out
}

// evaluate runs one check, polling until it passes when it has within:
// and polling is on, and never longer than its deadline. A check that runs
// a command on a host (kinds.RemotePoller) is then asked to poll on the
// host itself, up to the same deadline, in one command.
func (v *evaluator) evaluate(ctx context.Context, c *spec.Cond) verdict {
	start := time.Now()
	rp, remote := c.Check.(kinds.RemotePoller)
	remote = remote && v.poll && c.Within > 0
	for n := 1; ; n++ {
		var r kinds.Result
		if remote {
			if v.onWait != nil && n == 1 {
				// One command waits on the host: say so once, so the
				// operator sees the wait and its deadline from the start.
				v.onWait(attempt{cond: c, result: kinds.Result{Status: kinds.Unknown, Observed: "polling on the host until it passes"}, n: 0})
			}
			var interrupted bool
			r, interrupted = v.pollRemote(ctx, c, rp, start.Add(c.Within))
			if interrupted {
				return verdict{result: kinds.Result{Status: kinds.Error, Observed: interruptedObserved}, interrupted: true}
			}
		} else {
			r = v.once(ctx, c)
		}
		if ctx.Err() != nil && r.Status != kinds.Pass {
			return verdict{result: r, cut: true} // by a failed sibling, or the caller
		}
		left := c.Within - time.Since(start)
		if r.Status == kinds.Pass || !v.poll || c.Within == 0 || left <= 0 {
			return verdict{result: r}
		}
		if v.onWait != nil {
			v.onWait(attempt{cond: c, result: r, n: n, elapsed: time.Since(start)})
		}
		timer := time.NewTimer(min(c.Every, left))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return verdict{result: r, cut: true}
		case <-v.interrupt:
			timer.Stop()
			return verdict{result: kinds.Result{Status: kinds.Error, Observed: interruptedObserved}, interrupted: true}
		}
	}
}

// once runs a check once under its timeout and a recover(). A check that
// ignores its context is abandoned, so checks never pile up; one that
// returns no verdict is an error.
func (v *evaluator) once(ctx context.Context, c *spec.Cond) kinds.Result {
	return v.bounded(ctx, c, c.Timeout, c.Check.Run)
}

// pollRemote asks a remote poller to poll on its host until until, under
// the time left to then plus one evaluation's timeout (for the last
// reading), as once runs a check. The operator's interrupt ends it at once
// (its command is killed), as it ends the wait between two polls.
func (v *evaluator) pollRemote(ctx context.Context, c *spec.Cond, rp kinds.RemotePoller, until time.Time) (r kinds.Result, interrupted bool) {
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-v.interrupt:
			cancel()
		case <-ictx.Done():
		}
	}()
	p := kinds.Poll{Until: until, Every: c.Every}
	r = v.bounded(ictx, c, max(time.Until(until), 0)+c.Timeout, func(ctx context.Context, t *cluster.Target) kinds.Result {
		return rp.PollRemote(ctx, t, p)
	})
	select {
	case <-v.interrupt:
		return r, r.Status != kinds.Pass
	default:
		return r, false
	}
}

// bounded runs eval under timeout and a recover(): see once.
func (v *evaluator) bounded(ctx context.Context, c *spec.Cond, timeout time.Duration, eval func(context.Context, *cluster.Target) kinds.Result) kinds.Result {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan kinds.Result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- kinds.Result{Status: kinds.Error, Observed: fmt.Sprintf("the check panicked: %v", r)}
			}
		}()
		done <- eval(cctx, v.target)
	}()
	var r kinds.Result
	select {
	case r = <-done:
	case <-cctx.Done():
		select {
		case r = <-done:
		case <-time.After(checkGrace):
			r = kinds.Result{Status: kinds.Error, Observed: fmt.Sprintf("no answer within %s", timeout)}
		}
		if r.Status == kinds.Pass {
			break
		}
		if cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			r.Status = kinds.Error
			r.Observed = strings.TrimSpace(fmt.Sprintf("no answer within %s %s", timeout, r.Observed))
		}
	}
	if r.Status == kinds.Unknown {
		r = kinds.Result{Status: kinds.Error, Observed: "the check returned no verdict"}
	}
	return r
}
