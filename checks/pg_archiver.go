package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "pg.archiver_healthy",
		Doc:  "WAL archiving on a node is off, or its last attempt succeeded, few segments wait, none for long, and the archiver is archiving them now",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "inventory node whose archiver to look at, usually the primary"},
			{Name: "max_ready", Type: params.Int, Default: "10",
				Doc: "most WAL segments allowed to wait for archiving (.ready files in pg_wal/archive_status)"},
			{Name: "max_ready_age", Type: params.Duration, Default: "60s",
				Doc: "longest a segment may have waited for archiving: one waiting longer means archive_command hangs or cannot keep up, and a clean stop waits for it"},
			{Name: "progress_within", Type: params.Duration, Default: "5s",
				Doc: "when segments wait, the archiver must archive one within this long, watched now: a young backlog behind a hung archive_command passes the count and the age, and a clean stop would wait on it; 0s does not watch"},
		},
		New: newArchiverHealthy,
	})
}

// ArchiverHealthy passes when archiving is off on Node, or when its last
// archive attempt did not fail, at most MaxReady segments wait to be
// archived and none has waited longer than MaxReadyAge. A primary that
// cannot archive holds back its WAL; stopping it for the switch leaves those
// segments out of the archive, and point-in-time recovery across the
// switchover with them. A clean stop also waits for the archiver: a hung
// archive_command (it neither fails nor succeeds, so only the waiting
// segment's age shows it) keeps the stop going past its timeout while
// clients are held.
//
// Count and age cannot see an archive_command that hung a moment ago on a
// few young segments. So when segments wait, the check watches the
// archiver for up to ProgressWithin and passes only once it has archived
// one (archived_count rises, or the oldest waiting segment is archived).
type ArchiverHealthy struct {
	Node           string
	MaxReady       int64
	MaxReadyAge    time.Duration
	ProgressWithin time.Duration
}

var _ Check = (*ArchiverHealthy)(nil)

func newArchiverHealthy(v params.Values) (Check, error) {
	c := &ArchiverHealthy{Node: v.Node("node"), MaxReady: v.Int("max_ready"), MaxReadyAge: v.Duration("max_ready_age"),
		ProgressWithin: v.Duration("progress_within")}
	if c.Node == "" {
		return nil, errors.New("node is empty")
	}
	if c.MaxReady < 0 {
		return nil, fmt.Errorf("max_ready %d: want 0 or more", c.MaxReady)
	}
	if c.MaxReadyAge <= 0 {
		return nil, fmt.Errorf("max_ready_age %s: want more than 0", c.MaxReadyAge)
	}
	if c.ProgressWithin < 0 {
		return nil, fmt.Errorf("progress_within %s: want 0 or more", c.ProgressWithin)
	}
	return c, nil
}

// Describe implements Check.
func (c *ArchiverHealthy) Describe(*cluster.Target) string {
	d := fmt.Sprintf("WAL archiving on %s is off, or its last attempt did not fail and at most %d segments wait to be archived, none longer than %s",
		c.Node, c.MaxReady, c.MaxReadyAge)
	if c.ProgressWithin > 0 {
		d += fmt.Sprintf(", and when some wait, one is archived within %s", c.ProgressWithin)
	}
	return d
}

// archiverStats is a row of pg_stat_archiver and the archive_status count.
type archiverStats struct {
	Archived     int64
	LastArchived string
	ArchivedAt   *time.Time
	Failed       int64
	LastFailed   string
	FailedAt     *time.Time
	Ready        int64
	OldestReady  string     // the segment that has waited longest, "" when none waits
	ReadySince   *time.Time // when it became ready (its .ready file's mtime)
}

// Run implements Check.
func (c *ArchiverHealthy) Run(ctx context.Context, t *cluster.Target) Result {
	conn, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(conn)
	var mode string
	var version int
	if err := conn.QueryRow(ctx, `SELECT current_setting('archive_mode'), current_setting('server_version_num')::int`).
		Scan(&mode, &version); err != nil {
		return Errored(fmt.Errorf("read archive_mode on %s: %s", c.Node, queryProblem(ctx, err)))
	}
	if mode == "off" {
		r := Passed(fmt.Sprintf("archive_mode is off on %s: WAL archiving is off, nothing waits to be archived", c.Node))
		r.Values = map[string]any{"archive_mode": mode}
		return r
	}
	st, now, rerr := readArchiver(ctx, conn, version)
	if rerr != nil {
		return Errored(fmt.Errorf("%s on %s: %s", rerr.what, c.Node, queryProblem(ctx, rerr.err)))
	}
	r := c.judge(mode, st, now)
	if r.Status != Pass || st.Ready == 0 || c.ProgressWithin <= 0 {
		return r
	}
	return c.watch(ctx, conn, version, mode, st, now)
}

