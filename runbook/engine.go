package runbook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/secret"
	"github.com/switchover/switchover/steps"
)

// Operator asks a person. The CLI implements it at a terminal; without a
// terminal there is no Operator, and the engine never waits for an answer.
type Operator interface {
	Ask(ctx context.Context, q Question) (Answer, error)
}

// QuestionKind says what is asked. The zero value is unknown.
type QuestionKind int

// The questions the engine asks.
const (
	_          QuestionKind = iota
	AskApprove              // may this destructive step act?
	AskManual               // was this checklist item done?
	AskSettle               // a step was caught running on resume: rerun, mark done, or abort?
)

// Settle choices.
const (
	SettleRerun = "rerun"
	SettleDone  = "done"
	SettleAbort = "abort"
)

// Question is one question for the operator.
type Question struct {
	Kind    QuestionKind
	Step    *Step
	Effect  steps.Effect
	Cluster string
	// TypeToConfirm, when set, must be typed back before the first
	// destructive step of a run acts: the cluster's name.
	TypeToConfirm string
	Detail        string   // what the engine found (settle)
	Choices       []string // for AskSettle
	// Also lists later steps approved together with this one (approve_with).
	Also []Also
}

// Also is a later step approved ahead, with its exact effect.
type Also struct {
	Step   *Step
	Effect steps.Effect
}

// Answer is the operator's answer.
type Answer struct {
	Yes    bool
	Choice string
}

// Options set how a run goes.
type Options struct {
	DryRun     bool
	Yes        bool     // approve every destructive step
	Approve    []string // approve these steps by name
	Operator   Operator // nil: no terminal, never ask
	Observer   Observer
	JournalDir string
	TakeOver   bool   // take the claim of an unfinished run on the cluster
	Settle     string // on resume without an operator: rerun or done
	// Interrupt, when closed, stops the run at the next safe point: waits
	// end at once, a running action finishes, no new step starts.
	Interrupt <-chan struct{}
	Identity  Identity // who runs; CurrentIdentity() when empty
	now       func() time.Time
}

// Result is what a run did.
type Result struct {
	RunID   string
	Journal string
	Outcome Outcome
	// Changed lists the steps whose action ran (or started), in order.
	Changed []string
	// Recovery says what ran after a failure.
	Recovery string
	// ByHand lists what remains to be done by hand after a failure past
	// the point of no return.
	ByHand []string
}

var (
	errInterrupted = fmt.Errorf("%w: interrupted by the operator", ErrDeclined)
	errKilled      = fmt.Errorf("%w: stopped at once by the operator", ErrDeclined)
)

type engine struct {
	p       *Plan
	o       Options
	obs     Observer
	j       *Journal
	runID   string
	red     *secret.Redactor
	approve map[string]bool
	facts   *cluster.Facts
	session *cluster.Session // what steps keep across steps; released when the run returns

	mu   sync.Mutex
	seq  int
	jerr error // the first journal write failure; the run stops on it

	cur          *Step
	changed      []string
	pastPONR     bool
	askedCluster bool
	approved     map[string]bool // steps approved in this run (or before a resume)
}

func newEngine(p *Plan, o Options) (*engine, error) {
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	if o.Identity.User == "" {
		o.Identity = CurrentIdentity()
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.JournalDir == "" {
		o.JournalDir = DefaultJournalDir()
	}
	e := &engine{p: p, o: o, obs: o.Observer, approve: map[string]bool{}, approved: map[string]bool{}, red: &secret.Redactor{}}
	var probs problems
	for _, a := range o.Approve {
		s := p.Step(a)
		switch {
		case s == nil:
			msg := fmt.Sprintf("--approve %s: the runbook has no step %q", a, a)
			names := []string{}
			for _, s := range p.AllSteps() {
				names = append(names, s.Name)
			}
			if sug := suggest(a, names); sug != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sug)
			}
			probs.add(Pos{}, "%s", msg)
		case !s.Destructive && !s.Manual:
			probs.add(Pos{}, "--approve %s: step %q neither is destructive nor asks for confirmation; nothing to approve", a, a)
		}
		e.approve[a] = true
	}
	if o.Settle != "" && o.Settle != SettleRerun && o.Settle != SettleDone {
		probs.add(Pos{}, "--settle %s: want %q or %q", o.Settle, SettleRerun, SettleDone)
	}
	if err := probs.err(); err != nil {
		return nil, err
	}
	if p.Cluster != nil {
		for _, n := range p.Cluster.Nodes {
			e.red.AddConninfo(n.Conninfo)
		}
		if p.Cluster.Pooler != nil {
			e.red.AddConninfo(p.Cluster.Pooler.Admin)
		}
	}
	for k, v := range p.Vars {
		if secret.LooksSecret(k) {
			e.red.Add(v)
		}
	}
	e.red.Add(os.Getenv("PGPASSWORD"))
	e.session = &cluster.Session{}
	e.facts = &cluster.Facts{OnSet: func(k, v string) {
		_ = e.emit(Event{Type: EventFact, Step: e.curName(), Fact: &Fact{Key: k, Value: v}})
	}}
	return e, nil
}

