// Package steps holds the actions a runbook step can take. Each kind is one
// small type in a file of its own, registered by name with its parameter
// schema, and able to describe its exact effect for the dry run and the
// approval prompt before it is applied.
package steps

import (
	"context"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/registry"
)

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

// Definition registers a kind of step.
type Definition struct {
	Kind   string
	Doc    string
	Params []params.Spec
	// Destructive kinds always need approval, whatever the runbook says.
	Destructive bool
	// Manager is the cluster manager the kind talks to ("patroni"): a
	// runbook using it needs an inventory whose manager is of that kind.
	Manager string
	New     func(v params.Values) (Step, error)
}

var kinds = registry.New("steps", func(d Definition) string { return d.Kind })

// Register adds a kind. It panics on a duplicate: that is a programming
// error, found by every test run.
func Register(d Definition) { kinds.Register(d) }

// Lookup returns the definition of a kind.
func Lookup(kind string) (Definition, bool) { return kinds.Lookup(kind) }

// Kinds returns every registered definition, sorted by kind.
func Kinds() []Definition { return kinds.All() }

// Names returns every registered kind, sorted; used for suggestions.
func Names() []string { return kinds.Names() }
