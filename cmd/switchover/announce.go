package main

// --notify and --metrics-file: a run told to a chat channel as it goes,
// and its figures left for node_exporter when it ends. Neither ever holds
// the run up or changes its exit code: the engine's events only queue a
// post, the posts and the file come after the run. What fails is reported:
// a warning line (or a JSON event), and a note in the run's journal.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/switchover/switchover/internal/metrics"
	"github.com/switchover/switchover/internal/notify"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

// announceOpts are the flags of run and resume that tell others about a run.
type announceOpts struct {
	notify      string // webhook URL: a secret beyond scheme://host
	metricsFile string
}

func (a *announceOpts) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&a.notify, "notify", "", "post the run's milestones (started, waiting for approval, point of no return, finished) as JSON to this chat webhook `URL`; a failed post never holds the run up")
	fs.StringVar(&a.metricsFile, "metrics-file", "", "when the run ends, write its figures to `FILE` (*.prom) for node_exporter's textfile collector")
}

// check refuses a --notify URL that cannot be posted to, before anything
// runs, without showing it.
func (a *announceOpts) check() error {
	if a.notify == "" {
		return nil
	}
	if err := notify.Check(a.notify); err != nil {
		return usagef("--notify: %v", err)
	}
	return nil
}

// announcer is the run's observer (in front of the view) and, at a
// terminal, its operator: it posts the milestones as they come and, when
// the run has ended, the last one and the metrics file.
type announcer struct {
	io          *streams
	jv          *jsonView // the JSON log, with --log-format json
	view        journal.Observer
	n           *notify.Notifier // nil without --notify
	metricsFile string
	journalDir  string

	mu       sync.Mutex
	base     notify.Message // the run's id, runbook and cluster
	ponr     string         // the step that is the point of no return
	started  bool
	ponrSent bool
}

// start puts an announcer in front of o's observer and operator; nil
// when neither flag was given.
func (a *announceOpts) start(io *streams, o *runbook.Options, journalDir string) *announcer {
	if a.notify == "" && a.metricsFile == "" {
		return nil
	}
	an := &announcer{io: io, view: o.Observer, metricsFile: a.metricsFile, journalDir: journalDir}
	if an.view == nil {
		an.view = journal.ObserverFunc(func(journal.Event) {})
	}
	an.jv, _ = o.Observer.(*jsonView)
	if a.notify != "" {
		n, err := notify.New(a.notify, notify.Options{})
		if err != nil { // check() passed: cannot happen
			an.warn("notify.failed", "", fmt.Sprintf("--notify: %v", err), "error", err.Error())
		} else {
			an.n = n
		}
	}
	o.Observer = an
	if o.Operator != nil && an.n != nil {
		o.Operator = askingOperator{Operator: o.Operator, a: an}
	}
	return an
}

// Observe hands e to the view, then queues the milestone it marks, if any.
func (a *announcer) Observe(e journal.Event) {
	a.view.Observe(e)
	if a.n == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case (e.Type == journal.EventRunStarted || e.Type == journal.EventRunResumed) && e.Run != nil:
		a.base = notify.Message{RunID: e.RunID, Runbook: e.Run.RunbookName, Cluster: e.Run.Cluster, DryRun: e.DryRun}
		a.ponr, a.started = e.Run.PointOfNoReturn, true
		m := a.base
		m.Event, m.Time, m.StartedBy = notify.EventStarted, e.Time, e.Run.User+"@"+e.Run.Host
		if e.Type == journal.EventRunResumed {
			m.Event = notify.EventResumed
		}
		a.n.Post(m)
	case e.Type == journal.EventStep && e.State == journal.StateRunning && a.ponr != "" && e.Step == a.ponr &&
		(e.Section == "" || e.Section == spec.SectionSteps) && !e.DryRun && !a.ponrSent:
		a.ponrSent = true
		m := a.base
		m.Event, m.Time, m.Step = notify.EventPointOfNoReturn, e.Time, e.Step
		a.n.Post(m)
	}
}

// askingOperator posts approval.waiting each time the run stops to ask.
type askingOperator struct {
	runbook.Operator
	a *announcer
}

// questions names what an approval.waiting asks.
var questions = map[runbook.QuestionKind]string{runbook.AskApprove: "approve", runbook.AskManual: "manual", runbook.AskSettle: "settle"}

// Ask implements runbook.Operator.
func (o askingOperator) Ask(ctx context.Context, q runbook.Question) (runbook.Answer, error) {
	o.a.mu.Lock()
	if o.a.started {
		m := o.a.base
		m.Event, m.Question = notify.EventApproval, questions[q.Kind]
		if q.Step != nil {
			m.Step = q.Step.Name
		}
		o.a.n.Post(m)
	}
	o.a.mu.Unlock()
	return o.Operator.Ask(ctx, q)
}

// finish ends what the announcer does once the run has returned: the
// metrics file, the last milestone, the flush (bounded), and the report
// of whatever failed. It never changes the run's outcome.
func (a *announcer) finish(res *runbook.Result, err error) {
	if a == nil {
		return
	}
	code := exitCode(err)
	var rep *journal.Report
	lastSeq := 0
	runID := ""
	if res != nil && res.RunID != "" {
		runID = res.RunID
		if evs, rerr := journal.ReadJournal(a.journalDir, runID); rerr == nil {
			lastSeq = evs[len(evs)-1].Seq
			rep, _ = journal.BuildReport(evs, reportRedactor(evs[0].Run))
		}
	}
	var notes []string
	if a.metricsFile != "" {
		notes = append(notes, a.writeMetrics(runID, rep, code)...)
	}
	if a.n != nil {
		notes = append(notes, a.flush(res, rep, code)...)
	}
	if len(notes) > 0 && lastSeq > 0 {
		a.noteInJournal(runID, lastSeq, rep != nil && rep.DryRun, notes)
	}
}