func (e *engine) curName() string {
	if e.cur == nil {
		return ""
	}
	return e.cur.Name
}

// emit journals an event and hands it to the observer. Secrets are masked
// first. A journal that cannot be written stops the run at the next step.
func (e *engine) emit(ev Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	ev.Seq, ev.RunID, ev.DryRun = e.seq, e.runID, e.o.DryRun
	if ev.Time.IsZero() {
		ev.Time = e.o.now()
	}
	e.redactEvent(&ev)
	var err error
	if e.j != nil && e.jerr == nil {
		if err = e.j.append(ev); err != nil {
			e.jerr = err
		}
	}
	e.obs.Observe(ev)
	if err == nil {
		err = e.jerr
	}
	return err
}

func (e *engine) redactEvent(ev *Event) {
	r := e.red.Redact
	ev.Output, ev.Message, ev.Error = r(ev.Output), r(ev.Message), r(ev.Error)
	if ev.Check != nil {
		c := *ev.Check
		c.Describe, c.Observed, c.Wanted, c.Detail = r(c.Describe), r(c.Observed), r(c.Wanted), r(c.Detail)
		ev.Check = &c
	}
	if ev.Effect != nil {
		f := e.redactEffect(*ev.Effect)
		ev.Effect = &f
	}
	if ev.Fact != nil {
		ev.Fact = &Fact{Key: ev.Fact.Key, Value: r(ev.Fact.Value)}
	}
	if ev.Run != nil {
		info := *ev.Run
		info.Vars = map[string]string{}
		for k, v := range ev.Run.Vars {
			if secret.LooksSecret(k) {
				v = secret.Mask
			}
			info.Vars[k] = r(v)
		}
		ev.Run = &info
	}
}

// redactEffect masks the secrets in an effect, for events and for the
// operator's questions alike.
func (e *engine) redactEffect(f steps.Effect) steps.Effect {
	r := e.red.Redact
	f.Command, f.Node, f.Changes = r(f.Command), r(f.Node), r(f.Changes)
	return f
}

func (e *engine) transition(s *Step, st StepState, phase, msg string, cause error) error {
	ev := Event{Type: EventStep, Section: s.Section, Step: s.Name, State: st, Phase: phase, Message: msg}
	if cause != nil {
		ev.Error = cause.Error()
	}
	return e.emit(ev)
}

func (e *engine) note(s *Step, msg string) {
	ev := Event{Type: EventNote, Message: msg}
	if s != nil {
		ev.Section, ev.Step = s.Section, s.Name
	}
	_ = e.emit(ev)
}

func (e *engine) runInfo() *RunInfo {
	info := &RunInfo{
		Runbook: e.p.Runbook.File, RunbookName: e.p.Runbook.Name, RunbookDigest: e.p.Runbook.Digest,
		Cluster: e.p.LockName, Vars: e.p.Vars, User: e.o.Identity.User, Host: e.o.Identity.Host,
		PID: os.Getpid(), PointOfNoReturn: e.p.PointOfNoReturn, VarFlags: e.p.VarFlags,
	}
	if e.p.Inventory != nil {
		info.Inventory, info.InventoryDigest = e.p.Inventory.File, e.p.Inventory.Digest
	}
	for _, s := range e.p.Steps {
		info.Steps = append(info.Steps, s.Name)
	}
	return info
}

func (e *engine) target() *cluster.Target {
	return &cluster.Target{RunID: e.runID, Cluster: e.p.Cluster, Facts: e.facts, Session: e.session, Output: func(line string) {
		_ = e.emit(Event{Type: EventOutput, Section: e.cur.Section, Step: e.cur.Name, Output: line})
	}}
}

func (e *engine) interrupted() bool {
	if e.o.Interrupt == nil {
		return false
	}
	select {
	case <-e.o.Interrupt:
		return true
	default:
		return false
	}
}

// Run runs a plan: every step in order, with its preconditions, approval,
// action and postconditions, the rollback or repair a failure calls for,
// and the finally section. With Options.DryRun it evaluates the
// preconditions and describes every action without acting.
func Run(ctx context.Context, p *Plan, o Options) (*Result, error) {
	e, err := newEngine(p, o)
	if err != nil {
		return nil, err
	}
	defer e.session.CloseAll()
	e.runID = NewRunID(e.o.now())
	res := &Result{RunID: e.runID}
	var lock *clusterLock
	if !o.DryRun {
		h := Holder{RunID: e.runID, User: e.o.Identity.User, Host: e.o.Identity.Host, PID: os.Getpid(), Since: e.o.now()}
		lock, err = acquireLock(e.o.JournalDir, p.LockName, h, "", o.TakeOver)
		if err != nil {
			return nil, notStarted(err)
		}
	}
	e.j, err = createJournal(e.o.JournalDir, e.runID)
	if err != nil {
		lock.release(true)
		return nil, notStarted(err)
	}
	defer e.j.close()
	res.Journal = e.j.Path()
	if err := e.emit(Event{Type: EventRunStarted, Run: e.runInfo()}); err != nil {
		lock.release(true)
		return res, notStarted(err)
	}
	if o.DryRun {
		return res, e.dryRun(ctx, res)
	}
	if err := e.preapprove(nil); err != nil {
		res.Outcome = OutcomeDeclined
		var se *StepError
		errors.As(err, &se)
		_ = e.emit(Event{Type: EventRunFinished, Step: se.Step, Outcome: OutcomeDeclined, Error: se.Err.Error(), Message: "nothing was changed"})
		lock.release(true)
		return res, err
	}
	err = e.execute(ctx, &position{done: map[string]bool{}, caught: map[string]StepState{}}, res)
	lock.release(res.Outcome != OutcomeSuspended && !errors.Is(err, errKilled) && !isSettleStop(err) && !errors.Is(err, errJournal))
	return res, err
}

