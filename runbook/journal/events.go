// Package journal is the record of runs: the events a run emits (the same
// fields scripts read as JSON lines), the journal file each run appends
// them to and syncs, the list of journaled runs, and the report built from
// a run's events.
package journal

import (
	"time"

	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/internal/kinds"
	"github.com/switchover/switchover/internal/topology"
)

// EventType names an event. The names are stable: scripts read them in the
// JSON output and the journal stores them.
type EventType string

// The events a run emits, in the order a step emits them.
const (
	EventRunStarted   EventType = "run.started"     // Run holds what, where, who
	EventClusters     EventType = "clusters"        // a dry run's clusters: each node's major version, blue's and green's
	EventRunResumed   EventType = "run.resumed"     // a journaled run continues
	EventSection      EventType = "section.started" // a rollback, repair or finally section begins
	EventStep         EventType = "step"            // a step moved to State
	EventCheck        EventType = "check"           // a check's verdict
	EventWaiting      EventType = "check.waiting"   // a check with within: has not passed yet
	EventApproval     EventType = "approval"        // an approval was given or refused
	EventEffect       EventType = "action.effect"   // what an action is about to do (or would, in a dry run)
	EventOutput       EventType = "action.output"   // a line an action printed
	EventFact         EventType = "fact"            // something the run learned, for later steps and resume
	EventNote         EventType = "note"            // a message for the operator
	EventRunSuspended EventType = "run.suspended"   // stopped at a safe point; resume continues
	EventRunFinished  EventType = "run.finished"    // the outcome
)

// StepState is where a step is in its lifecycle. The zero value is unknown.
type StepState string

// The lifecycle of a step, as DESIGN.md fixes it.
const (
	StatePending          StepState = "pending"
	StateChecking         StepState = "checking"
	StateAwaitingApproval StepState = "awaiting-approval"
	StateRunning          StepState = "running"
	StateVerifying        StepState = "verifying"
	StateDone             StepState = "done"
	StateFailed           StepState = "failed"
	StateSkipped          StepState = "skipped"
)

// Outcome is how a run ended.
type Outcome string

// The outcomes of a run.
const (
	OutcomeDone         Outcome = "done"
	OutcomeDryRun       Outcome = "dry-run"
	OutcomePrecondition Outcome = "precondition-failed"
	OutcomeFailed       Outcome = "failed"
	OutcomeDeclined     Outcome = "declined"
	OutcomeSuspended    Outcome = "suspended"
)

// Event is one thing that happened in a run. The engine hands every event
// to its observer and writes it to the journal; the same fields, with the
// same JSON names, reach scripts through --log-format json.
type Event struct {
	Seq      int           `json:"seq"`
	Time     time.Time     `json:"time"`
	RunID    string        `json:"run_id"`
	Type     EventType     `json:"event"`
	Section  spec.Section  `json:"section,omitempty"`
	Step     string        `json:"step,omitempty"`
	State    StepState     `json:"state,omitempty"`
	Phase    string        `json:"phase,omitempty"` // requires, ensures, action, approval, settle
	Check    *CheckEvent   `json:"check,omitempty"`
	Effect   *kinds.Effect `json:"effect,omitempty"`
	Approval *Approval     `json:"approval,omitempty"`
	Output   string        `json:"output,omitempty"`
	Fact     *Fact         `json:"fact,omitempty"`
	Run      *RunInfo      `json:"run,omitempty"`
	Outcome  Outcome       `json:"outcome,omitempty"`
	Message  string        `json:"message,omitempty"`
	Error    string        `json:"error,omitempty"`
	// ElapsedMS is the duration of what finished, in milliseconds.
	ElapsedMS int64 `json:"elapsed_ms,omitempty"`
	// DryRun marks events of a dry run, which changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// DurationMS, NewPrimary, OldPrimary and Canary are run.finished's
	// figures, as numbers for scripts: how long the run (or the resume)
	// took, the node that is the primary after it (only when the run
	// passed its point of no return: the role moved to the candidate),
	// the node the role moved from when the promoting step names it, and
	// what the canary writer saw.
	DurationMS *int64         `json:"duration_ms,omitempty"`
	NewPrimary string         `json:"new_primary,omitempty"`
	OldPrimary string         `json:"old_primary,omitempty"`
	Canary     *CanaryFigures `json:"canary,omitempty"`
	// Clusters are, on a dry run's clusters event, the inventory's
	// cluster (blue) and its green one, each node with its major version.
	Clusters []topology.ClusterVersions `json:"clusters,omitempty"`
	// Unchanged marks a step done whose action found nothing to do (a
	// RESUME not sent, a canary that never ran), so that summaries list
	// only the actions that changed something.
	Unchanged bool `json:"unchanged,omitempty"`
}

// CanaryFigures are the canary writer's figures as run.finished carries
// them; a figure the run did not record is null.
type CanaryFigures struct {
	Acked  *int64 `json:"acked"`  // commits acknowledged to the client
	Lost   *int64 `json:"lost"`   // acknowledged commits not found afterwards
	Errors *int64 `json:"errors"` // client errors
	// WindowMS is the longest time without an acknowledged write.
	WindowMS *float64 `json:"window_ms"`
}

// CheckEvent is a check's verdict as events carry it.
type CheckEvent struct {
	Kind         string         `json:"kind"`
	Describe     string         `json:"describe"`
	Status       string         `json:"status"`
	Observed     string         `json:"observed,omitempty"`
	Wanted       string         `json:"wanted,omitempty"`
	Detail       string         `json:"detail,omitempty"`
	Values       map[string]any `json:"values,omitempty"`
	Attempt      int            `json:"attempt,omitempty"`
	WithinMS     int64          `json:"within_ms,omitempty"`
	ElapsedMS    int64          `json:"elapsed_ms,omitempty"`
	NotEvaluated string         `json:"not_evaluated,omitempty"` // why a dry run did not evaluate it
}

// Approval records who approved or refused a step, and how.
type Approval struct {
	Granted bool   `json:"granted"`
	User    string `json:"user"`
	Host    string `json:"host"`
	// How: "prompt", "--yes", "--approve", or "none" when nobody could be asked.
	How  string `json:"how"`
	Note string `json:"note,omitempty"`
}

// Fact is a value a step recorded for later steps.
type Fact struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// RunInfo describes a run when it starts or resumes.
type RunInfo struct {
	Runbook         string            `json:"runbook"`
	RunbookName     string            `json:"runbook_name"`
	RunbookDigest   string            `json:"runbook_digest"`
	Inventory       string            `json:"inventory,omitempty"`
	InventoryDigest string            `json:"inventory_digest,omitempty"`
	Cluster         string            `json:"cluster"`
	Vars            map[string]string `json:"vars,omitempty"`
	VarFlags        []string          `json:"var_flags,omitempty"`        // the variables given with --var
	Found           []string          `json:"found_in_cluster,omitempty"` // the variables found in the cluster (the primary)
	User            string            `json:"user"`
	Host            string            `json:"host"`
	PID             int               `json:"pid"`
	Steps           []string          `json:"steps,omitempty"`
	PointOfNoReturn string            `json:"point_of_no_return,omitempty"`
	// Fleet is the key of the fleet run that started this run (its
	// --fleet), "" for a run of its own.
	Fleet string `json:"fleet,omitempty"`
}

// Observer receives the events of a run, one at a time, in order.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Observe implements Observer.
func (f ObserverFunc) Observe(e Event) { f(e) }
