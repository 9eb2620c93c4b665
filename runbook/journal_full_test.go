package runbook

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

// fullDisk is a journal file that accepts n writes, then fails as a full
// disk does.
type fullDisk struct {
	f    *os.File
	left atomic.Int64
}

func (d *fullDisk) Write(b []byte) (int, error) {
	if d.left.Add(-1) < 0 {
		return 0, &os.PathError{Op: "write", Path: d.f.Name(), Err: syscall.ENOSPC}
	}
	return d.f.Write(b)
}
func (d *fullDisk) Sync() error  { return d.f.Sync() }
func (d *fullDisk) Close() error { return d.f.Close() }

// A journal that fills up mid-run stops the run before its next action:
// no step acts without a record, not even a rollback or finally step, and
// the error says so.
func TestAFullJournalStopsBeforeTheNextAction(t *testing.T) {
	l := &callLog{}
	second := act(l, "second")
	second.OnFailure = "undo"
	p := withFinally(withRollback(newPlan(act(l, "first"), second, act(l, "third")), "undo", act(l, "undo-first")), act(l, "resume-pooler"))
	var left int64 = 1 << 40
	orig := journal.OpenFile
	journal.OpenFile = func(path string, flag int) (journal.File, error) {
		f, err := os.OpenFile(path, flag, 0o600)
		if err != nil {
			return nil, err
		}
		d := &fullDisk{f: f}
		d.left.Store(left)
		return d, nil
	}
	t.Cleanup(func() { journal.OpenFile = orig })

	// Count the events of a whole run, then let the disk fill up just
	// after the first step is done.
	rec := &recorder{}
	if _, err := Run(context.Background(), p, options(t, rec)); err != nil {
		t.Fatal(err)
	}
	firstDone := 0
	for i, e := range rec.events() {
		if e.Type == journal.EventStep && e.Step == "first" && e.State == journal.StateDone {
			firstDone = i + 1
		}
	}
	l2 := &callLog{}
	second2 := act(l2, "second")
	second2.OnFailure = "undo"
	p2 := withFinally(withRollback(newPlan(act(l2, "first"), second2, act(l2, "third")), "undo", act(l2, "undo-first")), act(l2, "resume-pooler"))
	left = int64(firstDone)
	_, err := Run(context.Background(), p2, options(t, &recorder{}))
	if got := l2.list(); !sameStrings(got, []string{"first"}) {
		t.Fatalf("applied %q after the journal filled up, want only first: nothing may act without a record", got)
	}
	if !errors.Is(err, ErrAction) || !strings.Contains(err.Error(), "no space left on device") ||
		!strings.Contains(err.Error(), "no further step, rollback or finally step ran") || !strings.Contains(err.Error(), "actions that ran: first") ||
		!strings.Contains(err.Error(), "switchover resume") {
		t.Fatalf("err = %v, want an action failure naming the full journal, what ran, and how to resume", err)
	}
}

// A run killed mid-action leaves its claim on the cluster: a new run is
// refused as stale, naming it, until it is taken over explicitly.
func TestAStaleClaimIsTakenOverOnlyExplicitly(t *testing.T) {
	l := &callLog{}
	block := act(l, "block")
	fake(block).apply = untilCtxDone
	rec := &recorder{}
	o := options(t, rec)
	ctx, cancel := context.WithCancel(context.Background())
	ch := goRun(func() (*Result, error) { return Run(ctx, newPlan(block), o) })
	rec.waitFor(t, "block running", func(e journal.Event) bool { return e.Step == "block" && e.State == journal.StateRunning })
	cancel() // the operator's second Ctrl-C: stop at once, like a kill
	first := await(t, "the killed run", 5e9, ch)

	_, err := Run(context.Background(), newPlan(act(&callLog{}, "next")), options2(o, &recorder{}))
	var le *LockedError
	if !errors.As(err, &le) || !le.Stale || le.Holder.RunID != first.res.RunID || !strings.Contains(err.Error(), "--take-over") {
		t.Fatalf("a new run after a killed one: %v, want a stale lock naming run %s and --take-over", err, first.res.RunID)
	}
	o2 := options2(o, &recorder{})
	o2.TakeOver = true
	l2 := &callLog{}
	if _, err := Run(context.Background(), newPlan(act(l2, "next")), o2); err != nil {
		t.Fatalf("--take-over: %v", err)
	}
	if l2.count("next") != 1 {
		t.Fatal("the run that took over did not act")
	}
}

// A step cut off mid-action whose postconditions never hold is settled
// within a few seconds, not after its full within: the action may never
// have run, and clients may be waiting.
func TestSettlingDoesNotWaitOutTheFullWithin(t *testing.T) {
	l := &callLog{}
	build := func() *spec.Plan {
		p := settlePlan(l, "F", false)
		c := p.Step("stop-primary").Ensures[0]
		c.Within, c.Every = 30*time.Second, 50*time.Millisecond
		return p
	}
	o := options(t, &recorder{})
	id := killMidAction(t, build(), o, "stop-primary")
	start := time.Now()
	_, err := Resume(context.Background(), build(), id, options2(o, &recorder{}))
	if took := time.Since(start); took > settleWithin+3*time.Second {
		t.Fatalf("settling took %s: it waited out the postcondition's within: 30s", took)
	}
	if err == nil || !strings.Contains(err.Error(), "--settle") {
		t.Fatalf("resume = %v, want it to ask for --settle", err)
	}
}

// A run killed in the middle of writing an event leaves half a line; the
// resume cuts it off before appending, so every line of the journal is one
// whole event again.
func TestResumeAfterATornJournalLine(t *testing.T) {
	l := &callLog{}
	b := act(l, "block")
	fake(b).apply = onFirstCall(untilCtxDone, nil) // blocks in the killed run only
	b.Idempotent = true
	build := func() *spec.Plan { return newPlan(act(l, "first"), b, act(l, "last")) }
	o := options(t, &recorder{})
	id := killMidAction(t, build(), o, "block")
	f, err := os.OpenFile(journal.JournalPath(o.JournalDir, id), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"seq":99,"time":"2026-11-21T11:59:17Z","run_id":"` + id + `","event":"step","step":"blo`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := Resume(context.Background(), build(), id, options2(o, &recorder{})); err != nil {
		t.Fatalf("resume after a torn line: %v", err)
	}
	assertJournal(t, o.JournalDir, id)
	if l.count("last") != 1 {
		t.Fatal("the resumed run did not finish")
	}
}
