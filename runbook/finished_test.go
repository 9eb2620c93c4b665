package runbook

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/journal"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/kinds"
)

// run.finished carries the run's figures as numbers: how long it took,
// the new primary (and the old one, when the promoting step names it)
// once the run passed its point of no return, and the
// canary's acked, lost, errors and window, read from the facts the
// canary recorded. Compared with a golden event (the run id masked).
func TestRunFinishedCarriesFigures(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	var clock atomic.Int64 // milliseconds after t0
	l := &callLog{}
	canary := act(l, "stop-canary")
	fake(canary).apply = func(_ context.Context, tg *cluster.Target, _ int) error {
		tg.Facts.Set(journal.FactCanaryAcked, "5120")
		tg.Facts.Set(journal.FactCanaryLost, "0")
		tg.Facts.Set(journal.FactCanaryErrors, "0")
		tg.Facts.Set(journal.FactCanaryWindowMS, "273.2")
		clock.Store(1234)
		return nil
	}
	promote := act(l, "promote")
	promote.Action = promoting{promote.Action, "pg2", "pg1"}
	promote.PointOfNoReturn = true
	p := newPlan(act(l, "checkpoint"), promote, canary)
	p.PointOfNoReturn = "promote"
	rec := &recorder{}
	o := options(t, rec)
	o.Yes = true
	o.now = func() time.Time { return t0.Add(time.Duration(clock.Load()) * time.Millisecond) }
	if _, err := Run(context.Background(), p, o); err != nil {
		t.Fatal(err)
	}
	evs := rec.events()
	last := evs[len(evs)-1]
	if last.Type != journal.EventRunFinished {
		t.Fatalf("the last event is %s, want run.finished", last.Type)
	}
	b, err := json.MarshalIndent(last, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(string(b), last.RunID, "RUN_ID") + "\n"
	if want, err := os.ReadFile(filepath.Join("testdata", "run_finished.golden")); err != nil || got != string(want) {
		t.Errorf("run.finished differs from testdata/run_finished.golden (%v)\ngot:\n%s\nwant:\n%s", err, got, want)
	}

	// Before the point of no return nothing moved: no new primary; a dry
	// run has no canary figures.
	rec = &recorder{}
	o = options(t, rec)
	o.DryRun = true
	if _, err := Run(context.Background(), newPlan(act(&callLog{}, "checkpoint")), o); err != nil {
		t.Fatal(err)
	}
	evs = rec.events()
	if last := evs[len(evs)-1]; last.Type != journal.EventRunFinished || last.NewPrimary != "" || last.Canary != nil || last.DurationMS == nil {
		t.Fatalf("dry run's run.finished = %+v; want a duration, no new primary, no canary", last)
	}
}

// promoting is a fake action that says it makes node the primary
// (kinds.Promoter), as pg.promote does, and, when from is set, which
// node it takes the role from (kinds.Demoter), as a manager's
// switchover does.
type promoting struct {
	kinds.Step
	node, from string
}

func (p promoting) Promotes() string { return p.node }

func (p promoting) Demotes() string { return p.from }
