package checks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	conninfopkg "github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "pg.sync_standbys",
		Doc:  "after the candidate takes over, enough synchronous standbys stream to satisfy synchronous_standby_names",
		Params: []params.Spec{
			{Name: "primary", Type: params.Node, Required: true,
				Doc: "inventory node that is the primary now; its synchronous_standby_names and pg_stat_replication are read"},
			{Name: "candidate", Type: params.Node, Required: true,
				Doc: "inventory node about to be promoted; it cannot count as a synchronous standby of itself"},
		},
		New: newSyncStandbys,
	})
}

// SyncStandbys passes when synchronous replication is off on Primary, or
// when enough of the standbys named in its synchronous_standby_names stream
// from it, the Candidate left aside, to satisfy the setting once Candidate
// is the primary. Otherwise every commit on the new primary would wait for a
// synchronous standby that is not there: a switchover that ends in a hang.
// The old primary does not count: it rejoins as a standby only later.
type SyncStandbys struct {
	Primary   string
	Candidate string
}

var _ Check = (*SyncStandbys)(nil)

func newSyncStandbys(v params.Values) (Check, error) {
	c := &SyncStandbys{Primary: v.Node("primary"), Candidate: v.Node("candidate")}
	switch {
	case c.Primary == "":
		return nil, errors.New("primary is empty")
	case c.Candidate == "":
		return nil, errors.New("candidate is empty")
	case c.Primary == c.Candidate:
		return nil, fmt.Errorf("primary and candidate are both %q", c.Primary)
	}
	return c, nil
}

// Describe implements Check.
func (c *SyncStandbys) Describe(*cluster.Target) string {
	return fmt.Sprintf("once %s takes over from %s, enough standbys named in %s's synchronous_standby_names still stream to satisfy it",
		c.Candidate, c.Primary, c.Primary)
}

// walSender is a row of pg_stat_replication.
type walSender struct {
	App       string
	State     string
	SyncState string
}

// Run implements Check.
func (c *SyncStandbys) Run(ctx context.Context, t *cluster.Target) Result {
	conn, err := connectNode(ctx, t, c.Primary)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(conn)
	var raw string
	var recovery bool
	if err := conn.QueryRow(ctx, `SELECT current_setting('synchronous_standby_names'), pg_is_in_recovery()`).
		Scan(&raw, &recovery); err != nil {
		return Errored(fmt.Errorf("read synchronous_standby_names on %s: %s", c.Primary, queryProblem(ctx, err)))
	}
	if recovery {
		return Errored(fmt.Errorf("%s is in recovery, not a primary: its synchronous_standby_names has no effect", c.Primary))
	}
	values := map[string]any{"synchronous_standby_names": raw}
	cfg, err := pg.ParseSyncStandbyNames(raw)
	if err != nil {
		return Errored(fmt.Errorf("synchronous_standby_names %q on %s: %w", raw, c.Primary, err))
	}
	if cfg.Method == pg.SyncOff {
		r := Passed(fmt.Sprintf("synchronous_standby_names is empty on %s: synchronous replication is off", c.Primary))
		r.Values = values
		return r
	}
	values["method"], values["num"], values["names"] = cfg.Method.String(), cfg.Num, cfg.Names

	rows, err := conn.Query(ctx, `SELECT coalesce(application_name, ''), coalesce(state, ''), coalesce(sync_state, '')
		FROM pg_stat_replication ORDER BY application_name, pid`)
	if err != nil {
		return Errored(fmt.Errorf("read pg_stat_replication on %s: %s", c.Primary, queryProblem(ctx, err)))
	}
	var senders []walSender
	for rows.Next() {
		var w walSender
		if err := rows.Scan(&w.App, &w.State, &w.SyncState); err != nil {
			rows.Close()
			return Errored(fmt.Errorf("read pg_stat_replication on %s: %s", c.Primary, queryProblem(ctx, err)))
		}
		senders = append(senders, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Errored(fmt.Errorf("read pg_stat_replication on %s: %s", c.Primary, queryProblem(ctx, err)))
	}

	candidateApps, err := c.candidateApps(ctx, t)
	if err != nil {
		return Errored(err)
	}
	values["candidate_application_names"] = candidateApps
	return c.judge(raw, cfg, senders, candidateApps, values)
}

// candidateApps returns the application names under which the candidate
// may appear in the primary's pg_stat_replication: its node name, and the
// name its WAL receiver gives (application_name in primary_conninfo, else
// the fallback, cluster_name or "walreceiver"), which need not be the same.
func (c *SyncStandbys) candidateApps(ctx context.Context, t *cluster.Target) ([]string, error) {
	apps := []string{c.Candidate}
	conn, err := connectNode(ctx, t, c.Candidate)
	if err != nil {
		return nil, err
	}
	defer closeConn(conn)
	var conninfo *string
	err = conn.QueryRow(ctx, `SELECT (SELECT conninfo FROM pg_stat_wal_receiver LIMIT 1)`).Scan(&conninfo)
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_wal_receiver on %s: %s", c.Candidate, queryProblem(ctx, err))
	}
	if conninfo == nil {
		return apps, nil // not streaming, or not allowed to see it: the node name is all we know
	}
	app := conninfopkg.ApplicationName(*conninfo)
	if app != "" && !slices.ContainsFunc(apps, func(a string) bool { return strings.EqualFold(a, app) }) {
		apps = append(apps, app)
	}
	return apps, nil
}

// judge counts the listed standbys that will still stream once the
// candidate is the primary.
func (c *SyncStandbys) judge(raw string, cfg pg.SyncConfig, senders []walSender, candidateApps []string, values map[string]any) Result {
	isCandidate := func(app string) bool {
		return slices.ContainsFunc(candidateApps, func(a string) bool { return strings.EqualFold(a, app) })
	}
	var streaming, remaining []string
	for _, w := range senders {
		desc := w.App
		if desc == "" {
			desc = `""`
		}
		desc += " (" + w.State
		if w.SyncState != "" {
			desc += ", " + w.SyncState
		}
		streaming = append(streaming, desc+")")
		if w.State == "streaming" && !isCandidate(w.App) && cfg.Matches(w.App) {
			remaining = append(remaining, w.App)
		}
	}
	values["wal_senders"], values["remaining"] = streaming, remaining
	who := "none"
	if len(streaming) > 0 {
		who = strings.Join(streaming, ", ")
	}
	left := "none"
	if len(remaining) > 0 {
		left = strings.Join(remaining, ", ")
	}
	setting := fmt.Sprintf("%q", raw)
	if long := cfg.String(); long != strings.TrimSpace(raw) {
		setting += fmt.Sprintf(" (%s)", long)
	}
	seen := fmt.Sprintf("synchronous_standby_names on %s is %s; standbys connected to %s: %s; without the candidate %s, %d listed standby(s) stream: %s; %d needed",
		c.Primary, setting, c.Primary, who, c.Candidate, len(remaining), left, cfg.Num)
	if len(remaining) >= cfg.Num {
		r := Passed(seen)
		r.Values = values
		return r
	}
	r := Failed(seen+": commits on the new primary would wait for a synchronous standby that is not there",
		fmt.Sprintf("at least %d standby(s) named in synchronous_standby_names streaming from %s besides the candidate %s (the old primary %s rejoins only later and cannot count)",
			cfg.Num, c.Primary, c.Candidate, c.Primary))
	r.Values = values
	return r
}