func notStarted(err error) error {
	var le *LockedError
	if errors.As(err, &le) || errors.Is(err, ErrInvalid) {
		return err
	}
	return fmt.Errorf("%w: %v; nothing was done", ErrInvalid, err)
}

// preapprove refuses a scripted run up front when a step that needs
// approval has none, so that it does not stop half-way.
func (e *engine) preapprove(done map[string]bool) error {
	if e.o.Operator != nil {
		return nil
	}
	var missing []string
	for _, s := range e.p.AllSteps() {
		switch {
		case done[s.Name] || e.approved[s.Name]:
		case s.Manual && !e.approve[s.Name]:
			missing = append(missing, s.Name)
		case s.Destructive && !e.o.Yes && !e.approve[s.Name]:
			missing = append(missing, s.Name)
		}
	}
	return e.missingApprovals(missing)
}

func (e *engine) missingApprovals(missing []string) error {
	if len(missing) == 0 {
		return nil
	}
	flags := make([]string, len(missing))
	for i, m := range missing {
		flags[i] = "--approve " + m
	}
	quoted := make([]string, len(missing))
	for i, m := range missing {
		quoted[i] = fmt.Sprintf("%q", m)
	}
	msg := fmt.Sprintf("step %s needs approval and there is no terminal to ask at: pass %s", strings.Join(quoted, ", "), strings.Join(flags, " "))
	allManual := true
	for _, m := range missing {
		if s := e.p.Step(m); s != nil && !s.Manual {
			allManual = false
		}
	}
	if !allManual {
		msg += ", or --yes for every destructive step"
	}
	if len(missing) > 1 {
		msg = "steps" + strings.Replace(strings.TrimPrefix(msg, "step"), " needs approval", " need approval", 1)
	}
	_ = e.emit(Event{Type: EventApproval, Step: missing[0], Approval: &Approval{Granted: false, User: e.o.Identity.User, Host: e.o.Identity.Host, How: "none", Note: msg}})
	return &StepError{Step: missing[0], Phase: "approval", Err: fmt.Errorf("%w: %s", ErrDeclined, msg)}
}

// position is where a run stands: which steps are done, which were caught
// mid-action, and which recovery section was under way.
type position struct {
	done    map[string]bool
	caught  map[string]StepState // running or verifying when the run was cut off
	section Section              // a recovery or finally section under way
	failure *StepError           // what sent the run into recovery
}

func sentinelFor(phase string) error {
	switch phase {
	case "requires":
		return ErrPrecondition
	case "approval":
		return ErrDeclined
	}
	return ErrAction
}

// execute runs the main steps from pos, then recovery and finally.
func (e *engine) execute(ctx context.Context, pos *position, res *Result) (err error) {
	failure := pos.failure
	var failedStep *Step
	if failure == nil {
		for _, s := range e.p.Steps {
			if pos.done[s.Name] {
				if s.PointOfNoReturn {
					e.pastPONR = true
				}
				continue
			}
			if e.interrupted() {
				return e.suspend(s, res)
			}
			err := e.runStep(ctx, s, pos.caught[s.Name])
			if err == nil {
				if s.PointOfNoReturn {
					e.pastPONR = true
					e.note(s, "point of no return passed: from here on the engine finishes forward and never rolls back")
				}
				continue
			}
			if errors.Is(err, errInterrupted) {
				return e.suspend(s, res)
			}
			if errors.Is(err, errKilled) || isSettleStop(err) {
				return err
			}
			var se *StepError
			if !errors.As(err, &se) {
				se = &StepError{Step: s.Name, Phase: "action", Err: fmt.Errorf("%w: %v", ErrAction, err)}
			}
			failure, failedStep = se, s
			break
		}
	} else {
		failedStep = e.p.Step(failure.Step)
	}
	if failure != nil && errors.Is(failure, ErrPrecondition) && len(e.changed) > 0 {
		// A precondition failure means "nothing changed" (exit 3); here
		// earlier steps had acted, so the cluster may have changed.
		failure.Err = fmt.Errorf("%w: %v, after %s had acted", ErrAction, failure.Err, strings.Join(e.changed, ", "))
	}
	res.Changed = e.changed
	if e.journalFailed() {
		return e.journalStop(failure, res)
	}
	if failure != nil {
		failure.Completed = append([]string(nil), e.changed...)
		if err := e.recover(ctx, failedStep, failure, pos, res); err != nil {
			if e.journalFailed() {
				return e.journalStop(failure, res)
			}
			return err
		}
	}
	if e.journalFailed() {
		return e.journalStop(failure, res)
	}
	if finErr := e.finally(ctx, pos, res); finErr != nil {
		if e.journalFailed() {
			return e.journalStop(failure, res)
		}
		if errors.Is(finErr, errKilled) || isSettleStop(finErr) {
			return finErr
		}
		if failure == nil {
			failure = finErr
		} else {
			failure.Recovery = strings.TrimPrefix(failure.Recovery+"; "+finErr.Recovery, "; ")
			if !errors.Is(failure.Err, ErrAction) {
				failure.Err = fmt.Errorf("%w: %v (and the finally section failed)", ErrAction, failure.Err)
			}
		}
	}
	res.Changed = e.changed
	outcome := OutcomeDone
	ev := Event{Type: EventRunFinished}
	if failure != nil {
		res.Recovery = failure.Recovery
		switch {
		case errors.Is(failure, ErrPrecondition):
			outcome = OutcomePrecondition
		case errors.Is(failure, ErrDeclined):
			outcome = OutcomeDeclined
		default:
			outcome = OutcomeFailed
		}
		ev.Step, ev.Error = failure.Step, failure.Err.Error()
	}
	ev.Outcome = outcome
	ev.Message = e.summary(failure, res)
	res.Outcome = outcome
	_ = e.emit(ev)
	if failure != nil {
		return failure
	}
	return nil
}

