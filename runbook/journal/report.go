package journal

import (
	"time"

	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/internal/cluster"
)

// OutcomeUnfinished is what a report says of a run whose journal ends
// without an outcome: it was killed, or it is still running. The engine
// never emits it.
const OutcomeUnfinished Outcome = "unfinished"

// Report is a run's timeline as a change ticket or a postmortem wants it:
// who ran what on which cluster, every step with its checks, approvals and
// actions, what the canary writer saw, and how the run ended. BuildReport
// makes it from the journal's events alone; the CLI renders it.
type Report struct {
	RunID           string            `json:"run_id"`
	Runbook         ReportRunbook     `json:"runbook"`
	Inventory       string            `json:"inventory,omitempty"`
	InventoryDigest string            `json:"inventory_digest,omitempty"`
	Cluster         string            `json:"cluster"`
	Vars            map[string]string `json:"vars,omitempty"`
	VarFlags        []string          `json:"var_flags,omitempty"`
	// StartedBy is the OS user and host that started the run: user@host.
	StartedBy string     `json:"started_by"`
	Started   time.Time  `json:"started"`
	Finished  *time.Time `json:"finished,omitempty"` // nil while the run has no outcome
	// LastEvent is the time of the journal's last event; with Finished nil,
	// it is how far the record goes.
	LastEvent time.Time `json:"last_event"`
	// DurationMS runs from the start to the outcome (or to the last event
	// of an unfinished run), suspensions included.
	DurationMS int64 `json:"duration_ms"`
	// Outcome is the run's outcome, OutcomeSuspended, or OutcomeUnfinished.
	Outcome Outcome `json:"outcome"`
	// NewPrimary is the node the run made the primary (run.finished's
	// new_primary); "" when it made none.
	NewPrimary string `json:"new_primary,omitempty"`
	// OldPrimary is the node the promoting step took the role from, when
	// it names one (run.finished's old_primary).
	OldPrimary      string             `json:"old_primary,omitempty"`
	DryRun          bool               `json:"dry_run"`
	Resumes         []ReportResume     `json:"resumes,omitempty"`
	Suspensions     []ReportSuspension `json:"suspensions,omitempty"`
	PointOfNoReturn *ReportPONR        `json:"point_of_no_return,omitempty"`
	// Steps are the main steps in runbook order (those that never started
	// are pending), then the rollback, repair and finally steps that ran or
	// were shown, in the order they first appeared.
	Steps    []ReportStep    `json:"steps"`
	Sections []ReportSection `json:"sections,omitempty"`
	Notes    []ReportNote    `json:"notes,omitempty"` // notes about no step in particular
	Facts    []ReportFact    `json:"facts,omitempty"` // facts recorded outside any step
	Canary   *ReportCanary   `json:"canary,omitempty"`
	Failure  *ReportFailure  `json:"failure,omitempty"`
	// Summary is the run's closing sentence: what ran, what the recovery
	// did, what is left to do by hand (or, when suspended, how to resume).
	Summary string `json:"summary,omitempty"`
	// Headline is the answer a change ticket's reader wants first, in one
	// line: "pg1 → pg2, timeline 1 → 2, clients held 273.2 ms, 0 lost".
	Headline string `json:"headline"`
	// Topology is the cluster as the run's first and last topology checks
	// saw it; nil when the runbook has no such check.
	Topology *ReportTopology `json:"topology,omitempty"`
	// Held is when the pooler held clients (from the PAUSE to the RESUME),
	// in milliseconds since the start; nil when it never did.
	Held *ReportSpan `json:"held,omitempty"`
}

// ReportTopology is the cluster before and after the run.
type ReportTopology struct {
	Before []ReportNode `json:"before,omitempty"`
	After  []ReportNode `json:"after,omitempty"`
}

