package runbook

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/secret"
)

// OutcomeUnfinished is what a report says of a run whose journal ends
// without an outcome: it was killed, or it is still running. The engine
// never emits it.
const OutcomeUnfinished Outcome = "unfinished"

// Report is a run's timeline as a change ticket or a postmortem wants it:
// who ran what on which cluster, every step with its checks, approvals and
// actions, what the canary writer saw, and how the run ended. BuildReport
// makes it from the journal's events alone; the CLI renders it.
type Report struct {
	RunID           string            `json:"run_id"`
	Runbook         ReportRunbook     `json:"runbook"`
	Inventory       string            `json:"inventory,omitempty"`
	InventoryDigest string            `json:"inventory_digest,omitempty"`
	Cluster         string            `json:"cluster"`
	Vars            map[string]string `json:"vars,omitempty"`
	VarFlags        []string          `json:"var_flags,omitempty"`
	// StartedBy is the OS user and host that started the run: user@host.
	StartedBy string     `json:"started_by"`
	Started   time.Time  `json:"started"`
	Finished  *time.Time `json:"finished,omitempty"` // nil while the run has no outcome
	// LastEvent is the time of the journal's last event; with Finished nil,
	// it is how far the record goes.
	LastEvent time.Time `json:"last_event"`
	// DurationMS runs from the start to the outcome (or to the last event
	// of an unfinished run), suspensions included.
	DurationMS int64 `json:"duration_ms"`
	// Outcome is the run's outcome, OutcomeSuspended, or OutcomeUnfinished.
	Outcome         Outcome            `json:"outcome"`
	DryRun          bool               `json:"dry_run"`
	Resumes         []ReportResume     `json:"resumes,omitempty"`
	Suspensions     []ReportSuspension `json:"suspensions,omitempty"`
	PointOfNoReturn *ReportPONR        `json:"point_of_no_return,omitempty"`
	// Steps are the main steps in runbook order (those that never started
	// are pending), then the rollback, repair and finally steps that ran or
	// were shown, in the order they first appeared.
	Steps    []ReportStep    `json:"steps"`
	Sections []ReportSection `json:"sections,omitempty"`
	Notes    []ReportNote    `json:"notes,omitempty"` // notes about no step in particular
	Facts    []ReportFact    `json:"facts,omitempty"` // facts recorded outside any step
	Canary   *ReportCanary   `json:"canary,omitempty"`
	Failure  *ReportFailure  `json:"failure,omitempty"`
	// Summary is the run's closing sentence: what ran, what the recovery
	// did, what is left to do by hand (or, when suspended, how to resume).
	Summary string `json:"summary,omitempty"`
}

// ReportRunbook names the procedure a run followed.
type ReportRunbook struct {
	Name   string `json:"name"`
	File   string `json:"file"`
	Digest string `json:"digest"`
}

// ReportResume is one continuation of the run with `switchover resume`.
type ReportResume struct {
	Time    time.Time `json:"time"`
	AtMS    int64     `json:"at_ms"` // since the run started
	User    string    `json:"user"`
	Host    string    `json:"host"`
	Message string    `json:"message,omitempty"`
}

// ReportSuspension is one stop at a safe point (first Ctrl-C).
type ReportSuspension struct {
	Time    time.Time `json:"time"`
	AtMS    int64     `json:"at_ms"`
	Step    string    `json:"step,omitempty"` // the step that had not started yet
	Message string    `json:"message,omitempty"`
}

// ReportPONR says where the point of no return is and whether the run
// went past it: after it, no rollback.
type ReportPONR struct {
	Step     string     `json:"step"`
	Passed   bool       `json:"passed"`
	PassedAt *time.Time `json:"passed_at,omitempty"`
	AtMS     int64      `json:"at_ms,omitempty"`
}

// ReportStep is one step as the run went through it.
type ReportStep struct {
	Name    string  `json:"name"`
	Section Section `json:"section"`
	// Index is the step's 1-based position among the main steps; 0 for
	// rollback, repair and finally steps.
	Index           int  `json:"index,omitempty"`
	PointOfNoReturn bool `json:"point_of_no_return,omitempty"`
	// State is the last state the step reached; pending when it never
	// started.
	State      StepState        `json:"state"`
	Message    string           `json:"message,omitempty"`
	Started    *time.Time       `json:"started,omitempty"`
	StartMS    int64            `json:"start_ms"` // since the run started
	DurationMS int64            `json:"duration_ms"`
	Checks     []ReportCheck    `json:"checks,omitempty"`
	Approvals  []ReportApproval `json:"approvals,omitempty"`
	Actions    []ReportAction   `json:"actions,omitempty"`
	// Output holds lines the step printed outside an action.
	Output  []string       `json:"output,omitempty"`
	Facts   []ReportFact   `json:"facts,omitempty"`
	Notes   []ReportNote   `json:"notes,omitempty"`
	Failure *ReportFailure `json:"failure,omitempty"`
}

