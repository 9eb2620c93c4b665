// Package kinds is what the engine knows of checks and steps: the
// interfaces a check and a step implement, what they return, and the two
// registries the runbook's kinds are looked up in. The checks and steps
// packages register their kinds here (and name these types for
// themselves); the engine runs any runbook through them without importing
// either package.
package kinds

import (
	"context"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/registry"
)

// Status is the verdict of a check. The zero value is Unknown: not evaluated.
type Status int

// The verdicts of a check.
const (
	Unknown Status = iota // not evaluated (e.g. a postcondition in a dry run)
	Pass                  // the condition holds
	Fail                  // the condition does not hold
	Error                 // the condition could not be evaluated
)

// String names the status as output and journals show it.
func (s Status) String() string {
	switch s {
	case Pass:
		return "pass"
	case Fail:
		return "fail"
	case Error:
		return "error"
	}
	return "unknown"
}

// Result is what a check saw. A false condition is a Result with status Fail,
// not a Go error: errors are for the machinery, results are verdicts.
type Result struct {
	Status   Status
	Observed string         // what the check saw, in a DBA's words
	Wanted   string         // what it wanted to see
	Detail   string         // more lines, e.g. the sessions holding locks
	Values   map[string]any // observations for the journal and report
}

// Check is one configured check.
type Check interface {
	// Describe says what the check looks at, e.g. `"test -d /tmp" exits 0 on local`.
	Describe(t *cluster.Target) string
	// Run evaluates the check once. It must honour ctx and change nothing.
	Run(ctx context.Context, t *cluster.Target) Result
}

// RemotePoller is a check whose evaluation runs a command on a host. Polled
// with within:, such a check would send one command per poll: over ssh one
// session and its round trips each time, several times the interval a
// runbook asks for. A RemotePoller instead sends one command that polls on
// the host itself until what it reads there would pass, or until the
// poll's deadline, and decides from the last reading as Run decides from
// its one. The engine uses it when a check has within:; without within:,
// Run evaluates once.
type RemotePoller interface {
	Check
	// PollRemote evaluates the check as Run does, except that a command it
	// runs on a host reads again on the host, every p.Every, until its
	// reading passes or p.Until; the verdict comes from the last reading,
	// with the same statuses and messages as Run's. A check whose
	// evaluation did not reach the host (it concluded from a server that
	// answered, say) returns at once, and the engine polls again as for any
	// check.
	PollRemote(ctx context.Context, t *cluster.Target, p Poll) Result
}

// Poll is how a RemotePoller polls on the host: until when, and how often.
type Poll struct {
	Until time.Time     // no new reading starts after it
	Every time.Duration // between readings
}

// CheckDefinition registers a kind of check.
type CheckDefinition struct {
	Kind   string        // the name runbooks use, e.g. "tcp.reachable"
	Doc    string        // one line: what condition holds when it passes
	Params []params.Spec // its parameters
	// Manager is the cluster manager the kind asks: a runbook using it
	// needs an inventory whose manager is of that kind.
	Manager cluster.ManagerKind
	// New builds a check from decoded parameters. It returns an error for
	// combinations of parameters that the schema alone cannot reject.
	New func(v params.Values) (Check, error)
}

// Checks is the registry of check kinds.
var Checks = registry.New("checks", func(d CheckDefinition) string { return d.Kind })

// CheckEngineParams are the parameters every check takes beside its own:
// the engine acts on them, not the check. The runbook loader accepts them
// on every check, and the schema and the check reference describe them
// from here.
var CheckEngineParams = []params.Spec{
	{Name: "within", Type: params.Duration, Doc: "poll until the check passes, at most this long"},
	{Name: "every", Type: params.Duration, Doc: "time between polls"},
	{Name: "timeout", Type: params.Duration, Doc: "limit of one evaluation"},
}

// Effect is what a step will do, exactly, shown before it does it.
type Effect struct {
	Node    string `json:"node"`              // where it acts, e.g. "local" or "pg1 (local)"
	Command string `json:"command"`           // the exact command line or SQL
	Changes string `json:"changes,omitempty"` // what it changes, in a DBA's words; empty for no change
}

// Step is one configured action.
type Step interface {
	// Describe returns the exact effect without acting.
	Describe(t *cluster.Target) Effect
	// Apply acts. It must honour ctx; output goes to t.Print.
	Apply(ctx context.Context, t *cluster.Target) error
}

// Manual is implemented by steps whose action is a person's confirmation
// that they did something (a checklist item). The engine asks the operator
// instead of calling Apply; in scripted mode only --approve STEP confirms it.
type Manual interface {
	Step
	Checklist() string
}

// ClientReleaser is implemented by steps that let clients held by a paused
// pooler go on (a repoint to the new primary, a resume): the engine runs
// them whatever the hold's budget says, since they end the hold.
type ClientReleaser interface {
	ReleasesClients() bool
}

// StepDefinition registers a kind of step.
type StepDefinition struct {
	Kind   string
	Doc    string
	Params []params.Spec
	// Destructive kinds always need approval, whatever the runbook says.
	Destructive bool
	// Manager is the cluster manager the kind talks to: a runbook using
	// it needs an inventory whose manager is of that kind.
	Manager cluster.ManagerKind
	New     func(v params.Values) (Step, error)
}

// Steps is the registry of step kinds.
var Steps = registry.New("steps", func(d StepDefinition) string { return d.Kind })

// Clients is what a run's guard does to the clients a run holds, when the
// run can no longer: the steps package provides it (the poolers' admin
// consoles), and the engine's guard calls it, knowing no pooler itself.
type Clients interface {
	// RouteTo points every pooler's entries on the old primary at node.
	RouteTo(ctx context.Context, t *cluster.Target, node string) error
	// Refuse closes every database of the poolers this run paused, so
	// that held and new clients get an error at once (see
	// cluster.RefusedByGuardFact).
	Refuse(ctx context.Context, t *cluster.Target) (cluster.Refused, error)
	// Resume lets the clients of every pooler this run paused go on.
	Resume(ctx context.Context, t *cluster.Target) error
}

var clients Clients

// SetClients is called once, by the package that provides Clients.
func SetClients(c Clients) { clients = c }

// HeldClients returns what the guard acts with; nil when no package
// provided it (a program that links no steps holds no clients).
func HeldClients() Clients { return clients }

// Promoter is implemented by steps that make a node the primary (a
// promotion, a manager's switchover): once such a step is done, the
// engine reports that node as the run's new primary.
type Promoter interface {
	Promotes() string
}

// Demoter is implemented by promoting steps that know the primary they
// take the role from (a manager's switchover names it): the report's
// headline names it when no check reported the topology before the run.
type Demoter interface {
	Demotes() string
}

// TopologyKey is the key of a check result's Values under which a check
// that reads the cluster's topology (pg.topology) reports it, as a
// []TopologyNode: the report shows the cluster before and after the run
// from the first and the last passing check that reports one, whatever
// the check's kind.
const TopologyKey = "nodes"

// TopologyNode is one node of a reported topology.
type TopologyNode struct {
	Name string `json:"name"`
	Role string `json:"role"` // primary, standby or unreachable
	// Streaming is set for a standby only.
	Streaming *bool `json:"streaming,omitempty"`
	Timeline  int   `json:"timeline"`
	// Upstream is the node (or, when no node of the inventory is there,
	// the address) a standby streams from.
	Upstream string `json:"upstream,omitempty"`
}
