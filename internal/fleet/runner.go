package fleet

import (
	"context"
	"time"

	"github.com/switchover/switchover/internal/claim"
)

// Modes of taking a cluster on.
const (
	ModeRun    = "run"    // a new run
	ModeResume = "resume" // its interrupted run, resumed through its journal
	ModeWait   = "wait"   // its run still runs (a fleet process before this one started it)
)

// Runner runs the cluster runs of a fleet. ExecRunner runs the program
// itself as a child process for each; tests give a fake.
type Runner interface {
	// Plan dry-runs cluster c.
	Plan(ctx context.Context, c *Cluster) Verdict
	// Run switches cluster c in a new run, reporting its process, run id
	// and steps as they come, and returns how it ended; out names where
	// its output is kept (out.jsonl, out.err). When ctx ends first it
	// returns at once with Unfinished set: the run goes on.
	Run(ctx context.Context, c *Cluster, out string, report func(Progress)) Outcome
	// Resume continues c's interrupted run id, likewise.
	Resume(ctx context.Context, c *Cluster, runID, out string, report func(Progress)) Outcome
}

// Progress is what a cluster run says while it goes: its process, then
// its run id, then each step it comes to.
type Progress struct {
	PID   int
	RunID string
	Step  string
}

// Verdict is a cluster's dry run.
type Verdict struct {
	Cluster string `json:"cluster"`
	Wave    string `json:"wave"`
	// Ready: a real run would not stop at a precondition.
	Ready bool `json:"ready"`
	// Skipped: refused, and skipped on purpose (--skip-refused); Done: the
	// fleet switched it already (Why says which run).
	Skipped bool `json:"skipped,omitempty"`
	Done    bool `json:"done,omitempty"`
	// Busy: another run holds the cluster now (Why says which), so its
	// dry run said nothing of the cluster as a run of the fleet will find
	// it; the fleet run waits for that run and looks again.
	Busy      bool   `json:"busy,omitempty"`
	Primary   string `json:"primary,omitempty"`
	Candidate string `json:"candidate,omitempty"`
	// Why is the refusal's one line.
	Why      string `json:"why,omitempty"`
	ExitCode int    `json:"exit_code"`
	RunID    string `json:"run_id,omitempty"`
	// Runbook is the runbook's name, as its runs are listed by.
	Runbook string `json:"runbook,omitempty"`
	// Estimate is how long a run is expected to take; 0 is unknown.
	Estimate time.Duration `json:"estimate_ns,omitempty"`
}

// Runs reads the journals of cluster runs in the fleet's journal
// directory. The command line reads them with the engine's own journal
// functions.
type Runs interface {
	// Run reads run id: whether it still runs, how it ended.
	Run(id string) (RunState, error)
	// Find lists the runs tagged with fleet key on inventory (an absolute
	// path) that started at or after since, oldest first.
	Find(key, inventory string, since time.Time) ([]RunState, error)
	// Durations lists how long the done runs of runbook took, newest
	// first.
	Durations(runbook string) []time.Duration
}

// RunState is a cluster run as its journal tells it.
type RunState struct {
	ID string
	// Status is running, interrupted, suspended, or the run's outcome
	// (done, precondition-failed, failed, declined).
	Status  string
	Step    string // the last step it came to
	Started time.Time
	// Outcome is how it ended, when it did.
	Outcome Outcome
}

// Finished reports whether the run reached an end.
func (s RunState) Finished() bool {
	switch s.Status {
	case "running", "interrupted", "suspended", "":
		return false
	}
	return true
}

// Records reads what is kept in each cluster: whether the fleet switched
// it, whether a run holds it. ClaimRecords reads the claim's tables.
type Records interface {
	Done(ctx context.Context, c *Cluster, key string) (*claim.Done, error)
	Held(ctx context.Context, c *Cluster) (*claim.Holder, error)
}

// ClaimRecords reads the records each cluster keeps in its PostgreSQL
// nodes (internal/claim).
type ClaimRecords struct{}

var _ Records = ClaimRecords{}

// Done implements Records.
func (ClaimRecords) Done(ctx context.Context, c *Cluster, key string) (*claim.Done, error) {
	ctx, cancel := context.WithTimeout(ctx, recordsTimeout)
	defer cancel()
	return (&claim.Store{Cluster: c.Nodes}).FleetDone(ctx, key)
}

// Held implements Records: the run holding the cluster's claim, or nil.
func (ClaimRecords) Held(ctx context.Context, c *Cluster) (*claim.Holder, error) {
	ctx, cancel := context.WithTimeout(ctx, recordsTimeout)
	defer cancel()
	err := (&claim.Store{Cluster: c.Nodes}).Check(ctx, "")
	if he, ok := err.(*claim.HeldError); ok {
		return &he.Holder, nil
	}
	return nil, err
}

// recordsTimeout bounds one look at a cluster's records.
const recordsTimeout = 15 * time.Second