// watch passes once the archiver has archived a segment since first, or
// archived the oldest segment that waited then; it fails when an attempt
// fails meanwhile or when nothing is archived within ProgressWithin.
func (c *ArchiverHealthy) watch(ctx context.Context, conn *pgx.Conn, version int, mode string, first archiverStats, start time.Time) Result {
	deadline := time.Now().Add(c.ProgressWithin)
	if d, ok := ctx.Deadline(); ok && d.Add(-archiverPoll*3).Before(deadline) {
		// The check's own timeout comes first: end the watch with a
		// verdict before it.
		deadline = d.Add(-archiverPoll * 3)
	}
	oldest := strings.TrimSuffix(first.OldestReady, ".ready")
	for {
		select {
		case <-ctx.Done():
			return Errored(fmt.Errorf("watching the archiver on %s: %w", c.Node, ctx.Err()))
		case <-time.After(archiverPoll):
		}
		st, now, err := readArchiver(ctx, conn, version)
		if err != nil {
			return Errored(fmt.Errorf("%s on %s: %s", err.what, c.Node, queryProblem(ctx, err.err)))
		}
		took := now.Sub(start).Round(10 * time.Millisecond)
		r := c.judge(mode, st, now)
		switch {
		case r.Status != Pass:
			return r
		case st.Failed > first.Failed:
			r = Failed(fmt.Sprintf("archiver on %s: an archive attempt failed while it was watched (failed_count %d, was %d; last_failed_wal %s)",
				c.Node, st.Failed, first.Failed, st.LastFailed), c.wantProgress())
			r.Values = map[string]any{"failed_count": st.Failed, "last_failed_wal": st.LastFailed}
			return r
		case st.Archived > first.Archived || st.Ready == 0 || strings.TrimSuffix(st.OldestReady, ".ready") != oldest:
			r.Observed += fmt.Sprintf("; archiving now: %d archived in %s while %d waited", max(st.Archived-first.Archived, 1), took, first.Ready)
			r.Values["progress_seconds"] = took.Seconds()
			return r
		}
		if time.Now().After(deadline) {
			last := "nothing archived since the statistics were reset"
			if st.ArchivedAt != nil {
				last = fmt.Sprintf("the last success was %s %s", st.LastArchived, happenedAt(*st.ArchivedAt, now))
			}
			waiting := plural(int(st.Ready), "WAL segment") + " wait"
			if st.Ready == 1 {
				waiting += "s"
			}
			r := Failed(fmt.Sprintf("archiver on %s: %s to be archived and none was archived in the %s watched (%s; the oldest, %s, ready %s): archive_command hangs or cannot keep up, and a clean stop of %s would wait for it",
				c.Node, waiting, took, last, oldest, happenedAt(*first.ReadySince, now), c.Node), c.wantProgress())
			r.Values = map[string]any{"archive_mode": mode, "archived_count": st.Archived, "ready_count": st.Ready,
				"oldest_ready_wal": oldest, "watched_seconds": took.Seconds()}
			return r
		}
	}
}

func (c *ArchiverHealthy) wantProgress() string {
	return fmt.Sprintf("the archiver on %s archiving the waiting segments: one archived within %s, no attempt failing", c.Node, c.ProgressWithin)
}

// archiverPoll is how often watch asks the archiver again.
const archiverPoll = 200 * time.Millisecond

// archiverReadError is a failed read of the archiver's state, with what
// was being read.
type archiverReadError struct {
	what string
	err  error
}

// readArchiver reads pg_stat_archiver and the .ready files, with the
// server's clock, so that "ago" is right whatever ours says.
func readArchiver(ctx context.Context, conn *pgx.Conn, version int) (archiverStats, time.Time, *archiverReadError) {
	var st archiverStats
	var now time.Time
	if err := conn.QueryRow(ctx, `SELECT archived_count, coalesce(last_archived_wal, ''), last_archived_time,
			failed_count, coalesce(last_failed_wal, ''), last_failed_time, clock_timestamp()
		FROM pg_stat_archiver`).Scan(&st.Archived, &st.LastArchived, &st.ArchivedAt,
		&st.Failed, &st.LastFailed, &st.FailedAt, &now); err != nil {
		return st, now, &archiverReadError{"read pg_stat_archiver", err}
	}
	// pg_ls_archive_statusdir() (PostgreSQL 12) needs pg_monitor, not
	// superuser; before it, only a superuser may list the directory.
	countReady := `SELECT count(*), coalesce(min(name) FILTER (WHERE rank = 1), ''), min(modification)
		FROM (SELECT name, modification, rank() OVER (ORDER BY modification, name) AS rank
			FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready') r`
	if version < 120000 {
		countReady = `SELECT count(*), coalesce(min(name) FILTER (WHERE rank = 1), ''), min(modification)
		FROM (SELECT name, modification, rank() OVER (ORDER BY modification, name) AS rank
			FROM (SELECT name, (pg_stat_file('pg_wal/archive_status/' || name, true)).modification
				FROM pg_ls_dir('pg_wal/archive_status') AS name WHERE name LIKE '%.ready') f) r`
	}
	if err := conn.QueryRow(ctx, countReady).Scan(&st.Ready, &st.OldestReady, &st.ReadySince); err != nil {
		return st, now, &archiverReadError{"count .ready files in pg_wal/archive_status (needs pg_monitor or superuser)", err}
	}
	return st, now, nil
}

