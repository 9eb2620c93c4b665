package runbook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/secret"
)

type runCase struct {
	name  string
	build func(t *testing.T, l *callLog) *Plan
	opts  func(o *Options)

	wantErr     error // a sentinel the error must wrap; nil: no error
	wantInErr   []string
	wantOutcome Outcome
	wantApplied []string
	wantTrace   []string // nil: not compared
	// minDur and maxDur bound how long Run takes, when set.
	minDur, maxDur time.Duration
	check          func(t *testing.T, res *Result, err error, rec *recorder)
}

func TestRun(t *testing.T) {
	t.Parallel()
	tests := []runCase{
		{
			name: "a failed precondition stops the run before the action",
			build: func(t *testing.T, l *callLog) *Plan {
				s := act(l, "checkpoint")
				s.Requires = []*Cond{cond(passCheck("primary-up")), cond(failCheck("no-blocking-sessions"))}
				s.OnFailure = "restore"
				return withRollback(newPlan(s, act(l, "stop-primary")), "restore", act(l, "start-primary"))
			},
			wantErr:     ErrPrecondition,
			wantInErr:   []string{"no-blocking-sessions does not hold"},
			wantOutcome: OutcomePrecondition,
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
			build: func(t *testing.T, l *callLog) *Plan {
				stop := act(l, "stop-primary")
				stop.Ensures = []*Cond{cond(failCheck("primary-stopped"))}
				stop.OnFailure = "restore"
				p := newPlan(act(l, "checkpoint"), stop, act(l, "promote"))
				withRollback(p, "restore", act(l, "start-primary"), act(l, "resume-pooler"))
				return withFinally(p, act(l, "unpause-manager"))
			},
			wantErr:     ErrAction,
			wantOutcome: OutcomeFailed,
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
				fin := rec.ofType(EventRunFinished)
				if len(fin) != 1 || !strings.Contains(fin[0].Message, "rollback:restore") {
					t.Errorf("run.finished %+v: want its message to mention the rollback", fin)
				}
			},
		},
		{
			name: "a precondition failure after an earlier step acted runs the rollback",
			build: func(t *testing.T, l *callLog) *Plan {
				cp := act(l, "checkpoint")
				cp.OnFailure = "restore"
				stop := act(l, "stop-primary")
				stop.Requires = []*Cond{cond(failCheck("pooler-paused"))}
				stop.OnFailure = "restore"
				return withRollback(newPlan(cp, stop), "restore", act(l, "start-primary"))
			},
			// Something changed, so this is not exit 3 ("nothing changed").
			wantErr:     ErrAction,
			wantOutcome: OutcomeFailed,
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
			build: func(t *testing.T, l *callLog) *Plan {
				cp := act(l, "checkpoint")
				cp.Requires = []*Cond{cond(failCheck("replication-streaming"))}
				cp.OnFailure = "restore"
				p := withRollback(newPlan(cp), "restore", act(l, "start-primary"))
				return withFinally(p, act(l, "unpause-manager"))
			},
			wantErr:     ErrPrecondition,
			wantOutcome: OutcomePrecondition,
			wantApplied: []string{"unpause-manager"},
			wantTrace: []string{
				"checkpoint: checking", "checkpoint: requires fail", "checkpoint: failed (requires)",
				"section finally",
				"unpause-manager: checking", "unpause-manager: running", "unpause-manager: done",
				"finished precondition-failed",
			},
		},
		{
			name: "a panicking check is a failed step",
			build: func(t *testing.T, l *callLog) *Plan {
				s := act(l, "checkpoint")
				s.Requires = []*Cond{cond(&fakeCheck{name: "bad", panicMsg: "check exploded"})}
				return newPlan(s)
			},
			wantErr:     ErrPrecondition,
			wantInErr:   []string{"the check panicked: check exploded"},
			wantOutcome: OutcomePrecondition,
			wantTrace: []string{
				"checkpoint: checking", "checkpoint: requires error", "checkpoint: failed (requires)",
				"finished precondition-failed",
			},
		},
		{
			name: "a panicking action is a failed step",
			build: func(t *testing.T, l *callLog) *Plan {
				s := act(l, "checkpoint")
				fake(s).apply = panicking("action exploded")
				return newPlan(s, act(l, "promote"))
			},
			wantErr:     ErrAction,
			wantInErr:   []string{"the action panicked: action exploded"},
			wantOutcome: OutcomeFailed,
			wantApplied: []string{"checkpoint"},
			wantTrace: []string{
				"checkpoint: checking", "checkpoint: running", "checkpoint: failed (action)",
				"finished failed",
			},
			check: func(t *testing.T, res *Result, err error, rec *recorder) {
				for _, e := range rec.ofType(EventStep) {
					if e.State == StateFailed && !strings.Contains(e.Error, "action exploded") {
						t.Errorf("failed event error %q: want the panic text", e.Error)
					}
				}
			},
		},
		{
			name: "a check that ignores its context is abandoned at its timeout",
			build: func(t *testing.T, l *callLog) *Plan {
				block := make(chan struct{})
				t.Cleanup(func() { close(block) })
				c := cond(&fakeCheck{name: "hung", block: block})
				c.Timeout = 200 * time.Millisecond
				s := act(l, "checkpoint")
				s.Requires = []*Cond{c}
				return newPlan(s)
			},
			wantErr:     ErrPrecondition,
			wantInErr:   []string{"no answer within 200ms"},
			wantOutcome: OutcomePrecondition,
			wantTrace: []string{
				"checkpoint: checking", "checkpoint: requires error", "checkpoint: failed (requires)",
				"finished precondition-failed",
			},
			minDur: 200 * time.Millisecond,
			maxDur: 3 * time.Second,
		},
		{
			name: "the checks of one step run concurrently",
			build: func(t *testing.T, l *callLog) *Plan {
				// Each check passes only when it meets the other one
				// running: checks run one after the other never meet.
				arrived := make(chan struct{}, 2)
				meet := func(name string) func(*cluster.Target, int) checks.Result {
					return func(*cluster.Target, int) checks.Result {
						arrived <- struct{}{}
						deadline := time.After(5 * time.Second)
						for len(arrived) < 2 {
							select {
							case <-deadline:
								return checks.Failed(name+" ran alone for 5s", "the other check running at the same time")
							case <-time.After(time.Millisecond):
							}
						}
						return checks.Passed(name + " met the other check")
					}
				}
				s := act(l, "checkpoint")
				s.Requires = []*Cond{
					cond(&fakeCheck{name: "slow-1", fn: meet("slow-1")}),
					cond(&fakeCheck{name: "slow-2", fn: meet("slow-2")}),
				}
				return newPlan(s)
			},
			wantOutcome: OutcomeDone,
			wantApplied: []string{"checkpoint"},
		},
		{
			name: "an action that exceeds its timeout fails",
			build: func(t *testing.T, l *callLog) *Plan {
				s := act(l, "checkpoint")
				s.Timeout = 100 * time.Millisecond
				fake(s).apply = untilCtxDone
				return newPlan(s)
			},
			wantErr:     ErrAction,
			wantInErr:   []string{"timed out"},
			wantOutcome: OutcomeFailed,
			wantApplied: []string{"checkpoint"},
			maxDur:      2 * time.Second,
		},
		{
			name: "no terminal: a destructive step without approval stops the run before any action",
			build: func(t *testing.T, l *callLog) *Plan {
				stop := act(l, "stop-primary")
				stop.Destructive = true
				return newPlan(act(l, "checkpoint"), stop)
			},
			wantErr:     ErrDeclined,
			wantInErr:   []string{"--approve stop-primary"},
			wantOutcome: OutcomeDeclined,
			wantTrace:   []string{"stop-primary: approval declined none", "finished declined"},
			check: func(t *testing.T, res *Result, err error, rec *recorder) {
				a := rec.ofType(EventApproval)[0].Approval
				if a.User != testIdentity.User || a.Host != testIdentity.Host {
					t.Errorf("approval %+v: want who was running it", a)
				}
			},
		},
		{
			name: "no terminal: --approve STEP approves that step",
			build: func(t *testing.T, l *callLog) *Plan {
				stop := act(l, "stop-primary")
				stop.Destructive = true
				return newPlan(act(l, "checkpoint"), stop)
			},
			opts:        func(o *Options) { o.Approve = []string{"stop-primary"} },
			wantOutcome: OutcomeDone,
			wantApplied: []string{"checkpoint", "stop-primary"},
			wantTrace: []string{
				"checkpoint: checking", "checkpoint: running", "checkpoint: done",
				"stop-primary: checking", "stop-primary: awaiting-approval",
				"stop-primary: approval granted --approve",
				"stop-primary: running", "stop-primary: done",
				"finished done",
			},
			check: func(t *testing.T, res *Result, err error, rec *recorder) {
				a := rec.ofType(EventApproval)[0].Approval
				if a.User != "dba" || a.Host != "bastion-1" {
					t.Errorf("approval %+v: want user dba, host bastion-1", a)
				}
			},
		},
		{
			name: "no terminal: --yes approves every destructive step",
			build: func(t *testing.T, l *callLog) *Plan {
				stop, promote := act(l, "stop-primary"), act(l, "promote")
				stop.Destructive, promote.Destructive = true, true
				return newPlan(stop, promote)
			},
			opts:        func(o *Options) { o.Yes = true },
			wantOutcome: OutcomeDone,
			wantApplied: []string{"stop-primary", "promote"},
			check: func(t *testing.T, res *Result, err error, rec *recorder) {
				apps := rec.ofType(EventApproval)
				if len(apps) != 2 {
					t.Fatalf("%d approval events, want 2", len(apps))
				}
				for _, e := range apps {
					if a := e.Approval; !a.Granted || a.How != "--yes" || a.User != "dba" || a.Host != "bastion-1" {
						t.Errorf("approval of %s %+v: want granted by dba@bastion-1 with --yes", e.Step, a)
					}
				}
			},
		},
		{
			name: "no terminal: --yes does not confirm a manual step",
			build: func(t *testing.T, l *callLog) *Plan {
				m := act(l, "confirm-window")
				m.Action, m.Manual = fakeManual{fake(m)}, true
				return newPlan(act(l, "checkpoint"), m)
			},
			opts:        func(o *Options) { o.Yes = true },
			wantErr:     ErrDeclined,
			wantInErr:   []string{"--approve confirm-window"},
			wantOutcome: OutcomeDeclined,
			wantTrace:   []string{"confirm-window: approval declined none", "finished declined"},
		},
		{
			name: "no terminal: --approve confirms a manual step, which is not applied",
			build: func(t *testing.T, l *callLog) *Plan {
				m := act(l, "confirm-window")
				m.Action, m.Manual = fakeManual{fake(m)}, true
				return newPlan(m, act(l, "checkpoint"))
			},
			opts:        func(o *Options) { o.Approve = []string{"confirm-window"} },
			wantOutcome: OutcomeDone,
			wantApplied: []string{"checkpoint"},
			wantTrace: []string{
				"confirm-window: checking", "confirm-window: awaiting-approval",
				"confirm-window: approval granted --approve",
				"confirm-window: running", "confirm-window: done",
				"checkpoint: checking", "checkpoint: running", "checkpoint: done",
				"finished done",
			},
		},
		{
			name: "an unknown --approve name is invalid before anything runs",
			build: func(t *testing.T, l *callLog) *Plan {
				stop := act(l, "stop-primary")
				stop.Destructive = true
				return newPlan(act(l, "checkpoint"), stop)
			},
			opts:      func(o *Options) { o.Approve = []string{"stop-primray"} },
			wantErr:   ErrInvalid,
			wantInErr: []string{`did you mean "stop-primary"`},
			wantTrace: []string{},
			check: func(t *testing.T, res *Result, err error, rec *recorder) {
				if res != nil {
					t.Errorf("result %+v, want none", res)
				}
			},
		},
		{
			name: "at a terminal: the cluster name is asked for at the first destructive step only",
			build: func(t *testing.T, l *callLog) *Plan {
				pause, stop := act(l, "pause-pooler"), act(l, "stop-primary")
				pause.Destructive, stop.Destructive = true, true
				return newPlan(pause, stop)
			},
			// The questions are checked in the loop below, which has the operator.
			opts:        func(o *Options) { o.Operator = &fakeOperator{} },
			wantOutcome: OutcomeDone,
			wantApplied: []string{"pause-pooler", "stop-primary"},
		},
		{
			name: "at a terminal: a declined step is skipped, the rollback and finally run",
			build: func(t *testing.T, l *callLog) *Plan {
				pause, stop := act(l, "pause-pooler"), act(l, "stop-primary")
				pause.Destructive, stop.Destructive = true, true
				pause.OnFailure, stop.OnFailure = "restore", "restore"
				p := withRollback(newPlan(pause, stop, act(l, "promote")), "restore", act(l, "resume-pooler"))
				return withFinally(p, act(l, "unpause-manager"))
			},
			opts:        func(o *Options) { o.Operator = &fakeOperator{answers: []Answer{{Yes: true}, {Yes: false}}} },
			wantErr:     ErrDeclined,
			wantOutcome: OutcomeDeclined,
			wantApplied: []string{"pause-pooler", "resume-pooler", "unpause-manager"},
			wantTrace: []string{
				"pause-pooler: checking", "pause-pooler: awaiting-approval", "pause-pooler: approval granted prompt",
				"pause-pooler: running", "pause-pooler: done",
				"stop-primary: checking", "stop-primary: awaiting-approval", "stop-primary: approval declined prompt",
				"stop-primary: skipped (approval)",
				"section rollback:restore",
				"resume-pooler: checking", "resume-pooler: running", "resume-pooler: done",
				"section finally",
				"unpause-manager: checking", "unpause-manager: running", "unpause-manager: done",
				"finished declined",
			},
		},
		{
			name: "at a terminal: declining the first step changes nothing and rolls nothing back",
			build: func(t *testing.T, l *callLog) *Plan {
				stop := act(l, "stop-primary")
				stop.Destructive, stop.OnFailure = true, "restore"
				p := withRollback(newPlan(stop), "restore", act(l, "start-primary"))
				return withFinally(p, act(l, "unpause-manager"))
			},
			opts:        func(o *Options) { o.Operator = &fakeOperator{answers: []Answer{{Yes: false}}} },
			wantErr:     ErrDeclined,
			wantOutcome: OutcomeDeclined,
			wantApplied: []string{"unpause-manager"},
		},
		{
			name: "at a terminal: no answer (stdin closed) is a refusal, not a wait",
			build: func(t *testing.T, l *callLog) *Plan {
				stop := act(l, "stop-primary")
				stop.Destructive = true
				return newPlan(act(l, "checkpoint"), stop)
			},
			opts:        func(o *Options) { o.Operator = &fakeOperator{err: io.EOF} },
			wantErr:     ErrDeclined,
			wantInErr:   []string{"EOF"},
			wantOutcome: OutcomeDeclined,
			wantApplied: []string{"checkpoint"},
			check: func(t *testing.T, res *Result, err error, rec *recorder) {
				a := rec.ofType(EventApproval)[0].Approval
				if a.Granted || a.How != "prompt" || !strings.Contains(a.Note, "no answer") {
					t.Errorf("approval %+v: want refused at the prompt, for want of an answer", a)
				}
			},
		},
		{
			name: "within: a check that passes on its third try passes",
			build: func(t *testing.T, l *callLog) *Plan {
				s := act(l, "promote")
				s.Requires = []*Cond{within(script("caught-up", "ffp"), 5*time.Second, 20*time.Millisecond)}
				return newPlan(s)
			},
			wantOutcome: OutcomeDone,
			wantApplied: []string{"promote"},
			wantTrace: []string{
				"promote: checking", "promote: waiting requires", "promote: waiting requires", "promote: requires pass",
				"promote: running", "promote: done", "finished done",
			},
			check: func(t *testing.T, res *Result, err error, rec *recorder) {
				w := rec.ofType(EventWaiting)
				if w[0].Check.Attempt != 1 || w[1].Check.Attempt != 2 || w[1].Check.WithinMS != 5000 {
					t.Errorf("waiting events %+v %+v: want attempts 1, 2 within 5000ms", *w[0].Check, *w[1].Check)
				}
			},
		},
		{
			name: "within: a check that never passes gives up at its deadline",
			build: func(t *testing.T, l *callLog) *Plan {
				s := act(l, "promote")
				s.Requires = []*Cond{within(failCheck("caught-up"), 300*time.Millisecond, 50*time.Millisecond)}
				return newPlan(s)
			},
			wantErr:     ErrPrecondition,
			wantInErr:   []string{"within 300ms"},
			wantOutcome: OutcomePrecondition,
			minDur:      300 * time.Millisecond,
			maxDur:      2 * time.Second,
		},
		{
			name: "a failure at the point of no return rolls back",
			build: func(t *testing.T, l *callLog) *Plan {
				cp, promote := act(l, "checkpoint"), act(l, "promote")
				cp.OnFailure, promote.OnFailure = "restore", "restore"
				promote.PointOfNoReturn = true
				promote.Ensures = []*Cond{cond(failCheck("candidate-is-primary"))}
				p := newPlan(cp, promote, act(l, "rejoin"))
				p.PointOfNoReturn = "promote"
				return withRollback(p, "restore", act(l, "start-primary"))
			},
			wantErr:     ErrAction,
			wantOutcome: OutcomeFailed,
			wantApplied: []string{"checkpoint", "promote", "start-primary"},
			check: func(t *testing.T, res *Result, err error, rec *recorder) {
				if len(res.ByHand) != 0 {
					t.Errorf("ByHand = %q, want nothing left by hand", res.ByHand)
				}
			},
		},
		{
			name: "a failure past the point of no return does not roll back and says what is left by hand",
			build: func(t *testing.T, l *callLog) *Plan {
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
			wantOutcome: OutcomeFailed,
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
			build: func(t *testing.T, l *callLog) *Plan {
				promote, repoint := act(l, "promote"), act(l, "repoint-pooler")
				promote.PointOfNoReturn, promote.OnFailure = true, "restore"
				repoint.OnFailure = "fix-pooler"
				repoint.Ensures = []*Cond{cond(failCheck("write-through-pooler"))}
				p := newPlan(promote, repoint, act(l, "rejoin"))
				p.PointOfNoReturn = "promote"
				withRollback(p, "restore", act(l, "start-primary"))
				return withRepair(p, "fix-pooler", act(l, "restart-pooler"), act(l, "write-canary"))
			},
			wantErr:     ErrAction,
			wantOutcome: OutcomeFailed,
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
			build: func(t *testing.T, l *callLog) *Plan {
				return withFinally(newPlan(act(l, "promote")), act(l, "resume-pooler"), act(l, "unpause-manager"))
			},
			wantOutcome: OutcomeDone,
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
			build: func(t *testing.T, l *callLog) *Plan {
				resume := act(l, "resume-pooler")
				fake(resume).apply = failing("pgbouncer is down")
				return withFinally(newPlan(act(l, "promote")), resume, act(l, "unpause-manager"))
			},
			wantErr:     ErrAction,
			wantInErr:   []string{"pgbouncer is down"},
			wantOutcome: OutcomeFailed,
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
			build: func(t *testing.T, l *callLog) *Plan {
				cp := act(l, "checkpoint")
				cp.Requires = []*Cond{cond(failCheck("primary-up"))}
				resume := act(l, "resume-pooler")
				fake(resume).apply = failing("pgbouncer is down")
				return withFinally(newPlan(cp), resume, act(l, "unpause-manager"))
			},
			wantErr:     ErrAction,
			wantInErr:   []string{"primary-up", "finally section failed"},
			wantOutcome: OutcomeFailed,
			wantApplied: []string{"resume-pooler", "unpause-manager"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := &callLog{}
			p := tc.build(t, l)
			rec := &recorder{}
			o := options(t, rec)
			if tc.opts != nil {
				tc.opts(&o)
			}
			r := await(t, "Run", 10*time.Second, goRun(func() (*Result, error) {
				return Run(context.Background(), p, o)
			}))
			res, err := r.res, r.err
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("Run: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("Run: error %v, want one wrapping %v", err, tc.wantErr)
			}
			for _, s := range tc.wantInErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if tc.wantOutcome != "" {
				if res.Outcome != tc.wantOutcome {
					t.Errorf("Outcome = %q, want %q", res.Outcome, tc.wantOutcome)
				}
				fin := rec.ofType(EventRunFinished)
				if len(fin) != 1 || fin[0].Outcome != tc.wantOutcome {
					t.Errorf("run.finished events %+v: want one with outcome %q", fin, tc.wantOutcome)
				}
			}
			if got := l.list(); !sameStrings(got, tc.wantApplied) {
				t.Errorf("applied %q, want %q", got, tc.wantApplied)
			}
			if tc.wantTrace != nil {
				if got := trace(rec.events()); !sameStrings(got, tc.wantTrace) {
					t.Errorf("events:%s\nwant:%s", lines(got), lines(tc.wantTrace))
				}
			}
			if tc.minDur > 0 && r.dur < tc.minDur {
				t.Errorf("Run took %s, want at least %s", r.dur, tc.minDur)
			}
			if tc.maxDur > 0 && r.dur > tc.maxDur {
				t.Errorf("Run took %s, want at most %s", r.dur, tc.maxDur)
			}
			if op, ok := o.Operator.(*fakeOperator); ok && tc.wantOutcome == OutcomeDone {
				qs := op.asked()
				if len(qs) != 2 || qs[0].TypeToConfirm != testCluster || qs[1].TypeToConfirm != "" {
					t.Errorf("questions %+v: want the cluster name typed at the first destructive step only", qs)
				}
				for _, q := range qs {
					if q.Kind != AskApprove || q.Cluster != testCluster || q.Effect.Command != "fake "+q.Step.Name {
						t.Errorf("question %+v: want an approval naming the step's effect and the cluster", q)
					}
				}
				for _, e := range rec.ofType(EventApproval) {
					if a := e.Approval; !a.Granted || a.How != "prompt" || a.User != "dba" || a.Host != "bastion-1" {
						t.Errorf("approval %+v: want granted at the prompt by dba@bastion-1", a)
					}
				}
			}
			if tc.check != nil {
				tc.check(t, res, err, rec)
			}
		})
	}
}