func (e *engine) journalFailed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.jerr != nil
}

// errJournal marks a run stopped because its journal could not be written.
var errJournal = errors.New("journal unwritable")

// journalStop ends a run whose journal can no longer be written: nothing
// more may act without a record, not a rollback, not a finally step. The
// error says what ran and what did not, and the run stays resumable.
func (e *engine) journalStop(failure *StepError, res *Result) error {
	e.mu.Lock()
	jerr := e.jerr
	e.mu.Unlock()
	step := e.curName()
	if failure != nil {
		step = failure.Step
	}
	ran := "no action had run"
	if len(e.changed) > 0 {
		ran = "actions that ran: " + strings.Join(e.changed, ", ")
	}
	var notRun []string
	for _, f := range e.p.Finally {
		notRun = append(notRun, f.Name)
	}
	msg := fmt.Sprintf("the journal could not be written (%v), so the run stopped before acting again at step %q: no further step, rollback or finally step ran; %s", jerr, step, ran)
	if len(notRun) > 0 {
		msg += "; finally steps not run: " + strings.Join(notRun, ", ")
	}
	msg += fmt.Sprintf("; free the space and run `switchover resume %s`", e.runID)
	res.Outcome, res.Changed = OutcomeSuspended, e.changed
	return &StepError{Step: step, Phase: "journal", Completed: e.changed, Err: fmt.Errorf("%w: %w: %s", ErrAction, errJournal, msg)}
}

// summary is the one line that says what the run changed.
func (e *engine) summary(failure *StepError, res *Result) string {
	changed := "nothing was changed"
	if len(e.changed) > 0 {
		changed = "actions ran: " + strings.Join(e.changed, ", ")
	}
	if failure == nil {
		return changed
	}
	parts := []string{changed}
	if failure.Recovery != "" {
		parts = append(parts, failure.Recovery)
	}
	if len(res.ByHand) > 0 {
		parts = append(parts, "to finish by hand: "+strings.Join(res.ByHand, "; "))
	}
	return strings.Join(parts, "; ")
}

func (e *engine) suspend(s *Step, res *Result) error {
	res.Outcome = OutcomeSuspended
	res.Changed = e.changed
	var pending []string
	for _, f := range e.p.Finally {
		pending = append(pending, f.Name)
	}
	msg := fmt.Sprintf("suspended before step %q; resume with `switchover resume %s`", s.Name, e.runID)
	if len(pending) > 0 {
		msg += "; the finally section has not run: " + strings.Join(pending, ", ")
	}
	_ = e.emit(Event{Type: EventRunSuspended, Section: s.Section, Step: s.Name, Outcome: OutcomeSuspended, Message: msg})
	return &StepError{Step: s.Name, Phase: "interrupted", Completed: e.changed, Err: fmt.Errorf("%w: %v; %s", ErrDeclined, errInterrupted, msg)}
}

// settleStop is returned when a resumed step needs a person's decision
// that no one can give: the run stays unfinished.
type settleStop struct{ msg string }

func (s *settleStop) Error() string   { return s.msg }
func (s *settleStop) Is(t error) bool { return t == ErrAction }

func isSettleStop(err error) bool {
	var s *settleStop
	return errors.As(err, &s)
}

