// Package checks holds the read-only checks a runbook uses as preconditions
// (requires) and postconditions (ensures). Each kind is one small type in a
// file of its own, registered by name with its parameter schema.
//
// A check never changes anything: the dry run evaluates every precondition
// against production on that promise.
//
// The types a check implements and returns are the engine's
// (internal/kinds), named here for the checks' own use.
package checks

import "github.com/switchover/switchover/internal/kinds"

// Status is the verdict of a check. The zero value is Unknown: not evaluated.
type Status = kinds.Status

// The verdicts of a check.
const (
	Unknown = kinds.Unknown // not evaluated (e.g. a postcondition in a dry run)
	Pass    = kinds.Pass    // the condition holds
	Fail    = kinds.Fail    // the condition does not hold
	Error   = kinds.Error   // the condition could not be evaluated
)

// Result is what a check saw. A false condition is a Result with status Fail,
// not a Go error: errors are for the machinery, results are verdicts.
type Result = kinds.Result

// Passed returns a passing result that says what was seen.
func Passed(observed string) Result { return Result{Status: Pass, Observed: observed} }

// Failed returns a failing result that says what was seen and what was wanted.
func Failed(observed, wanted string) Result {
	return Result{Status: Fail, Observed: observed, Wanted: wanted}
}

// Errored returns a result for a check that could not be evaluated.
func Errored(err error) Result { return Result{Status: Error, Observed: err.Error()} }

// Check is one configured check.
type Check = kinds.Check

// Definition registers a kind of check.
type Definition = kinds.CheckDefinition

// Register adds a kind. It panics on a duplicate: that is a programming
// error, found by every test run.
func Register(d Definition) { kinds.Checks.Register(d) }

// Lookup returns the definition of a kind.
func Lookup(kind string) (Definition, bool) { return kinds.Checks.Lookup(kind) }

// Kinds returns every registered definition, sorted by kind.
func Kinds() []Definition { return kinds.Checks.All() }

// Names returns every registered kind, sorted; used for suggestions.
func Names() []string { return kinds.Checks.Names() }
