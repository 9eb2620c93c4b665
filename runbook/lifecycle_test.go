// Tests of the step lifecycle: an action under its timeout and a recover().

package runbook

import (
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

// runCasesLifecycle: an action that panics or overruns its timeout is a
// failed step.
var runCasesLifecycle = []runCase{
	{
		name: "a panicking action is a failed step",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			s := act(l, "checkpoint")
			fake(s).apply = panicking("action exploded")
			return newPlan(s, act(l, "promote"))
		},
		wantErr:     ErrAction,
		wantInErr:   []string{"the action panicked: action exploded"},
		wantOutcome: journal.OutcomeFailed,
		wantApplied: []string{"checkpoint"},
		wantTrace: []string{
			"checkpoint: checking", "checkpoint: running", "checkpoint: failed (action)",
			"finished failed",
		},
		check: func(t *testing.T, res *Result, err error, rec *recorder) {
			for _, e := range rec.ofType(journal.EventStep) {
				if e.State == journal.StateFailed && !strings.Contains(e.Error, "action exploded") {
					t.Errorf("failed event error %q: want the panic text", e.Error)
				}
			}
		},
	},
	{
		name: "an action that exceeds its timeout fails",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			s := act(l, "checkpoint")
			s.Timeout = 100 * time.Millisecond
			fake(s).apply = untilCtxDone
			return newPlan(s)
		},
		wantErr:     ErrAction,
		wantInErr:   []string{"timed out"},
		wantOutcome: journal.OutcomeFailed,
		wantApplied: []string{"checkpoint"},
		maxDur:      2 * time.Second,
	},
}
