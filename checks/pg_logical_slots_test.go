package checks

import (
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestLogicalSlotsJudge(t *testing.T) {
	t.Parallel()
	slot := func(name string, failover bool) pg.ReplicationSlot {
		return pg.ReplicationSlot{Name: name, Type: "logical", Plugin: "pgoutput", Database: "app", LagBytes: 4096, Failover: failover}
	}
	synced := func(name string) pg.ReplicationSlot {
		s := slot(name, true)
		s.Synced = true
		return s
	}
	copied := pg.ReplicationSlot{Name: "cdc", Type: "logical", Plugin: "pgoutput", Database: "app", LagBytes: -1}
	tests := []struct {
		name           string
		logical        []pg.ReplicationSlot
		onCandidate    []pg.ReplicationSlot
		allow, patroni bool
		status         Status
		see            []string
		lost           int
	}{
		{name: "none", status: Pass, see: []string{"no logical replication slot on pg1"}},
		{name: "one, refused", logical: []pg.ReplicationSlot{slot("cdc", false)}, status: Fail,
			see: []string{"cdc (logical, pgoutput on app, inactive", "4kB behind", "PostgreSQL before 17 cannot move", "failover = true", "allow_logical_slot_loss"}, lost: 1},
		{name: "one, allowed", logical: []pg.ReplicationSlot{slot("cdc", false)}, allow: true, status: Pass,
			see: []string{"allowed to be lost", "cdc (logical"}, lost: 1},
		{name: "17+: a failover slot synced on the candidate", logical: []pg.ReplicationSlot{slot("cdc", true)}, onCandidate: []pg.ReplicationSlot{synced("cdc")},
			status: Pass, see: []string{"pg2 has too, kept: cdc"}},
		{name: "17+: a failover slot not synced yet", logical: []pg.ReplicationSlot{slot("cdc", true)}, onCandidate: []pg.ReplicationSlot{slot("cdc", true)},
			status: Fail, see: []string{"cdc (logical"}, lost: 1},
		{name: "17+: synced, but not a failover slot on the primary", logical: []pg.ReplicationSlot{slot("cdc", false)}, onCandidate: []pg.ReplicationSlot{synced("cdc")},
			status: Fail, lost: 1},
		{name: "Patroni keeps a copy on the candidate", logical: []pg.ReplicationSlot{slot("cdc", false)}, onCandidate: []pg.ReplicationSlot{copied},
			patroni: true, status: Pass, see: []string{"kept: cdc"}},
		{name: "Patroni has no copy of one of them", logical: []pg.ReplicationSlot{slot("cdc", false), slot("etl", false)}, onCandidate: []pg.ReplicationSlot{copied},
			patroni: true, status: Fail, see: []string{"kept: cdc", "would not have after its promotion: etl"}, lost: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &LogicalSlots{Node: "pg1", Candidate: "pg2", AllowLoss: tc.allow, KeptOnCandidate: tc.patroni}
			r := c.judge(tc.logical, tc.onCandidate)
			assertResult(t, r, tc.status, tc.see, nil)
			if lost, _ := r.Values["lost"].([]string); len(lost) != tc.lost {
				t.Errorf("lost = %v, want %d", lost, tc.lost)
			}
		})
	}
}

// TestSlotsOnASandbox puts a logical slot and a backup tool's physical
// slot on the primary of a sandbox of its own: the logical one is refused
// with its lag, or listed as lost when allowed; the physical one is the
// only one recorded to be recreated (the standbys' own slots are not), and
// pg.slots_recreated finds it where it is.
func TestSlotsOnASandbox(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	runSQL(t, sb, "pg1", "ALTER SYSTEM SET wal_level = logical")
	restartNode(t, sb, "pg1")
	waitStreaming(t, sb, "pg2")
	waitStreaming(t, sb, "pg3")
	runSQL(t, sb, "pg1",
		"SELECT pg_create_logical_replication_slot('s', 'test_decoding')",
		"SELECT pg_create_physical_replication_slot('backup', true)")
	writeSome(t, sb, "pg1")

	tg := sandboxTarget(sb)
	refuse := mustBuild(t, "pg.logical_slots", map[string]any{"node": "pg1", "candidate": "pg2"})
	r := runCheck(t, refuse, tg)
	assertResult(t, r, Fail, []string{"s (logical, test_decoding on postgres, inactive, confirmed", "behind", "cannot move a logical slot"}, nil)
	if _, ok := tg.Facts.Get(cluster.LogicalSlotsLostFact); ok {
		t.Error("a refusal recorded the slot as lost")
	}
	allow := mustBuild(t, "pg.logical_slots", map[string]any{"node": "pg1", "candidate": "pg2", "allow_loss": "true"})
	assertResult(t, runCheck(t, allow, tg), Pass, []string{"allowed to be lost", "s (logical"}, nil)
	if got, _ := tg.Facts.Get(cluster.LogicalSlotsLostFact); !strings.HasPrefix(got, "s (logical") {
		t.Errorf("fact %s = %q, want the slot s", cluster.LogicalSlotsLostFact, got)
	}
	none := mustBuild(t, "pg.logical_slots", map[string]any{"node": "pg2", "candidate": "pg3"})
	assertResult(t, runCheck(t, none, tg), Pass, []string{"no logical replication slot on pg2"}, nil)

	consumers := mustBuild(t, "pg.consumer_slots", map[string]any{"node": "pg1"})
	r = runCheck(t, consumers, tg)
	assertResult(t, r, Pass, []string{"backup (physical, inactive, restart_lsn", "standbys' own: pg1, pg2, pg3"}, nil)
	if got, _ := tg.Facts.Get(cluster.SlotsToRecreateFact); got != "backup" {
		t.Errorf("fact %s = %q, want backup", cluster.SlotsToRecreateFact, got)
	}
	assertResult(t, runCheck(t, mustBuild(t, "pg.slots_recreated", map[string]any{"node": "pg1"}), tg), Pass, []string{"backup inactive"}, nil)
	assertResult(t, runCheck(t, mustBuild(t, "pg.slots_recreated", map[string]any{"node": "pg2"}), tg), Fail, []string{"missing: backup"}, nil)
	assertResult(t, runCheck(t, mustBuild(t, "pg.slots_recreated", map[string]any{"node": "pg2"}), sandboxTarget(sb)), Error, []string{"no slots recorded"}, nil)
}