// TestRunLocked: one run per cluster; the second is told who holds it.
func TestRunLocked(t *testing.T) {
	t.Parallel()
	l := &callLog{}
	stop := act(l, "stop-primary")
	release := make(chan struct{})
	fake(stop).started = make(chan struct{})
	fake(stop).apply = func(ctx context.Context, _ *cluster.Target, _ int) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p := newPlan(stop)
	rec := &recorder{}
	o := options(t, rec)
	first := goRun(func() (*Result, error) { return Run(context.Background(), p, o) })
	select {
	case <-fake(stop).started:
	case <-time.After(5 * time.Second):
		t.Fatal("the first run never reached its action")
	}
	runID := rec.ofType(EventRunStarted)[0].RunID

	l2 := &callLog{}
	res, err := Run(context.Background(), newPlan(act(l2, "checkpoint")), Options{JournalDir: o.JournalDir, Identity: Identity{User: "other", Host: "elsewhere"}})
	close(release)
	var le *LockedError
	switch {
	case !errors.Is(err, ErrLocked) || !errors.As(err, &le):
		t.Fatalf("second run: %v, want a *LockedError", err)
	case le.Stale:
		t.Errorf("LockedError.Stale: want false, the holder is alive")
	case le.Cluster != testCluster || le.Holder.RunID != runID || le.Holder.User != "dba" ||
		le.Holder.Host != "bastion-1" || le.Holder.PID != os.Getpid():
		t.Errorf("LockedError %+v: want run %s by dba@bastion-1 pid %d", le, runID, os.Getpid())
	}
	for _, s := range []string{runID, "dba@bastion-1"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	if res != nil || len(l2.list()) != 0 {
		t.Errorf("second run: result %+v, applied %q; want nothing", res, l2.list())
	}
	if r := await(t, "the first run", 5*time.Second, first); r.err != nil {
		t.Fatalf("first run: %v", r.err)
	}
	// Once it finished, the cluster is free again.
	if _, err := Run(context.Background(), newPlan(act(l2, "checkpoint")), options2(o, &recorder{})); err != nil {
		t.Fatalf("a run after the first finished: %v", err)
	}
}

// options2 returns o with another observer, for a later run in the same
// journal directory.
func options2(o Options, rec *recorder) Options {
	return Options{JournalDir: o.JournalDir, Observer: rec, Identity: o.Identity}
}

// TestInterruptSuspendsAndResumeContinues: closing Interrupt while a check
// waits stops the run at that safe point; resume finishes the run, and no
// action runs twice.
func TestInterruptSuspendsAndResumeContinues(t *testing.T) {
	t.Parallel()
	l := &callLog{}
	var resumed atomic.Bool
	caughtUp := &fakeCheck{name: "caught-up", fn: func(*cluster.Target, int) checks.Result {
		if resumed.Load() {
			return checks.Passed("lag 0 bytes")
		}
		return checks.Failed("lag 16 MB", "lag under 1 MB")
	}}
	promote := act(l, "promote")
	promote.Requires = []*Cond{within(caughtUp, 30*time.Second, 20*time.Millisecond)}
	build := func() *Plan {
		return withFinally(newPlan(act(l, "checkpoint"), promote, act(l, "rejoin")), act(l, "unpause-manager"))
	}
	p := build()
	rec := &recorder{}
	o := options(t, rec)
	interrupt := make(chan struct{})
	o.Interrupt = interrupt

	ch := goRun(func() (*Result, error) { return Run(context.Background(), p, o) })
	rec.waitFor(t, "check.waiting", func(e Event) bool { return e.Type == EventWaiting })
	close(interrupt)
	r := await(t, "the interrupted run", 3*time.Second, ch)
	if !errors.Is(r.err, ErrDeclined) {
		t.Fatalf("interrupted run: %v, want an error wrapping ErrDeclined", r.err)
	}
	if r.res.Outcome != OutcomeSuspended {
		t.Errorf("Outcome = %q, want suspended", r.res.Outcome)
	}
	if got := l.list(); !sameStrings(got, []string{"checkpoint"}) {
		t.Errorf("applied %q before the interrupt, want only checkpoint (finally does not run)", got)
	}
	if tr := trace(rec.events()); tr[len(tr)-1] != "suspended" {
		t.Errorf("events end with %q, want suspended:%s", tr[len(tr)-1], lines(tr))
	}
	id := r.res.RunID
	evs, err := ReadJournal(o.JournalDir, id)
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; last.Type != EventRunSuspended || last.Step != "promote" {
		t.Errorf("journal ends with %+v, want run.suspended at promote", last)
	}
	if rr, err := ReadRun(o.JournalDir, id); err != nil || rr.Finished {
		t.Errorf("ReadRun: %+v, %v; want an unfinished run", rr, err)
	}

	// A new run on the cluster is refused: the suspended run has the claim.
	_, err = Run(context.Background(), newPlan(act(&callLog{}, "checkpoint")), options2(o, &recorder{}))
	var le *LockedError
	if !errors.As(err, &le) || !le.Stale || le.Holder.RunID != id {
		t.Fatalf("a new run while %s is suspended: %v, want a stale *LockedError naming it", id, err)
	}

	resumed.Store(true)
	rec2 := &recorder{}
	r = await(t, "Resume", 10*time.Second, goRun(func() (*Result, error) {
		return Resume(context.Background(), build(), id, options2(o, rec2))
	}))
	res, err := r.res, r.err
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if res.Outcome != OutcomeDone || res.RunID != id {
		t.Errorf("resumed result %+v: want run %s done", res, id)
	}
	for _, name := range []string{"checkpoint", "promote", "rejoin", "unpause-manager"} {
		if n := l.count(name); n != 1 {
			t.Errorf("%s applied %d times overall, want once", name, n)
		}
	}
	if st := stepStates(rec2.events(), "checkpoint"); len(st) != 0 {
		t.Errorf("resume moved checkpoint through %v, want it skipped as done", st)
	}
	if evs := rec2.ofType(EventRunResumed); len(evs) != 1 || evs[0].Run == nil {
		t.Errorf("run.resumed events %+v, want one with run info", evs)
	}
	assertJournal(t, o.JournalDir, id)
}

// assertJournal checks the journal of run id as a file: owner-only, one
// JSON event per line, seq strictly increasing, run.started first.
func assertJournal(t *testing.T, dir, id string) []Event {
	t.Helper()
	path := JournalPath(dir, id)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("journal mode %v, want 0600", m)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		if !json.Valid(sc.Bytes()) {
			t.Fatalf("journal line %d is not JSON: %s", n, sc.Bytes())
		}
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("journal line %d: %v", n, err)
		}
		if len(evs) > 0 && e.Seq <= evs[len(evs)-1].Seq {
			t.Errorf("journal line %d: seq %d after %d, want strictly increasing", n, e.Seq, evs[len(evs)-1].Seq)
		}
		if e.RunID != id {
			t.Errorf("journal line %d: run_id %q, want %q", n, e.RunID, id)
		}
		evs = append(evs, e)
	}
	if len(evs) == 0 {
		t.Fatal("empty journal")
	}
	first := evs[0]
	if first.Type != EventRunStarted || first.Run == nil {
		t.Fatalf("first journal event %+v, want run.started with run info", first)
	}
	if r := first.Run; r.Cluster != testCluster || r.User != "dba" || r.Host != "bastion-1" || r.PID != os.Getpid() ||
		r.RunbookName != "test-switchover" || r.RunbookDigest != "sha256:test-digest" || len(r.Steps) == 0 {
		t.Errorf("run info %+v: want the cluster, runbook, steps and who ran it", *r)
	}
	return evs
}

