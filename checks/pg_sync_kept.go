package checks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "pg.sync_kept",
		Doc:  "the new primary has the synchronous_standby_names recorded at preflight (pg.sync_after), and pg_stat_replication shows as many sync or quorum standbys as the old primary did",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "inventory node that is the new primary"},
		},
		New: func(v params.Values) (Check, error) {
			c := &SyncKept{Node: v.Node("node")}
			if c.Node == "" {
				return nil, errors.New("node is empty")
			}
			return c, nil
		},
	})
}

// SyncKept passes when the new primary keeps the old one's promise, as
// pg.sync_after recorded it at preflight: its synchronous_standby_names is
// the one recorded, and its pg_stat_replication shows at least as many
// sync (FIRST) or quorum (ANY) standbys as the old primary's did. A
// setting in place but no standby confirming commits is a promise kept on
// paper only.
type SyncKept struct {
	Node string
}

var _ Check = (*SyncKept)(nil)

// Describe implements Check.
func (c *SyncKept) Describe(t *cluster.Target) string {
	want := "the setting recorded at preflight"
	if t != nil && t.Facts != nil {
		if v, ok := t.Facts.Get(cluster.SyncAfterFact); ok {
			want = fmt.Sprintf("%q", v)
		}
	}
	return fmt.Sprintf("on %s: current_setting('synchronous_standby_names') is %s, and SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum') is at least what the old primary showed",
		c.Node, want)
}

// Run implements Check.
func (c *SyncKept) Run(ctx context.Context, t *cluster.Target) Result {
	return withWanted(c.run(ctx, t), c, t)
}

func (c *SyncKept) run(ctx context.Context, t *cluster.Target) Result {
	if _, err := t.Node(c.Node); err != nil {
		return Errored(err)
	}
	var afterRaw, wantRaw string
	var okAfter, okWant bool
	if t != nil && t.Facts != nil {
		afterRaw, okAfter = t.Facts.Get(cluster.SyncAfterFact)
		wantRaw, okWant = t.Facts.Get(cluster.SyncWantCountFact)
	}
	if !okAfter || !okWant {
		return Errored(fmt.Errorf("no promise recorded: facts %s and %s are set by pg.sync_after at preflight", cluster.SyncAfterFact, cluster.SyncWantCountFact))
	}
	after, err := pg.ParseSyncStandbyNames(afterRaw)
	if err != nil {
		return Errored(fmt.Errorf("fact %s %q: %w", cluster.SyncAfterFact, afterRaw, err))
	}
	want, err := strconv.Atoi(wantRaw)
	if err != nil {
		return Errored(fmt.Errorf("fact %s is %q, not a number", cluster.SyncWantCountFact, wantRaw))
	}
	conn, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(conn)
	var recovery bool
	if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&recovery); err != nil {
		return Errored(fmt.Errorf("ask %s whether it is in recovery: %s", c.Node, queryProblem(ctx, err)))
	}
	setting, err := pg.ReadSetting(ctx, conn, "synchronous_standby_names")
	if err != nil {
		return Errored(fmt.Errorf("read synchronous_standby_names on %s: %s", c.Node, queryProblem(ctx, err)))
	}
	senders, err := pg.WALSenders(ctx, conn)
	if err != nil {
		return Errored(fmt.Errorf("read pg_stat_replication on %s: %s", c.Node, queryProblem(ctx, err)))
	}
	return c.judge(recovery, setting.Value, after, want, senders)
}

func (c *SyncKept) judge(recovery bool, raw string, after pg.SyncConfig, want int, senders []pg.WALSender) Result {
	wanted := fmt.Sprintf("%s a primary with synchronous_standby_names %s and at least %d sync or quorum standby(s)", c.Node, quoted(after), want)
	if recovery {
		return Failed(fmt.Sprintf("%s is in recovery, not the primary", c.Node), wanted)
	}
	var all []string
	count := 0
	for _, w := range senders {
		all = append(all, fmt.Sprintf("%s (%s, %s)", w.App, w.State, w.SyncState))
		if w.Synchronous() {
			count++
		}
	}
	seen := "none"
	if len(all) > 0 {
		seen = strings.Join(all, ", ")
	}
	got, err := pg.ParseSyncStandbyNames(raw)
	if err != nil {
		return Errored(fmt.Errorf("synchronous_standby_names %q on %s: %w", raw, c.Node, err))
	}
	r := Result{Status: Pass, Wanted: wanted,
		Observed: fmt.Sprintf("synchronous_standby_names on %s is %s; standbys: %s; %d sync or quorum, %d wanted", c.Node, quoted(got), seen, count, want),
		Values:   map[string]any{"setting": got.String(), "sync_count": count, "want_count": want, "wal_senders": nonNil(all)}}
	switch {
	case !got.Equal(after):
		r.Status = Fail
		r.Observed += fmt.Sprintf(": the setting is not the one recorded at preflight (%s)", quoted(after))
	case count < want:
		r.Status = Fail
		r.Observed += ": fewer standbys confirm commits than did on the old primary"
	}
	return r
}
