// Tests of the approval asked before the first action, and of actions that
// found nothing to do.

package runbook

import (
	"context"
	"strings"
	"testing"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/internal/cluster"
)

// noop is a fake action that says it found nothing to do.
func noop(_ context.Context, t *cluster.Target, _ int) error {
	t.Unchanged("nothing to resume")
	return nil
}

// windowPlan is the shape of the streaming playbook: an action before the
// step that approves the window's destructive steps ahead, a rollback, and
// a finally step that finds nothing to do when nothing was paused.
func windowPlan(l *callLog) *spec.Plan {
	canary, checkpoint := act(l, "start-canary"), act(l, "checkpoint")
	pause, stop, promote := act(l, "pause-pooler"), act(l, "stop-primary"), act(l, "promote")
	stop.Destructive, promote.Destructive = true, true
	pause.ApproveWith = []string{"stop-primary", "promote"}
	for _, s := range []*spec.Step{canary, checkpoint, pause, stop, promote} {
		s.OnFailure = "restore"
	}
	resume := act(l, "pooler-resumed")
	fake(resume).apply = noop
	p := withRollback(newPlan(&spec.Step{Name: "preflight", Section: spec.SectionSteps, Timeout: spec.DefaultDefaults.Timeout}, canary, checkpoint, pause, stop, promote),
		"restore", act(l, "restart-old-primary"))
	return withFinally(p, resume)
}

var runCasesAskAhead = []runCase{
	{
		name:        "at a terminal: the window's approval is asked before the first action, and declining it changes nothing",
		build:       func(t *testing.T, l *callLog) *spec.Plan { return windowPlan(l) },
		opts:        func(o *Options) { o.Operator = &fakeOperator{answers: []Answer{{Yes: false}}} },
		wantErr:     ErrDeclined,
		wantOutcome: journal.OutcomeDeclined,
		wantApplied: []string{"pooler-resumed"},
		check: func(t *testing.T, res *Result, err error, rec *recorder) {
			fin := rec.ofType(journal.EventRunFinished)[0]
			if !strings.Contains(fin.Message, "nothing was changed") || strings.Contains(fin.Message, "actions ran") || strings.Contains(fin.Message, "pooler-resumed") {
				t.Errorf("run.finished message %q: want plainly that nothing changed, no action listed", fin.Message)
			}
			if len(res.Changed) != 0 {
				t.Errorf("changed %v, want none: the finally step found nothing to do", res.Changed)
			}
			for _, e := range rec.ofType(journal.EventStep) {
				if e.Step == "pooler-resumed" && e.State == journal.StateDone && !e.Unchanged {
					t.Errorf("pooler-resumed done without the unchanged mark: %+v", e)
				}
			}
		},
	},
	{
		name:        "at a terminal: approved ahead, the window runs without another prompt",
		build:       func(t *testing.T, l *callLog) *spec.Plan { return windowPlan(l) },
		opts:        func(o *Options) { o.Operator = &fakeOperator{} },
		wantOutcome: journal.OutcomeDone,
		wantApplied: []string{"start-canary", "checkpoint", "pause-pooler", "stop-primary", "promote", "pooler-resumed"},
		check: func(t *testing.T, res *Result, err error, rec *recorder) {
			apps := rec.ofType(journal.EventApproval)
			if len(apps) != 3 || apps[0].Step != "pause-pooler" {
				t.Fatalf("approvals %v: want pause-pooler's, then stop-primary and promote approved ahead", apps)
			}
			var order []string
			for _, e := range rec.events() {
				switch {
				case e.Type == journal.EventApproval && e.Step == "pause-pooler":
					order = append(order, "approval")
				case e.Type == journal.EventStep && e.Step == "start-canary" && e.State == journal.StateRunning:
					order = append(order, "canary")
				}
			}
			if strings.Join(order, ",") != "approval,canary" {
				t.Errorf("order %v: the canary must start after the approval", order)
			}
			if strings.Join(res.Changed, ",") != "start-canary,checkpoint,pause-pooler,stop-primary,promote" {
				t.Errorf("changed %v: the finally step that found nothing to do is not a change", res.Changed)
			}
		},
	},
}
