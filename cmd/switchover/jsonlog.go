package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

// jsonView writes one JSON object per event (go-hclog's JSON format): the
// event's fields under the same names the journal uses, plus hclog's
// @timestamp, @level and @message. The names are stable; docs/runs.md lists
// them.
type jsonView struct {
	log hclog.Logger
	n   int // events observed
}

func newJSONView(w io.Writer) *jsonView { return newJSONViewAt(w, time.Now) }

// newJSONViewAt is newJSONView with its clock given (golden tests).
func newJSONViewAt(w io.Writer, now func() time.Time) *jsonView {
	return &jsonView{log: hclog.New(&hclog.LoggerOptions{
		Name: "switchover", Output: maskingWriter{w}, JSONFormat: true, Level: hclog.Debug,
		TimeFormat: "2006-01-02T15:04:05.000000Z07:00", TimeFn: now,
	})}
}

// reportedError is an error already reported as JSON events: the CLI
// does not print it again as text; its exit code is the wrapped error's.
type reportedError struct{ err error }

func (r *reportedError) Error() string { return r.err.Error() }
func (r *reportedError) Unwrap() error { return r.err }

// refused reports as JSON events an error that ended a command before a
// run emitted anything: one validation.error event per problem of an
// invalid runbook, inventory or --var (file, line, col, message; line and
// col 0 when unknown), or one error event (message, exit_code). The field
// names are stable; docs/runs.md lists them.
func (j *jsonView) refused(err error) error {
	if err == nil || j.n > 0 {
		return err
	}
	var v *spec.ValidationError
	if errors.As(err, &v) {
		for i, p := range v.Problems {
			j.log.Error(p.String(), "event", "validation.error", "seq", i+1, "file", p.Pos.File, "line", p.Pos.Line, "col", p.Pos.Col,
				"message", p.Msg, "exit_code", exitCode(err))
		}
	} else {
		j.log.Error(err.Error(), "event", "error", "message", err.Error(), "exit_code", exitCode(err))
	}
	return &reportedError{err: err}
}

// valid reports a runbook that validated: one validation.ok event.
func (j *jsonView) valid(p *spec.Plan, destructive int) {
	j.log.Info(fmt.Sprintf("%s: valid", p.Runbook.File), "event", "validation.ok", "file", p.Runbook.File, "runbook", p.Runbook.Name,
		"steps", len(p.Steps), "destructive", destructive, "exit_code", 0)
}

// Observe implements journal.Observer.
func (j *jsonView) Observe(e journal.Event) {
	j.n++
	kv := []any{"event", string(e.Type), "run_id", e.RunID, "seq", e.Seq}
	add := func(k string, v any, ok bool) {
		if ok {
			kv = append(kv, k, v)
		}
	}
	add("dry_run", e.DryRun, e.DryRun)
	add("section", string(e.Section), e.Section != "")
	add("step", e.Step, e.Step != "")
	add("state", string(e.State), e.State != "")
	add("phase", e.Phase, e.Phase != "")
	add("check", e.Check, e.Check != nil)
	add("effect", e.Effect, e.Effect != nil)
	add("approval", e.Approval, e.Approval != nil)
	add("output", e.Output, e.Output != "")
	add("fact", e.Fact, e.Fact != nil)
	add("run", e.Run, e.Run != nil)
	add("outcome", string(e.Outcome), e.Outcome != "")
	add("error", e.Error, e.Error != "")
	add("elapsed_ms", e.ElapsedMS, e.ElapsedMS != 0)
	add("duration_ms", e.DurationMS, e.DurationMS != nil)
	add("new_primary", e.NewPrimary, e.NewPrimary != "")
	add("old_primary", e.OldPrimary, e.OldPrimary != "")
	add("canary", e.Canary, e.Canary != nil)
	add("clusters", e.Clusters, len(e.Clusters) > 0)
	msg := message(e)
	switch {
	case e.State == journal.StateFailed, e.Type == journal.EventRunFinished && e.Outcome != journal.OutcomeDone && e.Outcome != journal.OutcomeDryRun:
		j.log.Error(msg, kv...)
	case e.Type == journal.EventWaiting:
		j.log.Debug(msg, kv...)
	default:
		j.log.Info(msg, kv...)
	}
}

// message is the one-line @message of an event.
func message(e journal.Event) string {
	switch e.Type {
	case journal.EventStep:
		return fmt.Sprintf("step %s: %s", e.Step, e.State)
	case journal.EventCheck, journal.EventWaiting:
		return fmt.Sprintf("%s %s: %s", e.Phase, e.Check.Describe, e.Check.Status)
	case journal.EventEffect:
		return fmt.Sprintf("%s: %s", e.Effect.Node, e.Effect.Command)
	case journal.EventApproval:
		if e.Approval.Granted {
			return fmt.Sprintf("step %s approved (%s)", e.Step, e.Approval.How)
		}
		return fmt.Sprintf("step %s not approved", e.Step)
	case journal.EventOutput:
		return e.Output
	case journal.EventRunFinished:
		return fmt.Sprintf("run %s: %s", e.Outcome, e.Message)
	case journal.EventClusters:
		if e.Message == "" {
			return strings.Join(clusterLines(e.Clusters, false), "; ")
		}
	}
	if e.Message != "" {
		return e.Message
	}
	return string(e.Type)
}
