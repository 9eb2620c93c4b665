// Tests of section flow: rollback, repair, finally and the point of no
// return.

package runbook

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

// runCasesFlow: what runs after a failure, before and past the point of
// no return, and the finally section.
var runCasesFlow = []runCase{
	{
		name: "a failed precondition stops the run before the action",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			s := act(l, "checkpoint")
			s.Requires = []*spec.Cond{cond(passCheck("primary-up")), cond(failCheck("no-blocking-sessions"))}
			s.OnFailure = "restore"
			return withRollback(newPlan(s, act(l, "stop-primary")), "restore", act(l, "start-primary"))
		},
		wantErr:     ErrPrecondition,
		wantInErr:   []string{"no-blocking-sessions does not hold"},
		wantOutcome: journal.OutcomePrecondition,
		wantTrace: []string{
			"checkpoint: checking",
			"checkpoint: requires pass",
			"checkpoint: requires fail",
			"checkpoint: failed (requires)",
			"finished precondition-failed",
		},
		check: func(t *testing.T, res *Result, err error, rec *recorder) {
			var se *StepError
			if !errors.As(err, &se) || se.Step != "checkpoint" || se.Phase != "requires" {
				t.Errorf("error %v: want a *StepError at checkpoint, phase requires", err)
			}
			if !strings.Contains(res.Recovery, "not needed") {
				t.Errorf("Recovery = %q, want the rollback said to be not needed", res.Recovery)
			}
		},
	},
	{
		name: "a failed postcondition runs the rollback in order, then finally",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			stop := act(l, "stop-primary")
			stop.Ensures = []*spec.Cond{cond(failCheck("primary-stopped"))}
			stop.OnFailure = "restore"
			p := newPlan(act(l, "checkpoint"), stop, act(l, "promote"))
			withRollback(p, "restore", act(l, "start-primary"), act(l, "resume-pooler"))
			return withFinally(p, act(l, "unpause-manager"))
		},
		wantErr:     ErrAction,
		wantOutcome: journal.OutcomeFailed,
		wantApplied: []string{"checkpoint", "stop-primary", "start-primary", "resume-pooler", "unpause-manager"},
		wantTrace: []string{
			"checkpoint: checking", "checkpoint: running", "checkpoint: done",
			"stop-primary: checking", "stop-primary: running", "stop-primary: verifying",
			"stop-primary: ensures fail", "stop-primary: failed (ensures)",
			"section rollback:restore",
			"start-primary: checking", "start-primary: running", "start-primary: done",
			"resume-pooler: checking", "resume-pooler: running", "resume-pooler: done",
			"section finally",
			"unpause-manager: checking", "unpause-manager: running", "unpause-manager: done",
			"finished failed",
		},
		check: func(t *testing.T, res *Result, err error, rec *recorder) {
			if !strings.Contains(res.Recovery, "rollback:restore: done") {
				t.Errorf("Recovery = %q, want it to say the rollback ran", res.Recovery)
			}
			fin := rec.ofType(journal.EventRunFinished)
			if len(fin) != 1 || !strings.Contains(fin[0].Message, "rollback:restore") {
				t.Errorf("run.finished %+v: want its message to mention the rollback", fin)
			}
		},
	},
	{
		name: "a precondition failure after an earlier step acted runs the rollback",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			cp := act(l, "checkpoint")
			cp.OnFailure = "restore"
			stop := act(l, "stop-primary")
			stop.Requires = []*spec.Cond{cond(failCheck("pooler-paused"))}
			stop.OnFailure = "restore"
			return withRollback(newPlan(cp, stop), "restore", act(l, "start-primary"))
		},
		// Something changed, so this is not exit 3 ("nothing changed").
		wantErr:     ErrAction,
		wantOutcome: journal.OutcomeFailed,
		wantApplied: []string{"checkpoint", "start-primary"},
		wantTrace: []string{
			"checkpoint: checking", "checkpoint: running", "checkpoint: done",
			"stop-primary: checking", "stop-primary: requires fail", "stop-primary: failed (requires)",
			"section rollback:restore",
			"start-primary: checking", "start-primary: running", "start-primary: done",
			"finished failed",
		},
		check: func(t *testing.T, res *Result, err error, rec *recorder) {
			if errors.Is(err, ErrPrecondition) {
				t.Errorf("error %v wraps ErrPrecondition (exit 3, nothing changed), but checkpoint acted", err)
			}
		},
	},
	{
		name: "a precondition failure before any action does not roll back; finally runs",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			cp := act(l, "checkpoint")
			cp.Requires = []*spec.Cond{cond(failCheck("replication-streaming"))}
			cp.OnFailure = "restore"
			p := withRollback(newPlan(cp), "restore", act(l, "start-primary"))
			return withFinally(p, act(l, "unpause-manager"))
		},
		wantErr:     ErrPrecondition,
		wantOutcome: journal.OutcomePrecondition,
		wantApplied: []string{"unpause-manager"},
		wantTrace: []string{
			"checkpoint: checking", "checkpoint: requires fail", "checkpoint: failed (requires)",
			"section finally",
			"unpause-manager: checking", "unpause-manager: running", "unpause-manager: done",
			"finished precondition-failed",
		},
	},
	{
		name: "a failure at the point of no return rolls back",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			cp, promote := act(l, "checkpoint"), act(l, "promote")
			cp.OnFailure, promote.OnFailure = "restore", "restore"
			promote.PointOfNoReturn = true
			promote.Ensures = []*spec.Cond{cond(failCheck("candidate-is-primary"))}
			p := newPlan(cp, promote, act(l, "rejoin"))
			p.PointOfNoReturn = "promote"
			return withRollback(p, "restore", act(l, "start-primary"))
		},
		wantErr:     ErrAction,
		wantOutcome: journal.OutcomeFailed,
		wantApplied: []string{"checkpoint", "promote", "start-primary"},
		check: func(t *testing.T, res *Result, err error, rec *recorder) {
			if len(res.ByHand) != 0 {
				t.Errorf("ByHand = %q, want nothing left by hand", res.ByHand)
			}
		},
	},
	{
		name: "a failure past the point of no return does not roll back and says what is left by hand",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			cp, promote, repoint, rejoin := act(l, "checkpoint"), act(l, "promote"), act(l, "repoint-pooler"), act(l, "rejoin")
			// Past the point of no return a step names a repair section
			// or nothing (the resolver refuses a rollback there).
			cp.OnFailure, promote.OnFailure = "restore", "restore"
			promote.PointOfNoReturn = true
			fake(repoint).apply = failing("pgbouncer refused RELOAD")
			p := newPlan(cp, promote, repoint, rejoin)
			p.PointOfNoReturn = "promote"
			withRollback(p, "restore", act(l, "start-primary"))
			return withFinally(p, act(l, "unpause-manager"))
		},
		wantErr:     ErrAction,
		wantInErr:   []string{"pgbouncer refused RELOAD"},
		wantOutcome: journal.OutcomeFailed,
		wantApplied: []string{"checkpoint", "promote", "repoint-pooler", "unpause-manager"},
		wantTrace: []string{
			"checkpoint: checking", "checkpoint: running", "checkpoint: done",
			"promote: checking", "promote: running", "promote: done",
			"repoint-pooler: checking", "repoint-pooler: running", "repoint-pooler: failed (action)",
			"section finally",
			"unpause-manager: checking", "unpause-manager: running", "unpause-manager: done",
			"finished failed",
		},
		check: func(t *testing.T, res *Result, err error, rec *recorder) {
			want := []string{"repoint-pooler (fake repoint-pooler on local)", "rejoin (fake rejoin on local)"}
			if !sameStrings(res.ByHand, want) {
				t.Errorf("ByHand = %q, want %q", res.ByHand, want)
			}
			if !strings.Contains(res.Recovery, "no rollback") {
				t.Errorf("Recovery = %q, want it to say there was no rollback", res.Recovery)
			}
		},
	},
	{
		name: "a failure past the point of no return runs the repair section it names",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			promote, repoint := act(l, "promote"), act(l, "repoint-pooler")
			promote.PointOfNoReturn, promote.OnFailure = true, "restore"
			repoint.OnFailure = "fix-pooler"
			repoint.Ensures = []*spec.Cond{cond(failCheck("write-through-pooler"))}
			p := newPlan(promote, repoint, act(l, "rejoin"))
			p.PointOfNoReturn = "promote"
			withRollback(p, "restore", act(l, "start-primary"))
			return withRepair(p, "fix-pooler", act(l, "restart-pooler"), act(l, "write-canary"))
		},
		wantErr:     ErrAction,
		wantOutcome: journal.OutcomeFailed,
		wantApplied: []string{"promote", "repoint-pooler", "restart-pooler", "write-canary"},
		wantTrace: []string{
			"promote: checking", "promote: running", "promote: done",
			"repoint-pooler: checking", "repoint-pooler: running", "repoint-pooler: verifying",
			"repoint-pooler: ensures fail", "repoint-pooler: failed (ensures)",
			"section repair:fix-pooler",
			"restart-pooler: checking", "restart-pooler: running", "restart-pooler: done",
			"write-canary: checking", "write-canary: running", "write-canary: done",
			"finished failed",
		},
		check: func(t *testing.T, res *Result, err error, rec *recorder) {
			if !strings.Contains(res.Recovery, "repair:fix-pooler: done") {
				t.Errorf("Recovery = %q, want the repair said done", res.Recovery)
			}
		},
	},
	{
		name: "finally runs after success",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			return withFinally(newPlan(act(l, "promote")), act(l, "resume-pooler"), act(l, "unpause-manager"))
		},
		wantOutcome: journal.OutcomeDone,
		wantApplied: []string{"promote", "resume-pooler", "unpause-manager"},
		wantTrace: []string{
			"promote: checking", "promote: running", "promote: done",
			"section finally",
			"resume-pooler: checking", "resume-pooler: running", "resume-pooler: done",
			"unpause-manager: checking", "unpause-manager: running", "unpause-manager: done",
			"finished done",
		},
	},
	{
		name: "a failing finally step does not stop the others and fails the run",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			resume := act(l, "resume-pooler")
			fake(resume).apply = failing("pgbouncer is down")
			return withFinally(newPlan(act(l, "promote")), resume, act(l, "unpause-manager"))
		},
		wantErr:     ErrAction,
		wantInErr:   []string{"pgbouncer is down"},
		wantOutcome: journal.OutcomeFailed,
		wantApplied: []string{"promote", "resume-pooler", "unpause-manager"},
		wantTrace: []string{
			"promote: checking", "promote: running", "promote: done",
			"section finally",
			"resume-pooler: checking", "resume-pooler: running", "resume-pooler: failed (action)",
			"unpause-manager: checking", "unpause-manager: running", "unpause-manager: done",
			"finished failed",
		},
		check: func(t *testing.T, res *Result, err error, rec *recorder) {
			if !strings.Contains(res.Recovery, "finally section failed at resume-pooler") {
				t.Errorf("Recovery = %q, want the failed finally step named", res.Recovery)
			}
		},
	},
	{
		name: "a failing finally step after a failure keeps the failure and says so",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			cp := act(l, "checkpoint")
			cp.Requires = []*spec.Cond{cond(failCheck("primary-up"))}
			resume := act(l, "resume-pooler")
			fake(resume).apply = failing("pgbouncer is down")
			return withFinally(newPlan(cp), resume, act(l, "unpause-manager"))
		},
		wantErr:     ErrAction,
		wantInErr:   []string{"primary-up", "finally section failed"},
		wantOutcome: journal.OutcomeFailed,
		wantApplied: []string{"resume-pooler", "unpause-manager"},
	},
}

