package runbook

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/internal/cluster"
)

func TestDryRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		build     func(l *callLog) *spec.Plan
		wantErr   error
		wantNote  string // a note event about this step
		wantCalls map[string]int
	}{
		{
			name: "preconditions are evaluated, nothing is applied, postconditions are not evaluated",
			build: func(l *callLog) *spec.Plan {
				cp, stop := act(l, "checkpoint"), act(l, "stop-primary")
				cp.Requires = []*spec.Cond{cond(passCheck("primary-up"))}
				cp.Ensures = []*spec.Cond{cond(passCheck("checkpoint-done"))}
				stop.Destructive = true // a dry run needs no approval
				stop.Requires = []*spec.Cond{cond(passCheck("pooler-paused"))}
				stop.Ensures = []*spec.Cond{cond(passCheck("primary-stopped"))}
				p := withRollback(newPlan(cp, stop), "restore", act(l, "start-primary"))
				return withFinally(p, act(l, "unpause-manager"))
			},
			wantCalls: map[string]int{"primary-up": 1, "pooler-paused": 1, "checkpoint-done": 0, "primary-stopped": 0},
		},
		{
			name: "a failing precondition of the first step is a precondition failure",
			build: func(l *callLog) *spec.Plan {
				cp := act(l, "checkpoint")
				cp.Requires = []*spec.Cond{cond(failCheck("primary-up"))}
				return newPlan(cp, act(l, "stop-primary"))
			},
			wantErr:   ErrPrecondition,
			wantCalls: map[string]int{"primary-up": 1},
		},
		{
			name: "a failing precondition after an action is only a note",
			build: func(l *callLog) *spec.Plan {
				stop := act(l, "stop-primary")
				stop.Requires = []*spec.Cond{cond(failCheck("primary-down"))}
				return newPlan(act(l, "checkpoint"), stop)
			},
			wantNote:  "stop-primary",
			wantCalls: map[string]int{"primary-down": 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := &callLog{}
			p := tc.build(l)
			rec := &recorder{}
			o := options(t, rec)
			o.DryRun = true
			res, err := Run(context.Background(), p, o)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("dry run: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("dry run: %v, want an error wrapping %v", err, tc.wantErr)
			}
			if res.Outcome != journal.OutcomeDryRun {
				t.Errorf("Outcome = %q, want dry-run", res.Outcome)
			}
			if got := l.list(); len(got) != 0 {
				t.Errorf("a dry run applied %q", got)
			}
			calls := map[string]int{}
			for _, s := range p.AllSteps() {
				for _, c := range append(append([]*spec.Cond(nil), s.Requires...), s.Ensures...) {
					f := c.Check.(*fakeCheck)
					calls[f.name] = f.count()
				}
			}
			for name, want := range tc.wantCalls {
				if calls[name] != want {
					t.Errorf("check %s evaluated %d times, want %d", name, calls[name], want)
				}
			}
			var effects int
			for _, e := range rec.events() {
				if !e.DryRun {
					t.Errorf("event %+v not marked dry_run", e)
				}
				switch {
				case e.Type == journal.EventStep && e.State != journal.StateChecking && e.State != journal.StateSkipped:
					t.Errorf("a dry run moved %s to %s", e.Step, e.State)
				case e.Type == journal.EventCheck && e.Phase == "ensures" && (e.Check.NotEvaluated == "" || e.Check.Status != "unknown"):
					t.Errorf("postcondition of %s reported as %+v, want not evaluated", e.Step, *e.Check)
				case e.Type == journal.EventEffect && e.Section == spec.SectionSteps:
					effects++
				}
			}
			if effects != len(p.Steps) {
				t.Errorf("%d effects described, want one per step (%d)", effects, len(p.Steps))
			}
			var noted bool
			for _, e := range rec.ofType(journal.EventNote) {
				noted = noted || e.Step == tc.wantNote
			}
			if tc.wantNote != "" && !noted {
				t.Errorf("no note about %s", tc.wantNote)
			}
			if fin := rec.ofType(journal.EventRunFinished); len(fin) != 1 || fin[0].Outcome != journal.OutcomeDryRun {
				t.Errorf("run.finished %+v, want one dry-run", fin)
			}
		})
	}
	t.Run("takes no lock", func(t *testing.T) {
		t.Parallel()
		l := &callLog{}
		stop := act(l, "stop-primary")
		release := make(chan struct{})
		fake(stop).started = make(chan struct{})
		fake(stop).apply = func(ctx context.Context, _ *cluster.Target, _ int) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}
		o := options(t, &recorder{})
		ch := goRun(func() (*Result, error) { return Run(context.Background(), newPlan(stop), o) })
		<-fake(stop).started
		do := options2(o, &recorder{})
		do.DryRun = true
		_, err := Run(context.Background(), newPlan(act(l, "checkpoint")), do)
		close(release)
		if err != nil {
			t.Errorf("a dry run while a real run holds the cluster: %v", err)
		}
		if r := await(t, "the real run", 5*time.Second, ch); r.err != nil {
			t.Fatal(r.err)
		}
	})
}
