// Package checks holds the read-only checks a runbook uses as preconditions
// (requires) and postconditions (ensures). Each kind is one small type in a
// file of its own, registered by name with its parameter schema.
//
// A check never changes anything: the dry run evaluates every precondition
// against production on that promise.
package checks

import (
	"context"

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

// Passed returns a passing result that says what was seen.
func Passed(observed string) Result { return Result{Status: Pass, Observed: observed} }

// Failed returns a failing result that says what was seen and what was wanted.
func Failed(observed, wanted string) Result {
	return Result{Status: Fail, Observed: observed, Wanted: wanted}
}

// Errored returns a result for a check that could not be evaluated.
func Errored(err error) Result { return Result{Status: Error, Observed: err.Error()} }

// Check is one configured check.
type Check interface {
	// Describe says what the check looks at, e.g. `"test -d /tmp" exits 0 on local`.
	Describe(t *cluster.Target) string
	// Run evaluates the check once. It must honour ctx and change nothing.
	Run(ctx context.Context, t *cluster.Target) Result
}

// Definition registers a kind of check.
type Definition struct {
	Kind   string        // the name runbooks use, e.g. "tcp.reachable"
	Doc    string        // one line: what condition holds when it passes
	Params []params.Spec // its parameters
	// Manager is the cluster manager the kind asks ("patroni"): a runbook
	// using it needs an inventory whose manager is of that kind.
	Manager string
	// New builds a check from decoded parameters. It returns an error for
	// combinations of parameters that the schema alone cannot reject.
	New func(v params.Values) (Check, error)
}

var kinds = registry.New("checks", func(d Definition) string { return d.Kind })

// Register adds a kind. It panics on a duplicate: that is a programming
// error, found by every test run.
func Register(d Definition) { kinds.Register(d) }

// Lookup returns the definition of a kind.
func Lookup(kind string) (Definition, bool) { return kinds.Lookup(kind) }

// Kinds returns every registered definition, sorted by kind.
func Kinds() []Definition { return kinds.All() }

// Names returns every registered kind, sorted; used for suggestions.
func Names() []string { return kinds.Names() }