// ReportNode is one node of the cluster as a topology check saw it.
type ReportNode struct {
	Name      string `json:"name"`
	Role      string `json:"role"` // primary, standby, unreachable
	Upstream  string `json:"upstream,omitempty"`
	Streaming bool   `json:"streaming,omitempty"`
	Timeline  int64  `json:"timeline,omitempty"`
}

// ReportSpan is a stretch of the run, in milliseconds since its start;
// ToMS is 0 when it never ended.
type ReportSpan struct {
	FromMS int64 `json:"from_ms"`
	ToMS   int64 `json:"to_ms,omitempty"`
}

// ReportTimeline is the canary's commits per bucket, from Start: what the
// picture of the window draws.
type ReportTimeline struct {
	Start    time.Time `json:"start"`
	StartMS  int64     `json:"start_ms"` // since the run started
	BucketMS int64     `json:"bucket_ms"`
	Counts   []int     `json:"counts"`
}

// ReportRunbook names the procedure a run followed.
type ReportRunbook struct {
	Name   string `json:"name"`
	File   string `json:"file"`
	Digest string `json:"digest"`
}

// ReportResume is one continuation of the run with `switchover resume`.
type ReportResume struct {
	Time    time.Time `json:"time"`
	AtMS    int64     `json:"at_ms"` // since the run started
	User    string    `json:"user"`
	Host    string    `json:"host"`
	Message string    `json:"message,omitempty"`
}

// ReportSuspension is one stop at a safe point (first Ctrl-C).
type ReportSuspension struct {
	Time    time.Time `json:"time"`
	AtMS    int64     `json:"at_ms"`
	Step    string    `json:"step,omitempty"` // the step that had not started yet
	Message string    `json:"message,omitempty"`
}

// ReportPONR says where the point of no return is and whether the run
// went past it: after it, no rollback.
type ReportPONR struct {
	Step     string     `json:"step"`
	Passed   bool       `json:"passed"`
	PassedAt *time.Time `json:"passed_at,omitempty"`
	AtMS     int64      `json:"at_ms,omitempty"`
}

// ReportStep is one step as the run went through it.
type ReportStep struct {
	Name    string       `json:"name"`
	Section spec.Section `json:"section"`
	// Index is the step's 1-based position among the main steps; 0 for
	// rollback, repair and finally steps.
	Index           int  `json:"index,omitempty"`
	PointOfNoReturn bool `json:"point_of_no_return,omitempty"`
	// State is the last state the step reached; pending when it never
	// started.
	State StepState `json:"state"`
	// Unchanged is true when the step's action found nothing to do.
	Unchanged bool   `json:"unchanged,omitempty"`
	Message   string `json:"message,omitempty"`
	// ApprovalWaitMS is how long the step waited for a person's approval;
	// DurationMS leaves it out.
	ApprovalWaitMS int64            `json:"approval_wait_ms,omitempty"`
	Started        *time.Time       `json:"started,omitempty"`
	StartMS        int64            `json:"start_ms"` // since the run started
	DurationMS     int64            `json:"duration_ms"`
	Checks         []ReportCheck    `json:"checks,omitempty"`
	Approvals      []ReportApproval `json:"approvals,omitempty"`
	Actions        []ReportAction   `json:"actions,omitempty"`
	// Output holds lines the step printed outside an action.
	Output  []string       `json:"output,omitempty"`
	Facts   []ReportFact   `json:"facts,omitempty"`
	Notes   []ReportNote   `json:"notes,omitempty"`
	Failure *ReportFailure `json:"failure,omitempty"`
}

// ReportCheck is a check's final verdict in a step.
type ReportCheck struct {
	Time         time.Time `json:"time"`
	Phase        string    `json:"phase"` // requires or ensures
	Kind         string    `json:"kind"`
	Describe     string    `json:"describe"`
	Status       string    `json:"status"`
	Observed     string    `json:"observed,omitempty"`
	Wanted       string    `json:"wanted,omitempty"`
	Detail       string    `json:"detail,omitempty"`
	NotEvaluated string    `json:"not_evaluated,omitempty"`
	ElapsedMS    int64     `json:"elapsed_ms,omitempty"`
	WithinMS     int64     `json:"within_ms,omitempty"`
	// Attempts counts the evaluations of a check that polled (within:);
	// 0 when it was evaluated once.
	Attempts int `json:"attempts,omitempty"`
}

