package journal

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/internal/secret"
	"github.com/switchover/switchover/steps"
)

// reportStart is the synthetic runs' start time.
var reportStart = time.Date(2026, 11, 21, 10, 25, 30, 0, time.UTC)

// journalOf builds a synthetic journal: each event is dt after the one
// before, numbered in order.
type journalOf struct {
	t   time.Time
	evs []Event
}

func newJournalOf(steps []string, ponr string, dry bool) *journalOf {
	j := &journalOf{t: reportStart}
	j.add(0, Event{Type: EventRunStarted, DryRun: dry, Run: &RunInfo{
		Runbook: "switch.yaml", RunbookName: "monthly-switchover", RunbookDigest: "abc123",
		Inventory: "prod.yaml", InventoryDigest: "def456", Cluster: "prod-main",
		Vars: map[string]string{"primary": "pg1", "candidate": "pg2"}, VarFlags: []string{"candidate"},
		User: "dba", Host: "bastion-1", PID: 4242, Steps: steps, PointOfNoReturn: ponr,
	}})
	return j
}

func (j *journalOf) add(dt time.Duration, e Event) *journalOf {
	j.t = j.t.Add(dt)
	e.Seq, e.Time, e.RunID = len(j.evs)+1, j.t, "20261121T102530Z-3f2a9c"
	if len(j.evs) > 0 {
		e.DryRun = j.evs[0].DryRun
	}
	j.evs = append(j.evs, e)
	return j
}

func (j *journalOf) state(dt time.Duration, sec spec.Section, step string, st StepState) *journalOf {
	return j.add(dt, Event{Type: EventStep, Section: sec, Step: step, State: st})
}

// simpleStep is a step that checks, acts and is done, 10ms per event.
func (j *journalOf) simpleStep(sec spec.Section, step string) *journalOf {
	j.state(10*time.Millisecond, sec, step, StateChecking)
	j.add(10*time.Millisecond, Event{Type: EventEffect, Section: sec, Step: step, Effect: &steps.Effect{Node: "pg1 (local)", Command: "do " + step}})
	j.state(10*time.Millisecond, sec, step, StateRunning)
	return j.state(10*time.Millisecond, sec, step, StateDone)
}

func build(t *testing.T, evs []Event) *Report {
	t.Helper()
	r, err := BuildReport(evs, nil)
	if err != nil {
		t.Fatalf("BuildReport: %v", err)
	}
	return r
}

func reportStepNames(r *Report) []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, string(s.Section)+"/"+s.Name+"="+string(s.State))
	}
	return out
}

