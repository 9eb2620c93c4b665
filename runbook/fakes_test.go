package runbook

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/steps"
)

// Fakes for the engine tests: checks and steps that do what a test scripts,
// an observer that records, and an operator that answers from a script.

var testIdentity = Identity{User: "dba", Host: "bastion-1"}

const testCluster = "pg-test"

// callLog records the actions applied, across every step of a plan, in order.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, name)
}

func (l *callLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

func (l *callLog) count(name string) int {
	n := 0
	for _, c := range l.list() {
		if c == name {
			n++
		}
	}
	return n
}

// fakeCheck returns its scripted results in turn; the last one repeats. An
// empty script passes.
type fakeCheck struct {
	name    string
	results []checks.Result
	// panicMsg, when set, makes every evaluation panic with it.
	panicMsg string
	// sleep is how long an evaluation takes (it honours ctx).
	sleep time.Duration
	// block, when set, makes an evaluation wait until it is closed,
	// ignoring ctx.
	block chan struct{}
	// fn, when set, decides the result (call counts from 1).
	fn func(t *cluster.Target, call int) checks.Result

	mu    sync.Mutex
	calls int
}

var _ checks.Check = (*fakeCheck)(nil)

func (c *fakeCheck) Describe(*cluster.Target) string { return "fake check " + c.name }

func (c *fakeCheck) Run(ctx context.Context, t *cluster.Target) checks.Result {
	c.mu.Lock()
	c.calls++
	n := c.calls
	c.mu.Unlock()
	if c.panicMsg != "" {
		panic(c.panicMsg)
	}
	if c.block != nil {
		<-c.block
	}
	if c.sleep > 0 {
		select {
		case <-time.After(c.sleep):
		case <-ctx.Done():
			return checks.Errored(ctx.Err())
		}
	}
	if c.fn != nil {
		return c.fn(t, n)
	}
	if len(c.results) == 0 {
		return checks.Passed(c.name + " holds")
	}
	return c.results[min(n, len(c.results))-1]
}

func (c *fakeCheck) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func passCheck(name string) *fakeCheck { return &fakeCheck{name: name} }

func failCheck(name string) *fakeCheck {
	return &fakeCheck{name: name, results: []checks.Result{checks.Failed(name+" does not hold", name)}}
}

// script returns a check whose results follow verdicts: 'p' pass, 'f' fail.
func script(name, verdicts string) *fakeCheck {
	c := &fakeCheck{name: name}
	for _, v := range verdicts {
		if v == 'p' {
			c.results = append(c.results, checks.Passed(name+" holds"))
		} else {
			c.results = append(c.results, checks.Failed(name+" does not hold", name))
		}
	}
	return c
}

// fakeStep records every Apply in a shared log, then does what apply says
// (nothing, when apply is nil).
type fakeStep struct {
	name   string
	log    *callLog
	effect steps.Effect
	apply  func(ctx context.Context, t *cluster.Target, call int) error
	// started, when set, is closed when Apply is first called.
	started chan struct{}

	mu    sync.Mutex
	calls int
	once  sync.Once
}

var _ steps.Step = (*fakeStep)(nil)

func (s *fakeStep) Describe(*cluster.Target) steps.Effect {
	if s.effect != (steps.Effect{}) {
		return s.effect
	}
	return steps.Effect{Node: "local", Command: "fake " + s.name, Changes: "whatever " + s.name + " changes"}
}

func (s *fakeStep) Apply(ctx context.Context, t *cluster.Target) error {
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.mu.Unlock()
	s.log.add(s.name)
	if s.started != nil {
		s.once.Do(func() { close(s.started) })
	}
	if s.apply == nil {
		return nil
	}
	return s.apply(ctx, t, n)
}

// fakeManual is a checklist item: the engine asks instead of applying it.
type fakeManual struct{ *fakeStep }

var _ steps.Manual = fakeManual{}

func (fakeManual) Checklist() string { return "confirm the change window is open" }

// Behaviours for fakeStep.apply.

func failing(msg string) func(context.Context, *cluster.Target, int) error {
	return func(context.Context, *cluster.Target, int) error { return errors.New(msg) }
}

func panicking(msg string) func(context.Context, *cluster.Target, int) error {
	return func(context.Context, *cluster.Target, int) error { panic(msg) }
}

// untilCtxDone blocks until the action's context ends.
func untilCtxDone(ctx context.Context, _ *cluster.Target, _ int) error {
	<-ctx.Done()
	return ctx.Err()
}

// onFirstCall behaves as first on the first call and as later afterwards
// (nil: succeed).
func onFirstCall(first, later func(context.Context, *cluster.Target, int) error) func(context.Context, *cluster.Target, int) error {
	return func(ctx context.Context, t *cluster.Target, n int) error {
		if n == 1 {
			return first(ctx, t, n)
		}
		if later == nil {
			return nil
		}
		return later(ctx, t, n)
	}
}

// recorder is an Observer that keeps every event.
type recorder struct {
	mu  sync.Mutex
	evs []journal.Event
}

func (r *recorder) Observe(e journal.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
}

func (r *recorder) events() []journal.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]journal.Event(nil), r.evs...)
}

