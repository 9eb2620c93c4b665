package playbooks_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
)

// A standby that applies WAL an hour late (recovery_min_apply_delay). As
// the candidate, plan refuses it, naming the delay. A switchover to
// another standby names it in the plan, repoints it to the new primary
// and verifies its primary_conninfo instead of waiting for it to stream
// (it opens no WAL receiver until its delayed replay reaches the end of
// the WAL it has), and ends done: 0 lost, one primary, never two nodes
// acknowledging commits at once.
func TestStreamingSwitchoverWithADelayedStandby(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	sandboxtest.Exec(t, sb, "pg3", "ALTER SYSTEM SET recovery_min_apply_delay = '1h'", "SELECT pg_reload_conf()")
	sandboxtest.EventuallyQuery(t, sb, "pg3", "SELECT current_setting('recovery_min_apply_delay')", "1h")

	ev, err := playbookstest.Run(t, sb, playbookstest.Streaming, true, "candidate=pg3")
	if !errors.Is(err, runbook.ErrPrecondition) {
		t.Fatalf("plan with the delayed pg3 as the candidate: %v, want a precondition failure (exit 3)\n%s", err, ev.Text())
	}
	if text := ev.Text(); !strings.Contains(text, "pg.delayed_standbys fail") || !strings.Contains(text, "pg3 applies WAL 1h late on purpose") {
		t.Errorf("plan does not refuse pg3 for its delay:\n%s", text)
	}

	w := sandboxtest.WatchStalls(t, sb)
	roles := sandboxtest.StartSampler(sb)
	ev, err = playbookstest.Run(t, sb, playbookstest.Streaming, false)
	roles.Finish().CheckKeptOnPrimary(t, sb)
	w.Check(t, 5*time.Second)
	if err != nil {
		t.Fatalf("switchover to pg2 beside the delayed pg3: %v\n%s", err, ev.Text())
	}
	playbookstest.WantNothingLost(t, ev)
	sandboxtest.WantOnePrimary(t, sb, "pg2")
	text := ev.Text()
	for _, want := range []string{
		"pg3 applies WAL 1h late (recovery_min_apply_delay): never a candidate; after the switch repointed to pg2",
		"pg3 applies WAL 1h late (recovery_min_apply_delay): primary_conninfo names pg2",
		"not within this run",
		"pg3: standby from pg2 once its delay allows",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the run does not say %q:\n%s", want, text)
		}
	}
	port := fmt.Sprint(sandboxtest.Node(t, sb, "pg2").Port)
	if got := sandboxtest.Query(t, sb, "pg3", "SELECT current_setting('primary_conninfo')"); !strings.Contains(got, "port="+port) {
		t.Errorf("pg3's primary_conninfo after the run does not name pg2's port %s", port)
	}
}
