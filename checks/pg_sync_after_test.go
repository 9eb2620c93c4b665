package checks

import (
	"fmt"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestSyncAfterJudge(t *testing.T) {
	t.Parallel()
	streaming := func(pairs ...string) []pg.WALSender {
		var out []pg.WALSender
		for i := 0; i+1 < len(pairs); i += 2 {
			out = append(out, pg.WALSender{App: pairs[i], State: "streaming", SyncState: pairs[i+1]})
		}
		return out
	}
	tests := []struct {
		name      string
		before    string
		setting   string
		senders   []pg.WALSender
		standbys  []string
		status    Status
		after     string
		wantCount string
		see       []string
	}{
		{name: "off", before: "", senders: streaming("pg2", "async", "pg3", "async"), standbys: []string{"pg1", "pg3"},
			status: Pass, after: "", wantCount: "0", see: []string{"synchronous replication stays off"}},
		{name: "first", before: "FIRST 1 (pg2)", senders: streaming("pg2", "sync", "pg3", "async"), standbys: []string{"pg1", "pg3"},
			status: Pass, after: "FIRST 1 (pg1)", wantCount: "1", see: []string{`pg2 gets "FIRST 1 (pg1)"`, "pg1 takes pg2's place", "1 sync or quorum standby(s) expected"}},
		{name: "any", before: "ANY 1 (pg2, pg3)", senders: streaming("pg2", "quorum", "pg3", "quorum"), standbys: []string{"pg1", "pg3"},
			status: Pass, after: "ANY 1 (pg1, pg3)", wantCount: "2", see: []string{"pg2 (quorum), pg3 (quorum)", "once pg1, pg3 follow it"}},
		{name: "an external standby cannot follow", before: "ANY 2 (pg2, dr1)", senders: streaming("pg2", "quorum", "dr1", "quorum"), standbys: []string{"pg1", "pg3"},
			status: Fail, see: []string{`"ANY 2 (pg1, dr1)"`, "it needs 2, and it names only pg1", "would wait forever", "sync_standby_names_after"}},
		{name: "as the runbook says", before: "FIRST 1 (pg2)", setting: "ANY 1 (pg1, pg3)", senders: streaming("pg2", "sync"), standbys: []string{"pg1", "pg3"},
			status: Pass, after: "ANY 1 (pg1, pg3)", wantCount: "2", see: []string{"as the runbook says"}},
		{name: "the runbook names only the candidate", before: "", setting: "FIRST 1 (pg2)", standbys: []string{"pg1", "pg3"},
			status: Fail, see: []string{`pg2 would get "FIRST 1 (pg2)"`, "names none of them"}},
		{name: "a listed standby down before: no more expected after", before: "ANY 1 (pg2, pg3)", senders: streaming("pg2", "quorum"), standbys: []string{"pg1", "pg3"},
			status: Pass, after: "ANY 1 (pg1, pg3)", wantCount: "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &SyncAfter{Primary: "pg1", Candidate: "pg2", Setting: tc.setting}
			before, err := pg.ParseSyncStandbyNames(tc.before)
			if err != nil {
				t.Fatal(err)
			}
			tg := &cluster.Target{Facts: &cluster.Facts{}}
			r := c.judge(tg, before, tc.senders, []string{"pg2"}, tc.standbys)
			assertResult(t, r, tc.status, tc.see, nil)
			after, ok := tg.Facts.Get(cluster.SyncAfterFact)
			if tc.status != Pass {
				if ok {
					t.Errorf("a refusal recorded %s = %q", cluster.SyncAfterFact, after)
				}
				return
			}
			want, _ := tg.Facts.Get(cluster.SyncWantCountFact)
			if after != tc.after || want != tc.wantCount {
				t.Errorf("facts after=%q want_count=%q, want %q and %q", after, want, tc.after, tc.wantCount)
			}
		})
	}
}

func TestSyncAfterNew(t *testing.T) {
	t.Parallel()
	for _, raw := range []map[string]any{
		{"primary": "pg1", "candidate": "pg1"},
		{"primary": "pg1", "candidate": "pg2", "setting": "ANY 0 (pg1)"},
	} {
		if _, err := build(t, "pg.sync_after", raw); err == nil {
			t.Errorf("%v was accepted", raw)
		}
	}
}

