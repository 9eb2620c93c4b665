// Package steps holds the actions a runbook step can take. Each kind is one
// small type in a file of its own, registered by name with its parameter
// schema, and able to describe its exact effect for the dry run and the
// approval prompt before it is applied.
//
// The types a step implements and returns are the engine's
// (internal/kinds), named here for the steps' own use.
package steps

import "github.com/switchover/switchover/internal/kinds"

// Effect is what a step will do, exactly, shown before it does it.
type Effect = kinds.Effect

// Step is one configured action.
type Step = kinds.Step

// Manual is implemented by steps whose action is a person's confirmation
// that they did something (a checklist item). The engine asks the operator
// instead of calling Apply; in scripted mode only --approve STEP confirms it.
type Manual = kinds.Manual

// ClientReleaser is implemented by steps that let clients held by a paused
// pooler go on (a repoint to the new primary, a resume): the engine runs
// them whatever the hold's budget says, since they end the hold.
type ClientReleaser = kinds.ClientReleaser

// Definition registers a kind of step.
type Definition = kinds.StepDefinition

// Register adds a kind. It panics on a duplicate: that is a programming
// error, found by every test run.
func Register(d Definition) { kinds.Steps.Register(d) }

// Lookup returns the definition of a kind.
func Lookup(kind string) (Definition, bool) { return kinds.Steps.Lookup(kind) }

// Kinds returns every registered definition, sorted by kind.
func Kinds() []Definition { return kinds.Steps.All() }

// Names returns every registered kind, sorted; used for suggestions.
func Names() []string { return kinds.Steps.Names() }