// judge turns what the node said into a verdict.
func (c *ArchiverHealthy) judge(mode string, st archiverStats, now time.Time) Result {
	values := map[string]any{
		"archive_mode": mode, "archived_count": st.Archived, "last_archived_wal": st.LastArchived,
		"failed_count": st.Failed, "last_failed_wal": st.LastFailed, "ready_count": st.Ready,
	}
	if st.ArchivedAt != nil {
		values["last_archived_time"] = st.ArchivedAt.UTC().Format(time.RFC3339)
	}
	if st.FailedAt != nil {
		values["last_failed_time"] = st.FailedAt.UTC().Format(time.RFC3339)
	}
	st.OldestReady = strings.TrimSuffix(st.OldestReady, ".ready")
	var waited time.Duration
	if st.ReadySince != nil && st.OldestReady != "" {
		waited = now.Sub(*st.ReadySince)
		values["oldest_ready_wal"] = st.OldestReady
		values["oldest_ready_seconds"] = waited.Seconds()
	}
	seen := fmt.Sprintf("archive_mode=%s on %s: %d archived", mode, c.Node, st.Archived)
	if st.ArchivedAt != nil {
		seen += fmt.Sprintf(", last %s %s", st.LastArchived, happenedAt(*st.ArchivedAt, now))
	}
	seen += fmt.Sprintf("; %d failed", st.Failed)
	if st.FailedAt != nil {
		seen += fmt.Sprintf(", last %s %s", st.LastFailed, happenedAt(*st.FailedAt, now))
	}
	seen += fmt.Sprintf("; %s waiting (max %d)", plural(int(st.Ready), ".ready file"), c.MaxReady)
	if st.ReadySince != nil && st.OldestReady != "" {
		seen += fmt.Sprintf(", the oldest %s ready %s (max %s)", st.OldestReady, happenedAt(*st.ReadySince, now), c.MaxReadyAge)
	}

	var problems []string
	if st.FailedAt != nil && (st.ArchivedAt == nil || st.FailedAt.After(*st.ArchivedAt)) {
		since := "no success since the statistics were reset"
		if st.ArchivedAt != nil {
			since = "after the last success " + happenedAt(*st.ArchivedAt, now)
		}
		problems = append(problems, fmt.Sprintf("the last archive attempt failed: failed_count %d, last_failed_wal %s %s, %s",
			st.Failed, st.LastFailed, happenedAt(*st.FailedAt, now), since))
	}
	if st.Ready > c.MaxReady {
		waiting := fmt.Sprintf("%d WAL segments wait", st.Ready)
		if st.Ready == 1 {
			waiting = "1 WAL segment waits"
		}
		problems = append(problems, fmt.Sprintf("%s to be archived (.ready files in pg_wal/archive_status), more than max_ready %d",
			waiting, c.MaxReady))
	}
	if st.ReadySince != nil && st.OldestReady != "" && waited > c.MaxReadyAge {
		last := "nothing archived since the statistics were reset"
		if st.ArchivedAt != nil {
			last = fmt.Sprintf("the last success was %s %s", st.LastArchived, happenedAt(*st.ArchivedAt, now))
		}
		problems = append(problems, fmt.Sprintf("WAL segment %s has waited %s to be archived, more than max_ready_age %s (%s): archive_command hangs or cannot keep up, and a clean stop of %s would wait for it",
			st.OldestReady, waited.Round(time.Second), c.MaxReadyAge, last, c.Node))
	}
	if len(problems) == 0 {
		r := Passed(seen)
		r.Values = values
		return r
	}
	r := Failed(fmt.Sprintf("archiver on %s: %s", c.Node, strings.Join(problems, "; ")),
		fmt.Sprintf("the archiver on %s keeping up: no failure since its last success, at most %d .ready files, none older than %s", c.Node, c.MaxReady, c.MaxReadyAge))
	r.Detail = seen
	r.Values = values
	return r
}

// happenedAt says when something happened, for messages: at 2024-05-01T10:00:00Z (3s ago).
func happenedAt(at, now time.Time) string {
	ago := now.Sub(at)
	if ago < 0 {
		ago = 0
	}
	return fmt.Sprintf("at %s (%s ago)", at.UTC().Format(time.RFC3339), ago.Round(time.Second))
}