// TestResumeContinuesARollback: a run cut off in its rollback section goes
// on with that section on resume, then finally; the main steps stay as
// they were.
func TestResumeContinuesARollback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		failStop  func(s *spec.Step) // how stop-primary fails
		wantInErr string
	}{
		{
			name:      "after a postcondition failed",
			failStop:  func(s *spec.Step) { s.Ensures = []*spec.Cond{cond(failCheck("primary-stopped"))} },
			wantInErr: "primary-stopped does not hold",
		},
		{
			name:      "after a precondition failed",
			failStop:  func(s *spec.Step) { s.Requires = []*spec.Cond{cond(failCheck("pooler-paused"))} },
			wantInErr: "pooler-paused does not hold",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := &callLog{}
			cp, stop := act(l, "checkpoint"), act(l, "stop-primary")
			cp.OnFailure, stop.OnFailure = "restore", "restore"
			tc.failStop(stop)
			start := act(l, "start-primary")
			start.Idempotent = true
			fake(start).apply = onFirstCall(untilCtxDone, nil)
			p := withRollback(newPlan(cp, stop, act(l, "promote")), "restore", start, act(l, "resume-pooler"))
			withFinally(p, act(l, "unpause-manager"))
			o := options(t, &recorder{})
			id := killMidAction(t, p, o, "start-primary")

			rec := &recorder{}
			r := await(t, "Resume", 10*time.Second, goRun(func() (*Result, error) {
				return Resume(context.Background(), p, id, options2(o, rec))
			}))
			if !errors.Is(r.err, ErrAction) || errors.Is(r.err, ErrPrecondition) {
				t.Fatalf("Resume: %v, want the original failure, wrapping ErrAction only", r.err)
			}
			if msg := r.err.Error(); !strings.Contains(msg, tc.wantInErr) || strings.Count(msg, "failed:") > 2 {
				t.Errorf("error %q: want the original failure (%q), said once", msg, tc.wantInErr)
			}
			if r.res.Outcome != journal.OutcomeFailed || !strings.Contains(r.res.Recovery, "rollback:restore") {
				t.Errorf("result %+v: want failed, with the rollback in Recovery", r.res)
			}
			if l.count("start-primary") != 2 || l.count("resume-pooler") != 1 || l.count("unpause-manager") != 1 || l.count("promote") != 0 {
				t.Errorf("applied %q: want start-primary again (idempotent), then resume-pooler and unpause-manager once", l.list())
			}
			for _, name := range []string{"checkpoint", "stop-primary"} {
				if st := stepStates(rec.events(), name); len(st) != 0 {
					t.Errorf("resume moved %s through %v, want it left alone", name, st)
				}
			}
			assertJournal(t, o.JournalDir, id)
		})
	}
}