// recover runs what a failure calls for: before the point of no return, the
// step's rollback section (when something had changed); after it, the
// step's repair section, or a list of what must be finished by hand.
func (e *engine) recover(ctx context.Context, failed *Step, failure *StepError, pos *position, res *Result) error {
	var sec Section
	var list []*Step
	switch {
	case pos.section != "" && pos.section != SectionFinally:
		sec = pos.section
	case pos.section == SectionFinally:
		return nil
	case e.pastPONR && failed != nil && failed.OnFailure != "":
		sec = RepairSection(failed.OnFailure)
	case e.pastPONR:
		res.ByHand = e.byHand(failed)
		failure.Recovery = "past the point of no return: no rollback"
		e.note(failed, "past the point of no return, so no rollback; to finish by hand: "+strings.Join(res.ByHand, "; "))
		return nil
	case failed != nil && failed.OnFailure != "" && len(e.changed) > 0:
		sec = RollbackSection(failed.OnFailure)
	case failed != nil && failed.OnFailure != "":
		failure.Recovery = fmt.Sprintf("rollback %s not needed: no action had run", failed.OnFailure)
		return nil
	default:
		return nil
	}
	name := strings.SplitN(string(sec), ":", 2)[1]
	if strings.HasPrefix(string(sec), "rollback:") {
		list = e.p.Rollback[name]
	} else {
		list = e.p.Repair[name]
	}
	if pos.section != sec {
		if err := e.emit(Event{Type: EventSection, Section: sec, Step: failure.Step, Phase: failure.Phase, Error: failure.Err.Error(),
			Message: fmt.Sprintf("step %q failed: running %s", failure.Step, sec)}); err != nil {
			return err
		}
	}
	for _, s := range list {
		if pos.done[s.Name] {
			continue
		}
		err := e.runStep(ctx, s, pos.caught[s.Name])
		if errors.Is(err, errKilled) || isSettleStop(err) {
			return err
		}
		if err != nil {
			failure.Recovery = fmt.Sprintf("%s failed at step %q: %v", sec, s.Name, err)
			if !errors.Is(failure.Err, ErrAction) {
				failure.Err = fmt.Errorf("%w: %v, and %s failed", ErrAction, failure.Err, sec)
			}
			if e.pastPONR { // a failed repair leaves the rest to a person
				res.ByHand = e.byHand(failed)
			}
			return nil
		}
	}
	failure.Recovery = fmt.Sprintf("%s: done", sec)
	return nil
}

// byHand lists what a failure past the point of no return leaves to do.
func (e *engine) byHand(failed *Step) []string {
	var out []string
	started := false
	t := e.target()
	for _, s := range e.p.Steps {
		if s == failed {
			started = true
		}
		if !started {
			continue
		}
		item := s.Name
		if s.Action != nil {
			eff := s.Action.Describe(t)
			item += fmt.Sprintf(" (%s on %s)", eff.Command, eff.Node)
		}
		out = append(out, e.red.Redact(item))
	}
	return out
}

// finally runs every finally step that has not run, each whatever the
// others did: resuming the pooler must not depend on unpausing the manager.
func (e *engine) finally(ctx context.Context, pos *position, res *Result) *StepError {
	if len(e.p.Finally) == 0 {
		return nil
	}
	if pos.section != SectionFinally {
		if err := e.emit(Event{Type: EventSection, Section: SectionFinally, Message: "running the finally section"}); err != nil {
			return &StepError{Step: "finally", Phase: "action", Err: fmt.Errorf("%w: %v", ErrAction, err)}
		}
	}
	var failed []string
	var first *StepError
	for _, s := range e.p.Finally {
		if pos.done[s.Name] {
			continue
		}
		err := e.runStep(ctx, s, pos.caught[s.Name])
		if errors.Is(err, errKilled) || isSettleStop(err) {
			return &StepError{Step: s.Name, Phase: "action", Err: err}
		}
		if err != nil {
			failed = append(failed, s.Name)
			if first == nil {
				first = &StepError{Step: s.Name, Phase: "action", Completed: e.changed, Err: fmt.Errorf("%w: %v", ErrAction, err)}
			}
		}
	}
	if first != nil {
		first.Recovery = "finally section failed at " + strings.Join(failed, ", ")
	}
	return first
}

// runStep takes one step through its lifecycle. caught is the state a
// resumed run found it in (running or verifying), or "".
func (e *engine) runStep(ctx context.Context, s *Step, caught StepState) error {
	e.cur = s
	if caught == StateRunning || caught == StateVerifying {
		return e.settle(ctx, s, caught)
	}
	if err := e.transition(s, StateChecking, "", "", nil); err != nil {
		return err
	}
	if err := e.conds(ctx, s, s.Requires, "requires", true); err != nil {
		return e.fail(s, "requires", err)
	}
	if err := e.approveStep(ctx, s); err != nil {
		return err
	}
	return e.act(ctx, s)
}

func (e *engine) fail(s *Step, phase string, err error) error {
	if errors.Is(err, errInterrupted) || errors.Is(err, errKilled) {
		return err
	}
	if jerr := e.transition(s, StateFailed, phase, "", err); jerr != nil {
		err = fmt.Errorf("%v (and the journal could not record it: %v)", err, jerr)
	}
	if !errors.Is(err, ErrPrecondition) && !errors.Is(err, ErrAction) && !errors.Is(err, ErrDeclined) {
		err = fmt.Errorf("%w: %v", sentinelFor(phase), err)
	}
	return &StepError{Step: s.Name, Phase: phase, Err: &maskedError{err: err, text: e.red.Redact(err.Error())}}
}