// ReportCheck is a check's final verdict in a step.
type ReportCheck struct {
	Time         time.Time `json:"time"`
	Phase        string    `json:"phase"` // requires or ensures
	Kind         string    `json:"kind"`
	Describe     string    `json:"describe"`
	Status       string    `json:"status"`
	Observed     string    `json:"observed,omitempty"`
	Wanted       string    `json:"wanted,omitempty"`
	Detail       string    `json:"detail,omitempty"`
	NotEvaluated string    `json:"not_evaluated,omitempty"`
	ElapsedMS    int64     `json:"elapsed_ms,omitempty"`
	WithinMS     int64     `json:"within_ms,omitempty"`
	// Attempts counts the evaluations of a check that polled (within:);
	// 0 when it was evaluated once.
	Attempts int `json:"attempts,omitempty"`
}

// ReportApproval is an approval given or refused, by whom and how.
type ReportApproval struct {
	Time    time.Time `json:"time"`
	AtMS    int64     `json:"at_ms"`
	Phase   string    `json:"phase,omitempty"` // settle for a resumed step's decision
	Granted bool      `json:"granted"`
	User    string    `json:"user"`
	Host    string    `json:"host"`
	How     string    `json:"how"`
	Note    string    `json:"note,omitempty"`
}

// ReportAction is what an action did (or, in a dry run, would do) and
// what it printed.
type ReportAction struct {
	Time    time.Time `json:"time"`
	AtMS    int64     `json:"at_ms"`
	Node    string    `json:"node"`
	Command string    `json:"command"`
	Changes string    `json:"changes,omitempty"`
	Output  []string  `json:"output,omitempty"`
}

// ReportFact is a value the run recorded.
type ReportFact struct {
	Time  time.Time `json:"time"`
	Key   string    `json:"key"`
	Value string    `json:"value"`
}

// ReportNote is a message the engine left for the operator.
type ReportNote struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// ReportFailure is where and why something failed.
type ReportFailure struct {
	Step  string `json:"step,omitempty"`
	Phase string `json:"phase,omitempty"`
	Error string `json:"error"`
}

// ReportSection is the start of a rollback, repair or finally section.
type ReportSection struct {
	Section Section   `json:"section"`
	Time    time.Time `json:"time"`
	AtMS    int64     `json:"at_ms"`
	Message string    `json:"message,omitempty"`
	// Step, Phase and Error say which failure sent the run there.
	Step  string `json:"step,omitempty"`
	Phase string `json:"phase,omitempty"`
	Error string `json:"error,omitempty"`
}

// The facts a canary writer records: it commits through the clients' path
// during the switchover and counts what was acknowledged and what was lost.
const (
	FactCanaryEndpoint   = "canary.endpoint"
	FactCanaryAcked      = "canary.acked"
	FactCanaryErrors     = "canary.errors"
	FactCanaryWindowMS   = "canary.window_ms"
	FactCanaryWindowFrom = "canary.window_from"
	FactCanaryWindowTo   = "canary.window_to"
	FactCanaryLost       = "canary.lost"
	FactCanaryLostIDs    = "canary.lost_ids"
)

// ReportCanary is what the canary writer saw: the evidence that clients
// barely noticed and that no acknowledged commit was lost. A figure the
// run did not record is nil.
type ReportCanary struct {
	Endpoint string `json:"endpoint,omitempty"`
	Acked    *int64 `json:"acked,omitempty"`  // commits acknowledged to the client
	Errors   *int64 `json:"errors,omitempty"` // client errors
	// LongestGapMS is the longest time without an acknowledged write, from
	// GapFrom to GapTo (as recorded; RFC 3339 when the writer wrote times).
	LongestGapMS *float64 `json:"longest_gap_ms,omitempty"`
	GapFrom      string   `json:"gap_from,omitempty"`
	GapTo        string   `json:"gap_to,omitempty"`
	Lost         *int64   `json:"lost,omitempty"` // acknowledged commits not found afterwards
	LostIDs      []string `json:"lost_ids,omitempty"`
	// Unreadable lists figures recorded in a form the report cannot read,
	// as key=value, rather than dropping them.
	Unreadable []string `json:"unreadable,omitempty"`
}

