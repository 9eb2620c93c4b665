// Tests of check evaluation, through a run and of the evaluator alone.

package runbook

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
)

// runCasesChecks: checks under their timeout and a recover(), concurrent,
// and polled to their within:.
var runCasesChecks = []runCase{
	{
		name: "a panicking check is a failed step",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			s := act(l, "checkpoint")
			s.Requires = []*spec.Cond{cond(&fakeCheck{name: "bad", panicMsg: "check exploded"})}
			return newPlan(s)
		},
		wantErr:     ErrPrecondition,
		wantInErr:   []string{"the check panicked: check exploded"},
		wantOutcome: journal.OutcomePrecondition,
		wantTrace: []string{
			"checkpoint: checking", "checkpoint: requires error", "checkpoint: failed (requires)",
			"finished precondition-failed",
		},
	},
	{
		name: "a check that ignores its context is abandoned at its timeout",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			block := make(chan struct{})
			t.Cleanup(func() { close(block) })
			c := cond(&fakeCheck{name: "hung", block: block})
			c.Timeout = 200 * time.Millisecond
			s := act(l, "checkpoint")
			s.Requires = []*spec.Cond{c}
			return newPlan(s)
		},
		wantErr:     ErrPrecondition,
		wantInErr:   []string{"no answer within 200ms"},
		wantOutcome: journal.OutcomePrecondition,
		wantTrace: []string{
			"checkpoint: checking", "checkpoint: requires error", "checkpoint: failed (requires)",
			"finished precondition-failed",
		},
		minDur: 200 * time.Millisecond,
		maxDur: 3 * time.Second,
	},
	{
		name: "the checks of one step run concurrently",
		build: func(t *testing.T, l *callLog) *spec.Plan {
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
			s.Requires = []*spec.Cond{
				cond(&fakeCheck{name: "slow-1", fn: meet("slow-1")}),
				cond(&fakeCheck{name: "slow-2", fn: meet("slow-2")}),
			}
			return newPlan(s)
		},
		wantOutcome: journal.OutcomeDone,
		wantApplied: []string{"checkpoint"},
	},
	{
		name: "within: a check that passes on its third try passes",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			s := act(l, "promote")
			s.Requires = []*spec.Cond{within(script("caught-up", "ffp"), 5*time.Second, 20*time.Millisecond)}
			return newPlan(s)
		},
		wantOutcome: journal.OutcomeDone,
		wantApplied: []string{"promote"},
		wantTrace: []string{
			"promote: checking", "promote: waiting requires", "promote: waiting requires", "promote: requires pass",
			"promote: running", "promote: done", "finished done",
		},
		check: func(t *testing.T, res *Result, err error, rec *recorder) {
			w := rec.ofType(journal.EventWaiting)
			if w[0].Check.Attempt != 1 || w[1].Check.Attempt != 2 || w[1].Check.WithinMS != 5000 {
				t.Errorf("waiting events %+v %+v: want attempts 1, 2 within 5000ms", *w[0].Check, *w[1].Check)
			}
		},
	},
	{
		name: "within: a check that never passes gives up at its deadline",
		build: func(t *testing.T, l *callLog) *spec.Plan {
			s := act(l, "promote")
			s.Requires = []*spec.Cond{within(failCheck("caught-up"), 300*time.Millisecond, 50*time.Millisecond)}
			return newPlan(s)
		},
		wantErr:     ErrPrecondition,
		wantInErr:   []string{"within 300ms"},
		wantOutcome: journal.OutcomePrecondition,
		minDur:      300 * time.Millisecond,
		maxDur:      2 * time.Second,
	},
}

// When one precondition has failed for good, the step does not sit out the
// within: of its siblings: they are reported as not waited for.
func TestAFailedCheckStopsWaitingOnItsSiblings(t *testing.T) {
	t.Parallel()
	l := &callLog{}
	s := act(l, "promote")
	s.Requires = []*spec.Cond{cond(failCheck("quorum")), within(failCheck("lag"), 30*time.Second, 20*time.Millisecond)}
	rec := &recorder{}
	start := time.Now()
	_, err := Run(context.Background(), newPlan(s), options(t, rec))
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the run took %s: it waited out the sibling's within: 30s", took)
	}
	if !errors.Is(err, ErrPrecondition) || !strings.Contains(err.Error(), "fake check quorum") && !strings.Contains(err.Error(), "fake.check") {
		t.Fatalf("err = %v, want the quorum check's precondition failure", err)
	}
	var lag *journal.CheckEvent
	for _, e := range rec.ofType(journal.EventCheck) {
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

// waits records the attempts an evaluator reports as it polls.
type waits struct {
	mu sync.Mutex
	n  []int
}

func (w *waits) add(a attempt) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n = append(w.n, a.n)
}