// maskedError is an error whose text has its secrets masked; it still
// unwraps to the original, so the sentinels and exit codes hold.
type maskedError struct {
	err  error
	text string
}

func (m *maskedError) Error() string { return m.text }
func (m *maskedError) Unwrap() error { return m.err }

// act runs the action and the postconditions of a step whose
// preconditions and approval are settled.
func (e *engine) act(ctx context.Context, s *Step) error {
	if s.Action != nil {
		t := e.target()
		eff := s.Action.Describe(t)
		if err := e.emit(Event{Type: EventEffect, Section: s.Section, Step: s.Name, Effect: &eff}); err != nil {
			return e.fail(s, "action", err)
		}
		if err := e.transition(s, StateRunning, "", "", nil); err != nil {
			return e.fail(s, "action", err)
		}
		e.changed = append(e.changed, s.Name)
		start := time.Now()
		if !s.Manual {
			if err := e.apply(ctx, s, t); err != nil {
				if ctx.Err() != nil {
					return errKilled
				}
				return e.fail(s, "action", fmt.Errorf("%s after %s: %w", s.ActionKind, time.Since(start).Round(time.Millisecond), err))
			}
		}
	}
	if len(s.Ensures) > 0 {
		if err := e.transition(s, StateVerifying, "", "", nil); err != nil {
			return e.fail(s, "ensures", err)
		}
		if err := e.conds(ctx, s, s.Ensures, "ensures", true); err != nil {
			return e.fail(s, "ensures", err)
		}
	}
	if err := e.transition(s, StateDone, "", "", nil); err != nil {
		return e.fail(s, "ensures", err)
	}
	return nil
}

// approveStep gets approval for a destructive step (under steps:) and the
// operator's confirmation for a manual one.
func (e *engine) approveStep(ctx context.Context, s *Step) error {
	// Later destructive steps approved together with this one, at a
	// terminal, so that no prompt waits while clients are held.
	var together []*Step
	if e.o.Operator != nil && !e.approved[s.Name] {
		for _, name := range s.ApproveWith {
			if later := e.p.Step(name); later != nil && !e.approved[name] && !e.approve[name] && !e.o.Yes {
				together = append(together, later)
			}
		}
	}
	needs := (s.Destructive && s.Section == SectionSteps) || s.Manual || len(together) > 0
	if !needs || e.approved[s.Name] {
		return nil
	}
	if err := e.transition(s, StateAwaitingApproval, "", "", nil); err != nil {
		return e.fail(s, "approval", err)
	}
	a := &Approval{User: e.o.Identity.User, Host: e.o.Identity.Host}
	switch {
	case e.approve[s.Name]:
		a.Granted, a.How = true, "--approve"
	case e.o.Yes && !s.Manual:
		a.Granted, a.How = true, "--yes"
	case e.o.Operator != nil:
		q := Question{Kind: AskApprove, Step: s, Cluster: e.p.LockName}
		if s.Manual {
			q.Kind = AskManual
		}
		if s.Action != nil {
			q.Effect = e.redactEffect(s.Action.Describe(e.target()))
		}
		for _, later := range together {
			also := Also{Step: later}
			if later.Action != nil {
				also.Effect = e.redactEffect(later.Action.Describe(e.target()))
			}
			q.Also = append(q.Also, also)
		}
		if q.Kind == AskApprove && !e.askedCluster {
			q.TypeToConfirm = e.p.LockName
		}
		ans, err := e.o.Operator.Ask(ctx, q)
		if err != nil {
			a.How, a.Note = "prompt", "no answer: "+err.Error()
			_ = e.emit(Event{Type: EventApproval, Section: s.Section, Step: s.Name, Approval: a})
			return e.declined(s, fmt.Sprintf("approval of step %q was not given: %v", s.Name, err))
		}
		a.Granted, a.How = ans.Yes, "prompt"
		if ans.Yes && q.TypeToConfirm != "" {
			e.askedCluster = true
			a.Note = "cluster name typed"
		}
	default:
		return e.missingApprovals([]string{s.Name})
	}
	if err := e.emit(Event{Type: EventApproval, Section: s.Section, Step: s.Name, Approval: a}); err != nil {
		return e.fail(s, "approval", err)
	}
	if !a.Granted {
		return e.declined(s, fmt.Sprintf("the operator declined step %q", s.Name))
	}
	e.approved[s.Name] = true
	if a.How == "prompt" {
		for _, later := range together {
			la := &Approval{Granted: true, User: a.User, Host: a.Host, How: "prompt", Note: fmt.Sprintf("approved ahead, with step %q", s.Name)}
			if err := e.emit(Event{Type: EventApproval, Section: later.Section, Step: later.Name, Approval: la}); err != nil {
				return e.fail(s, "approval", err)
			}
			e.approved[later.Name] = true
		}
	}
	return nil
}

