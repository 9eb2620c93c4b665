package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "pg.no_shutdown_blockers",
		Doc:  "no base backup is running on a node and no logical walsender streams from it, so that its clean stop is neither delayed nor cuts them off",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "inventory node about to be stopped, usually the primary"},
		},
		New: newNoShutdownBlockers,
	})
}

// NoShutdownBlockers passes when no base backup is in progress on Node
// (pg_stat_progress_basebackup) and no walsender streams logical changes
// from it (pg_stat_replication with a logical slot). At a clean stop, every
// walsender must send the WAL up to the shutdown checkpoint and a logical
// one waits for its consumer to confirm it, which a slow or stuck consumer
// never does; a base backup is cut off and has to start over. Either keeps
// the stop going, or breaks a job, while clients are held.
//
// The archiver, the other thing a clean stop waits for, is
// pg.archiver_healthy's.
type NoShutdownBlockers struct {
	Node string
}

var _ Check = (*NoShutdownBlockers)(nil)

func newNoShutdownBlockers(v params.Values) (Check, error) {
	c := &NoShutdownBlockers{Node: v.Node("node")}
	if c.Node == "" {
		return nil, errors.New("node is empty")
	}
	return c, nil
}

// Describe implements Check.
func (c *NoShutdownBlockers) Describe(*cluster.Target) string {
	return fmt.Sprintf("no base backup runs on %s and no logical walsender streams from it (pg_stat_progress_basebackup, pg_stat_replication)", c.Node)
}

// baseBackups lists the base backups in progress, one line each.
func baseBackups(ctx context.Context, q pg.Querier) ([]string, error) {
	rows, err := q.Query(ctx, `
SELECT b.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''),
       CASE WHEN a.client_addr IS NULL THEN 'local' ELSE host(a.client_addr) || ':' || a.client_port END,
       b.phase, b.backup_streamed, b.backup_total,
       coalesce(extract(epoch FROM clock_timestamp() - a.backend_start), 0)::float8
FROM pg_stat_progress_basebackup b LEFT JOIN pg_stat_activity a ON a.pid = b.pid
ORDER BY b.pid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var pid int
		var user, app, client, phase string
		var streamed int64
		var total *int64
		var secs float64
		if err := rows.Scan(&pid, &user, &app, &client, &phase, &streamed, &total, &secs); err != nil {
			return nil, err
		}
		done := fmt.Sprintf("%s streamed", params.FormatBytes(streamed))
		if total != nil {
			done += " of " + params.FormatBytes(*total)
		}
		out = append(out, fmt.Sprintf("base backup: pid %d  user %s  app %q  client %s  phase %q  %s  running %s",
			pid, user, app, client, phase, done, roundSeconds(secs)))
	}
	return out, rows.Err()
}

// logicalSenders lists the walsenders that stream a logical slot, one
// line each.
func logicalSenders(ctx context.Context, q pg.Querier) ([]string, error) {
	rows, err := q.Query(ctx, `
SELECT r.pid, coalesce(r.usename, ''), coalesce(r.application_name, ''),
       CASE WHEN r.client_addr IS NULL THEN 'local' ELSE host(r.client_addr) || ':' || r.client_port END,
       coalesce(r.state, ''), s.slot_name, coalesce(s.plugin, ''), s.database,
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn), 0)::bigint
FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid
WHERE s.slot_type = 'logical'
ORDER BY r.pid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var pid int
		var user, app, client, state, slot, plugin, db string
		var behind int64
		if err := rows.Scan(&pid, &user, &app, &client, &state, &slot, &plugin, &db, &behind); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("logical walsender: pid %d  user %s  app %q  client %s  %s  slot %s (plugin %s, database %s)  %s not confirmed",
			pid, user, app, client, state, slot, plugin, db, params.FormatBytes(behind)))
	}
	return out, rows.Err()
}

// roundSeconds renders seconds for a message: 12s.
func roundSeconds(secs float64) string { return fmt.Sprintf("%.0fs", secs) }

// Run implements Check.
func (c *NoShutdownBlockers) Run(ctx context.Context, t *cluster.Target) Result {
	conn, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(conn)
	backups, err := baseBackups(ctx, conn)
	if err != nil {
		return Errored(fmt.Errorf("read pg_stat_progress_basebackup on %s: %s", c.Node, queryProblem(ctx, err)))
	}
	senders, err := logicalSenders(ctx, conn)
	if err != nil {
		return Errored(fmt.Errorf("read pg_stat_replication on %s: %s", c.Node, queryProblem(ctx, err)))
	}
	return c.judge(backups, senders)
}

// judge turns what the node showed into a verdict.
func (c *NoShutdownBlockers) judge(backups, senders []string) Result {
	values := map[string]any{"base_backups": len(backups), "logical_walsenders": len(senders)}
	if len(backups) == 0 && len(senders) == 0 {
		r := Passed(fmt.Sprintf("no base backup runs on %s and no logical walsender streams from it", c.Node))
		r.Values = values
		return r
	}
	var what []string
	if len(backups) > 0 {
		what = append(what, fmt.Sprintf("%s in progress (a stop cuts it off; it has to start over)", plural(len(backups), "base backup")))
	}
	if len(senders) > 0 {
		what = append(what, fmt.Sprintf("%s (a clean stop waits until each consumer confirms the last WAL, which a slow or stuck one never does)",
			plural(len(senders), "logical walsender")))
	}
	lines := append(append([]string{}, backups...), senders...)
	r := Failed(fmt.Sprintf("on %s: %s: %s", c.Node, strings.Join(what, "; "), strings.Join(lines, "; ")),
		fmt.Sprintf("nothing on %s that a clean stop waits for or cuts off: let the base backup finish, stop the logical consumers (or wait for them to catch up), then run again", c.Node))
	if len(lines) > 1 {
		r.Detail = strings.Join(lines, "\n") // one line each; with one, the observed line says it all
	}
	r.Values = values
	return r
}