func (w *waits) list() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.n...)
}

// TestEvaluatorVerdicts: one check through the evaluator alone, with no
// engine, journal or observer around it.
func TestEvaluatorVerdicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		check func(t *testing.T) *fakeCheck
		cond  func(c *fakeCheck) *spec.Cond
		poll  bool

		wantStatus   checks.Status
		wantObserved string // a substring of what the verdict saw
		wantCalls    int    // 0: not compared
		wantWaits    []int  // the attempts reported while polling; nil: not compared
		maxDur       time.Duration
	}{
		{
			name:         "a check that holds passes at its first try",
			check:        func(*testing.T) *fakeCheck { return passCheck("primary-up") },
			poll:         true,
			wantStatus:   checks.Pass,
			wantObserved: "primary-up holds",
			wantCalls:    1,
			wantWaits:    []int{},
		},
		{
			name:         "a check that does not hold, without within:, fails at once",
			check:        func(*testing.T) *fakeCheck { return failCheck("primary-up") },
			poll:         true,
			wantStatus:   checks.Fail,
			wantObserved: "primary-up does not hold",
			wantCalls:    1,
		},
		{
			name:         "a panic is an error, not a crash",
			check:        func(*testing.T) *fakeCheck { return &fakeCheck{name: "bad", panicMsg: "check exploded"} },
			wantStatus:   checks.Error,
			wantObserved: "the check panicked: check exploded",
		},
		{
			name: "a check that returns no verdict is an error",
			check: func(*testing.T) *fakeCheck {
				return &fakeCheck{name: "mute", fn: func(*cluster.Target, int) checks.Result { return checks.Result{} }}
			},
			wantStatus:   checks.Error,
			wantObserved: "the check returned no verdict",
		},
		{
			name: "a check that ignores its context is abandoned after its timeout",
			check: func(t *testing.T) *fakeCheck {
				block := make(chan struct{})
				t.Cleanup(func() { close(block) })
				return &fakeCheck{name: "hung", block: block}
			},
			cond: func(c *fakeCheck) *spec.Cond {
				k := cond(c)
				k.Timeout = 100 * time.Millisecond
				return k
			},
			wantStatus:   checks.Error,
			wantObserved: "no answer within 100ms",
			maxDur:       3 * time.Second,
		},
		{
			name:  "a check that gives up at its timeout is an error naming the timeout",
			check: func(*testing.T) *fakeCheck { return &fakeCheck{name: "slow", sleep: time.Minute} },
			cond: func(c *fakeCheck) *spec.Cond {
				k := cond(c)
				k.Timeout = 100 * time.Millisecond
				return k
			},
			wantStatus:   checks.Error,
			wantObserved: "no answer within 100ms",
			maxDur:       3 * time.Second,
		},
		{
			name:         "within: polls until the check passes, reporting each failed try",
			check:        func(*testing.T) *fakeCheck { return script("caught-up", "ffp") },
			cond:         func(c *fakeCheck) *spec.Cond { return within(c, 5*time.Second, 10*time.Millisecond) },
			poll:         true,
			wantStatus:   checks.Pass,
			wantObserved: "caught-up holds",
			wantCalls:    3,
			wantWaits:    []int{1, 2},
		},
		{
			name:         "within: a check that never holds fails at its deadline",
			check:        func(*testing.T) *fakeCheck { return failCheck("caught-up") },
			cond:         func(c *fakeCheck) *spec.Cond { return within(c, 200*time.Millisecond, 20*time.Millisecond) },
			poll:         true,
			wantStatus:   checks.Fail,
			wantObserved: "caught-up does not hold",
			maxDur:       3 * time.Second,
		},
		{
			name:         "without polling, within: is not waited for",
			check:        func(*testing.T) *fakeCheck { return script("caught-up", "fp") },
			cond:         func(c *fakeCheck) *spec.Cond { return within(c, 5*time.Second, 10*time.Millisecond) },
			wantStatus:   checks.Fail,
			wantObserved: "caught-up does not hold",
			wantCalls:    1,
			wantWaits:    []int{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fc := tc.check(t)
			c := cond(fc)
			if tc.cond != nil {
				c = tc.cond(fc)
			}
			w := &waits{}
			ev := &evaluator{target: &cluster.Target{}, poll: tc.poll, onWait: w.add}
			start := time.Now()
			vs := ev.run(context.Background(), []*spec.Cond{c})
			took := time.Since(start)
			if len(vs) != 1 {
				t.Fatalf("%d verdicts, want 1", len(vs))
			}
			v := vs[0]
			if v.result.Status != tc.wantStatus || !strings.Contains(v.result.Observed, tc.wantObserved) {
				t.Errorf("verdict %s %q, want %s with %q", v.result.Status, v.result.Observed, tc.wantStatus, tc.wantObserved)
			}
			if v.cut || v.interrupted {
				t.Errorf("verdict %+v: want neither cut nor interrupted", v)
			}
			if tc.wantCalls > 0 && fc.count() != tc.wantCalls {
				t.Errorf("the check ran %d times, want %d", fc.count(), tc.wantCalls)
			}
			if got := append([]int{}, w.list()...); tc.wantWaits != nil && !reflect.DeepEqual(got, tc.wantWaits) {
				t.Errorf("attempts reported %v, want %v", got, tc.wantWaits)
			}
			if c.Within > 0 && tc.poll && tc.wantStatus != checks.Pass && took < c.Within {
				t.Errorf("gave up after %s, before its within: %s", took, c.Within)
			}
			if v.elapsed <= 0 || v.elapsed > took {
				t.Errorf("elapsed %s, want between 0 and %s", v.elapsed, took)
			}
			if tc.maxDur > 0 && took > tc.maxDur {
				t.Errorf("took %s, want at most %s", took, tc.maxDur)
			}
		})
	}
}