func (e *engine) declined(s *Step, msg string) error {
	_ = e.transition(s, StateSkipped, "approval", msg, nil)
	return &StepError{Step: s.Name, Phase: "approval", Err: fmt.Errorf("%w: %s", ErrDeclined, msg)}
}

// apply runs an action under its timeout and a recover(). An action that
// ignores its context is abandoned a few seconds after its deadline and
// reported as possibly still running.
func (e *engine) apply(ctx context.Context, s *Step, t *cluster.Target) (err error) {
	actx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("the action panicked: %v", r)
			}
		}()
		done <- s.Action.Apply(actx, t)
	}()
	select {
	case err := <-done:
		if err != nil && actx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			return fmt.Errorf("timed out after %s: %w", s.Timeout, err)
		}
		return err
	case <-actx.Done():
	}
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("timed out after %s: %w", s.Timeout, err)
	case <-time.After(abandonGrace):
		return fmt.Errorf("did not stop within %s of its %s timeout; it may still be running", abandonGrace, s.Timeout)
	}
}

// abandonGrace is how long an action or a check may overrun its deadline
// before the engine stops waiting for it.
var abandonGrace = 3 * time.Second

// conds evaluates a list of checks concurrently and reports them in the
// order written. poll honours within:.
func (e *engine) conds(ctx context.Context, s *Step, list []*Cond, phase string, poll bool) error {
	if len(list) == 0 {
		return nil
	}
	// Once one check has failed for good the step fails whatever the
	// others say: stop waiting on them rather than sit out their within:.
	sctx, stopSiblings := context.WithCancel(ctx)
	defer stopSiblings()
	results := make([]checks.Result, len(list))
	cut := make([]bool, len(list))
	elapsed := make([]time.Duration, len(list))
	var wg sync.WaitGroup
	for i, c := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			results[i], cut[i] = e.evaluate(sctx, s, c, phase, poll)
			elapsed[i] = time.Since(start)
			if results[i].Status != checks.Pass && !cut[i] {
				stopSiblings()
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return errKilled
	}
	var firstFail error
	t := e.target()
	for i, c := range list {
		r := results[i]
		ce := &CheckEvent{
			Kind: c.Kind, Describe: c.Check.Describe(t), Status: r.Status.String(), Observed: r.Observed,
			Wanted: r.Wanted, Detail: r.Detail, Values: r.Values, ElapsedMS: elapsed[i].Milliseconds(),
			WithinMS: c.Within.Milliseconds(),
		}
		if cut[i] && r.Status != checks.Pass {
			ce.Status, ce.NotEvaluated = checks.Unknown.String(), "not waited for: another check of this step failed"
			if r.Observed != "" {
				ce.Observed = "last seen: " + r.Observed
			}
		}
		if err := e.emit(Event{Type: EventCheck, Section: s.Section, Step: s.Name, Phase: phase, Check: ce}); err != nil && firstFail == nil {
			firstFail = err
		}
		if r.Status != checks.Pass && !cut[i] && firstFail == nil {
			firstFail = checkFailure(c, r, phase)
		}
	}
	if e.interrupted() && firstFail != nil {
		for _, r := range results {
			if r.Observed == "interrupted by the operator" {
				return errInterrupted
			}
		}
	}
	return firstFail
}

func checkFailure(c *Cond, r checks.Result, phase string) error {
	sentinel := ErrAction
	if phase == "requires" {
		sentinel = ErrPrecondition
	}
	msg := fmt.Sprintf("%s %s: %s", phase, c.Kind, r.Status)
	if r.Observed != "" {
		msg += ": " + r.Observed
	}
	if r.Wanted != "" {
		msg += "; wanted " + r.Wanted
	}
	if c.Within > 0 {
		msg += fmt.Sprintf(" (within %s)", c.Within)
	}
	return fmt.Errorf("%w: %s", sentinel, msg)
}

// evaluate runs one check, polling until it passes when it has within:
// and poll is set, and never longer than its deadline.
func (e *engine) evaluate(ctx context.Context, s *Step, c *Cond, phase string, poll bool) (checks.Result, bool) {
	start := time.Now()
	t := e.target()
	for attempt := 1; ; attempt++ {
		r := e.checkOnce(ctx, c, t)
		if ctx.Err() != nil && r.Status != checks.Pass {
			return r, true // cut short: by a failed sibling, or the operator
		}
		left := c.Within - time.Since(start)
		if r.Status == checks.Pass || !poll || c.Within == 0 || left <= 0 {
			return r, false
		}
		_ = e.emit(Event{Type: EventWaiting, Section: s.Section, Step: s.Name, Phase: phase, Check: &CheckEvent{
			Kind: c.Kind, Describe: c.Check.Describe(t), Status: r.Status.String(), Observed: r.Observed,
			Wanted: r.Wanted, Attempt: attempt, WithinMS: c.Within.Milliseconds(),
			ElapsedMS: time.Since(start).Milliseconds(),
		}})
		wait := min(c.Every, left)
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return r, true
		case <-e.o.Interrupt:
			timer.Stop()
			return checks.Result{Status: checks.Error, Observed: "interrupted by the operator"}, false
		}
	}
}