// BuildReport makes the report of a run from its journaled events. Every
// string in it goes through red (nil masks password fields still): the
// journal is masked already, and the report is a second guard.
func BuildReport(evs []Event, red *secret.Redactor) (*Report, error) {
	if len(evs) == 0 || evs[0].Type != EventRunStarted || evs[0].Run == nil {
		return nil, fmt.Errorf("%w: report: the events do not start with a run.started event", ErrInvalid)
	}
	b := newReportBuilder(evs[0])
	for _, e := range evs {
		b.add(e)
	}
	r := b.finish(evs[len(evs)-1])
	redactStrings(reflect.ValueOf(r), red)
	for k, v := range r.Vars {
		if secret.LooksSecret(k) && v != "" {
			r.Vars[k] = secret.Mask
		}
	}
	return r, nil
}

type reportBuilder struct {
	r      *Report
	start  time.Time
	steps  map[string]*ReportStep
	order  []string // non-main steps in order of appearance
	main   []string
	last   map[string]time.Time // each step's latest event
	ended  map[string]time.Time // when it reached done, failed or skipped
	polls  map[string]int       // step/phase/describe: attempts seen waiting
	facts  map[string]string    // the latest value of each fact
	failed *ReportFailure
}

func newReportBuilder(first Event) *reportBuilder {
	info := first.Run
	r := &Report{
		RunID:           first.RunID,
		Runbook:         ReportRunbook{Name: info.RunbookName, File: info.Runbook, Digest: info.RunbookDigest},
		Inventory:       info.Inventory,
		InventoryDigest: info.InventoryDigest,
		Cluster:         info.Cluster,
		VarFlags:        append([]string(nil), info.VarFlags...),
		StartedBy:       info.User + "@" + info.Host,
		Started:         first.Time,
		DryRun:          first.DryRun,
		Outcome:         OutcomeUnfinished,
	}
	if len(info.Vars) > 0 {
		r.Vars = make(map[string]string, len(info.Vars))
		for k, v := range info.Vars {
			r.Vars[k] = v
		}
	}
	if info.PointOfNoReturn != "" {
		r.PointOfNoReturn = &ReportPONR{Step: info.PointOfNoReturn}
	}
	b := &reportBuilder{r: r, start: first.Time, steps: map[string]*ReportStep{}, last: map[string]time.Time{},
		ended: map[string]time.Time{}, polls: map[string]int{}, facts: map[string]string{}}
	for i, name := range info.Steps {
		if _, dup := b.steps[name]; dup {
			continue
		}
		b.steps[name] = &ReportStep{Name: name, Section: SectionSteps, Index: i + 1, State: StatePending,
			PointOfNoReturn: name == info.PointOfNoReturn}
		b.main = append(b.main, name)
	}
	return b
}

func (b *reportBuilder) since(t time.Time) int64 { return t.Sub(b.start).Milliseconds() }

// step returns the step an event is about, creating it at its first sight.
func (b *reportBuilder) step(e Event) *ReportStep {
	s, ok := b.steps[e.Step]
	if !ok {
		s = &ReportStep{Name: e.Step, Section: e.Section, State: StatePending}
		b.steps[e.Step] = s
		b.order = append(b.order, e.Step)
	}
	if s.Section == "" {
		s.Section = e.Section
	}
	if s.Started == nil && e.Type != EventApproval {
		// A refused pre-approval names a step before it starts; everything
		// else means the step is under way (or, in a dry run, shown).
		t := e.Time
		s.Started, s.StartMS = &t, b.since(t)
	}
	if e.Time.After(b.last[e.Step]) {
		b.last[e.Step] = e.Time
	}
	return s
}