func (r *recorder) ofType(t journal.EventType) []journal.Event {
	var out []journal.Event
	for _, e := range r.events() {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

// waitFor waits until an event satisfies ok, or fails the test.
func (r *recorder) waitFor(t *testing.T, what string, ok func(journal.Event) bool) journal.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range r.events() {
			if ok(e) {
				return e
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %s event within 5s", what)
	return journal.Event{}
}

// fakeOperator answers questions from a script; when the script runs out
// it answers yes. It records every question.
type fakeOperator struct {
	answers []Answer
	err     error

	mu        sync.Mutex
	questions []Question
}

func (o *fakeOperator) Ask(_ context.Context, q Question) (Answer, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.questions = append(o.questions, q)
	if o.err != nil {
		return Answer{}, o.err
	}
	if n := len(o.questions); n <= len(o.answers) {
		return o.answers[n-1], nil
	}
	return Answer{Yes: true}, nil
}

func (o *fakeOperator) asked() []Question {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Question(nil), o.questions...)
}

// Plan building.

func newPlan(main ...*spec.Step) *spec.Plan {
	return &spec.Plan{
		Runbook:  &spec.Runbook{Name: "test-switchover", File: "test.yaml", Digest: "sha256:test-digest"},
		LockName: testCluster,
		Vars:     map[string]string{"primary": "pg1", "candidate": "pg2"},
		Defaults: spec.DefaultDefaults,
		Steps:    main,
		Rollback: map[string][]*spec.Step{},
		Repair:   map[string][]*spec.Step{},
	}
}

// act returns a main-section step whose action is a fakeStep logging to log.
func act(log *callLog, name string) *spec.Step {
	return &spec.Step{
		Name:       name,
		Section:    spec.SectionSteps,
		Action:     &fakeStep{name: name, log: log},
		ActionKind: "fake.step",
		Timeout:    5 * time.Second,
	}
}

// fake returns the fakeStep behind s.
func fake(s *spec.Step) *fakeStep {
	switch a := s.Action.(type) {
	case *fakeStep:
		return a
	case fakeManual:
		return a.fakeStep
	}
	panic(fmt.Sprintf("step %s has no fake action", s.Name))
}

func cond(c checks.Check) *spec.Cond {
	return &spec.Cond{Kind: "fake.check", Check: c, Timeout: 2 * time.Second, Every: 20 * time.Millisecond}
}

func within(c checks.Check, within, every time.Duration) *spec.Cond {
	k := cond(c)
	k.Within, k.Every = within, every
	return k
}

func withRollback(p *spec.Plan, name string, list ...*spec.Step) *spec.Plan {
	for _, s := range list {
		s.Section = spec.RollbackSection(name)
	}
	p.Rollback[name] = list
	p.Runbook.Rollback = append(p.Runbook.Rollback, &spec.SectionDecl{Name: name})
	return p
}

func withRepair(p *spec.Plan, name string, list ...*spec.Step) *spec.Plan {
	for _, s := range list {
		s.Section = spec.RepairSection(name)
	}
	p.Repair[name] = list
	p.Runbook.Repair = append(p.Runbook.Repair, &spec.SectionDecl{Name: name})
	return p
}

func withFinally(p *spec.Plan, list ...*spec.Step) *spec.Plan {
	for _, s := range list {
		s.Section = spec.SectionFinally
	}
	p.Finally = list
	return p
}

// trace renders the events that tell a run's story, one short line each:
// step transitions, verdicts, waits, approvals, sections and the outcome.
func trace(evs []journal.Event) []string {
	var out []string
	for _, e := range evs {
		switch e.Type {
		case journal.EventStep:
			s := fmt.Sprintf("%s: %s", e.Step, e.State)
			if e.State == journal.StateFailed || e.State == journal.StateSkipped {
				s += " (" + e.Phase + ")"
			}
			out = append(out, s)
		case journal.EventCheck:
			out = append(out, fmt.Sprintf("%s: %s %s", e.Step, e.Phase, e.Check.Status))
		case journal.EventWaiting:
			out = append(out, fmt.Sprintf("%s: waiting %s", e.Step, e.Phase))
		case journal.EventApproval:
			verdict := "declined"
			if e.Approval.Granted {
				verdict = "granted"
			}
			out = append(out, fmt.Sprintf("%s: approval %s %s", e.Step, verdict, e.Approval.How))
		case journal.EventSection:
			out = append(out, "section "+string(e.Section))
		case journal.EventRunSuspended:
			out = append(out, "suspended")
		case journal.EventRunFinished:
			out = append(out, "finished "+string(e.Outcome))
		}
	}
	return out
}

func stepStates(evs []journal.Event, step string) []journal.StepState {
	var out []journal.StepState
	for _, e := range evs {
		if e.Type == journal.EventStep && e.Step == step {
			out = append(out, e.State)
		}
	}
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func lines(ss []string) string { return "\n\t" + strings.Join(ss, "\n\t") }

// options returns the options of a test run in a fresh journal directory.
func options(t *testing.T, rec *recorder) Options {
	return Options{JournalDir: t.TempDir(), Observer: rec, Identity: testIdentity}
}

// runOut is what a run returned, and how long it took.
type runOut struct {
	res *Result
	err error
	dur time.Duration
}

// goRun starts a run in the background.
func goRun(f func() (*Result, error)) <-chan runOut {
	ch := make(chan runOut, 1)
	go func() {
		start := time.Now()
		res, err := f()
		ch <- runOut{res, err, time.Since(start)}
	}()
	return ch
}

// await waits for a background run, failing the test when it has not
// returned within d.
func await(t *testing.T, what string, d time.Duration, ch <-chan runOut) runOut {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatalf("%s did not return within %s", what, d)
	}
	return runOut{}
}