// TestEvaluatorRunsChecksConcurrently: each check passes only when it
// meets the other one running, which checks run in turn never do.
func TestEvaluatorRunsChecksConcurrently(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 2)
	meet := func(*cluster.Target, int) checks.Result {
		arrived <- struct{}{}
		deadline := time.After(5 * time.Second)
		for len(arrived) < 2 {
			select {
			case <-deadline:
				return checks.Failed("ran alone for 5s", "the other check running at the same time")
			case <-time.After(time.Millisecond):
			}
		}
		return checks.Passed("met the other check")
	}
	list := []*spec.Cond{cond(&fakeCheck{name: "a", fn: meet}), cond(&fakeCheck{name: "b", fn: meet})}
	ev := &evaluator{target: &cluster.Target{}, poll: true}
	for i, v := range ev.run(context.Background(), list) {
		if v.result.Status != checks.Pass {
			t.Errorf("check %d: %s %q, want it to meet the other", i, v.result.Status, v.result.Observed)
		}
	}
}

// TestEvaluatorStopsWaitingOnceOneFailed: a check that failed for good
// cuts its polling siblings short; one that already passed keeps its pass,
// and the verdicts come back in the order of the list.
func TestEvaluatorStopsWaitingOnceOneFailed(t *testing.T) {
	t.Parallel()
	list := []*spec.Cond{
		cond(passCheck("primary-up")),
		within(failCheck("caught-up"), 30*time.Second, 10*time.Millisecond),
		cond(failCheck("quorum")),
	}
	ev := &evaluator{target: &cluster.Target{}, poll: true}
	start := time.Now()
	vs := ev.run(context.Background(), list)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s: it waited out the sibling's within: 30s", took)
	}
	if v := vs[0]; v.result.Status != checks.Pass || v.cut {
		t.Errorf("primary-up: %+v, want a pass, not cut", v)
	}
	if v := vs[1]; !v.cut || v.result.Observed != "caught-up does not hold" {
		t.Errorf("caught-up: %+v, want cut with what it last saw", v)
	}
	if v := vs[2]; v.result.Status != checks.Fail || v.cut {
		t.Errorf("quorum: %+v, want a failure, not cut", v)
	}
}

// TestEvaluatorStops: an operator's interrupt ends polling with the check
// marked interrupted; the end of the caller's context cuts it.
func TestEvaluatorStops(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		interrupt       bool // close the interrupt channel; else cancel the context
		wantCut         bool
		wantInterrupted bool
	}{
		{name: "an interrupt while polling", interrupt: true, wantInterrupted: true},
		{name: "the context ends while polling", wantCut: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			interrupt := make(chan struct{})
			var once sync.Once
			stop := func(attempt) {
				once.Do(func() {
					if tc.interrupt {
						close(interrupt)
					} else {
						cancel()
					}
				})
			}
			ev := &evaluator{target: &cluster.Target{}, poll: true, interrupt: interrupt, onWait: stop}
			start := time.Now()
			vs := ev.run(ctx, []*spec.Cond{within(failCheck("caught-up"), 30*time.Second, time.Second)})
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("took %s: it did not stop polling", took)
			}
			v := vs[0]
			if v.cut != tc.wantCut || v.interrupted != tc.wantInterrupted || v.result.Status == checks.Pass {
				t.Errorf("verdict %+v: want cut %v, interrupted %v, not a pass", v, tc.wantCut, tc.wantInterrupted)
			}
			if tc.wantInterrupted && (v.result.Status != checks.Error || v.result.Observed != interruptedObserved) {
				t.Errorf("verdict %s %q, want an error %q", v.result.Status, v.result.Observed, interruptedObserved)
			}
		})
	}
}
