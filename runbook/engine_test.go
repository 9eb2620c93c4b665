package runbook

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/internal/cluster"
)

// runCase is one run of a plan through Run and what it must come to.
type runCase struct {
	name  string
	build func(t *testing.T, l *callLog) *spec.Plan
	opts  func(o *Options)

	wantErr     error // a sentinel the error must wrap; nil: no error
	wantInErr   []string
	wantOutcome journal.Outcome
	wantApplied []string
	wantTrace   []string // nil: not compared
	// minDur and maxDur bound how long Run takes, when set.
	minDur, maxDur time.Duration
	check          func(t *testing.T, res *Result, err error, rec *recorder)
}

// TestRun runs each case of the engine's jobs (section flow, approval,
// step lifecycle, check evaluation) as a subtest of one table.
func TestRun(t *testing.T) {
	t.Parallel()
	var tests []runCase
	for _, cases := range [][]runCase{runCasesFlow, runCasesApproval, runCasesAskAhead, runCasesLifecycle, runCasesChecks} {
		tests = append(tests, cases...)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := &callLog{}
			p := tc.build(t, l)
			rec := &recorder{}
			o := options(t, rec)
			if tc.opts != nil {
				tc.opts(&o)
			}
			r := await(t, "Run", 10*time.Second, goRun(func() (*Result, error) {
				return Run(context.Background(), p, o)
			}))
			res, err := r.res, r.err
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("Run: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("Run: error %v, want one wrapping %v", err, tc.wantErr)
			}
			for _, s := range tc.wantInErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if tc.wantOutcome != "" {
				if res.Outcome != tc.wantOutcome {
					t.Errorf("Outcome = %q, want %q", res.Outcome, tc.wantOutcome)
				}
				fin := rec.ofType(journal.EventRunFinished)
				if len(fin) != 1 || fin[0].Outcome != tc.wantOutcome {
					t.Errorf("run.finished events %+v: want one with outcome %q", fin, tc.wantOutcome)
				}
			}
			if got := l.list(); !sameStrings(got, tc.wantApplied) {
				t.Errorf("applied %q, want %q", got, tc.wantApplied)
			}
			if tc.wantTrace != nil {
				if got := trace(rec.events()); !sameStrings(got, tc.wantTrace) {
					t.Errorf("events:%s\nwant:%s", lines(got), lines(tc.wantTrace))
				}
			}
			if tc.minDur > 0 && r.dur < tc.minDur {
				t.Errorf("Run took %s, want at least %s", r.dur, tc.minDur)
			}
			if tc.maxDur > 0 && r.dur > tc.maxDur {
				t.Errorf("Run took %s, want at most %s", r.dur, tc.maxDur)
			}
			if op, ok := o.Operator.(*fakeOperator); ok && tc.wantOutcome == journal.OutcomeDone {
				qs := op.asked()
				if len(qs) == 0 || qs[0].TypeToConfirm != testCluster || (len(qs) > 1 && qs[1].TypeToConfirm != "") {
					t.Errorf("questions %+v: want the cluster name typed at the first destructive step only", qs)
				}
				for _, q := range qs {
					if q.Kind != AskApprove || q.Cluster != testCluster || q.Effect.Command != "fake "+q.Step.Name {
						t.Errorf("question %+v: want an approval naming the step's effect and the cluster", q)
					}
				}
				for _, e := range rec.ofType(journal.EventApproval) {
					if a := e.Approval; !a.Granted || a.How != "prompt" || a.User != "dba" || a.Host != "bastion-1" {
						t.Errorf("approval %+v: want granted at the prompt by dba@bastion-1", a)
					}
				}
			}
			if tc.check != nil {
				tc.check(t, res, err, rec)
			}
		})
	}
}

// TestRunLocked: one run per cluster; the second is told who holds it.
func TestRunLocked(t *testing.T) {
	t.Parallel()
	l := &callLog{}
	stop := act(l, "stop-primary")
	release := make(chan struct{})
	fake(stop).started = make(chan struct{})
	fake(stop).apply = func(ctx context.Context, _ *cluster.Target, _ int) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p := newPlan(stop)
	rec := &recorder{}
	o := options(t, rec)
	first := goRun(func() (*Result, error) { return Run(context.Background(), p, o) })
	select {
	case <-fake(stop).started:
	case <-time.After(5 * time.Second):
		t.Fatal("the first run never reached its action")
	}
	runID := rec.ofType(journal.EventRunStarted)[0].RunID

	l2 := &callLog{}
	res, err := Run(context.Background(), newPlan(act(l2, "checkpoint")), Options{JournalDir: o.JournalDir, Identity: Identity{User: "other", Host: "elsewhere"}})
	close(release)
	var le *LockedError
	switch {
	case !errors.Is(err, ErrLocked) || !errors.As(err, &le):
		t.Fatalf("second run: %v, want a *LockedError", err)
	case le.Stale:
		t.Errorf("LockedError.Stale: want false, the holder is alive")
	case le.Cluster != testCluster || le.Holder.RunID != runID || le.Holder.User != "dba" ||
		le.Holder.Host != "bastion-1" || le.Holder.PID != os.Getpid():
		t.Errorf("LockedError %+v: want run %s by dba@bastion-1 pid %d", le, runID, os.Getpid())
	}
	for _, s := range []string{runID, "dba@bastion-1"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	if res != nil || len(l2.list()) != 0 {
		t.Errorf("second run: result %+v, applied %q; want nothing", res, l2.list())
	}
	if r := await(t, "the first run", 5*time.Second, first); r.err != nil {
		t.Fatalf("first run: %v", r.err)
	}
	// Once it finished, the cluster is free again.
	if _, err := Run(context.Background(), newPlan(act(l2, "checkpoint")), options2(o, &recorder{})); err != nil {
		t.Fatalf("a run after the first finished: %v", err)
	}
}

// options2 returns o with another observer, for a later run in the same
// journal directory.
func options2(o Options, rec *recorder) Options {
	return Options{JournalDir: o.JournalDir, Observer: rec, Identity: o.Identity}
}

func TestRunRefusesAnUnwritableJournalDir(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{false, true} {
		l := &callLog{}
		rec := &recorder{}
		res, err := Run(context.Background(), newPlan(act(l, "checkpoint")),
			Options{JournalDir: filepath.Join(file, "sub"), Observer: rec, Identity: testIdentity, DryRun: dry})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("dry run %v: %v, want ErrInvalid", dry, err)
		}
		if res != nil || len(l.list()) != 0 || len(rec.events()) != 0 {
			t.Errorf("dry run %v: result %+v, applied %q, %d events; want nothing", dry, res, l.list(), len(rec.events()))
		}
	}
}