// ReportApproval is an approval given or refused, by whom and how.
type ReportApproval struct {
	Time    time.Time `json:"time"`
	AtMS    int64     `json:"at_ms"`
	Phase   string    `json:"phase,omitempty"` // settle for a resumed step's decision
	Granted bool      `json:"granted"`
	User    string    `json:"user"`
	Host    string    `json:"host"`
	How     string    `json:"how"`
	Note    string    `json:"note,omitempty"`
}

// ReportAction is what an action did (or, in a dry run, would do) and
// what it printed.
type ReportAction struct {
	Time    time.Time `json:"time"`
	AtMS    int64     `json:"at_ms"`
	Node    string    `json:"node"`
	Command string    `json:"command"`
	Changes string    `json:"changes,omitempty"`
	Output  []string  `json:"output,omitempty"`
}

// ReportFact is a value the run recorded.
type ReportFact struct {
	Time  time.Time `json:"time"`
	Key   string    `json:"key"`
	Value string    `json:"value"`
}

// ReportNote is a message the engine left for the operator.
type ReportNote struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// ReportFailure is where and why something failed.
type ReportFailure struct {
	Step  string `json:"step,omitempty"`
	Phase string `json:"phase,omitempty"`
	Error string `json:"error"`
}

// ReportSection is the start of a rollback, repair or finally section.
type ReportSection struct {
	Section spec.Section `json:"section"`
	Time    time.Time    `json:"time"`
	AtMS    int64        `json:"at_ms"`
	Message string       `json:"message,omitempty"`
	// Step, Phase and Error say which failure sent the run there.
	Step  string `json:"step,omitempty"`
	Phase string `json:"phase,omitempty"`
	Error string `json:"error,omitempty"`
}

// The facts a canary writer records (cluster.Canary*Fact), by the names
// the report and its callers use.
const (
	FactCanaryEndpoint   = cluster.CanaryEndpointFact
	FactCanaryAcked      = cluster.CanaryAckedFact
	FactCanaryErrors     = cluster.CanaryErrorsFact
	FactCanaryWindowMS   = cluster.CanaryWindowMSFact
	FactCanaryWindowFrom = cluster.CanaryWindowFromFact
	FactCanaryWindowTo   = cluster.CanaryWindowToFact
	FactCanaryLost       = cluster.CanaryLostFact
	FactCanaryLostIDs    = cluster.CanaryLostIDsFact
	FactCanaryTimeline   = cluster.CanaryTimelineFact
)

// ReportCanary is what the canary writer saw: the evidence that clients
// barely noticed and that no acknowledged commit was lost. A figure the
// run did not record is nil.
type ReportCanary struct {
	Endpoint string `json:"endpoint,omitempty"`
	Acked    *int64 `json:"acked,omitempty"`  // commits acknowledged to the client
	Errors   *int64 `json:"errors,omitempty"` // client errors
	// LongestGapMS is the longest time without an acknowledged write, from
	// GapFrom to GapTo (as recorded; RFC 3339 when the writer wrote times).
	LongestGapMS *float64 `json:"longest_gap_ms,omitempty"`
	GapFrom      string   `json:"gap_from,omitempty"`
	GapTo        string   `json:"gap_to,omitempty"`
	Lost         *int64   `json:"lost,omitempty"` // acknowledged commits not found afterwards
	LostIDs      []string `json:"lost_ids,omitempty"`
	// Timeline is the commits over time, when the writer recorded them.
	Timeline *ReportTimeline `json:"timeline,omitempty"`
	// Unreadable lists figures recorded in a form the report cannot read,
	// as key=value, rather than dropping them.
	Unreadable []string `json:"unreadable,omitempty"`
}
