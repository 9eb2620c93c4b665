package runbook

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/topology"
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

// fakeBinDir is a bin directory whose postgres says it is version.
func fakeBinDir(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\necho 'postgres (PostgreSQL) " + version + "'\n"
	if err := os.WriteFile(filepath.Join(dir, "postgres"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A dry run shows blue's nodes and green's, each with its major version
// (here from its bin_dir: no server answers), and says when green runs
// another major version than blue.
func TestDryRunShowsClusters(t *testing.T) {
	t.Parallel()
	down := "host=127.0.0.1 port=1 user=postgres dbname=postgres connect_timeout=2"
	blue16, green17 := fakeBinDir(t, "16.4"), fakeBinDir(t, "17.2")
	p := newPlan(&spec.Step{Name: "look", Section: spec.SectionSteps})
	p.Cluster = &cluster.Cluster{Name: "blue", Order: []string{"pg1"}, Nodes: map[string]*cluster.Node{
		"pg1": {Name: "pg1", Conninfo: down, BinDir: blue16},
	}, Green: &cluster.Cluster{Name: "green", Order: []string{"green1"}, Nodes: map[string]*cluster.Node{
		"green1": {Name: "green1", Conninfo: down, BinDir: green17},
	}}}
	rec := &recorder{}
	o := options(t, rec)
	o.DryRun = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Run(ctx, p, o); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	evs := rec.ofType(journal.EventClusters)
	if len(evs) != 1 {
		t.Fatalf("%d %s events, want 1", len(evs), journal.EventClusters)
	}
	got := evs[0]
	if len(got.Clusters) != 2 || got.Clusters[0].Green || !got.Clusters[1].Green {
		t.Fatalf("clusters = %+v, want blue then green", got.Clusters)
	}
	b, g := got.Clusters[0].Nodes, got.Clusters[1].Nodes
	if len(b) != 1 || b[0].Node != "pg1" || b[0].Major != 16 || b[0].From != topology.VersionFromBinaries {
		t.Errorf("blue = %+v, want pg1 16 from its bin_dir", b)
	}
	if len(g) != 1 || g[0].Node != "green1" || g[0].Major != 17 || g[0].From != topology.VersionFromBinaries {
		t.Errorf("green = %+v, want green1 17 from its bin_dir", g)
	}
	if want := "green runs PostgreSQL 17, blue 16: a major upgrade"; got.Message != want {
		t.Errorf("message = %q, want %q", got.Message, want)
	}
}