// writeMetrics writes the metrics file of a run that changed or could
// have changed something; what it says of a failure goes to the journal.
func (a *announcer) writeMetrics(runID string, rep *journal.Report, code int) []string {
	switch {
	case rep == nil:
		a.warn("metrics.skipped", runID, fmt.Sprintf("metrics file %s not written: no run started, or its journal could not be read", a.metricsFile), "path", a.metricsFile)
		return nil
	case rep.DryRun:
		a.note("metrics.skipped", runID, fmt.Sprintf("metrics file %s not written: a dry run changes nothing", a.metricsFile), "path", a.metricsFile)
		return nil
	}
	r := metrics.Run{Runbook: rep.Runbook.Name, Cluster: rep.Cluster, Finished: rep.LastEvent, ExitCode: code, Duration: time.Duration(rep.DurationMS) * time.Millisecond}
	if rep.Finished != nil {
		r.Finished = *rep.Finished
	}
	if c := rep.Canary; c != nil {
		r.WindowMS, r.LostCommits, r.ClientErrors = c.LongestGapMS, c.Lost, c.Errors
	}
	if err := metrics.WriteFile(a.metricsFile, r); err != nil {
		msg := err.Error() + " (the run's outcome stands)"
		a.warn("metrics.failed", runID, msg, "path", a.metricsFile, "error", err.Error())
		return []string{msg}
	}
	return nil
}

// flush posts run.finished, waits for the queue (DefaultFlush at most) and
// reports what was not delivered.
func (a *announcer) flush(res *runbook.Result, rep *journal.Report, code int) []string {
	a.mu.Lock()
	if a.started {
		m := a.base
		m.Event, m.ExitCode = notify.EventFinished, &code
		switch {
		case rep != nil:
			m.Outcome, m.Summary, m.DurationMS = string(rep.Outcome), runSummary(rep), &rep.DurationMS
			if rep.Finished != nil {
				m.Time = *rep.Finished
			}
			if c := rep.Canary; c != nil {
				m.Canary = &notify.Canary{Acked: c.Acked, Lost: c.Lost, Errors: c.Errors, WindowMS: c.LongestGapMS}
			}
		case res != nil:
			m.Outcome, m.Summary = string(res.Outcome), fmt.Sprintf("%s (the journal could not be read back for the figures)", res.Outcome)
		}
		a.n.Post(m)
	}
	a.mu.Unlock()
	r := a.n.Close(notify.DefaultFlush)
	if len(r.Failed) == 0 {
		return nil
	}
	whats := make([]string, len(r.Failed))
	for i, f := range r.Failed {
		whats[i] = f.String()
		if a.jv != nil {
			a.jv.log.Warn(fmt.Sprintf("notify %s: %s", r.Endpoint, f), "event", "notify.failed", "run_id", a.base.RunID,
				"milestone", f.Event, "endpoint", r.Endpoint, "attempts", f.Attempts, "error", f.Reason)
		}
	}
	msg := fmt.Sprintf("notify %s: %d of %d messages not delivered: %s", r.Endpoint, len(r.Failed), len(r.Failed)+r.Sent, strings.Join(whats, "; "))
	if a.jv == nil {
		fmt.Fprintf(maskingWriter{a.io.err}, "warning: %s\n", msg)
	}
	return []string{msg}
}

// runSummary is the run's one line for a chat: how it ended and how long
// it took, then the report's headline (where the primary went, how long
// clients were held, how many commits were lost).
func runSummary(rep *journal.Report) string {
	took := ms(rep.DurationMS)
	if rep.Outcome == journal.OutcomeDone {
		if rep.Headline == "" || rep.Headline == "done" {
			return "done in " + took
		}
		return fmt.Sprintf("done in %s: %s", took, rep.Headline)
	}
	return fmt.Sprintf("%s, after %s", rep.Headline, took)
}

// warn reports a failure for a person (a warning line on stderr) or a
// script (a JSON event named event).
func (a *announcer) warn(event, runID, msg string, kv ...any) {
	if a.jv != nil {
		a.jv.log.Warn(msg, append([]any{"event", event, "run_id", runID}, kv...)...)
		return
	}
	fmt.Fprintf(maskingWriter{a.io.err}, "warning: %s\n", msg)
}

// note is warn for what is no failure.
func (a *announcer) note(event, runID, msg string, kv ...any) {
	if a.jv != nil {
		a.jv.log.Info(msg, append([]any{"event", event, "run_id", runID}, kv...)...)
		return
	}
	fmt.Fprintf(maskingWriter{a.io.err}, "note: %s\n", msg)
}

// noteInJournal appends a note to the run's journal after its last event,
// so that the report of the run says what was not delivered or written.
func (a *announcer) noteInJournal(runID string, lastSeq int, dryRun bool, notes []string) {
	j, err := journal.Open(a.journalDir, runID)
	if err == nil {
		err = j.Append(journal.Event{Seq: lastSeq + 1, Time: time.Now(), RunID: runID, Type: journal.EventNote, DryRun: dryRun, Message: strings.Join(notes, "; ")})
		if cerr := j.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		a.warn("journal.failed", runID, fmt.Sprintf("the note of what was not delivered could not be added to the journal: %v", err), "error", err.Error())
	}
}