// killMidAction runs p until the action of step name has started, then
// cancels the run's context, as a second Ctrl-C or a lost session would:
// the journal's last word on that step is "running". It returns the run id.
func killMidAction(t *testing.T, p *Plan, o Options, name string) string {
	t.Helper()
	f := fake(p.Step(name))
	f.started = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := goRun(func() (*Result, error) { return Run(ctx, p, o) })
	select {
	case <-f.started:
	case <-time.After(5 * time.Second):
		t.Fatalf("step %s never started", name)
	}
	cancel()
	r := await(t, "the killed run", 5*time.Second, ch)
	if !errors.Is(r.err, ErrDeclined) {
		t.Fatalf("killed run: %v, want an error wrapping ErrDeclined", r.err)
	}
	evs, err := ReadJournal(o.JournalDir, r.res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if st := stepStates(evs, name); len(st) == 0 || st[len(st)-1] != StateRunning {
		t.Fatalf("journal states of %s: %v, want it last seen running", name, st)
	}
	return r.res.RunID
}

// settlePlan: checkpoint, then stop-primary whose first Apply hangs until
// its context ends, then promote; a rollback and a finally section.
func settlePlan(l *callLog, ensures string, idempotent bool) *Plan {
	stop := act(l, "stop-primary")
	stop.Idempotent = idempotent
	stop.OnFailure = "restore"
	fake(stop).apply = onFirstCall(untilCtxDone, nil)
	stop.Ensures = []*Cond{cond(script("primary-stopped", ensures))}
	cp := act(l, "checkpoint")
	cp.OnFailure = "restore"
	p := withRollback(newPlan(cp, stop, act(l, "promote")), "restore", act(l, "start-primary"))
	return withFinally(p, act(l, "unpause-manager"))
}

func TestResumeSettlesAStepCaughtRunning(t *testing.T) {
	t.Parallel()
	type attempt struct {
		opts      func(o *Options)
		wantErr   error // nil: no error
		wantInErr string
	}
	tests := []struct {
		name        string
		ensures     string // verdicts of stop-primary's postcondition after the kill
		idempotent  bool
		resumes     []attempt
		wantOutcome Outcome
		wantApplied []string // over the killed run and every resume
		check       func(t *testing.T, evs []Event, o Options)
	}{
		{
			name:        "postconditions hold: done, not applied again",
			ensures:     "p",
			resumes:     []attempt{{}},
			wantOutcome: OutcomeDone,
			wantApplied: []string{"checkpoint", "stop-primary", "promote", "unpause-manager"},
		},
		{
			name:        "postconditions fail and the step is idempotent: applied again",
			ensures:     "fp",
			idempotent:  true,
			resumes:     []attempt{{}},
			wantOutcome: OutcomeDone,
			wantApplied: []string{"checkpoint", "stop-primary", "stop-primary", "promote", "unpause-manager"},
		},
		{
			name:    "not idempotent, nobody to ask: the run stays unfinished; --settle rerun runs it again",
			ensures: "ffp",
			resumes: []attempt{
				{wantErr: ErrAction, wantInErr: "--settle rerun"},
				{opts: func(o *Options) { o.Settle = SettleRerun }},
			},
			wantOutcome: OutcomeDone,
			wantApplied: []string{"checkpoint", "stop-primary", "stop-primary", "promote", "unpause-manager"},
		},
		{
			name:    "not idempotent, nobody to ask: the run stays unfinished; --settle done marks it done",
			ensures: "f",
			resumes: []attempt{
				{wantErr: ErrAction, wantInErr: "a person must decide"},
				{opts: func(o *Options) { o.Settle = SettleDone }},
			},
			wantOutcome: OutcomeDone,
			wantApplied: []string{"checkpoint", "stop-primary", "promote", "unpause-manager"},
			check: func(t *testing.T, evs []Event, o Options) {
				var marked bool
				for _, e := range evs {
					if e.Type == EventApproval && e.Step == "stop-primary" && e.Phase == "settle" {
						marked = e.Approval.How == "--settle" && e.Approval.User == "dba"
					}
				}
				if !marked {
					t.Errorf("no settle approval by dba with --settle journaled")
				}
			},
		},
		{
			name:    "the operator aborts: a failure, and the rollback runs",
			ensures: "f",
			resumes: []attempt{{
				opts:    func(o *Options) { o.Operator = &fakeOperator{answers: []Answer{{Choice: SettleAbort}}} },
				wantErr: ErrAction,
			}},
			wantOutcome: OutcomeFailed,
			wantApplied: []string{"checkpoint", "stop-primary", "start-primary", "unpause-manager"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := &callLog{}
			p := settlePlan(l, tc.ensures, tc.idempotent)
			o := options(t, &recorder{})
			id := killMidAction(t, p, o, "stop-primary")
			var res *Result
			for i, a := range tc.resumes {
				ro := options2(o, &recorder{})
				if a.opts != nil {
					a.opts(&ro)
				}
				r := await(t, "Resume", 10*time.Second, goRun(func() (*Result, error) {
					return Resume(context.Background(), p, id, ro)
				}))
				res = r.res
				if a.wantErr == nil && r.err != nil {
					t.Fatalf("resume %d: %v", i+1, r.err)
				}
				if a.wantErr != nil {
					if !errors.Is(r.err, a.wantErr) || !strings.Contains(r.err.Error(), a.wantInErr) {
						t.Fatalf("resume %d: %v, want an error wrapping %v that says %q", i+1, r.err, a.wantErr, a.wantInErr)
					}
				}
				if i < len(tc.resumes)-1 {
					rr, err := ReadRun(o.JournalDir, id)
					if err != nil || rr.Finished {
						t.Fatalf("after resume %d: %+v, %v; want the run unfinished", i+1, rr, err)
					}
				}
				if op, ok := ro.Operator.(*fakeOperator); ok {
					qs := op.asked()
					if len(qs) != 1 || qs[0].Kind != AskSettle || qs[0].Step.Name != "stop-primary" || len(qs[0].Choices) != 3 {
						t.Errorf("questions %+v: want one settle question about stop-primary", qs)
					}
				}
			}
			if res.Outcome != tc.wantOutcome {
				t.Errorf("Outcome = %q, want %q", res.Outcome, tc.wantOutcome)
			}
			if got := l.list(); !sameStrings(got, tc.wantApplied) {
				t.Errorf("applied %q, want %q", got, tc.wantApplied)
			}
			evs := assertJournal(t, o.JournalDir, id)
			if tc.check != nil {
				tc.check(t, evs, o)
			}
		})
	}
}

func TestResumeRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		setup     func(t *testing.T, l *callLog, o Options) (p *Plan, id string)
		wantInErr string
	}{
		{
			name: "a finished run",
			setup: func(t *testing.T, l *callLog, o Options) (*Plan, string) {
				p := newPlan(act(l, "checkpoint"))
				res, err := Run(context.Background(), p, o)
				if err != nil {
					t.Fatal(err)
				}
				return p, res.RunID
			},
			wantInErr: "already finished",
		},
		{
			name: "a dry run",
			setup: func(t *testing.T, l *callLog, o Options) (*Plan, string) {
				p := newPlan(act(l, "checkpoint"))
				o.DryRun = true
				res, err := Run(context.Background(), p, o)
				if err != nil {
					t.Fatal(err)
				}
				return p, res.RunID
			},
			wantInErr: "dry run",
		},
		{
			name: "a runbook that changed since the run started",
			setup: func(t *testing.T, l *callLog, o Options) (*Plan, string) {
				p := settlePlan(l, "p", false)
				id := killMidAction(t, p, o, "stop-primary")
				changed := *p
				rb := *p.Runbook
				rb.Digest = "sha256:edited"
				changed.Runbook = &rb
				return &changed, id
			},
			wantInErr: "changed since run",
		},
		{
			name: "a run that does not exist",
			setup: func(t *testing.T, l *callLog, o Options) (*Plan, string) {
				return newPlan(act(l, "checkpoint")), "20250101T000000Z-000000"
			},
			wantInErr: "no run",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := &callLog{}
			o := options(t, &recorder{})
			p, id := tc.setup(t, l, o)
			before := len(l.list())
			rec := &recorder{}
			res, err := Resume(context.Background(), p, id, options2(o, rec))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantInErr) {
				t.Fatalf("Resume: %v, want an ErrInvalid error saying %q", err, tc.wantInErr)
			}
			if res != nil || len(l.list()) != before || len(rec.events()) != 0 {
				t.Errorf("a refused resume did something: result %+v, applied %q, %d events", res, l.list(), len(rec.events()))
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		build     func(l *callLog) *Plan
		wantErr   error
		wantNote  string // a note event about this step
		wantCalls map[string]int
	}{
		{
			name: "preconditions are evaluated, nothing is applied, postconditions are not evaluated",
			build: func(l *callLog) *Plan {
				cp, stop := act(l, "checkpoint"), act(l, "stop-primary")
				cp.Requires = []*Cond{cond(passCheck("primary-up"))}
				cp.Ensures = []*Cond{cond(passCheck("checkpoint-done"))}
				stop.Destructive = true // a dry run needs no approval
				stop.Requires = []*Cond{cond(passCheck("pooler-paused"))}
				stop.Ensures = []*Cond{cond(passCheck("primary-stopped"))}
				p := withRollback(newPlan(cp, stop), "restore", act(l, "start-primary"))
				return withFinally(p, act(l, "unpause-manager"))
			},
			wantCalls: map[string]int{"primary-up": 1, "pooler-paused": 1, "checkpoint-done": 0, "primary-stopped": 0},
		},
		{
			name: "a failing precondition of the first step is a precondition failure",
			build: func(l *callLog) *Plan {
				cp := act(l, "checkpoint")
				cp.Requires = []*Cond{cond(failCheck("primary-up"))}
				return newPlan(cp, act(l, "stop-primary"))
			},
			wantErr:   ErrPrecondition,
			wantCalls: map[string]int{"primary-up": 1},
		},
		{
			name: "a failing precondition after an action is only a note",
			build: func(l *callLog) *Plan {
				stop := act(l, "stop-primary")
				stop.Requires = []*Cond{cond(failCheck("primary-down"))}
				return newPlan(act(l, "checkpoint"), stop)
			},
			wantNote:  "stop-primary",
			wantCalls: map[string]int{"primary-down": 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := &callLog{}
			p := tc.build(l)
			rec := &recorder{}
			o := options(t, rec)
			o.DryRun = true
			res, err := Run(context.Background(), p, o)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("dry run: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("dry run: %v, want an error wrapping %v", err, tc.wantErr)
			}
			if res.Outcome != OutcomeDryRun {
				t.Errorf("Outcome = %q, want dry-run", res.Outcome)
			}
			if got := l.list(); len(got) != 0 {
				t.Errorf("a dry run applied %q", got)
			}
			calls := map[string]int{}
			for _, s := range p.AllSteps() {
				for _, c := range append(append([]*Cond(nil), s.Requires...), s.Ensures...) {
					f := c.Check.(*fakeCheck)
					calls[f.name] = f.count()
				}
			}
			for name, want := range tc.wantCalls {
				if calls[name] != want {
					t.Errorf("check %s evaluated %d times, want %d", name, calls[name], want)
				}
			}
			var effects int
			for _, e := range rec.events() {
				if !e.DryRun {
					t.Errorf("event %+v not marked dry_run", e)
				}
				switch {
				case e.Type == EventStep && e.State != StateChecking && e.State != StateSkipped:
					t.Errorf("a dry run moved %s to %s", e.Step, e.State)
				case e.Type == EventCheck && e.Phase == "ensures" && (e.Check.NotEvaluated == "" || e.Check.Status != "unknown"):
					t.Errorf("postcondition of %s reported as %+v, want not evaluated", e.Step, *e.Check)
				case e.Type == EventEffect && e.Section == SectionSteps:
					effects++
				}
			}
			if effects != len(p.Steps) {
				t.Errorf("%d effects described, want one per step (%d)", effects, len(p.Steps))
			}
			var noted bool
			for _, e := range rec.ofType(EventNote) {
				noted = noted || e.Step == tc.wantNote
			}
			if tc.wantNote != "" && !noted {
				t.Errorf("no note about %s", tc.wantNote)
			}
			if fin := rec.ofType(EventRunFinished); len(fin) != 1 || fin[0].Outcome != OutcomeDryRun {
				t.Errorf("run.finished %+v, want one dry-run", fin)
			}
		})
	}
	t.Run("takes no lock", func(t *testing.T) {
		t.Parallel()
		l := &callLog{}
		stop := act(l, "stop-primary")
		release := make(chan struct{})
		fake(stop).started = make(chan struct{})
		fake(stop).apply = func(ctx context.Context, _ *cluster.Target, _ int) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}
		o := options(t, &recorder{})
		ch := goRun(func() (*Result, error) { return Run(context.Background(), newPlan(stop), o) })
		<-fake(stop).started
		do := options2(o, &recorder{})
		do.DryRun = true
		_, err := Run(context.Background(), newPlan(act(l, "checkpoint")), do)
		close(release)
		if err != nil {
			t.Errorf("a dry run while a real run holds the cluster: %v", err)
		}
		if r := await(t, "the real run", 5*time.Second, ch); r.err != nil {
			t.Fatal(r.err)
		}
	})
}

