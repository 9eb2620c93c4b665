package checks

import (
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestArchiverOffOnShared(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	c := mustBuild(t, "pg.archiver_healthy", map[string]any{"node": "pg1"})
	r := runCheck(t, c, sandboxTarget(sb))
	assertResult(t, r, Pass, []string{"archive_mode is off on pg1", "archiving is off"}, nil)
}

// TestArchiverHealthy turns archiving on in a sandbox of its own, first
// with a command that succeeds, then with one that fails.
func TestArchiverHealthy(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	tg := sandboxTarget(sb)
	runSQL(t, sb, "pg1", "ALTER SYSTEM SET archive_mode = on", "ALTER SYSTEM SET archive_command = 'true'")
	restartNode(t, sb, "pg1")
	// A failing archive_command makes the shutdown at the end retry; put
	// back one that succeeds.
	t.Cleanup(func() { runSQL(t, sb, "pg1", "ALTER SYSTEM SET archive_command = 'true'", "SELECT pg_reload_conf()") })
	conn := openSession(t, sb, "pg1")
	execAll(t, conn, "CREATE TABLE wal_switch (id int)")
	// switchWAL writes a little and switches to a new segment, which leaves
	// the old one to the archiver.
	switchWAL := func() { execAll(t, conn, "INSERT INTO wal_switch VALUES (1)", "SELECT pg_switch_wal()") }

	c := mustBuild(t, "pg.archiver_healthy", map[string]any{"node": "pg1"})
	switchWAL()
	var r Result
	waitFor(t, "a segment archived", settleLimit, func() (bool, string) {
		r = runCheck(t, c, tg)
		n, _ := r.Values["archived_count"].(int64)
		return r.Status == Pass && n > 0, r.Observed
	})
	assertResult(t, r, Pass, []string{"archive_mode=on on pg1", "0 failed", "(max 10)"}, nil)

	// A hung archive_command neither fails nor succeeds: only the age of the
	// segment it holds shows it.
	alterSystem(t, sb, "pg1", "archive_command", "sleep 3600", "sleep 3600")
	t.Cleanup(func() {
		runSQL(t, sb, "pg1", "ALTER SYSTEM SET archive_command = 'true'", "SELECT pg_reload_conf()")
		sandboxtest.EndArchiveCommand(t, sb, "pg1")
	})
	switchWAL()
	hung := mustBuild(t, "pg.archiver_healthy", map[string]any{"node": "pg1", "max_ready_age": "1s"})
	r = runUntil(t, hung, tg, Fail, settleLimit)
	assertResult(t, r, Fail, []string{"archiver on pg1: WAL segment ", "to be archived, more than max_ready_age 1s (the last success was ",
		"archive_command hangs or cannot keep up, and a clean stop of pg1 would wait for it", "none older than 1s"},
		[]string{"the last archive attempt failed"})
	if _, ok := r.Values["oldest_ready_wal"]; !ok {
		t.Errorf("values = %v, want oldest_ready_wal", r.Values)
	}
	// The default bound lets a segment wait a minute: by count and age
	// alone, the young backlog behind the hung command passes.
	ageOnly := mustBuild(t, "pg.archiver_healthy", map[string]any{"node": "pg1", "progress_within": "0s"})
	assertResult(t, runCheck(t, ageOnly, tg), Pass, []string{"the oldest ", "(max 1m0s)"}, nil)
	// Watched, it is refused: nothing is archived while the check looks.
	watched := mustBuild(t, "pg.archiver_healthy", map[string]any{"node": "pg1", "progress_within": "1s"})
	r = runCheck(t, watched, tg)
	assertResult(t, r, Fail, []string{"archiver on pg1: 1 WAL segment waits to be archived and none was archived in the ",
		"archive_command hangs or cannot keep up, and a clean stop of pg1 would wait for it", "one archived within 1s"}, nil)
	alterSystem(t, sb, "pg1", "archive_command", "true", "true")
	sandboxtest.EndArchiveCommand(t, sb, "pg1")
	runUntil(t, hung, tg, Pass, settleLimit)
	// With a backlog and an archiver that works, the watch sees it archive.
	execAll(t, conn, "INSERT INTO wal_switch VALUES (1)", "SELECT pg_switch_wal()", "INSERT INTO wal_switch VALUES (1)", "SELECT pg_switch_wal()")
	r = runCheck(t, watched, tg)
	if r.Status != Pass {
		t.Errorf("a working archiver with segments waiting: %s: %s", r.Status, r.Observed)
	}

	alterSystem(t, sb, "pg1", "archive_command", "false", "false")
	deadline := time.Now().Add(settleLimit)
	for {
		// Each try leaves a new segment: the archiver may have taken the
		// previous one with the old command before it read the new one.
		switchWAL()
		r = runUntil(t, c, tg, Fail, 2*time.Second)
		if r.Status == Fail || time.Now().After(deadline) {
			break
		}
	}
	assertResult(t, r, Fail, []string{"archiver on pg1: the last archive attempt failed: failed_count ", "last_failed_wal ",
		"after the last success at ", "no failure since its last success"}, nil)
	if n, _ := r.Values["failed_count"].(int64); n < 1 {
		t.Errorf("values failed_count = %v, want at least 1", r.Values["failed_count"])
	}

	// The failed segment waits as a .ready file.
	strict := mustBuild(t, "pg.archiver_healthy", map[string]any{"node": "pg1", "max_ready": "0"})
	r = runCheck(t, strict, tg)
	assertResult(t, r, Fail, []string{"to be archived (.ready files in pg_wal/archive_status), more than max_ready 0"}, nil)
	if n, _ := r.Values["ready_count"].(int64); n < 1 {
		t.Errorf("values ready_count = %v, want at least 1", r.Values["ready_count"])
	}
}

func TestArchiverJudge(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) *time.Time { x := now.Add(-ago); return &x }
	c := &ArchiverHealthy{Node: "pg1", MaxReady: 10}
	tests := []struct {
		name   string
		st     archiverStatsForTest
		status Status
		want   []string
	}{
		{"never failed", archiverStatsForTest{archived: at(time.Minute), ready: 2}, Pass,
			[]string{"last 000000010000000000000002 at 2024-05-01T09:59:00Z (1m0s ago)", "2 .ready files waiting (max 10)"}},
		{"failed before the last success", archiverStatsForTest{archived: at(time.Minute), failed: at(time.Hour)}, Pass, nil},
		{"failed after the last success", archiverStatsForTest{archived: at(time.Hour), failed: at(time.Minute)}, Fail,
			[]string{"failed_count 3, last_failed_wal 000000010000000000000003 at 2024-05-01T09:59:00Z (1m0s ago), after the last success at 2024-05-01T09:00:00Z"}},
		{"failed and never archived", archiverStatsForTest{failed: at(time.Second)}, Fail,
			[]string{"no success since the statistics were reset"}},
		{"too many ready", archiverStatsForTest{archived: at(time.Second), ready: 11}, Fail,
			[]string{"11 WAL segments wait to be archived", "more than max_ready 10"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := archiverStats{Ready: tc.st.ready, ArchivedAt: tc.st.archived, FailedAt: tc.st.failed}
			if tc.st.archived != nil {
				st.Archived, st.LastArchived = 7, "000000010000000000000002"
			}
			if tc.st.failed != nil {
				st.Failed, st.LastFailed = 3, "000000010000000000000003"
			}
			r := c.judge("on", st, now)
			assertResult(t, r, tc.status, tc.want, nil)
			if tc.status == Fail && !strings.Contains(r.Detail, "archive_mode=on on pg1") {
				t.Errorf("detail %q lacks what was seen", r.Detail)
			}
		})
	}
}

// archiverStatsForTest shapes the archiver statistics of a judge test.
type archiverStatsForTest struct {
	archived, failed *time.Time
	ready            int64
}

func TestArchiverNew(t *testing.T) {
	t.Parallel()
	if _, err := build(t, "pg.archiver_healthy", map[string]any{"node": "pg1", "max_ready": "-1"}); err == nil {
		t.Error("a negative max_ready was accepted")
	}
	c := mustBuild(t, "pg.archiver_healthy", map[string]any{"node": "pg1"})
	if got := c.Describe(nil); !strings.Contains(got, "pg1") || !strings.Contains(got, "at most 10 segments") {
		t.Errorf("describe = %q", got)
	}
}
