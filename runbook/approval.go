// The approval policy: which steps need a person's yes, how it is given
// (prompt, --yes, --approve), and a scripted run refused up front when one
// is missing.

package runbook

import (
	"context"
	"fmt"
	"strings"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

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

// missingApprovals refuses a run that would need an approval no one can
// give here, naming the flags that would give it.
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
	_ = e.emit(journal.Event{Type: journal.EventApproval, Step: missing[0], Approval: &journal.Approval{Granted: false, User: e.o.Identity.User, Host: e.o.Identity.Host, How: "none", Note: msg}})
	return &StepError{Step: missing[0], Phase: phaseApproval.String(), Err: fmt.Errorf("%w: %s", ErrDeclined, msg)}
}

// approveStep gets approval for a destructive step (under steps:) and the
// operator's confirmation for a manual one.
func (e *engine) approveStep(ctx context.Context, s *spec.Step) error {
	// Later destructive steps approved together with this one, at a
	// terminal, so that no prompt waits while clients are held.
	var together []*spec.Step
	if e.o.Operator != nil && !e.approved[s.Name] {
		for _, name := range s.ApproveWith {
			if later := e.p.Step(name); later != nil && !e.approved[name] && !e.approve[name] && !e.o.Yes {
				together = append(together, later)
			}
		}
	}
	needs := (s.Destructive && s.Section == spec.SectionSteps) || s.Manual || len(together) > 0
	if !needs || e.approved[s.Name] {
		return nil
	}
	if err := e.transition(s, journal.StateAwaitingApproval, phaseUnknown, "", nil); err != nil {
		return e.fail(s, phaseApproval, err)
	}
	a := &journal.Approval{User: e.o.Identity.User, Host: e.o.Identity.Host}
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
			_ = e.emit(journal.Event{Type: journal.EventApproval, Section: s.Section, Step: s.Name, Approval: a})
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
	if err := e.emit(journal.Event{Type: journal.EventApproval, Section: s.Section, Step: s.Name, Approval: a}); err != nil {
		return e.fail(s, phaseApproval, err)
	}
	if !a.Granted {
		return e.declined(s, fmt.Sprintf("the operator declined step %q", s.Name))
	}
	e.approved[s.Name] = true
	if a.How == "prompt" {
		for _, later := range together {
			la := &journal.Approval{Granted: true, User: a.User, Host: a.Host, How: "prompt", Note: fmt.Sprintf("approved ahead, with step %q", s.Name)}
			if err := e.emit(journal.Event{Type: journal.EventApproval, Section: later.Section, Step: later.Name, Approval: la}); err != nil {
				return e.fail(s, phaseApproval, err)
			}
			e.approved[later.Name] = true
		}
	}
	return nil
}

// askAhead asks, at a terminal and before the run's first action (s), for
// the approval of the first later step that approves others with it
// (approve_with): the only prompt of a switchover then comes before
// anything is written to the cluster (no canary row, no checkpoint, no
// setting), and a run declined there has changed nothing.
func (e *engine) askAhead(ctx context.Context, s *spec.Step) error {
	if e.o.Operator == nil || e.askedAhead || s.Action == nil || s.Section != spec.SectionSteps {
		return nil
	}
	e.askedAhead = true
	at := -1
	for i, x := range e.p.Steps {
		if x == s {
			at = i
		}
	}
	if at < 0 {
		return nil
	}
	for _, a := range e.p.Steps[at:] {
		if len(a.ApproveWith) == 0 || e.approved[a.Name] {
			continue
		}
		if a == s {
			return nil // asked in its own turn, which is now
		}
		return e.approveStep(ctx, a)
	}
	return nil
}

// declined skips a step the operator did not approve.
func (e *engine) declined(s *spec.Step, msg string) error {
	_ = e.transition(s, journal.StateSkipped, phaseApproval, msg, nil)
	return &StepError{Step: s.Name, Phase: phaseApproval.String(), Err: fmt.Errorf("%w: %s", ErrDeclined, msg)}
}