// TestJournalKeepsSecretsOut: passwords from the variables and the
// inventory never reach the journal or the observer, whatever an action
// prints or a check sees.
func TestJournalKeepsSecretsOut(t *testing.T) {
	t.Parallel()
	const pw, connpw = "s3cr3t-pw", "hunter22"
	l := &callLog{}
	cp := act(l, "checkpoint")
	fake(cp).effect.Node, fake(cp).effect.Command = "pg1", "psql 'host=x password=hunter22' -c CHECKPOINT"
	fake(cp).apply = func(_ context.Context, t *cluster.Target, _ int) error {
		t.Print("connecting with " + pw + " and " + connpw)
		t.Facts.Set("conninfo", "host=x password="+connpw)
		return nil
	}
	cp.Destructive = true
	cp.Requires = []*Cond{cond(&fakeCheck{name: "login", results: []checks.Result{checks.Passed("logged in with " + pw)}})}
	unpause := act(l, "unpause-manager")
	fake(unpause).apply = failing("patroni rejected password " + pw)
	p := withFinally(newPlan(cp), unpause)
	p.Vars["db_password"] = pw
	p.Cluster = &cluster.Cluster{Name: testCluster, Nodes: map[string]*cluster.Node{
		"pg1": {Name: "pg1", Conninfo: "host=x password=" + connpw},
	}}
	rec := &recorder{}
	o := options(t, rec)
	op := &fakeOperator{}
	o.Operator = op
	res, err := Run(context.Background(), p, o)
	if !errors.Is(err, ErrAction) {
		t.Fatalf("Run: %v, want the failing finally step to fail the run", err)
	}
	evs := assertJournal(t, o.JournalDir, res.RunID)
	b, err := os.ReadFile(res.Journal)
	if err != nil {
		t.Fatal(err)
	}
	observed, err := json.Marshal(rec.events())
	if err != nil {
		t.Fatal(err)
	}
	questions, err := json.Marshal(op.asked())
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"journal": string(b), "observed events": string(observed), "operator's questions": string(questions)} {
		for _, s := range []string{pw, connpw} {
			if strings.Contains(text, s) {
				t.Errorf("the %s show the secret %q", what, s)
			}
		}
	}
	if v := evs[0].Run.Vars["db_password"]; v != secret.Mask {
		t.Errorf("journaled db_password = %q, want it masked", v)
	}
	if out := rec.ofType(EventOutput); len(out) != 1 || !strings.Contains(out[0].Output, "connecting with "+secret.Mask) {
		t.Errorf("output events %+v: want the line with the secrets masked", out)
	}
	if fs := rec.ofType(EventFact); len(fs) != 1 || fs[0].Fact.Key != "conninfo" || fs[0].Step != "checkpoint" {
		t.Errorf("fact events %+v: want the conninfo fact of checkpoint", fs)
	}
}

func TestRunRefusesAnUnwritableJournalDir(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{false, true} {
		l := &callLog{}
		rec := &recorder{}
		res, err := Run(context.Background(), newPlan(act(l, "checkpoint")),
			Options{JournalDir: filepath.Join(file, "sub"), Observer: rec, Identity: testIdentity, DryRun: dry})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("dry run %v: %v, want ErrInvalid", dry, err)
		}
		if res != nil || len(l.list()) != 0 || len(rec.events()) != 0 {
			t.Errorf("dry run %v: result %+v, applied %q, %d events; want nothing", dry, res, l.list(), len(rec.events()))
		}
	}
}

// TestFactsSurviveResume: a fact an action learns is journaled, and a
// resumed run knows it.
func TestFactsSurviveResume(t *testing.T) {
	t.Parallel()
	const lsn = "0/3000060"
	l := &callLog{}
	var resumed atomic.Bool
	var seen atomic.Value
	stop := act(l, "stop-primary")
	fake(stop).apply = func(_ context.Context, t *cluster.Target, _ int) error {
		t.Facts.Set("shutdown_lsn", lsn)
		return nil
	}
	received := &fakeCheck{name: "candidate-received", fn: func(t *cluster.Target, _ int) checks.Result {
		if !resumed.Load() {
			return checks.Failed("not yet", "the shutdown checkpoint")
		}
		v, _ := t.Facts.Get("shutdown_lsn")
		seen.Store(v)
		if v != lsn {
			return checks.Failed("shutdown_lsn "+v, lsn)
		}
		return checks.Passed("received " + v)
	}}
	promote := act(l, "promote")
	promote.Requires = []*Cond{within(received, 30*time.Second, 20*time.Millisecond)}
	p := newPlan(stop, promote)
	rec := &recorder{}
	o := options(t, rec)
	interrupt := make(chan struct{})
	o.Interrupt = interrupt
	ch := goRun(func() (*Result, error) { return Run(context.Background(), p, o) })
	rec.waitFor(t, "check.waiting", func(e Event) bool { return e.Type == EventWaiting })
	close(interrupt)
	r := await(t, "the interrupted run", 3*time.Second, ch)
	if r.res == nil || r.res.Outcome != OutcomeSuspended {
		t.Fatalf("interrupted run: %+v, %v; want suspended", r.res, r.err)
	}
	var journaled bool
	for _, e := range assertJournal(t, o.JournalDir, r.res.RunID) {
		if e.Type == EventFact && e.Step == "stop-primary" && e.Fact.Key == "shutdown_lsn" && e.Fact.Value == lsn {
			journaled = true
		}
	}
	if !journaled {
		t.Error("the fact was not journaled")
	}
	resumed.Store(true)
	r = await(t, "Resume", 10*time.Second, goRun(func() (*Result, error) {
		return Resume(context.Background(), p, r.res.RunID, options2(o, &recorder{}))
	}))
	if r.err != nil {
		t.Fatalf("Resume: %v (the check saw shutdown_lsn %v)", r.err, seen.Load())
	}
	if got := l.list(); !sameStrings(got, []string{"stop-primary", "promote"}) {
		t.Errorf("applied %q, want stop-primary then promote, once each", got)
	}
}

