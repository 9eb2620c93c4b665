package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/switchover/switchover/playbooks"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"

	// The kinds the playbooks use: the engine knows none itself.
	_ "github.com/switchover/switchover/checks"
	_ "github.com/switchover/switchover/steps"
)

// loadPlaybook reads a shipped playbook as `switchover run NAME` does.
func loadPlaybook(name string) (*spec.Runbook, error) {
	src, ok := playbooks.Read(name)
	if !ok {
		return nil, fmt.Errorf("no shipped playbook %s", name)
	}
	return spec.LoadRunbook("playbook:"+name, src)
}

// planOf resolves a runbook against an inventory file with --var
// overrides, as `switchover run NAME -i FILE --var NAME=VALUE` does.
func planOf(rb *spec.Runbook, inventory string, vars ...string) (*spec.Plan, error) {
	src, err := os.ReadFile(inventory)
	if err != nil {
		return nil, err
	}
	inv, err := spec.LoadInventory(inventory, src)
	if err != nil {
		return nil, err
	}
	decls, err := spec.ParseVarFlags(vars)
	if err != nil {
		return nil, err
	}
	return spec.Resolve(rb, inv, decls)
}

// recorder is a run's observer: it keeps the events, in the order the
// engine emits them.
type recorder struct {
	mu     sync.Mutex
	events []journal.Event
}

// Observe implements journal.Observer.
func (r *recorder) Observe(ev journal.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) all() []journal.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]journal.Event(nil), r.events...)
}

// execute runs a plan with the engine as `switchover run --yes` does
// without a terminal (every destructive step approved by --yes, journaled
// in the benchmark's journal directory), bounded by limit, and returns its
// events. A run that does not end done is an error carrying the engine's.
func (b *bench) execute(ctx context.Context, p *spec.Plan, limit time.Duration) ([]journal.Event, error) {
	rec := &recorder{}
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	res, err := runbook.Run(rctx, p, runbook.Options{Yes: true, Observer: rec, JournalDir: b.journal})
	if err == nil && (res == nil || res.Outcome != journal.OutcomeDone) {
		err = fmt.Errorf("the run ended %v, not done", outcome(res))
	}
	if err != nil {
		if res != nil && res.Journal != "" && b.o.Keep {
			err = fmt.Errorf("%w (journal: %s)", err, res.Journal)
		}
		if rctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w (the benchmark's bound of %s ran out)", err, limit)
		}
		return rec.all(), err
	}
	return rec.all(), nil
}

func outcome(res *runbook.Result) any {
	if res == nil {
		return "without a result"
	}
	return res.Outcome
}
