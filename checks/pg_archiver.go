package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "pg.archiver_healthy",
		Doc:  "WAL archiving on a node is off, or its last attempt succeeded and few segments wait, none for long, to be archived",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "inventory node whose archiver to look at, usually the primary"},
			{Name: "max_ready", Type: params.Int, Default: "10",
				Doc: "most WAL segments allowed to wait for archiving (.ready files in pg_wal/archive_status)"},
			{Name: "max_ready_age", Type: params.Duration, Default: "60s",
				Doc: "longest a segment may have waited for archiving: one waiting longer means archive_command hangs or cannot keep up, and a clean stop waits for it"},
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
type ArchiverHealthy struct {
	Node        string
	MaxReady    int64
	MaxReadyAge time.Duration
}

var _ Check = (*ArchiverHealthy)(nil)

func newArchiverHealthy(v params.Values) (Check, error) {
	c := &ArchiverHealthy{Node: v.Node("node"), MaxReady: v.Int("max_ready"), MaxReadyAge: v.Duration("max_ready_age")}
	if c.Node == "" {
		return nil, errors.New("node is empty")
	}
	if c.MaxReady < 0 {
		return nil, fmt.Errorf("max_ready %d: want 0 or more", c.MaxReady)
	}
	if c.MaxReadyAge <= 0 {
		return nil, fmt.Errorf("max_ready_age %s: want more than 0", c.MaxReadyAge)
	}
	return c, nil
}

// Describe implements Check.
func (c *ArchiverHealthy) Describe(*cluster.Target) string {
	return fmt.Sprintf("WAL archiving on %s is off, or its last attempt did not fail and at most %d segments wait to be archived, none longer than %s",
		c.Node, c.MaxReady, c.MaxReadyAge)
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
	var st archiverStats
	var now time.Time // the server's clock, so that "ago" is right whatever ours says
	if err := conn.QueryRow(ctx, `SELECT archived_count, coalesce(last_archived_wal, ''), last_archived_time,
			failed_count, coalesce(last_failed_wal, ''), last_failed_time, clock_timestamp()
		FROM pg_stat_archiver`).Scan(&st.Archived, &st.LastArchived, &st.ArchivedAt,
		&st.Failed, &st.LastFailed, &st.FailedAt, &now); err != nil {
		return Errored(fmt.Errorf("read pg_stat_archiver on %s: %s", c.Node, queryProblem(ctx, err)))
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
		return Errored(fmt.Errorf("count .ready files in pg_wal/archive_status on %s (needs pg_monitor or superuser): %s",
			c.Node, queryProblem(ctx, err)))
	}
	return c.judge(mode, st, now)
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