// checkOnce runs a check once under its timeout and a recover(). A check
// that ignores its context is abandoned, so checks never pile up.
func (e *engine) checkOnce(ctx context.Context, c *Cond, t *cluster.Target) checks.Result {
	cctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	done := make(chan checks.Result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- checks.Result{Status: checks.Error, Observed: fmt.Sprintf("the check panicked: %v", r)}
			}
		}()
		done <- c.Check.Run(cctx, t)
	}()
	var r checks.Result
	select {
	case r = <-done:
	case <-cctx.Done():
		select {
		case r = <-done:
		case <-time.After(checkGrace):
			r = checks.Result{Status: checks.Error, Observed: fmt.Sprintf("no answer within %s", c.Timeout)}
		}
		if r.Status == checks.Pass {
			break
		}
		if cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			r.Status = checks.Error
			r.Observed = strings.TrimSpace(fmt.Sprintf("no answer within %s %s", c.Timeout, r.Observed))
		}
	}
	if r.Status == checks.Unknown {
		r = checks.Result{Status: checks.Error, Observed: "the check returned no verdict"}
	}
	return r
}

var checkGrace = 250 * time.Millisecond

// settleWithin bounds how long a resume waits for the postconditions of a
// step cut off mid-action: long enough for what the action had set going
// (a shutdown signalled, a promotion under way) to take effect, short
// enough not to hold clients for a full within: when the action never ran.
// A step whose action completed (caught verifying) gets its full within.
var settleWithin = 3 * time.Second

// capWithin returns copies of conds whose within is at most d.
func capWithin(conds []*Cond, d time.Duration) []*Cond {
	out := make([]*Cond, len(conds))
	for i, c := range conds {
		cc := *c
		if cc.Within > d {
			cc.Within = d
		}
		out[i] = &cc
	}
	return out
}

// settle decides what a step caught mid-action by an interruption
// becomes: done if its postconditions hold, run again if it is idempotent
// (or the operator says so), otherwise the operator's call.
func (e *engine) settle(ctx context.Context, s *Step, caught StepState) error {
	e.note(s, fmt.Sprintf("step %q was cut off while %s; checking its postconditions", s.Name, caught))
	if len(s.Ensures) > 0 {
		if err := e.transition(s, StateVerifying, "settle", "", nil); err != nil {
			return e.fail(s, "settle", err)
		}
		ensures := s.Ensures
		if caught == StateRunning {
			ensures = capWithin(ensures, settleWithin)
		}
		err := e.conds(ctx, s, ensures, "ensures", true)
		if err == nil {
			return e.transition(s, StateDone, "settle", "postconditions hold: counted as done", nil)
		}
		if errors.Is(err, errInterrupted) || errors.Is(err, errKilled) {
			return err
		}
		if caught == StateVerifying {
			return e.fail(s, "ensures", err)
		}
	}
	if s.Action == nil {
		return e.act(ctx, s)
	}
	why := "its postconditions do not hold"
	if len(s.Ensures) == 0 {
		why = "it has no postconditions to tell whether it finished"
	}
	choice := ""
	switch {
	case s.Idempotent:
		choice = SettleRerun
		e.note(s, fmt.Sprintf("step %q: %s; it is idempotent, so it runs again", s.Name, why))
	case e.o.Settle != "":
		choice = e.o.Settle
	case e.o.Operator != nil:
		ans, err := e.o.Operator.Ask(ctx, Question{Kind: AskSettle, Step: s, Cluster: e.p.LockName,
			Effect: e.redactEffect(s.Action.Describe(e.target())), Detail: fmt.Sprintf("step %q was cut off while its action ran, and %s", s.Name, why),
			Choices: []string{SettleRerun, SettleDone, SettleAbort}})
		if err != nil {
			return &settleStop{msg: fmt.Sprintf("step %q: no answer to settle it: %v", s.Name, err)}
		}
		choice = ans.Choice
	default:
		return &settleStop{msg: fmt.Sprintf("step %q was cut off while its action ran, and %s; "+
			"a person must decide: resume at a terminal, or pass --settle rerun (run it again) or --settle done (it finished; checked by hand)", s.Name, why)}
	}
	a := &Approval{Granted: true, User: e.o.Identity.User, Host: e.o.Identity.Host, How: "prompt", Note: "settle: " + choice}
	if e.o.Settle != "" && !s.Idempotent {
		a.How = "--settle"
	}
	if s.Idempotent {
		a.How = "idempotent"
	}
	if err := e.emit(Event{Type: EventApproval, Section: s.Section, Step: s.Name, Phase: "settle", Approval: a}); err != nil {
		return e.fail(s, "settle", err)
	}
	switch choice {
	case SettleRerun:
		return e.act(ctx, s)
	case SettleDone:
		return e.transition(s, StateDone, "settle", "marked done by "+a.User+" ("+a.How+")", nil)
	}
	return e.fail(s, "settle", fmt.Errorf("%w: the operator aborted at step %q", ErrAction, s.Name))
}
