package playbooks_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
)

// syncStates renders a node's pg_stat_replication: "pg1=sync pg3=async".
const syncStates = `SELECT coalesce(string_agg(application_name || '=' || sync_state, ' ' ORDER BY application_name), '') FROM pg_stat_replication`

// Synchronous replication survives the switch, both ways it is written:
// the new primary gets the old one's setting with the old primary in the
// candidate's place, before its promotion, and once the old primary and
// the other standby follow it, as many standbys confirm commits as before.
// A backup tool's physical slot on the old primary exists on the new one.
func TestStreamingSwitchoverKeepsSynchronousReplication(t *testing.T) {
	tests := []struct {
		before, after string
		states        string // pg_stat_replication on pg2 at the end
	}{
		{"FIRST 1 (pg2)", "FIRST 1 (pg1)", "pg1=sync pg3=async"},
		{"ANY 1 (pg2, pg3)", "ANY 1 (pg1, pg3)", "pg1=quorum pg3=quorum"},
	}
	for _, tc := range tests {
		t.Run(tc.before, func(t *testing.T) {
			sb := sandboxtest.New(t, 2)
			sandboxtest.SetSync(t, sb, "pg1", tc.before)
			sandboxtest.Exec(t, sb, "pg1", "SELECT pg_create_physical_replication_slot('backup', true)")

			ev, err := playbookstest.Run(t, sb, playbookstest.Streaming, false)
			if err != nil {
				t.Fatalf("switchover pg1 -> pg2 with %q: %v\n%s", tc.before, err, ev.Text())
			}
			playbookstest.WantNothingLost(t, ev)
			sandboxtest.WantOnePrimary(t, sb, "pg2")
			if got := sandboxtest.Query(t, sb, "pg2", "SELECT current_setting('synchronous_standby_names')"); got != tc.after {
				t.Errorf("synchronous_standby_names on pg2 = %q, want %q", got, tc.after)
			}
			if got := sandboxtest.Query(t, sb, "pg2", syncStates); got != tc.states {
				t.Errorf("pg_stat_replication on pg2: %q, want %q", got, tc.states)
			}
			f := ev.Facts()
			if f[cluster.SyncBeforeFact] != tc.before || f[cluster.SyncAfterFact] != tc.after {
				t.Errorf("facts %s=%q %s=%q, want %q and %q", cluster.SyncBeforeFact, f[cluster.SyncBeforeFact], cluster.SyncAfterFact, f[cluster.SyncAfterFact], tc.before, tc.after)
			}
			if got := sandboxtest.Query(t, sb, "pg2", "SELECT string_agg(slot_name || ':' || slot_type || ':' || (restart_lsn IS NOT NULL)::text, ',') FROM pg_replication_slots WHERE slot_name = 'backup'"); got != "backup:physical:true" {
				t.Errorf("slot backup on pg2: %q, want a physical slot reserving WAL", got)
			}
			text := ev.Text()
			for _, want := range []string{"pg.sync_kept pass", "pg.slots_recreated pass", "created physical slot backup on pg2"} {
				if !strings.Contains(text, want) {
					t.Errorf("the run does not say %q:\n%s", want, text)
				}
			}
			if got := sandboxtest.WriteThroughPooler(t, sb); got != sandboxtest.Node(t, sb, "pg2").Port {
				t.Errorf("after the switch the pooler wrote to port %d, want pg2", got)
			}
		})
	}
}

// A logical slot on the primary cannot move to the candidate on
// PostgreSQL 15: plan and run refuse (exit 3) naming the slot and its lag,
// with nothing changed; allowed with allow_logical_slot_loss, the run goes
// through and reports the slot lost.
func TestStreamingSwitchoverRefusesToLoseALogicalSlot(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	sandboxtest.Exec(t, sb, "pg1", "ALTER SYSTEM SET wal_level = logical")
	sandboxtest.RestartNode(t, sb, "pg1")
	sandboxtest.Exec(t, sb, "pg1", "SELECT pg_create_logical_replication_slot('s', 'test_decoding')")
	sandboxtest.WriteThroughPooler(t, sb) // the slot's consumer falls behind
	sandboxtest.WaitReplayed(t, sb, "pg2")
	before := sandboxtest.Topology(t, sb)

	// A synchronous_standby_names for the new primary that names only the
	// candidate itself is refused at preflight too, naming the setting.
	ev, err := playbookstest.Run(t, sb, playbookstest.Streaming, true, "sync_standby_names_after=FIRST 1 (pg2)", "allow_logical_slot_loss=true")
	if !errors.Is(err, runbook.ErrPrecondition) || !strings.Contains(ev.Text(), "pg.sync_after fail") ||
		!strings.Contains(ev.Text(), `pg2 would get "FIRST 1 (pg2)"`) || !strings.Contains(ev.Text(), "wait forever") {
		t.Fatalf("plan with sync_standby_names_after naming only the candidate: %v, want exit 3 naming the setting\n%s", err, ev.Text())
	}

	for _, dry := range []bool{true, false} {
		ev, err := playbookstest.Run(t, sb, playbookstest.Streaming, dry)
		if !errors.Is(err, runbook.ErrPrecondition) {
			t.Fatalf("dry=%v with a logical slot: %v, want a precondition failure (exit 3)\n%s", dry, err, ev.Text())
		}
		text := ev.Text()
		for _, want := range []string{"pg.logical_slots fail", "s (logical, test_decoding on postgres, inactive, confirmed ", " behind", "PostgreSQL 17+", "allow_logical_slot_loss"} {
			if !strings.Contains(text, want) {
				t.Errorf("dry=%v: the refusal does not say %q:\n%s", dry, want, text)
			}
		}
		if got := ev.ActionsRun(); len(got) != 0 {
			t.Fatalf("dry=%v: actions ran: %v, want none", dry, got)
		}
		if got := sandboxtest.Topology(t, sb); got != before {
			t.Fatalf("dry=%v: topology changed: %s, was %s", dry, got, before)
		}
		if got := sandboxtest.Query(t, sb, "pg2", "SELECT current_setting('synchronous_standby_names')"); got != "" {
			t.Fatalf("dry=%v: synchronous_standby_names on pg2 became %q", dry, got)
		}
	}

	ev, err = playbookstest.Run(t, sb, playbookstest.Streaming, false, "allow_logical_slot_loss=true")
	if err != nil {
		t.Fatalf("switchover allowed to lose the slot: %v\n%s", err, ev.Text())
	}
	playbookstest.WantNothingLost(t, ev)
	sandboxtest.WantOnePrimary(t, sb, "pg2")
	if lost := ev.Facts()[cluster.LogicalSlotsLostFact]; !strings.HasPrefix(lost, "s (logical") {
		t.Errorf("fact %s = %q, want the slot s", cluster.LogicalSlotsLostFact, lost)
	}
	if !strings.Contains(ev.Text(), "allowed to be lost") {
		t.Errorf("the run does not report the slot lost:\n%s", ev.Text())
	}
	if got := sandboxtest.Query(t, sb, "pg2", "SELECT count(*)::text FROM pg_replication_slots WHERE slot_type = 'logical'"); got != "0" {
		t.Errorf("logical slots on pg2: %s (PostgreSQL 15 cannot have moved one)", got)
	}
}