func (b *reportBuilder) add(e Event) {
	switch e.Type {
	case EventRunStarted:
		// The header comes from the first event; a second one would be a
		// damaged journal, and adds nothing.
	case EventRunResumed:
		rs := ReportResume{Time: e.Time, AtMS: b.since(e.Time), Message: e.Message}
		if e.Run != nil {
			rs.User, rs.Host = e.Run.User, e.Run.Host
		}
		b.r.Resumes = append(b.r.Resumes, rs)
		b.r.Outcome, b.r.Finished, b.r.Summary = OutcomeUnfinished, nil, ""
	case EventRunSuspended:
		b.r.Suspensions = append(b.r.Suspensions, ReportSuspension{Time: e.Time, AtMS: b.since(e.Time), Step: e.Step, Message: e.Message})
		b.r.Outcome, b.r.Summary = OutcomeSuspended, e.Message
	case EventRunFinished:
		t := e.Time
		b.r.Outcome, b.r.Finished, b.r.Summary = e.Outcome, &t, e.Message
		if e.Error != "" {
			b.failed = &ReportFailure{Step: e.Step, Error: e.Error}
		}
	case EventSection:
		b.r.Sections = append(b.r.Sections, ReportSection{Section: e.Section, Time: e.Time, AtMS: b.since(e.Time),
			Message: e.Message, Step: e.Step, Phase: e.Phase, Error: e.Error})
	case EventStep:
		b.stepEvent(e)
	case EventCheck:
		if e.Check == nil || e.Step == "" {
			return
		}
		s := b.step(e)
		c := e.Check
		rc := ReportCheck{Time: e.Time, Phase: e.Phase, Kind: c.Kind, Describe: c.Describe, Status: c.Status,
			Observed: c.Observed, Wanted: c.Wanted, Detail: c.Detail, NotEvaluated: c.NotEvaluated,
			ElapsedMS: c.ElapsedMS, WithinMS: c.WithinMS}
		key := e.Step + "\x00" + e.Phase + "\x00" + c.Describe
		if n := b.polls[key]; n > 0 {
			rc.Attempts = n + 1
			delete(b.polls, key)
		}
		s.Checks = append(s.Checks, rc)
	case EventWaiting:
		if e.Check == nil || e.Step == "" {
			return
		}
		b.step(e)
		key := e.Step + "\x00" + e.Phase + "\x00" + e.Check.Describe
		b.polls[key] = max(b.polls[key], e.Check.Attempt)
	case EventApproval:
		if e.Approval == nil || e.Step == "" {
			return
		}
		a := e.Approval
		s := b.step(e)
		s.Approvals = append(s.Approvals, ReportApproval{Time: e.Time, AtMS: b.since(e.Time), Phase: e.Phase,
			Granted: a.Granted, User: a.User, Host: a.Host, How: a.How, Note: a.Note})
	case EventEffect:
		if e.Effect == nil || e.Step == "" {
			return
		}
		s := b.step(e)
		s.Actions = append(s.Actions, ReportAction{Time: e.Time, AtMS: b.since(e.Time), Node: e.Effect.Node,
			Command: e.Effect.Command, Changes: e.Effect.Changes})
	case EventOutput:
		if e.Step == "" {
			return
		}
		s := b.step(e)
		if n := len(s.Actions); n > 0 {
			s.Actions[n-1].Output = append(s.Actions[n-1].Output, e.Output)
		} else {
			s.Output = append(s.Output, e.Output)
		}
	case EventFact:
		if e.Fact == nil {
			return
		}
		f := ReportFact{Time: e.Time, Key: e.Fact.Key, Value: e.Fact.Value}
		b.facts[f.Key] = f.Value
		if s, ok := b.steps[e.Step]; ok && e.Step != "" {
			s.Facts = append(s.Facts, f)
			if e.Time.After(b.last[e.Step]) {
				b.last[e.Step] = e.Time
			}
		} else {
			b.r.Facts = append(b.r.Facts, f)
		}
	case EventNote:
		n := ReportNote{Time: e.Time, Message: e.Message}
		if e.Step == "" {
			b.r.Notes = append(b.r.Notes, n)
			return
		}
		s := b.step(e)
		s.Notes = append(s.Notes, n)
	}
}

