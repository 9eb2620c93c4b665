package notify

import (
	"fmt"
	"time"
)

// The milestones of a run, in the order a run reaches them. The names are
// stable: scripts and chat integrations read them in the event field.
const (
	EventStarted         = "run.started"        // a run began
	EventResumed         = "run.resumed"        // a journaled run continues
	EventApproval        = "approval.waiting"   // the run stopped to ask the operator
	EventPointOfNoReturn = "point_of_no_return" // the step after which no rollback began
	EventFinished        = "run.finished"       // the run ended, whatever the outcome
)

// Message is one milestone as posted: Text is the one line a chat shows
// (Slack's and Mattermost's incoming webhooks read it and ignore the
// rest); the other fields are for machines, under stable names.
type Message struct {
	Text    string    `json:"text"`
	Event   string    `json:"event"`
	RunID   string    `json:"run_id"`
	Runbook string    `json:"runbook"` // the runbook's name
	Cluster string    `json:"cluster"`
	Time    time.Time `json:"time"`
	DryRun  bool      `json:"dry_run,omitempty"`
	// StartedBy is who started or resumed the run: user@host.
	StartedBy string `json:"started_by,omitempty"`
	// Step is the step the run waits at (approval.waiting) or the step
	// that is the point of no return.
	Step string `json:"step,omitempty"`
	// Question is what an approval.waiting asks: approve, manual (was
	// this checklist item done?) or settle (a step cut off mid-action).
	Question string `json:"question,omitempty"`
	// Outcome, ExitCode, Summary, DurationMS and Canary are run.finished's:
	// the run's outcome and exit code, its one-line summary, how long it
	// took and what the canary writer saw.
	Outcome    string  `json:"outcome,omitempty"`
	ExitCode   *int    `json:"exit_code,omitempty"`
	Summary    string  `json:"summary,omitempty"`
	DurationMS *int64  `json:"duration_ms,omitempty"`
	Canary     *Canary `json:"canary,omitempty"`
}

// Canary is the canary writer's figures, under the names run.finished
// gives them in the JSON log; a figure the run did not record is null.
type Canary struct {
	Acked    *int64   `json:"acked"`
	Lost     *int64   `json:"lost"`
	Errors   *int64   `json:"errors"`
	WindowMS *float64 `json:"window_ms"`
}

// Line is the message's one line for a person, what Text holds unless
// the caller set it.
func (m Message) Line() string {
	what := fmt.Sprintf("switchover: %s on %s", m.Runbook, m.Cluster)
	run := "run " + m.RunID
	if m.DryRun {
		run = "dry " + run
	}
	by := ""
	if m.StartedBy != "" {
		by = " by " + m.StartedBy
	}
	switch m.Event {
	case EventStarted:
		return fmt.Sprintf("%s: started%s (%s)", what, by, run)
	case EventResumed:
		return fmt.Sprintf("%s: resumed%s (%s)", what, by, run)
	case EventApproval:
		switch m.Question {
		case "manual":
			return fmt.Sprintf("%s: waiting for the operator to confirm manual step %s (%s)", what, m.Step, run)
		case "settle":
			return fmt.Sprintf("%s: waiting for the operator to settle step %s, cut off mid-action (%s)", what, m.Step, run)
		}
		return fmt.Sprintf("%s: waiting for approval of step %s (%s)", what, m.Step, run)
	case EventPointOfNoReturn:
		return fmt.Sprintf("%s: point of no return: step %s is running; from here on no rollback (%s)", what, m.Step, run)
	case EventFinished:
		s := m.Summary
		if s == "" {
			s = m.Outcome
		}
		if m.ExitCode != nil {
			run += fmt.Sprintf(", exit %d", *m.ExitCode)
		}
		return fmt.Sprintf("%s: %s (%s)", what, s, run)
	}
	return fmt.Sprintf("%s: %s (%s)", what, m.Event, run)
}
