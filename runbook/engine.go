// The engine's public face: what it asks the operator, the options of a
// run, its result, and Run, which builds the engine and takes the cluster's
// lock; the other engine files hold one job each (emit, approval, flow,
// lifecycle, evaluator, resume).

package runbook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/kinds"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/secret"
	"github.com/switchover/switchover/internal/transport"
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
	Step    *spec.Step
	Effect  kinds.Effect
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
	Step   *spec.Step
	Effect kinds.Effect
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
	Observer   journal.Observer
	JournalDir string
	TakeOver   bool // take the claim of an unfinished run on the cluster
	// Claim is the run's claim kept in the cluster itself; nil takes the
	// one in the plan's PostgreSQL nodes (ClaimInCluster), as every run
	// must. Tests of the flow give their own.
	Claim ClusterClaim
	// Guard starts the process that resumes the pooler if this one dies
	// or overruns the budget while clients are held (see Guard); nil
	// starts this program again as the guard when it serves guards
	// (ServeGuards), else the run keeps the budget itself, with no guard.
	Guard  func(GuardSpec) (release func(), err error)
	Settle string // on resume without an operator: rerun or done
	// Interrupt, when closed, stops the run at the next safe point: waits
	// end at once, a running action finishes, no new step starts.
	Interrupt <-chan struct{}
	Identity  Identity // who runs; CurrentIdentity() when empty
	// Fleet is the key of the fleet run this run is part of (see
	// fleetDone): a cluster the fleet switched already is refused, and a
	// run that is done records that it switched it. A resume takes it
	// from the journal.
	Fleet string
	now   func() time.Time
}

// Result is what a run did.
type Result struct {
	RunID   string
	Journal string
	Outcome journal.Outcome
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

// engine is one run (or resume) of a plan: its options, journal and
// redactor, and where the run stands.
type engine struct {
	// takeOverNote says, once the run has started, whose claim it takes
	// over (--take-over); "" when none.
	takeOverNote string
	// newPrimary is the node a done step made the primary
	// (kinds.Promoter); "" while none has.
	newPrimary string
	// oldPrimary is the node that step took the role from, when it
	// names one (kinds.Demoter).
	oldPrimary string
	p          *spec.Plan
	o          Options
	obs        journal.Observer
	j          *journal.Journal
	runID      string
	red        *secret.Redactor
	approve    map[string]bool
	facts      *cluster.Facts
	session    *cluster.Session // what steps keep across steps; released when the run returns

	mu   sync.Mutex
	seq  int
	jerr error // the first journal write failure; the run stops on it

	cur          *spec.Step
	changed      []string
	pastPONR     bool
	askedCluster bool
	askedAhead   bool            // the approval asked before the first action (see askAhead)
	noChange     atomic.Bool     // the current action said it found nothing to do
	approved     map[string]bool // steps approved in this run (or before a resume)
	guardRelease func()          // tells the guard of the hold under way that clients go on
	intr         <-chan struct{} // ends the current step's checks' waits on an interrupt (see window)
	claimed      bool            // this run holds its claim in the cluster
	resuming     string          // the id of the run a resume continues, whose claim is its own
	started      time.Time       // when run.started (or run.resumed) was emitted
}

// newEngine checks the options against the plan (every --approve names a
// step that asks for approval, --settle is rerun or done) and sets up the
// redactor with every secret the plan and environment hold.
func newEngine(p *spec.Plan, o Options) (*engine, error) {
	if o.Observer == nil {
		o.Observer = journal.ObserverFunc(func(journal.Event) {})
	}
	if o.Identity.User == "" {
		o.Identity = CurrentIdentity()
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.JournalDir == "" {
		o.JournalDir = journal.DefaultJournalDir()
	}
	// The library takes its own safety: whoever runs a plan gets the
	// cluster's claim and, in a program that serves guards, the guard.
	if o.Claim == nil {
		o.Claim = ClaimInCluster(p)
	}
	if o.Guard == nil && !o.DryRun && servesGuards.Load() {
		o.Guard = startGuardProcess
	}
	e := &engine{p: p, o: o, obs: o.Observer, approve: map[string]bool{}, approved: map[string]bool{}, red: &secret.Redactor{}, intr: o.Interrupt}
	var probs []spec.Problem
	for _, a := range o.Approve {
		s := p.Step(a)
		switch {
		case s == nil:
			msg := fmt.Sprintf("--approve %s: the runbook has no step %q", a, a)
			names := []string{}
			for _, s := range p.AllSteps() {
				names = append(names, s.Name)
			}
			if sug := params.Suggest(a, names); sug != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sug)
			}
			probs = append(probs, spec.Problem{Msg: msg})
		case !s.Destructive && !s.Manual:
			probs = append(probs, spec.Problem{Msg: fmt.Sprintf("--approve %s: step %q neither is destructive nor asks for confirmation; nothing to approve", a, a)})
		}
		e.approve[a] = true
	}
	if o.Settle != "" && o.Settle != SettleRerun && o.Settle != SettleDone {
		probs = append(probs, spec.Problem{Msg: fmt.Sprintf("--settle %s: want %q or %q", o.Settle, SettleRerun, SettleDone)})
	}
	if len(probs) > 0 {
		return nil, spec.NewValidationError(probs)
	}
	if p.Cluster != nil {
		for _, n := range p.Cluster.Nodes {
			e.red.AddConninfo(n.Conninfo)
		}
		for _, pl := range p.Cluster.Poolers {
			e.red.AddConninfo(pl.Admin)
		}
		if p.Cluster.Router != nil {
			e.red.AddConninfo(p.Cluster.Router.Endpoint)
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
		_ = e.emit(journal.Event{Type: journal.EventFact, Step: e.curName(), Fact: &journal.Fact{Key: k, Value: v}})
	}}
	return e, nil
}

