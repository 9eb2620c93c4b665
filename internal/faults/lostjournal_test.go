package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/canary"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
)

// A run SIGKILLed right after the promotion, and its journal lost with
// the operator's laptop. The guard sends the clients to pg2; pg1 stays
// down, pg3 streams from nobody, the cluster stays claimed by the dead
// run. A colleague, from another journal directory, with the inventory
// alone:
//
//   - `status` shows the claim, and that its process is gone and its
//     journal is not here;
//   - a new switchover to pg2 is refused saying pg2 is already the
//     primary and who claims the cluster, with the way to finish;
//   - `resume` finds no journal and says where to look;
//   - `run rejoin-old-primary` is refused while the claim stands, and
//     with --take-over finishes the switchover: pg1 rejoined, pg3
//     streaming from pg2, the poolers on pg2, the claim released.
//
// An independent writer through PgBouncer loses nothing, and no two
// nodes acknowledge commits at once.
func TestColleagueFinishesARunWhoseJournalIsLost(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	testbin.Build(t)
	before, err := waitHealthy(t, sb)
	if err != nil || before.primary != "pg1" {
		t.Fatalf("before: %+v %v, want pg1 the primary", before, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	w, err := canary.Start(ctx, canary.Options{Conninfo: sb.ClientConninfo(), Table: "lost_journal_canary",
		RunID: fmt.Sprintf("lost-journal-%d", time.Now().UnixNano())})
	cancel()
	if err != nil {
		t.Fatalf("canary: %v", err)
	}
	t.Cleanup(w.Close)
	smp := sandboxtest.StartSampler(sb)
	t.Cleanup(func() { smp.Finish() })

	work, lost := t.TempDir(), t.TempDir()
	p := start(t, work, "run", playbook, "-i", sb.Inventory(), "--yes", "--journal-dir="+lost,
		"--var", "primary=pg1", "--var", "candidate=pg2", "--var", "pause_max_hold="+killCap.String())
	p.KillWhen(lost, "promote done", journalStall, 0, testbin.MainStep("promote", "done"))
	id := runIDOf(t, lost)
	waitFor(t, "clients served through the pooler after the kill", func(ctx context.Context) error { return writeThroughPooler(sb) })
	// The journal directory goes with the operator's machine. The run's
	// guard (a process of its own) may still be writing its record there:
	// removed until it stays removed.
	waitFor(t, "the lost run's journal directory removed", func(ctx context.Context) error {
		if err := os.RemoveAll(lost); err != nil {
			return err
		}
		if _, err := os.Stat(lost); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s is still there: %v", lost, err)
		}
		return nil
	})

	colleague := "--journal-dir=" + t.TempDir()
	res := runBinary(t, work, "status", "-i", sb.Inventory(), colleague)
	t.Logf("status after the kill:\n%s", res.Stdout)
	for _, want := range []string{"claim:    run " + id, "is gone and its journal is not in this journal directory", "finishing another operator's run"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("status does not say %q:\n%s", want, res.Output())
		}
	}

	res = runBinary(t, work, "run", playbook, "-i", sb.Inventory(), "--yes", colleague, "--candidate", "pg2")
	if res.Code != 3 {
		t.Errorf("a new switchover to pg2: exit %d, want 3: %s", res.Code, res)
	}
	for _, want := range []string{"pg2 is already the primary of cluster", "The cluster is claimed by run " + id, "--var new=pg2 --take-over"} {
		if !strings.Contains(res.Output(), want) {
			t.Errorf("a new switchover to pg2 does not say %q:\n%s", want, res.Output())
		}
	}

	res = runBinary(t, work, "resume", "--yes", colleague)
	if res.Code == 0 || !strings.Contains(res.Output(), "finishing another operator's run") {
		t.Errorf("resume from another journal directory: %s; want it refused, saying how to finish from the cluster", res)
	}

	finish := []string{"run", "rejoin-old-primary", "-i", sb.Inventory(), "--yes", colleague, "--var", "old=pg1", "--var", "new=pg2"}
	res = runBinary(t, work, finish...)
	if res.Code != 6 || !strings.Contains(res.Output(), id) {
		t.Errorf("finishing without --take-over: %s; want exit 6 naming run %s", res, id)
	}
	res = runBinary(t, work, append(finish, "--take-over")...)
	t.Logf("finish with --take-over: %s", res)
	if res.Code != 0 {
		t.Fatalf("finishing with --take-over: %s", res)
	}
	if !strings.Contains(res.Output(), "claimed by run "+id) {
		t.Errorf("the finishing run does not say whose claim it takes over:\n%s", res.Output())
	}

	after, err := waitHealthy(t, sb)
	if err != nil || after.primary != "pg2" {
		t.Errorf("after the finish: %+v %v, want pg2 the primary, pg1 and pg3 streaming from it", after, err)
	}
	res = runBinary(t, work, "status", "-i", sb.Inventory(), colleague)
	if res.Code != 0 || !strings.Contains(res.Stdout, "claim:    none in the cluster") {
		t.Errorf("status after the finish: %s; want healthy and no claim", res)
	}
	if err := writeThroughPooler(sb); err != nil {
		t.Errorf("after the finish: %v", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), pollTimeout)
	defer scancel()
	rep, err := w.Stop(sctx)
	if err != nil {
		t.Fatalf("writer: %v", err)
	}
	t.Logf("writer through the pooler: %d acknowledged, %d client errors, longest wait %s, %d lost", rep.Acked, rep.Errors, rep.LongestWait, len(rep.Lost))
	if rep.Acked == 0 || len(rep.Lost) > 0 {
		t.Errorf("writer through the pooler: %d acknowledged, %d lost; want commits and none lost", rep.Acked, len(rep.Lost))
	}
	smp.Finish().CheckKept(t, sb, "pg2")
}
