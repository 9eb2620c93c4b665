package runbook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchover/switchover/internal/topology"
	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

// dryRun evaluates every precondition for real (checks are read-only by
// contract), describes every action without running it, and marks every
// postcondition as not evaluated: each depends on its step's action.
//
// A precondition of a step that no action precedes is as good as in a real
// run: its failure means the real run would stop there (exit 3). One after
// an action is evaluated once, on the cluster as it is now, and reported as
// such: in a real run the earlier action may have made it true.
func (e *engine) dryRun(ctx context.Context, res *Result) error {
	e.showClusters(ctx)
	firstAction := -1
	for i, s := range e.p.Steps {
		if s.Action != nil {
			firstAction = i
			break
		}
	}
	var blocking *StepError
	for i, s := range e.p.Steps {
		e.cur = s
		if err := e.transition(s, journal.StateChecking, "", "dry run", nil); err != nil {
			return err
		}
		beforeActions := firstAction < 0 || i <= firstAction
		err := e.conds(ctx, s, s.Requires, "requires", beforeActions)
		switch {
		case errors.Is(err, errInterrupted), errors.Is(err, errKilled):
			return &StepError{Step: s.Name, Phase: "interrupted", Err: err} // err says declined once
		case err != nil && beforeActions:
			if blocking == nil {
				blocking = &StepError{Step: s.Name, Phase: "requires", Err: err}
			}
		case err != nil:
			e.note(s, fmt.Sprintf("evaluated on the cluster as it is now, before step %q has acted; in a real run it may hold", e.p.Steps[firstAction].Name))
		}
		e.describeStep(s)
		_ = e.transition(s, journal.StateSkipped, "", "dry run: not run", nil)
	}
	for _, sec := range e.p.Runbook.Rollback {
		e.describeSection(spec.RollbackSection(sec.Name), e.p.Rollback[sec.Name])
	}
	for _, sec := range e.p.Runbook.Repair {
		e.describeSection(spec.RepairSection(sec.Name), e.p.Repair[sec.Name])
	}
	e.describeSection(spec.SectionFinally, e.p.Finally)
	res.Outcome = journal.OutcomeDryRun
	ev := journal.Event{Type: journal.EventRunFinished, Outcome: journal.OutcomeDryRun, Message: "dry run: nothing was changed"}
	if blocking != nil {
		ev.Step, ev.Error = blocking.Step, blocking.Err.Error()
		ev.Message = fmt.Sprintf("dry run: nothing was changed; a real run would stop at step %q", blocking.Step)
	}
	_ = e.emit(ev)
	if blocking != nil {
		return blocking
	}
	return nil
}

// versionsWithin bounds how long a dry run asks the nodes their versions.
const versionsWithin = 15 * time.Second

// showClusters emits the clusters the plan acts on, blue's nodes and, in a
// blue/green move, green's, each with its major version, and says when
// green runs another one: a major upgrade.
func (e *engine) showClusters(ctx context.Context) {
	c := e.p.Cluster
	if c == nil || len(c.Nodes) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, versionsWithin)
	defer cancel()
	vs := topology.Versions(ctx, c)
	ev := journal.Event{Type: journal.EventClusters, Clusters: vs}
	if green, blue, ok := topology.MajorUpgrade(vs); ok {
		ev.Message = fmt.Sprintf("green runs PostgreSQL %d, blue %d: a major upgrade", green, blue)
	}
	_ = e.emit(ev)
}

// describeStep emits what a step's action would do and its postconditions
// as not evaluated.
func (e *engine) describeStep(s *spec.Step) {
	t := e.target()
	if s.Action != nil {
		eff := s.Action.Describe(t)
		_ = e.emit(journal.Event{Type: journal.EventEffect, Section: s.Section, Step: s.Name, Effect: &eff})
	}
	for _, c := range s.Ensures {
		_ = e.emit(journal.Event{Type: journal.EventCheck, Section: s.Section, Step: s.Name, Phase: "ensures", Check: &journal.CheckEvent{
			Kind: c.Kind, Describe: c.Check.Describe(t), Status: "unknown",
			NotEvaluated: fmt.Sprintf("after step %q acts", s.Name), WithinMS: c.Within.Milliseconds(),
		}})
	}
}

func (e *engine) describeSection(sec spec.Section, list []*spec.Step) {
	if len(list) == 0 {
		return
	}
	_ = e.emit(journal.Event{Type: journal.EventSection, Section: sec, Message: "dry run: shown, not run"})
	for _, s := range list {
		e.cur = s
		t := e.target()
		for _, c := range s.Requires {
			_ = e.emit(journal.Event{Type: journal.EventCheck, Section: s.Section, Step: s.Name, Phase: "requires", Check: &journal.CheckEvent{
				Kind: c.Kind, Describe: c.Check.Describe(t), Status: "unknown", NotEvaluated: "runs only if the section runs",
			}})
		}
		e.describeStep(s)
	}
}