func (b *reportBuilder) stepEvent(e Event) {
	if e.Step == "" {
		return
	}
	s := b.step(e)
	s.State = e.State
	if e.Message != "" {
		s.Message = e.Message
	}
	switch e.State {
	case StateFailed:
		s.Failure = &ReportFailure{Step: e.Step, Phase: e.Phase, Error: e.Error}
		b.ended[e.Step] = e.Time
	case StateSkipped:
		if e.Phase == "approval" {
			s.Failure = &ReportFailure{Step: e.Step, Phase: e.Phase, Error: e.Message}
		}
		b.ended[e.Step] = e.Time
	case StateDone:
		b.ended[e.Step] = e.Time
	default:
		delete(b.ended, e.Step)
	}
	if p := b.r.PointOfNoReturn; p != nil && p.Step == e.Step && e.State == StateDone && !e.DryRun {
		t := e.Time
		p.Passed, p.PassedAt, p.AtMS = true, &t, b.since(t)
	}
}

func (b *reportBuilder) finish(lastEv Event) *Report {
	r := b.r
	r.LastEvent = lastEv.Time
	end := lastEv.Time
	if r.Finished != nil {
		end = *r.Finished
	}
	r.DurationMS = end.Sub(b.start).Milliseconds()
	names := append(append([]string(nil), b.main...), b.order...)
	r.Steps = make([]ReportStep, 0, len(names))
	for _, name := range names {
		s := b.steps[name]
		if s.Started != nil {
			end, ok := b.ended[name]
			if !ok {
				end = b.last[name]
			}
			s.DurationMS = end.Sub(*s.Started).Milliseconds()
		}
		if s.Section == "" {
			s.Section = SectionSteps
		}
		r.Steps = append(r.Steps, *s)
	}
	if b.failed != nil {
		if s, ok := b.steps[b.failed.Step]; ok && s.Failure != nil {
			b.failed.Phase = s.Failure.Phase
		} else if ok {
			for _, a := range s.Approvals {
				if !a.Granted {
					b.failed.Phase = "approval"
				}
			}
		}
		r.Failure = b.failed
	} else if r.Outcome == OutcomeUnfinished {
		// Killed during a recovery: the failure that started it.
		for i := len(r.Sections) - 1; i >= 0; i-- {
			if sec := r.Sections[i]; sec.Error != "" {
				r.Failure = &ReportFailure{Step: sec.Step, Phase: sec.Phase, Error: sec.Error}
				break
			}
		}
	}
	r.Canary = canaryFrom(b.facts)
	return r
}

// canaryFrom reads the canary's figures from the run's facts; nil when the
// run recorded none.
func canaryFrom(facts map[string]string) *ReportCanary {
	found := false
	for k := range facts {
		if strings.HasPrefix(k, "canary.") {
			found = true
			break
		}
	}
	if !found {
		return nil
	}
	c := &ReportCanary{Endpoint: facts[FactCanaryEndpoint], GapFrom: facts[FactCanaryWindowFrom], GapTo: facts[FactCanaryWindowTo]}
	num := func(key string) *int64 {
		v, ok := facts[key]
		if !ok {
			return nil
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			c.Unreadable = append(c.Unreadable, key+"="+v)
			return nil
		}
		return &n
	}
	c.Acked = num(FactCanaryAcked)
	c.Errors = num(FactCanaryErrors)
	c.Lost = num(FactCanaryLost)
	if v, ok := facts[FactCanaryWindowMS]; ok {
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 {
			c.LongestGapMS = &f
		} else {
			c.Unreadable = append(c.Unreadable, FactCanaryWindowMS+"="+v)
		}
	}
	if v, ok := facts[FactCanaryLostIDs]; ok {
		c.LostIDs = splitIDs(v)
	}
	sort.Strings(c.Unreadable)
	return c
}

// splitIDs reads a list of ids written as "1,2,3", "1 2 3" or "[1, 2, 3]".
func splitIDs(v string) []string {
	v = strings.Trim(strings.TrimSpace(v), "[]")
	f := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '"' })
	if len(f) == 0 {
		return nil
	}
	return f
}

// redactStrings masks secrets in every string reachable from v: fields,
// slices and map values. Reflection keeps a field added later from
// slipping past the guard.
func redactStrings(v reflect.Value, red *secret.Redactor) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			redactStrings(v.Elem(), red)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.CanSet() {
				redactStrings(f, red)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			redactStrings(v.Index(i), red)
		}
	case reflect.Map:
		if v.Type().Elem().Kind() != reflect.String {
			return
		}
		for _, k := range v.MapKeys() {
			s := v.MapIndex(k).String()
			v.SetMapIndex(k, reflect.ValueOf(red.Redact(s)).Convert(v.Type().Elem()))
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(red.Redact(v.String()))
		}
	}
}
