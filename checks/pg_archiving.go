package checks

import (
	"context"
	"errors"
	"fmt"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "pg.archiving_kept",
		Doc:  "when the primary archives its WAL, the candidate is configured to archive it too once promoted (archive_mode on or always, and an archive_command or archive_library)",
		Params: []params.Spec{
			{Name: "primary", Type: params.Node, Required: true, Doc: "the primary now"},
			{Name: "candidate", Type: params.Node, Required: true, Doc: "the standby to promote"},
		},
		New: func(v params.Values) (Check, error) {
			c := &ArchivingKept{Primary: v.Node("primary"), Candidate: v.Node("candidate")}
			if c.Primary == "" || c.Candidate == "" {
				return nil, errors.New("primary and candidate must be named")
			}
			if c.Primary == c.Candidate {
				return nil, fmt.Errorf("primary and candidate are both %s", c.Primary)
			}
			return c, nil
		},
	})
	Register(Definition{
		Kind: "pg.archiving_works",
		Doc:  "the new primary archives its WAL when the old one did (pg.archiving_kept): the history file of its timeline has reached the archive",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the new primary"},
		},
		New: func(v params.Values) (Check, error) {
			c := &ArchivingWorks{Node: v.Node("node")}
			if c.Node == "" {
				return nil, errors.New("node is empty")
			}
			return c, nil
		},
	})
}

// ArchivingKept passes when the primary does not archive its WAL, or when
// the candidate is configured to archive it once promoted. Archiving is a
// promise like synchronous replication: a standby whose configuration was
// never given the primary's archive settings (the common case) archives
// nothing after its promotion, and point-in-time recovery is broken from
// that moment with nobody told. archive_mode needs a restart, so the
// switchover cannot fix it on the way: it refuses before anything is
// changed. It records how the primary archives (cluster.ArchivingBeforeFact)
// for pg.archiving_works.
type ArchivingKept struct {
	Primary, Candidate string
}

var _ Check = (*ArchivingKept)(nil)

// Describe implements Check.
func (c *ArchivingKept) Describe(*cluster.Target) string {
	return fmt.Sprintf("archive_mode, archive_command and archive_library on %s and %s: when %s archives its WAL, %s will archive it once promoted",
		c.Primary, c.Candidate, c.Primary, c.Candidate)
}

// Run implements Check.
func (c *ArchivingKept) Run(ctx context.Context, t *cluster.Target) Result {
	read := func(node string) (pg.Archiving, error) {
		conn, err := connectNode(ctx, t, node)
		if err != nil {
			return pg.Archiving{}, err
		}
		defer closeConn(conn)
		a, err := pg.ReadArchiving(ctx, conn)
		if err != nil {
			return a, fmt.Errorf("read the archive settings of %s: %s", node, queryProblem(ctx, err))
		}
		return a, nil
	}
	primary, err := read(c.Primary)
	if err != nil {
		return Errored(err)
	}
	candidate, err := read(c.Candidate)
	if err != nil {
		return Errored(err)
	}
	r := c.judge(primary, candidate)
	if r.Status == Pass && t != nil && t.Facts != nil {
		before := "off"
		if primary.Archives() {
			before = primary.String()
		}
		t.Facts.Set(cluster.ArchivingBeforeFact, before)
	}
	return r
}

func (c *ArchivingKept) judge(primary, candidate pg.Archiving) Result {
	values := map[string]any{
		"primary_archive_mode": primary.Mode, "primary_archives": primary.Archives(),
		"candidate_archive_mode": candidate.Mode, "candidate_archives": candidate.Archives(),
	}
	var r Result
	switch {
	case !primary.Archives():
		r = Passed(fmt.Sprintf("%s does not archive its WAL (%s): no archiving to keep", c.Primary, primary))
	case candidate.Archives():
		r = Passed(fmt.Sprintf("%s archives its WAL (%s); %s will once promoted (%s)", c.Primary, primary, c.Candidate, candidate))
	default:
		fix := fmt.Sprintf("set archive_command (or archive_library) on %s as on %s and reload", c.Candidate, c.Primary)
		if candidate.Mode == "off" {
			fix = fmt.Sprintf("set archive_mode = on and archive_command (or archive_library) on %s as on %s, then restart %s (archive_mode needs a restart)", c.Candidate, c.Primary, c.Candidate)
		}
		r = Failed(fmt.Sprintf("%s archives its WAL (%s), but %s would archive nothing once promoted (%s): point-in-time recovery would stop at the switchover; %s",
			c.Primary, primary, c.Candidate, candidate, fix),
			fmt.Sprintf("%s configured to archive as %s does: archive_mode on or always, and an archive_command or archive_library", c.Candidate, c.Primary))
	}
	r.Values = values
	return r
}

// ArchivingWorks passes when the old primary did not archive (the fact
// pg.archiving_kept recorded), or when the new primary's archiver has sent
// the history file of its timeline to the archive: the first file a
// promoted server archives, so the archive goes on from the switchover.
// Without the fact (a runbook that did not record it) it judges the node
// alone: a node that does not archive passes.
type ArchivingWorks struct {
	Node string
}

var _ Check = (*ArchivingWorks)(nil)

// Describe implements Check.
func (c *ArchivingWorks) Describe(*cluster.Target) string {
	return fmt.Sprintf("when the old primary archived its WAL, %s archives too: its timeline's history file is archived (pg_wal/archive_status/<timeline>.history.done)", c.Node)
}

// Run implements Check.
func (c *ArchivingWorks) Run(ctx context.Context, t *cluster.Target) Result {
	before, recorded := "", false
	if t != nil && t.Facts != nil {
		before, recorded = t.Facts.Get(cluster.ArchivingBeforeFact)
	}
	if recorded && before == "off" {
		return Passed("the old primary did not archive its WAL (recorded at preflight): no archiving to verify")
	}
	conn, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(conn)
	a, err := pg.ReadArchiving(ctx, conn)
	if err != nil {
		return Errored(fmt.Errorf("read the archive settings of %s: %s", c.Node, queryProblem(ctx, err)))
	}
	wanted := fmt.Sprintf("%s archiving its WAL as the old primary did (%s): its timeline's history file archived", c.Node, before)
	if !a.Archives() {
		if !recorded {
			return Passed(fmt.Sprintf("%s does not archive its WAL (%s), and no archiving was recorded before the switch", c.Node, a))
		}
		return Failed(fmt.Sprintf("%s does not archive its WAL (%s): point-in-time recovery stops at the switchover", c.Node, a), wanted)
	}
	var history string
	if err := conn.QueryRow(ctx, `SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) || '.history'`).Scan(&history); err != nil {
		return Errored(fmt.Errorf("read the timeline of %s: %s", c.Node, queryProblem(ctx, err)))
	}
	status, err := pg.ArchiveStatus(ctx, conn, history)
	if err != nil {
		return Errored(fmt.Errorf("read pg_wal/archive_status on %s (needs pg_monitor or superuser): %s", c.Node, queryProblem(ctx, err)))
	}
	switch status {
	case "done":
		r := Passed(fmt.Sprintf("%s archives its WAL (%s): %s, its timeline's history file, is archived", c.Node, a, history))
		r.Values = map[string]any{"history_file": history}
		return r
	case "ready":
		return Failed(fmt.Sprintf("%s waits to be archived on %s (%s): the archiver has not archived the new timeline's first file yet", history, c.Node, a), wanted)
	}
	return Failed(fmt.Sprintf("pg_wal/archive_status on %s knows nothing of %s (%s): a server that never changed timeline, or whose archiver has not started", c.Node, history, a), wanted)
}
