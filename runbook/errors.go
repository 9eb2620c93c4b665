package runbook

import (
	"errors"
	"fmt"

	"github.com/switchover/switchover/runbook/spec"
)

// Sentinel errors for the outcomes the CLI maps to exit codes. Errors the
// engine returns wrap exactly one of them.
var (
	// ErrInvalid: the runbook, the inventory or the invocation is wrong
	// (exit 2); it is the formats' own (spec.ErrInvalid).
	ErrInvalid = spec.ErrInvalid
	// ErrPrecondition: a precondition failed; the step did not act (exit 3).
	ErrPrecondition = errors.New("precondition failed")
	// ErrAction: an action or a postcondition failed; the cluster may have
	// changed (exit 4).
	ErrAction = errors.New("action failed")
	// ErrDeclined: an approval was refused or could not be asked for, or the
	// operator interrupted the run (exit 5).
	ErrDeclined = errors.New("declined")
	// ErrLocked: another run holds the cluster (exit 6).
	ErrLocked = errors.New("locked")
)

// StepError is how a run that stopped at a step reports it: which steps had
// completed, which failed and in which phase, and what recovery did. It
// wraps the sentinel for the exit code.
type StepError struct {
	Step      string   // the step that stopped the run
	Phase     string   // requires, approval, action, ensures, settle, interrupted
	Completed []string // steps whose actions completed, in order
	Recovery  string   // what ran after the failure, e.g. "rollback restore-primary: done"
	Err       error    // the cause; wraps a sentinel
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %q: %v", e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// LockedError says who holds the cluster.
type LockedError struct {
	Cluster string
	Holder  Holder
	// Stale is true when the holder is gone but its run never finished: it
	// was killed or suspended, and must be resumed or taken over.
	Stale bool
	// SeenOn names the node whose copy of the cluster's own claim showed
	// the holder; empty for this machine's lock.
	SeenOn string
}

func (e *LockedError) Error() string {
	h := e.Holder
	if e.Stale {
		return fmt.Sprintf("cluster %q: run %s (%s@%s, pid %d, since %s) did not finish; "+
			"resume it with `switchover resume %s`, or take the cluster over with --take-over",
			e.Cluster, h.RunID, h.User, h.Host, h.PID, h.Since.Format("2006-01-02 15:04:05 MST"), h.RunID)
	}
	if e.SeenOn != "" {
		return fmt.Sprintf("cluster %q is claimed by run %s (%s@%s, pid %d, since %s; the claim is kept in the cluster, seen on %s); "+
			"wait for it, resume it with `switchover resume %s` where it ran, or, if that run is gone for good, take the cluster over with --take-over",
			e.Cluster, h.RunID, h.User, h.Host, h.PID, h.Since.Format("2006-01-02 15:04:05 MST"), e.SeenOn, h.RunID)
	}
	return fmt.Sprintf("cluster %q is held by run %s (%s@%s, pid %d, since %s)",
		e.Cluster, h.RunID, h.User, h.Host, h.PID, h.Since.Format("2006-01-02 15:04:05 MST"))
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }
