// Tests of the approval policy.

package runbook

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
)

// runCasesApproval: who approves a destructive or manual step, at a
// terminal and without one.
var runCasesApproval = []runCase{
	{
		name: "no terminal: a destructive step without approval stops the run before any action",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			stop := act(l, "stop-primary")
			stop.Destructive = true
			return newPlan(act(l, "checkpoint"), stop)
		},
		wantErr:     ErrDeclined,
		wantInErr:   []string{"--approve stop-primary"},
		wantOutcome: journal.OutcomeDeclined,
		wantTrace:   []string{"stop-primary: approval declined none", "finished declined"},
		check: func(t *testing.T, res *Result, err error, rec *recorder) {
			a := rec.ofType(journal.EventApproval)[0].Approval
			if a.User != testIdentity.User || a.Host != testIdentity.Host {
				t.Errorf("approval %+v: want who was running it", a)
			}
		},
	},
	{
		name: "no terminal: --approve STEP approves that step",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			stop := act(l, "stop-primary")
			stop.Destructive = true
			return newPlan(act(l, "checkpoint"), stop)
		},
		opts:        func(o *Options) { o.Approve = []string{"stop-primary"} },
		wantOutcome: journal.OutcomeDone,
		wantApplied: []string{"checkpoint", "stop-primary"},
		wantTrace: []string{
			"checkpoint: checking", "checkpoint: running", "checkpoint: done",
			"stop-primary: checking", "stop-primary: awaiting-approval",
			"stop-primary: approval granted --approve",
			"stop-primary: running", "stop-primary: done",
			"finished done",
		},
		check: func(t *testing.T, res *Result, err error, rec *recorder) {
			a := rec.ofType(journal.EventApproval)[0].Approval
			if a.User != "dba" || a.Host != "bastion-1" {
				t.Errorf("approval %+v: want user dba, host bastion-1", a)
			}
		},
	},
	{
		name: "no terminal: --yes approves every destructive step",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			stop, promote := act(l, "stop-primary"), act(l, "promote")
			stop.Destructive, promote.Destructive = true, true
			return newPlan(stop, promote)
		},
		opts:        func(o *Options) { o.Yes = true },
		wantOutcome: journal.OutcomeDone,
		wantApplied: []string{"stop-primary", "promote"},
		check: func(t *testing.T, res *Result, err error, rec *recorder) {
			apps := rec.ofType(journal.EventApproval)
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
		build: func(t *testing.T, l *callLog) *spec.Plan {
			m := act(l, "confirm-window")
			m.Action, m.Manual = fakeManual{fake(m)}, true
			return newPlan(act(l, "checkpoint"), m)
		},
		opts:        func(o *Options) { o.Yes = true },
		wantErr:     ErrDeclined,
		wantInErr:   []string{"--approve confirm-window"},
		wantOutcome: journal.OutcomeDeclined,
		wantTrace:   []string{"confirm-window: approval declined none", "finished declined"},
	},
	{
		name: "no terminal: --approve confirms a manual step, which is not applied",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			m := act(l, "confirm-window")
			m.Action, m.Manual = fakeManual{fake(m)}, true
			return newPlan(m, act(l, "checkpoint"))
		},
		opts:        func(o *Options) { o.Approve = []string{"confirm-window"} },
		wantOutcome: journal.OutcomeDone,
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
		build: func(t *testing.T, l *callLog) *spec.Plan {
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
		build: func(t *testing.T, l *callLog) *spec.Plan {
			pause, stop := act(l, "pause-pooler"), act(l, "stop-primary")
			pause.Destructive, stop.Destructive = true, true
			return newPlan(pause, stop)
		},
		// The questions are checked in the loop below, which has the operator.
		opts:        func(o *Options) { o.Operator = &fakeOperator{} },
		wantOutcome: journal.OutcomeDone,
		wantApplied: []string{"pause-pooler", "stop-primary"},
	},
	{
		name: "at a terminal: a declined step is skipped, the rollback and finally run",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			pause, stop := act(l, "pause-pooler"), act(l, "stop-primary")
			pause.Destructive, stop.Destructive = true, true
			pause.OnFailure, stop.OnFailure = "restore", "restore"
			p := withRollback(newPlan(pause, stop, act(l, "promote")), "restore", act(l, "resume-pooler"))
			return withFinally(p, act(l, "unpause-manager"))
		},
		opts:        func(o *Options) { o.Operator = &fakeOperator{answers: []Answer{{Yes: true}, {Yes: false}}} },
		wantErr:     ErrDeclined,
		wantOutcome: journal.OutcomeDeclined,
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
		build: func(t *testing.T, l *callLog) *spec.Plan {
			stop := act(l, "stop-primary")
			stop.Destructive, stop.OnFailure = true, "restore"
			p := withRollback(newPlan(stop), "restore", act(l, "start-primary"))
			return withFinally(p, act(l, "unpause-manager"))
		},
		opts:        func(o *Options) { o.Operator = &fakeOperator{answers: []Answer{{Yes: false}}} },
		wantErr:     ErrDeclined,
		wantOutcome: journal.OutcomeDeclined,
		wantApplied: []string{"unpause-manager"},
	},
	{
		name: "at a terminal: no answer (stdin closed) is a refusal, not a wait",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			stop := act(l, "stop-primary")
			stop.Destructive = true
			return newPlan(act(l, "checkpoint"), stop)
		},
		opts:        func(o *Options) { o.Operator = &fakeOperator{err: io.EOF} },
		wantErr:     ErrDeclined,
		wantInErr:   []string{"EOF"},
		wantOutcome: journal.OutcomeDeclined,
		wantApplied: []string{"checkpoint"},
		check: func(t *testing.T, res *Result, err error, rec *recorder) {
			a := rec.ofType(journal.EventApproval)[0].Approval
			if a.Granted || a.How != "prompt" || !strings.Contains(a.Note, "no answer") {
				t.Errorf("approval %+v: want refused at the prompt, for want of an answer", a)
			}
		},
	},
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
	build := func() *spec.Plan {
		wait := act(l, "wait")
		wait.Requires = []*spec.Cond{within(gate, 30*time.Second, 20*time.Millisecond)}
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
	rec.waitFor(t, "check.waiting", func(e journal.Event) bool { return e.Type == journal.EventWaiting })
	close(interrupt)
	r := await(t, "the interrupted run", 3*time.Second, ch)
	if r.res == nil || r.res.Outcome != journal.OutcomeSuspended {
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
