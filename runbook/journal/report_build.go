package journal

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/kinds"
	"github.com/switchover/switchover/internal/secret"
)

// BuildReport makes the report of a run from its journaled events. Every
// string in it goes through red (nil masks password fields still): the
// journal is masked already, and the report is a second guard.
func BuildReport(evs []Event, red *secret.Redactor) (*Report, error) {
	if len(evs) == 0 || evs[0].Type != EventRunStarted || evs[0].Run == nil {
		return nil, fmt.Errorf("%w: report: the events do not start with a run.started event", spec.ErrInvalid)
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

	checked  map[string]bool           // steps seen checking: their start
	waitFrom map[string]time.Time      // a step awaiting approval since
	waits    map[string][][2]time.Time // a step's approval waits
	topo     []*ReportTopology         // [0]: first topology check seen, [1]: last
	held     *ReportSpan
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
		ended: map[string]time.Time{}, polls: map[string]int{}, facts: map[string]string{},
		checked: map[string]bool{}, waitFrom: map[string]time.Time{}, waits: map[string][][2]time.Time{}}
	for i, name := range info.Steps {
		if _, dup := b.steps[name]; dup {
			continue
		}
		b.steps[name] = &ReportStep{Name: name, Section: spec.SectionSteps, Index: i + 1, State: StatePending,
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
		b.r.Outcome, b.r.Finished, b.r.Summary, b.r.NewPrimary, b.r.OldPrimary = e.Outcome, &t, e.Message, e.NewPrimary, e.OldPrimary
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
		if _, reports := c.Values[kinds.TopologyKey]; reports && c.Status == "pass" {
			b.topology(c.Values)
		}
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
		if from, ok := b.waitFrom[e.Step]; ok {
			// A person's time at the prompt; --yes and --approve take none.
			if a.How == "prompt" {
				b.waits[e.Step] = append(b.waits[e.Step], [2]time.Time{from, e.Time})
			}
			delete(b.waitFrom, e.Step)
		}
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
		switch {
		case f.Key == cluster.PausedByRunFact && f.Value == "yes" && b.held == nil:
			b.held = &ReportSpan{FromMS: b.since(e.Time)}
		case f.Key == cluster.PausedByRunFact && f.Value == "no" && b.held != nil && b.held.ToMS == 0:
			b.held.ToMS = b.since(e.Time)
		}
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
	case StateChecking:
		// A step asked ahead for its approval starts when it is checked.
		if !b.checked[e.Step] {
			b.checked[e.Step] = true
			t := e.Time
			s.Started, s.StartMS = &t, b.since(t)
		}
	case StateAwaitingApproval:
		b.waitFrom[e.Step] = e.Time
	case StateDone:
		s.Unchanged = e.Unchanged
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
			// The time a person took to answer is not the step's.
			for _, w := range b.waits[name] {
				if !w[0].Before(*s.Started) && !w[1].After(end) {
					s.ApprovalWaitMS += w[1].Sub(w[0]).Milliseconds()
				}
			}
			s.DurationMS -= s.ApprovalWaitMS
		}
		if s.Section == "" {
			s.Section = spec.SectionSteps
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
	r.Canary = CanaryFrom(b.facts)
	if r.Canary != nil && r.Canary.Timeline != nil {
		r.Canary.Timeline.StartMS = b.since(r.Canary.Timeline.Start)
	}
	if len(b.topo) > 0 {
		r.Topology = &ReportTopology{Before: b.topo[0].Before}
		if len(b.topo) > 1 {
			r.Topology.After = b.topo[1].Before
		}
	}
	r.Held = b.held
	r.Headline = headline(r)
	return r
}

// topology keeps the nodes a passing pg.topology check saw: the first
// such check is the cluster before the run, the last one after it.
func (b *reportBuilder) topology(values map[string]any) {
	// The value is a []kinds.TopologyNode in a run's own events and its
	// JSON in a journal read back: one decoding serves both.
	raw, err := json.Marshal(values[kinds.TopologyKey])
	if err != nil {
		return
	}
	var reported []kinds.TopologyNode
	if json.Unmarshal(raw, &reported) != nil {
		return
	}
	var nodes []ReportNode
	for _, n := range reported {
		if n.Name == "" {
			continue
		}
		rn := ReportNode{Name: n.Name, Role: n.Role, Upstream: n.Upstream, Timeline: int64(n.Timeline)}
		if n.Streaming != nil {
			rn.Streaming = *n.Streaming
		}
		nodes = append(nodes, rn)
	}
	if len(nodes) == 0 {
		return
	}
	t := &ReportTopology{Before: nodes}
	if len(b.topo) < 2 {
		b.topo = append(b.topo, t)
	} else {
		b.topo[1] = t
	}
}

// primaryOf is the one primary among nodes, and its timeline.
func primaryOf(nodes []ReportNode) (string, int64) {
	name, tl := "", int64(0)
	for _, n := range nodes {
		if n.Role == "primary" {
			if name != "" {
				return "", 0 // two primaries: no one answer
			}
			name, tl = n.Name, n.Timeline
		}
	}
	return name, tl
}

// headline is the report's first line: where the primary went, on which
// timeline, how long clients were held, and whether a commit was lost;
// for a run that did not finish, where it stopped and what changed.
func headline(r *Report) string {
	var before, after string
	var tlBefore, tlAfter int64
	if t := r.Topology; t != nil {
		before, tlBefore = primaryOf(t.Before)
		after, tlAfter = primaryOf(t.After)
	}
	if before == "" {
		before = r.OldPrimary
	}
	var parts []string
	switch r.Outcome {
	case OutcomeDone:
		if after == "" {
			after = r.NewPrimary
		}
		switch {
		case before != "" && after != "" && before != after:
			parts = append(parts, before+" → "+after)
		case after != "":
			parts = append(parts, after+" is the primary")
		}
		if tlBefore > 0 && tlAfter > 0 && tlBefore != tlAfter {
			parts = append(parts, fmt.Sprintf("timeline %d → %d", tlBefore, tlAfter))
		}
		if c := r.Canary; c != nil {
			if c.LongestGapMS != nil {
				parts = append(parts, "clients held "+strconv.FormatFloat(*c.LongestGapMS, 'f', -1, 64)+" ms")
			}
			if c.Lost != nil {
				parts = append(parts, fmt.Sprintf("%d lost", *c.Lost))
			}
		}
		if len(parts) == 0 {
			parts = append(parts, "done")
		}
	case OutcomeDryRun:
		parts = append(parts, "dry run: nothing was changed")
	default:
		where := string(r.Outcome)
		if r.Failure != nil && r.Failure.Step != "" {
			where += " at step " + r.Failure.Step
		}
		parts = append(parts, where)
		changed := false
		for _, s := range r.Steps {
			if len(s.Actions) > 0 && !s.Unchanged && s.State != StatePending {
				changed = true
			}
		}
		if !changed {
			parts = append(parts, "nothing was changed")
		}
		if after != "" {
			parts = append(parts, after+" is the primary")
		} else if !changed && before != "" {
			parts = append(parts, before+" is still the primary")
		}
		if c := r.Canary; c != nil && c.Lost != nil {
			parts = append(parts, fmt.Sprintf("%d lost", *c.Lost))
		}
	}
	return strings.Join(parts, ", ")
}

// CanaryFrom reads the canary's figures from the run's facts; nil when the
// run recorded none.
func CanaryFrom(facts map[string]string) *ReportCanary {
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
	if v, ok := facts[FactCanaryTimeline]; ok {
		if tl, err := parseTimeline(v); err == nil {
			c.Timeline = tl
		} else {
			c.Unreadable = append(c.Unreadable, FactCanaryTimeline+"="+v)
		}
	}
	sort.Strings(c.Unreadable)
	return c
}

// parseTimeline reads the canary's timeline fact:
// "start=<RFC 3339> bucket_ms=20 counts=4,4,0,3".
func parseTimeline(v string) (*ReportTimeline, error) {
	tl := &ReportTimeline{}
	for _, f := range strings.Fields(v) {
		k, val, _ := strings.Cut(f, "=")
		var err error
		switch k {
		case "start":
			tl.Start, err = time.Parse(time.RFC3339Nano, val)
		case "bucket_ms":
			tl.BucketMS, err = strconv.ParseInt(val, 10, 64)
		case "counts":
			for _, c := range strings.Split(val, ",") {
				n, cerr := strconv.Atoi(c)
				if cerr != nil {
					return nil, cerr
				}
				tl.Counts = append(tl.Counts, n)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if tl.Start.IsZero() || tl.BucketMS <= 0 || len(tl.Counts) == 0 {
		return nil, fmt.Errorf("timeline %q: want start=, bucket_ms= and counts=", v)
	}
	return tl, nil
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
