// Package runbook is the step engine: it runs a resolved plan (package
// spec) for real, as a dry run, or resumed from its journal (package
// journal), one step at a time through preconditions, approval, action and
// postconditions, with rollback, repair and finally sections.
//
// It takes its own safety: Run and Resume take the cluster's lock and its
// claim in the cluster, and start the guard that lets held clients go if
// the run's process dies. It knows no check or step kind: it runs what
// internal/kinds registers.
package runbook