// curName is the name of the step under way, or "".
func (e *engine) curName() string {
	if e.cur == nil {
		return ""
	}
	return e.cur.Name
}

// runInfo is what a run.started or run.resumed event records of the run.
func (e *engine) runInfo() *journal.RunInfo {
	info := &journal.RunInfo{
		Runbook: e.p.Runbook.File, RunbookName: e.p.Runbook.Name, RunbookDigest: e.p.Runbook.Digest,
		Cluster: e.p.LockName, Vars: e.p.Vars, User: e.o.Identity.User, Host: e.o.Identity.Host,
		PID: os.Getpid(), PointOfNoReturn: e.p.PointOfNoReturn, VarFlags: e.p.VarFlags, Found: e.p.Found,
		Fleet: e.o.Fleet,
	}
	if e.p.Inventory != nil {
		info.Inventory, info.InventoryDigest = e.p.Inventory.File, e.p.Inventory.Digest
	}
	for _, s := range e.p.Steps {
		info.Steps = append(info.Steps, s.Name)
	}
	return info
}

// target is what checks and steps see of the run; their output is
// emitted as the current step's.
func (e *engine) target() *cluster.Target {
	return &cluster.Target{RunID: e.runID, Cluster: e.p.Cluster, Facts: e.facts, Session: e.session, Hold: e, Output: func(line string) {
		_ = e.emit(journal.Event{Type: journal.EventOutput, Section: e.cur.Section, Step: e.cur.Name, Output: line})
	}, NoChange: func() { e.noChange.Store(true) }}
}

// interrupted reports whether the operator asked the run to stop.
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
func Run(ctx context.Context, p *spec.Plan, o Options) (*Result, error) {
	e, err := newEngine(p, o)
	if err != nil {
		return nil, err
	}
	// One ssh connection per host for the whole run, closed after what
	// the session holds.
	defer transport.ReuseConnections()()
	defer e.session.CloseAll()
	e.runID = journal.NewRunID(e.o.now())
	res := &Result{RunID: e.runID}
	var lock *clusterLock
	if !o.DryRun {
		h := Holder{RunID: e.runID, User: e.o.Identity.User, Host: e.o.Identity.Host, PID: os.Getpid(), Since: e.o.now()}
		lock, err = acquireLock(e.o.JournalDir, p.LockName, h, "", o.TakeOver)
		if err != nil {
			return nil, notStarted(err)
		}
	}
	// Another run's claim in the cluster refuses this one before it
	// starts (a plan only looks).
	if err = e.checkHeld(ctx); err != nil {
		lock.release(true)
		return nil, notStarted(err)
	}
	e.j, err = journal.Create(e.o.JournalDir, e.runID)
	if err != nil {
		lock.release(true)
		e.releaseClaimIf(ctx, !o.DryRun)
		return nil, notStarted(err)
	}
	defer e.j.Close()
	res.Journal = e.j.Path()
	if err := e.emit(journal.Event{Type: journal.EventRunStarted, Run: e.runInfo()}); err != nil {
		e.releaseClaimIf(ctx, !o.DryRun)
		lock.release(true)
		return res, notStarted(err)
	}
	if e.takeOverNote != "" {
		_ = e.emit(journal.Event{Type: journal.EventNote, Message: e.takeOverNote})
	}
	if o.DryRun {
		return res, e.dryRun(ctx, res)
	}
	if err := e.preapprove(nil); err != nil {
		res.Outcome = journal.OutcomeDeclined
		var se *StepError
		errors.As(err, &se)
		_ = e.emit(journal.Event{Type: journal.EventRunFinished, Step: se.Step, Outcome: journal.OutcomeDeclined, Error: se.Err.Error(), Message: "nothing was changed"})
		e.releaseClaim(ctx)
		lock.release(true)
		return res, err
	}
	// The run claims the cluster now, so that a second run started a
	// moment later is refused before its preflight; a claim that cannot be
	// written yet is taken before the first action.
	if err := e.takeClaim(ctx, false); err != nil {
		res.Outcome = journal.OutcomePrecondition
		_ = e.emit(journal.Event{Type: journal.EventRunFinished, Outcome: journal.OutcomePrecondition, Error: err.Error(), Message: "refused: nothing was changed"})
		lock.release(true)
		return res, err
	}
	err = e.execute(ctx, &position{done: map[string]bool{}, caught: map[string]journal.StepState{}}, res)
	e.finish(ctx, lock, res, err)
	return res, err
}

// releasesClaim reports whether a run that ended with res and err gives
// up its claim on the cluster: an unfinished, resumable run keeps it.
func releasesClaim(res *Result, err error) bool {
	return res.Outcome != journal.OutcomeSuspended && !errors.Is(err, errKilled) && !isSettleStop(err) && !errors.Is(err, errJournal)
}

// finish lets go of the run's lock and its claim kept in the cluster when
// the run finished; a run cut off or suspended keeps both for resume.
func (e *engine) finish(ctx context.Context, lock *clusterLock, res *Result, err error) {
	finished := releasesClaim(res, err)
	e.releaseClaimIf(ctx, finished)
	lock.release(finished)
}

// releaseClaimIf releases the run's claim in the cluster when ok.
func (e *engine) releaseClaimIf(ctx context.Context, ok bool) {
	if ok {
		e.releaseClaim(ctx)
	}
}

// notStarted is the error of a run that stopped before any step: invalid
// (exit 2) unless another run holds the cluster, or the cluster could not
// be claimed (exit 3).
func notStarted(err error) error {
	var le *LockedError
	if errors.As(err, &le) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrPrecondition) {
		return err
	}
	return fmt.Errorf("%w: %v; nothing was done", ErrInvalid, err)
}
