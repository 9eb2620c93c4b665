package fleet

import (
	"fmt"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/oneline"
)

// HaltRules say when a finished cluster run stops the fleet: no new
// cluster starts, the running ones finish by their own rules, and the
// fleet run ends non-zero. A run that did not exit 0 always halts.
type HaltRules struct {
	// LostCommits: more acknowledged commits lost than this halts.
	LostCommits int64
	// WindowOver: a longest client write gap over this halts; 0 is no
	// rule.
	WindowOver time.Duration
	// ClientErrorsOver: more client errors than this halts; nil is no
	// rule.
	ClientErrorsOver *int64
}

// Figures are what a cluster run's canary writer measured, as the run's
// run.finished event carries them; nil is not measured.
type Figures struct {
	Acked    *int64   `json:"acked,omitempty"`
	Lost     *int64   `json:"lost,omitempty"`
	Errors   *int64   `json:"errors,omitempty"`
	WindowMS *float64 `json:"window_ms,omitempty"`
}

// Outcome is how one cluster run ended.
type Outcome struct {
	RunID string `json:"run_id,omitempty"`
	// ExitCode is the run's exit code: 0 done, 3 refused (nothing
	// changed), 4 failed, 5 declined or interrupted, 6 locked, as the
	// program's exit codes.
	ExitCode int `json:"exit_code"`
	// Status is the run's outcome (done, precondition-failed, failed,
	// declined, suspended), or "locked", or "" when the run never
	// started.
	Status     string  `json:"status,omitempty"`
	Figures    Figures `json:"figures"`
	DurationMS int64   `json:"duration_ms,omitempty"`
	NewPrimary string  `json:"new_primary,omitempty"`
	OldPrimary string  `json:"old_primary,omitempty"`
	Step       string  `json:"step,omitempty"` // where a failed run stopped
	Error      string  `json:"error,omitempty"`
	// Unfinished: the fleet stopped following the run before it ended
	// (the fleet was interrupted); the run goes on, and has no outcome
	// yet.
	Unfinished bool `json:"-"`
}

// Why is the run's error without the outcome it starts with in words
// ("precondition failed: "), which the status says already.
func (o Outcome) Why() string {
	return strings.TrimPrefix(o.Error, strings.ReplaceAll(o.Status, "-", " ")+": ")
}

// Exit codes of a cluster run, as the program's.
const (
	ExitDone         = 0
	ExitInvalid      = 2
	ExitPrecondition = 3
	ExitAction       = 4
	ExitDeclined     = 5
	ExitLocked       = 6
)

// Breach returns the rule a finished run breached, in words, or "" when
// it breached none. Figures the run did not measure breach nothing.
func (h HaltRules) Breach(o Outcome) string {
	if o.ExitCode != ExitDone {
		why := fmt.Sprintf("its run exited %d", o.ExitCode)
		if o.Status != "" {
			why += " (" + o.Status + ")"
		}
		if o.Step != "" {
			why += " at step " + o.Step
		}
		if o.Error != "" {
			why += ": " + firstLine(o.Why(), 160)
		}
		return why
	}
	f := o.Figures
	switch {
	case f.Lost != nil && *f.Lost > h.LostCommits:
		return fmt.Sprintf("%d acknowledged commits lost, over halt.lost_commits %d", *f.Lost, h.LostCommits)
	case h.WindowOver > 0 && f.WindowMS != nil && time.Duration(*f.WindowMS*float64(time.Millisecond)) > h.WindowOver:
		return fmt.Sprintf("clients could not write for %s, over halt.window_over %s", fmtMS(*f.WindowMS), h.WindowOver)
	case h.ClientErrorsOver != nil && f.Errors != nil && *f.Errors > *h.ClientErrorsOver:
		return fmt.Sprintf("%d client errors, over halt.client_errors_over %d", *f.Errors, *h.ClientErrorsOver)
	}
	return ""
}

// String says the rules in words.
func (h HaltRules) String() string {
	s := fmt.Sprintf("halt on a run that does not exit 0, more than %d commits lost", h.LostCommits)
	if h.WindowOver > 0 {
		s += fmt.Sprintf(", a window over %s", h.WindowOver)
	}
	if h.ClientErrorsOver != nil {
		s += fmt.Sprintf(", more than %d client errors", *h.ClientErrorsOver)
	}
	return s
}

func fmtMS(ms float64) string {
	return time.Duration(ms * float64(time.Millisecond)).Round(time.Millisecond).String()
}

// firstLine is s on one line (oneline.Of), cut to n runes.
func firstLine(s string, n int) string {
	r := []rune(oneline.Of(s))
	if len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return string(r)
}