// TestSyncAfterAndKeptOnASandbox sets synchronous_standby_names on pg1 of
// a sandbox of its own (pg2 and pg3 streaming) and asks what pg2 would get;
// then pg.sync_kept judges pg1 itself against a recorded promise.
func TestSyncAfterAndKeptOnASandbox(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	tests := []struct {
		setting string
		param   string
		status  Status
		after   string
		see     []string
	}{
		{"", "", Pass, "", []string{"synchronous replication stays off"}},
		{"FIRST 1 (pg2)", "", Pass, "FIRST 1 (pg1)", []string{"sync or quorum standbys now: pg2 (sync)", `pg2 gets "FIRST 1 (pg1)"`}},
		{"ANY 1 (pg2, pg3)", "", Pass, "ANY 1 (pg1, pg3)", []string{"pg2 (quorum), pg3 (quorum)", "2 sync or quorum standby(s) expected"}},
		{"FIRST 2 (pg2, pg9)", "", Fail, "", []string{`"FIRST 2 (pg1, pg9)"`, "it needs 2, and it names only pg1"}},
		{"", "FIRST 1 (pg2)", Fail, "", []string{"names none of them"}},
	}
	for _, tc := range tests {
		t.Run(tc.setting+"/"+tc.param, func(t *testing.T) {
			alterSystem(t, sb, "pg1", "synchronous_standby_names", tc.setting, tc.setting)
			tg := sandboxTarget(sb)
			raw := map[string]any{"primary": "pg1", "candidate": "pg2"}
			if tc.param != "" {
				raw["setting"] = tc.param
			}
			c := mustBuild(t, "pg.sync_after", raw)
			if tc.setting != "" {
				waitSyncStates(t, sb, "pg1")
			}
			assertResult(t, runCheck(t, c, tg), tc.status, tc.see, nil)
			if got, _ := tg.Facts.Get(cluster.SyncAfterFact); got != tc.after {
				t.Errorf("fact %s = %q, want %q", cluster.SyncAfterFact, got, tc.after)
			}
		})
	}

	// pg.sync_kept, with pg1 standing in for a new primary.
	alterSystem(t, sb, "pg1", "synchronous_standby_names", "ANY 1 (pg2, pg3)", "ANY 1 (pg2, pg3)")
	kept := mustBuild(t, "pg.sync_kept", map[string]any{"node": "pg1"})
	for _, tc := range []struct {
		after, want string
		status      Status
		see         []string
	}{
		{"ANY 1 (pg2, pg3)", "2", Pass, []string{"2 sync or quorum, 2 wanted"}},
		{"ANY 1 (pg2, pg3)", "3", Fail, []string{"fewer standbys confirm commits than did on the old primary"}},
		{"FIRST 1 (pg2)", "1", Fail, []string{"not the one recorded at preflight"}},
	} {
		tg := sandboxTarget(sb)
		tg.Facts.Set(cluster.SyncAfterFact, tc.after)
		tg.Facts.Set(cluster.SyncWantCountFact, tc.want)
		waitSyncStates(t, sb, "pg1")
		assertResult(t, runCheck(t, kept, tg), tc.status, tc.see, nil)
	}
	assertResult(t, runCheck(t, kept, sandboxTarget(sb)), Error, []string{"no promise recorded"}, nil)
	standby := mustBuild(t, "pg.sync_kept", map[string]any{"node": "pg2"})
	tg := sandboxTarget(sb)
	tg.Facts.Set(cluster.SyncAfterFact, "")
	tg.Facts.Set(cluster.SyncWantCountFact, "0")
	assertResult(t, runCheck(t, standby, tg), Fail, []string{"pg2 is in recovery"}, nil)
}

// waitSyncStates waits until a primary's WAL senders show the sync states
// of its synchronous_standby_names: they take it up a moment after a reload.
func waitSyncStates(t *testing.T, sb *sandbox.Sandbox, node string) {
	t.Helper()
	n := sandboxNode(t, sb, node)
	waitFor(t, "a sync or quorum standby on "+node, settleLimit, func() (bool, string) {
		got, err := queryString(sb, n, "SELECT count(*)::text FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')")
		return err == nil && got != "0", fmt.Sprintf("%s, %v", got, err)
	})
}