func stepOf(t *testing.T, r *Report, name string) ReportStep {
	t.Helper()
	for _, s := range r.Steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("report has no step %q: %v", name, reportStepNames(r))
	return ReportStep{}
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

func TestReportOfADoneRun(t *testing.T) {
	t.Parallel()
	j := newJournalOf([]string{"preflight", "promote", "verify"}, "promote", false)
	j.simpleStep(spec.SectionSteps, "preflight")
	// promote: a precondition that polled twice, an approval, an action
	// with output and a fact, a postcondition.
	j.state(100*time.Millisecond, spec.SectionSteps, "promote", StateChecking)
	j.add(time.Second, Event{Type: EventWaiting, Section: spec.SectionSteps, Step: "promote", Phase: "requires",
		Check: &CheckEvent{Kind: "pg.caught_up", Describe: "pg2 caught up", Status: "fail", Attempt: 1}})
	j.add(time.Second, Event{Type: EventWaiting, Section: spec.SectionSteps, Step: "promote", Phase: "requires",
		Check: &CheckEvent{Kind: "pg.caught_up", Describe: "pg2 caught up", Status: "fail", Attempt: 2}})
	j.add(time.Second, Event{Type: EventCheck, Section: spec.SectionSteps, Step: "promote", Phase: "requires",
		Check: &CheckEvent{Kind: "pg.caught_up", Describe: "pg2 caught up", Status: "pass", Observed: "replayed 0/5000000",
			Wanted: "past 0/4000000", Detail: "line one\nline two", ElapsedMS: 3000, WithinMS: 30000}})
	j.state(10*time.Millisecond, spec.SectionSteps, "promote", StateAwaitingApproval)
	j.add(5*time.Second, Event{Type: EventApproval, Section: spec.SectionSteps, Step: "promote",
		Approval: &Approval{Granted: true, User: "alice", Host: "bastion-2", How: "prompt", Note: "cluster name typed"}})
	j.add(10*time.Millisecond, Event{Type: EventEffect, Section: spec.SectionSteps, Step: "promote",
		Effect: &steps.Effect{Node: "pg2 (local as postgres)", Command: "SELECT pg_promote()", Changes: "pg2 becomes a primary"}})
	j.state(10*time.Millisecond, spec.SectionSteps, "promote", StateRunning)
	j.add(50*time.Millisecond, Event{Type: EventOutput, Section: spec.SectionSteps, Step: "promote", Output: "pg2 is a primary now"})
	j.add(10*time.Millisecond, Event{Type: EventFact, Step: "promote", Fact: &Fact{Key: "pg2.timeline", Value: "2"}})
	j.add(10*time.Millisecond, Event{Type: EventOutput, Section: spec.SectionSteps, Step: "promote", Output: "on timeline 2"})
	j.state(10*time.Millisecond, spec.SectionSteps, "promote", StateVerifying)
	j.add(20*time.Millisecond, Event{Type: EventCheck, Section: spec.SectionSteps, Step: "promote", Phase: "ensures",
		Check: &CheckEvent{Kind: "pg.role", Describe: "pg2 is a primary", Status: "pass"}})
	j.state(10*time.Millisecond, spec.SectionSteps, "promote", StateDone)
	promoteDone := j.t
	j.add(time.Millisecond, Event{Type: EventNote, Section: spec.SectionSteps, Step: "promote", Message: "point of no return passed"})
	j.simpleStep(spec.SectionSteps, "verify")
	j.add(10*time.Millisecond, Event{Type: EventSection, Section: spec.SectionFinally, Message: "running the finally section"})
	j.simpleStep(spec.SectionFinally, "resume-pooler")
	j.add(10*time.Millisecond, Event{Type: EventRunFinished, Outcome: OutcomeDone, Message: "actions ran: preflight, promote, verify, resume-pooler"})

	r := build(t, j.evs)
	if r.RunID != "20261121T102530Z-3f2a9c" || r.Cluster != "prod-main" || r.StartedBy != "dba@bastion-1" ||
		r.Inventory != "prod.yaml" || r.InventoryDigest != "def456" || r.DryRun {
		t.Errorf("header: %+v", r)
	}
	if want := (ReportRunbook{Name: "monthly-switchover", File: "switch.yaml", Digest: "abc123"}); r.Runbook != want {
		t.Errorf("Runbook = %+v, want %+v", r.Runbook, want)
	}
	if r.Outcome != OutcomeDone || r.Finished == nil || !r.Finished.Equal(j.t) || r.DurationMS != ms(j.t.Sub(reportStart)) {
		t.Errorf("outcome %s, finished %v, duration %dms: want done at %v after %dms", r.Outcome, r.Finished, r.DurationMS, j.t, ms(j.t.Sub(reportStart)))
	}
	if r.Summary != "actions ran: preflight, promote, verify, resume-pooler" || r.Failure != nil {
		t.Errorf("Summary = %q, Failure = %+v", r.Summary, r.Failure)
	}
	if p := r.PointOfNoReturn; p == nil || p.Step != "promote" || !p.Passed || p.PassedAt == nil || !p.PassedAt.Equal(promoteDone) {
		t.Errorf("PointOfNoReturn = %+v, want promote passed at %v", p, promoteDone)
	}
	wantSteps := []string{"steps/preflight=done", "steps/promote=done", "steps/verify=done", "finally/resume-pooler=done"}
	if got := reportStepNames(r); !reflect.DeepEqual(got, wantSteps) {
		t.Errorf("steps = %v, want %v", got, wantSteps)
	}
	if s := stepOf(t, r, "verify"); s.Index != 3 || s.PointOfNoReturn {
		t.Errorf("verify: index %d, ponr %v", s.Index, s.PointOfNoReturn)
	}
	if s := stepOf(t, r, "resume-pooler"); s.Index != 0 || s.DurationMS != 30 {
		t.Errorf("resume-pooler: index %d, duration %dms: want 0, 30ms", s.Index, s.DurationMS)
	}
	if s := stepOf(t, r, "preflight"); s.StartMS != 10 || s.DurationMS != 30 {
		t.Errorf("preflight: start %dms, duration %dms: want 10ms, 30ms", s.StartMS, s.DurationMS)
	}

	p := stepOf(t, r, "promote")
	if !p.PointOfNoReturn || p.Index != 2 {
		t.Errorf("promote: ponr %v, index %d", p.PointOfNoReturn, p.Index)
	}
	// From checking to done, less the 5s a person took to approve; the
	// note after it does not count.
	if want := ms(promoteDone.Sub(*p.Started)) - 5000; p.DurationMS != want || p.ApprovalWaitMS != 5000 {
		t.Errorf("promote took %dms with %dms waiting for approval, want %dms and 5000ms", p.DurationMS, p.ApprovalWaitMS, want)
	}
	if len(p.Checks) != 2 {
		t.Fatalf("promote checks: %+v", p.Checks)
	}
	c := p.Checks[0]
	if c.Phase != "requires" || c.Kind != "pg.caught_up" || c.Status != "pass" || c.Observed != "replayed 0/5000000" ||
		c.Wanted != "past 0/4000000" || c.Detail != "line one\nline two" || c.Attempts != 3 || c.WithinMS != 30000 {
		t.Errorf("requires check = %+v", c)
	}
	if c := p.Checks[1]; c.Phase != "ensures" || c.Attempts != 0 {
		t.Errorf("ensures check = %+v", c)
	}
	if len(p.Approvals) != 1 {
		t.Fatalf("approvals: %+v", p.Approvals)
	}
	a := p.Approvals[0]
	if !a.Granted || a.User != "alice" || a.Host != "bastion-2" || a.How != "prompt" || a.Note != "cluster name typed" || a.AtMS <= 0 {
		t.Errorf("approval = %+v", a)
	}
	wantAction := ReportAction{Node: "pg2 (local as postgres)", Command: "SELECT pg_promote()", Changes: "pg2 becomes a primary",
		Output: []string{"pg2 is a primary now", "on timeline 2"}}
	if len(p.Actions) != 1 {
		t.Fatalf("actions: %+v", p.Actions)
	}
	got := p.Actions[0]
	got.Time, got.AtMS = time.Time{}, 0
	if !reflect.DeepEqual(got, wantAction) {
		t.Errorf("action = %+v, want %+v", got, wantAction)
	}
	if len(p.Facts) != 1 || p.Facts[0].Key != "pg2.timeline" || p.Facts[0].Value != "2" {
		t.Errorf("facts = %+v", p.Facts)
	}
	if len(p.Notes) != 1 || p.Notes[0].Message != "point of no return passed" {
		t.Errorf("notes = %+v", p.Notes)
	}
	if len(r.Sections) != 1 || r.Sections[0].Section != spec.SectionFinally {
		t.Errorf("sections = %+v", r.Sections)
	}
	if r.Canary != nil {
		t.Errorf("Canary = %+v, want nil: the run recorded no canary facts", r.Canary)
	}
	if len(r.Resumes) != 0 || len(r.Suspensions) != 0 {
		t.Errorf("resumes %+v, suspensions %+v: want none", r.Resumes, r.Suspensions)
	}
}

func TestReportOfAFailedRunWithRollbackAndFinally(t *testing.T) {
	t.Parallel()
	const cause = "action failed: ensures pg.stopped: fail: pg1 still runs"
	j := newJournalOf([]string{"checkpoint", "stop-primary", "promote", "verify"}, "promote", false)
	j.simpleStep(spec.SectionSteps, "checkpoint")
	j.state(10*time.Millisecond, spec.SectionSteps, "stop-primary", StateChecking)
	j.add(10*time.Millisecond, Event{Type: EventApproval, Section: spec.SectionSteps, Step: "stop-primary",
		Approval: &Approval{Granted: true, User: "dba", Host: "bastion-1", How: "--yes"}})
	j.add(10*time.Millisecond, Event{Type: EventEffect, Section: spec.SectionSteps, Step: "stop-primary", Effect: &steps.Effect{Node: "pg1", Command: "pg_ctl stop"}})
	j.state(10*time.Millisecond, spec.SectionSteps, "stop-primary", StateRunning)
	j.state(10*time.Millisecond, spec.SectionSteps, "stop-primary", StateVerifying)
	j.add(10*time.Millisecond, Event{Type: EventCheck, Section: spec.SectionSteps, Step: "stop-primary", Phase: "ensures",
		Check: &CheckEvent{Kind: "pg.stopped", Describe: "pg1 is stopped", Status: "fail", Observed: "pg1 still runs", Wanted: "pg1 stopped"}})
	j.add(10*time.Millisecond, Event{Type: EventStep, Section: spec.SectionSteps, Step: "stop-primary", State: StateFailed, Phase: "ensures", Error: cause})
	j.add(10*time.Millisecond, Event{Type: EventSection, Section: spec.RollbackSection("restore"), Step: "stop-primary", Phase: "ensures",
		Error: cause, Message: `step "stop-primary" failed: running rollback:restore`})
	j.simpleStep(spec.RollbackSection("restore"), "start-primary")
	j.add(10*time.Millisecond, Event{Type: EventSection, Section: spec.SectionFinally, Message: "running the finally section"})
	j.simpleStep(spec.SectionFinally, "resume-pooler")
	j.add(10*time.Millisecond, Event{Type: EventRunFinished, Step: "stop-primary", Outcome: OutcomeFailed, Error: cause,
		Message: "actions ran: checkpoint, stop-primary, start-primary, resume-pooler; rollback:restore: done"})

	r := build(t, j.evs)
	want := []string{"steps/checkpoint=done", "steps/stop-primary=failed", "steps/promote=pending", "steps/verify=pending",
		"rollback:restore/start-primary=done", "finally/resume-pooler=done"}
	if got := reportStepNames(r); !reflect.DeepEqual(got, want) {
		t.Errorf("steps = %v, want %v", got, want)
	}
	if r.Outcome != OutcomeFailed || !strings.Contains(r.Summary, "rollback:restore: done") {
		t.Errorf("outcome %s, summary %q", r.Outcome, r.Summary)
	}
	if want := (&ReportFailure{Step: "stop-primary", Phase: "ensures", Error: cause}); !reflect.DeepEqual(r.Failure, want) {
		t.Errorf("Failure = %+v, want %+v", r.Failure, want)
	}
	stop := stepOf(t, r, "stop-primary")
	if want := (&ReportFailure{Step: "stop-primary", Phase: "ensures", Error: cause}); !reflect.DeepEqual(stop.Failure, want) {
		t.Errorf("stop-primary failure = %+v, want %+v", stop.Failure, want)
	}
	if len(stop.Checks) != 1 || stop.Checks[0].Status != "fail" || stop.Checks[0].Observed != "pg1 still runs" {
		t.Errorf("stop-primary checks = %+v", stop.Checks)
	}
	if p := stepOf(t, r, "promote"); p.Started != nil || p.DurationMS != 0 || len(p.Checks) != 0 {
		t.Errorf("promote never started, got %+v", p)
	}
	if p := r.PointOfNoReturn; p == nil || p.Passed || p.PassedAt != nil {
		t.Errorf("PointOfNoReturn = %+v, want not passed", p)
	}
	if len(r.Sections) != 2 || r.Sections[0].Section != spec.RollbackSection("restore") || r.Sections[0].Step != "stop-primary" ||
		r.Sections[0].Error != cause || r.Sections[1].Section != spec.SectionFinally {
		t.Errorf("sections = %+v", r.Sections)
	}
	if s := stepOf(t, r, "start-primary"); s.Section != spec.RollbackSection("restore") || s.Index != 0 || len(s.Actions) != 1 {
		t.Errorf("start-primary = %+v", s)
	}
}

func TestReportOfASuspendedThenResumedRun(t *testing.T) {
	t.Parallel()
	j := newJournalOf([]string{"checkpoint", "promote"}, "", false)
	j.simpleStep(spec.SectionSteps, "checkpoint")
	const msg = `suspended before step "promote"; resume with ` + "`switchover resume 20261121T102530Z-3f2a9c`"
	j.add(10*time.Millisecond, Event{Type: EventRunSuspended, Section: spec.SectionSteps, Step: "promote", Outcome: OutcomeSuspended, Message: msg})
	suspended := len(j.evs)
	j.add(time.Hour, Event{Type: EventRunResumed, Message: "resumed by bob@bastion-2", Run: &RunInfo{User: "bob", Host: "bastion-2", Cluster: "prod-main"}})
	resumed := len(j.evs)
	resumedAt := j.t
	j.simpleStep(spec.SectionSteps, "promote")
	j.add(10*time.Millisecond, Event{Type: EventRunFinished, Outcome: OutcomeDone, Message: "actions ran: checkpoint, promote"})

	tests := []struct {
		name         string
		evs          []Event
		wantOutcome  Outcome
		wantFinished bool
		wantResumes  int
		wantSummary  string
		wantSteps    []string
	}{
		{"suspended", j.evs[:suspended], OutcomeSuspended, false, 0, msg, []string{"steps/checkpoint=done", "steps/promote=pending"}},
		{"resumed, not finished yet", j.evs[:resumed], OutcomeUnfinished, false, 1, "", []string{"steps/checkpoint=done", "steps/promote=pending"}},
		{"resumed and done", j.evs, OutcomeDone, true, 1, "actions ran: checkpoint, promote", []string{"steps/checkpoint=done", "steps/promote=done"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := build(t, tt.evs)
			if r.Outcome != tt.wantOutcome || (r.Finished != nil) != tt.wantFinished || r.Summary != tt.wantSummary {
				t.Errorf("outcome %s, finished %v, summary %q; want %s, %v, %q", r.Outcome, r.Finished, r.Summary, tt.wantOutcome, tt.wantFinished, tt.wantSummary)
			}
			last := tt.evs[len(tt.evs)-1].Time
			if !r.LastEvent.Equal(last) || r.DurationMS != ms(last.Sub(reportStart)) {
				t.Errorf("last event %v, duration %dms: want %v, %dms", r.LastEvent, r.DurationMS, last, ms(last.Sub(reportStart)))
			}
			if len(r.Suspensions) != 1 || r.Suspensions[0].Step != "promote" || r.Suspensions[0].Message != msg {
				t.Errorf("suspensions = %+v", r.Suspensions)
			}
			if len(r.Resumes) != tt.wantResumes {
				t.Fatalf("resumes = %+v, want %d", r.Resumes, tt.wantResumes)
			}
			if tt.wantResumes > 0 {
				rs := r.Resumes[0]
				if rs.User != "bob" || rs.Host != "bastion-2" || !rs.Time.Equal(resumedAt) || rs.AtMS != ms(resumedAt.Sub(reportStart)) {
					t.Errorf("resume = %+v", rs)
				}
			}
			if got := reportStepNames(r); !reflect.DeepEqual(got, tt.wantSteps) {
				t.Errorf("steps = %v, want %v", got, tt.wantSteps)
			}
			if r.StartedBy != "dba@bastion-1" {
				t.Errorf("StartedBy = %q: the resume must not change who started the run", r.StartedBy)
			}
		})
	}
}

func TestReportCanary(t *testing.T) {
	t.Parallel()
	n := func(v int64) *int64 { return &v }
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name  string
		facts map[string]string
		want  *ReportCanary
	}{
		{name: "absent", facts: map[string]string{"pg1.shutdown_lsn": "0/40000D8"}, want: nil},
		{name: "all figures", facts: map[string]string{
			FactCanaryEndpoint: "host=127.0.0.1 port=6432 dbname=app", FactCanaryAcked: "1234", FactCanaryErrors: "2",
			FactCanaryWindowMS: "850.5", FactCanaryWindowFrom: "2026-11-21T10:25:31.1Z", FactCanaryWindowTo: "2026-11-21T10:25:31.95Z",
			FactCanaryLost: "0", FactCanaryLostIDs: "",
		}, want: &ReportCanary{Endpoint: "host=127.0.0.1 port=6432 dbname=app", Acked: n(1234), Errors: n(2), LongestGapMS: f(850.5),
			GapFrom: "2026-11-21T10:25:31.1Z", GapTo: "2026-11-21T10:25:31.95Z", Lost: n(0)}},
		{name: "lost commits", facts: map[string]string{FactCanaryAcked: "40", FactCanaryLost: "2", FactCanaryLostIDs: "17,18"},
			want: &ReportCanary{Acked: n(40), Lost: n(2), LostIDs: []string{"17", "18"}}},
		{name: "lost ids as a list", facts: map[string]string{FactCanaryLostIDs: "[17, 18 19]"},
			want: &ReportCanary{LostIDs: []string{"17", "18", "19"}}},
		{name: "a figure that is not a number", facts: map[string]string{FactCanaryAcked: "lots", FactCanaryErrors: " 3 ", FactCanaryWindowMS: "long"},
			want: &ReportCanary{Errors: n(3), Unreadable: []string{"canary.acked=lots", "canary.window_ms=long"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j := newJournalOf([]string{"canary"}, "", false)
			j.state(10*time.Millisecond, spec.SectionSteps, "canary", StateChecking)
			j.state(10*time.Millisecond, spec.SectionSteps, "canary", StateRunning)
			for _, k := range []string{FactCanaryEndpoint, FactCanaryAcked, FactCanaryErrors, FactCanaryWindowMS,
				FactCanaryWindowFrom, FactCanaryWindowTo, FactCanaryLost, FactCanaryLostIDs, "pg1.shutdown_lsn"} {
				if v, ok := tt.facts[k]; ok {
					j.add(time.Millisecond, Event{Type: EventFact, Step: "canary", Fact: &Fact{Key: k, Value: v}})
				}
			}
			j.state(10*time.Millisecond, spec.SectionSteps, "canary", StateDone)
			j.add(10*time.Millisecond, Event{Type: EventRunFinished, Outcome: OutcomeDone})
			r := build(t, j.evs)
			if !reflect.DeepEqual(r.Canary, tt.want) {
				t.Errorf("Canary = %s, want %s", jsonOf(t, r.Canary), jsonOf(t, tt.want))
			}
			if got := len(stepOf(t, r, "canary").Facts); got != len(tt.facts) {
				t.Errorf("the canary step has %d facts, want %d: the figures stay listed as facts too", got, len(tt.facts))
			}
		})
	}
}

// TestReportLaterFactWins: a figure recorded twice reports its last value.
func TestReportLaterFactWins(t *testing.T) {
	t.Parallel()
	j := newJournalOf([]string{"a"}, "", false)
	j.state(10*time.Millisecond, spec.SectionSteps, "a", StateChecking)
	j.add(time.Millisecond, Event{Type: EventFact, Step: "a", Fact: &Fact{Key: FactCanaryAcked, Value: "10"}})
	j.add(time.Millisecond, Event{Type: EventFact, Step: "a", Fact: &Fact{Key: FactCanaryAcked, Value: "25"}})
	j.add(time.Millisecond, Event{Type: EventFact, Fact: &Fact{Key: "run.level", Value: "x"}})
	r := build(t, j.evs)
	if r.Canary == nil || r.Canary.Acked == nil || *r.Canary.Acked != 25 {
		t.Errorf("Canary = %s, want acked 25", jsonOf(t, r.Canary))
	}
	if len(r.Facts) != 1 || r.Facts[0].Key != "run.level" {
		t.Errorf("run-level facts = %+v", r.Facts)
	}
	if r.Outcome != OutcomeUnfinished || r.Finished != nil {
		t.Errorf("outcome %s, finished %v: want unfinished", r.Outcome, r.Finished)
	}
	if s := stepOf(t, r, "a"); s.State != StateChecking {
		t.Errorf("a: state %s, want checking (cut off)", s.State)
	}
}

func TestReportOfADeclinedRun(t *testing.T) {
	t.Parallel()
	const msg = `step "promote" needs approval and there is no terminal to ask at: pass --approve promote`
	j := newJournalOf([]string{"checkpoint", "promote"}, "promote", false)
	j.add(time.Millisecond, Event{Type: EventApproval, Step: "promote",
		Approval: &Approval{Granted: false, User: "dba", Host: "bastion-1", How: "none", Note: msg}})
	j.add(time.Millisecond, Event{Type: EventRunFinished, Step: "promote", Outcome: OutcomeDeclined, Error: "declined: " + msg, Message: "nothing was changed"})
	r := build(t, j.evs)
	if r.Outcome != OutcomeDeclined || r.Failure == nil || r.Failure.Step != "promote" || r.Failure.Phase != "approval" {
		t.Errorf("outcome %s, failure %+v", r.Outcome, r.Failure)
	}
	p := stepOf(t, r, "promote")
	if p.State != StatePending || p.Started != nil || len(p.Approvals) != 1 || p.Approvals[0].Granted || p.Approvals[0].How != "none" {
		t.Errorf("promote = %+v: want never started, with the refused approval", p)
	}
}

func TestReportOfADryRun(t *testing.T) {
	t.Parallel()
	j := newJournalOf([]string{"promote"}, "promote", true)
	j.add(10*time.Millisecond, Event{Type: EventStep, Section: spec.SectionSteps, Step: "promote", State: StateChecking, Message: "dry run"})
	j.add(10*time.Millisecond, Event{Type: EventEffect, Section: spec.SectionSteps, Step: "promote", Effect: &steps.Effect{Node: "pg2", Command: "SELECT pg_promote()"}})
	j.add(10*time.Millisecond, Event{Type: EventStep, Section: spec.SectionSteps, Step: "promote", State: StateSkipped, Message: "dry run: not run"})
	j.add(10*time.Millisecond, Event{Type: EventSection, Section: spec.RollbackSection("restore"), Message: "dry run: shown, not run"})
	j.add(10*time.Millisecond, Event{Type: EventEffect, Section: spec.RollbackSection("restore"), Step: "start-primary", Effect: &steps.Effect{Node: "pg1", Command: "pg_ctl start"}})
	j.add(10*time.Millisecond, Event{Type: EventRunFinished, Outcome: OutcomeDryRun, Message: "dry run: nothing was changed"})
	r := build(t, j.evs)
	if !r.DryRun || r.Outcome != OutcomeDryRun || r.PointOfNoReturn.Passed {
		t.Errorf("dry %v, outcome %s, ponr %+v", r.DryRun, r.Outcome, r.PointOfNoReturn)
	}
	want := []string{"steps/promote=skipped", "rollback:restore/start-primary=pending"}
	if got := reportStepNames(r); !reflect.DeepEqual(got, want) {
		t.Errorf("steps = %v, want %v", got, want)
	}
	if s := stepOf(t, r, "start-primary"); len(s.Actions) != 1 || s.Actions[0].Command != "pg_ctl start" {
		t.Errorf("start-primary = %+v: want its described action", s)
	}
}

// TestReportMasksSecrets: the journal is masked already; a password that
// got past it anyway is masked in the report, wherever it is.
func TestReportMasksSecrets(t *testing.T) {
	t.Parallel()
	const pw, known = "s3cr3t-test-pw", "hunter2-known"
	j := newJournalOf([]string{"connect"}, "", false)
	j.evs[0].Run.Vars["db_password"] = "plain-var-secret"
	j.evs[0].Run.Inventory = "postgres://app:" + pw + "@db1/app"
	j.state(10*time.Millisecond, spec.SectionSteps, "connect", StateChecking)
	j.add(10*time.Millisecond, Event{Type: EventCheck, Section: spec.SectionSteps, Step: "connect", Phase: "requires",
		Check: &CheckEvent{Kind: "pg.reachable", Describe: "host=db1 password=" + pw, Status: "fail",
			Observed: "PGPASSWORD=" + pw + " psql", Wanted: "x", Detail: "dsn host=db1 password='" + pw + "'"}})
	j.add(10*time.Millisecond, Event{Type: EventEffect, Section: spec.SectionSteps, Step: "connect",
		Effect: &steps.Effect{Node: "pg1", Command: "psql 'host=db1 password=" + pw + "'", Changes: "echo " + known}})
	j.add(10*time.Millisecond, Event{Type: EventOutput, Section: spec.SectionSteps, Step: "connect", Output: "connected with password=" + pw})
	j.add(10*time.Millisecond, Event{Type: EventFact, Step: "connect", Fact: &Fact{Key: "dsn", Value: "password=" + pw}})
	j.add(10*time.Millisecond, Event{Type: EventStep, Section: spec.SectionSteps, Step: "connect", State: StateFailed, Phase: "action", Error: "password=" + pw + " rejected; " + known})
	j.add(10*time.Millisecond, Event{Type: EventRunFinished, Step: "connect", Outcome: OutcomeFailed, Error: "password=" + pw, Message: known})

	red := &secret.Redactor{}
	red.Add(known)
	r, err := BuildReport(j.evs, red)
	if err != nil {
		t.Fatal(err)
	}
	out := jsonOf(t, r)
	for _, s := range []string{pw, known, "plain-var-secret"} {
		if strings.Contains(out, s) {
			t.Errorf("the report still holds %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, secret.Mask) {
		t.Errorf("the report shows no mask:\n%s", out)
	}
	// A nil redactor still masks the password fields.
	r, err = BuildReport(j.evs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out := jsonOf(t, r); strings.Contains(out, pw) {
		t.Errorf("with a nil redactor, the report still holds %q:\n%s", pw, out)
	}
	// The events themselves are left alone.
	if !strings.Contains(j.evs[len(j.evs)-1].Error, pw) {
		t.Errorf("BuildReport changed its input")
	}
}

func TestReportRefusesAJournalWithoutAStart(t *testing.T) {
	t.Parallel()
	for _, evs := range [][]Event{nil, {{Type: EventStep, Step: "a"}}, {{Type: EventRunStarted}}} {
		if _, err := BuildReport(evs, nil); !errors.Is(err, spec.ErrInvalid) {
			t.Errorf("BuildReport(%v) = %v, want spec.ErrInvalid", evs, err)
		}
	}
}

// TestReportJSONNames pins the JSON field names scripts read.
func TestReportJSONNames(t *testing.T) {
	t.Parallel()
	j := newJournalOf([]string{"a"}, "a", false)
	j.simpleStep(spec.SectionSteps, "a")
	j.add(time.Millisecond, Event{Type: EventFact, Step: "a", Fact: &Fact{Key: FactCanaryAcked, Value: "1"}})
	j.add(time.Millisecond, Event{Type: EventRunFinished, Outcome: OutcomeDone, Message: "ok"})
	out := jsonOf(t, build(t, j.evs))
	for _, k := range []string{`"run_id"`, `"runbook"`, `"digest"`, `"inventory"`, `"cluster"`, `"started_by"`, `"started"`,
		`"finished"`, `"duration_ms"`, `"outcome"`, `"dry_run"`, `"point_of_no_return"`, `"passed"`, `"steps"`, `"section"`,
		`"state"`, `"start_ms"`, `"actions"`, `"command"`, `"node"`, `"facts"`, `"canary"`, `"acked"`, `"summary"`} {
		if !strings.Contains(out, k) {
			t.Errorf("the JSON report has no %s field:\n%s", k, out)
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The headline names where the primary went: from the topology reported
// before and after the run, else from the promoting step; never from a
// variable's name (a runbook may call its variables anything).
func TestReportHeadlineNamesTheMove(t *testing.T) {
	t.Parallel()
	nodes := func(primary string) []ReportNode {
		return []ReportNode{{Name: primary, Role: "primary", Timeline: 1}, {Name: "pgx", Role: "standby", Timeline: 1}}
	}
	for _, tc := range []struct {
		name string
		r    Report
		want string
	}{
		{"topology", Report{Topology: &ReportTopology{Before: nodes("pg1"), After: nodes("pg2")}, NewPrimary: "pg2"}, "pg1 → pg2"},
		{"the step's old primary", Report{OldPrimary: "pg1", NewPrimary: "pg2"}, "pg1 → pg2"},
		{"a variable called primary", Report{Vars: map[string]string{"primary": "pg9"}, NewPrimary: "pg2"}, "pg2 is the primary"},
	} {
		tc.r.Outcome = OutcomeDone
		if got := headline(&tc.r); got != tc.want {
			t.Errorf("%s: headline %q, want %q", tc.name, got, tc.want)
		}
	}
}