// TestResumeContinuesARollback: a run cut off in its rollback section goes
// on with that section on resume, then finally; the main steps stay as
// they were.
func TestResumeContinuesARollback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		failStop  func(s *Step) // how stop-primary fails
		wantInErr string
	}{
		{
			name:      "after a postcondition failed",
			failStop:  func(s *Step) { s.Ensures = []*Cond{cond(failCheck("primary-stopped"))} },
			wantInErr: "primary-stopped does not hold",
		},
		{
			name:      "after a precondition failed",
			failStop:  func(s *Step) { s.Requires = []*Cond{cond(failCheck("pooler-paused"))} },
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
			if r.res.Outcome != OutcomeFailed || !strings.Contains(r.res.Recovery, "rollback:restore") {
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

// A scripted resume checks approvals up front, like a scripted run: a
// destructive step still ahead without --yes or --approve stops the resume
// before anything acts, and the run stays resumable.
func TestScriptedResumeNeedsApprovalsUpFront(t *testing.T) {
	t.Parallel()
	l := &callLog{}
	var resumed atomic.Bool
	gate := &fakeCheck{name: "gate", fn: func(*cluster.Target, int) checks.Result {
		if resumed.Load() {
			return checks.Passed("open")
		}
		return checks.Failed("closed", "open")
	}}
	build := func() *Plan {
		wait := act(l, "wait")
		wait.Requires = []*Cond{within(gate, 30*time.Second, 20*time.Millisecond)}
		promote := act(l, "promote")
		promote.Destructive = true
		return newPlan(act(l, "checkpoint"), wait, promote)
	}
	rec := &recorder{}
	o := options(t, rec)
	o.Approve = []string{"promote"}
	interrupt := make(chan struct{})
	o.Interrupt = interrupt
	ch := goRun(func() (*Result, error) { return Run(context.Background(), build(), o) })
	rec.waitFor(t, "check.waiting", func(e Event) bool { return e.Type == EventWaiting })
	close(interrupt)
	r := await(t, "the interrupted run", 3*time.Second, ch)
	if r.res == nil || r.res.Outcome != OutcomeSuspended {
		t.Fatalf("interrupted run: %+v, %v; want suspended", r.res, r.err)
	}
	id := r.res.RunID
	resumed.Store(true)

	// Resumed without approval: refused before "wait" or "promote" act.
	o2 := options2(o, &recorder{})
	o2.Approve, o2.Interrupt = nil, nil
	_, err := Resume(context.Background(), build(), id, o2)
	if !errors.Is(err, ErrDeclined) || !strings.Contains(err.Error(), "--approve promote") {
		t.Fatalf("resume without approval: %v, want ErrDeclined naming --approve promote", err)
	}
	if got := l.list(); !sameStrings(got, []string{"checkpoint"}) {
		t.Fatalf("applied %q, want only checkpoint: the refused resume must act on nothing", got)
	}
	// Still resumable, and with the approval it finishes.
	o2.Approve = []string{"promote"}
	if _, err := Resume(context.Background(), build(), id, o2); err != nil {
		t.Fatalf("resume with --approve promote: %v", err)
	}
	if got := l.list(); !sameStrings(got, []string{"checkpoint", "wait", "promote"}) {
		t.Fatalf("applied %q, want checkpoint, wait, promote once each", got)
	}
}

// When one precondition has failed for good, the step does not sit out the
// within: of its siblings: they are reported as not waited for.
func TestAFailedCheckStopsWaitingOnItsSiblings(t *testing.T) {
	t.Parallel()
	l := &callLog{}
	s := act(l, "promote")
	s.Requires = []*Cond{cond(failCheck("quorum")), within(failCheck("lag"), 30*time.Second, 20*time.Millisecond)}
	rec := &recorder{}
	start := time.Now()
	_, err := Run(context.Background(), newPlan(s), options(t, rec))
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the run took %s: it waited out the sibling's within: 30s", took)
	}
	if !errors.Is(err, ErrPrecondition) || !strings.Contains(err.Error(), "fake check quorum") && !strings.Contains(err.Error(), "fake.check") {
		t.Fatalf("err = %v, want the quorum check's precondition failure", err)
	}
	var lag *CheckEvent
	for _, e := range rec.ofType(EventCheck) {
		if e.Check.Describe == "fake check lag" {
			lag = e.Check
		}
	}
	if lag == nil || lag.Status != "unknown" || !strings.Contains(lag.NotEvaluated, "another check of this step failed") {
		t.Fatalf("the sibling's event = %+v, want status unknown, not waited for", lag)
	}
	if l.count("promote") != 0 {
		t.Fatal("the action ran")
	}
}
