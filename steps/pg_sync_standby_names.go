package steps

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "pg.set_sync_standby_names",
		Doc:  "gives the candidate, before its promotion, the synchronous_standby_names that pg.sync_after recorded (ALTER SYSTEM and a reload), keeping its old value as a fact for the rollback",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the candidate, still a standby"},
		},
		New: func(v params.Values) (Step, error) {
			s := &PGSetSyncStandbyNames{Node: v.Node("node")}
			if s.Node == "" {
				return nil, errors.New("node is empty")
			}
			return s, nil
		},
	})
}

// PGSetSyncStandbyNames is a step that gives the candidate the
// synchronous_standby_names it must have as the primary, while it is still
// a standby (where the setting has no effect), so that the first commit
// after its promotion already waits for a synchronous standby and nothing
// is added to the time clients wait. The setting is the one pg.sync_after
// recorded at preflight (fact sync.after). The candidate's value before is
// recorded first (facts <node>.synchronous_standby_names_was and _altered),
// so that pg.restore_sync_standby_names can undo exactly this change and
// nothing else.
type PGSetSyncStandbyNames struct {
	Node string
}

var _ Step = (*PGSetSyncStandbyNames)(nil)

// settingApplyWait bounds how long a reloaded setting may take to show.
const settingApplyWait = 10 * time.Second

// syncAfter returns the setting recorded at preflight.
func syncAfter(t *cluster.Target) (string, bool) {
	if t == nil || t.Facts == nil {
		return "", false
	}
	return t.Facts.Get(cluster.SyncAfterFact)
}

// alterSyncSQL is the statement that sets synchronous_standby_names.
func alterSyncSQL(value string) string {
	return "ALTER SYSTEM SET synchronous_standby_names = " + sqlQuote(value)
}

// Describe implements Step.
func (s *PGSetSyncStandbyNames) Describe(t *cluster.Target) Effect {
	after, ok := syncAfter(t)
	value := sqlQuote(after)
	if !ok {
		value = "<the setting pg.sync_after records at preflight>"
	}
	return Effect{Node: nodeWhere(t, s.Node),
		Command: fmt.Sprintf("unless it is already so: ALTER SYSTEM SET synchronous_standby_names = %s; SELECT pg_reload_conf()", value),
		Changes: fmt.Sprintf("%s's synchronous_standby_names becomes %s in its postgresql.auto.conf; it takes effect when %s is promoted (a standby ignores it); the old value is recorded for the rollback", s.Node, value, s.Node)}
}

// Apply implements Step.
func (s *PGSetSyncStandbyNames) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("set synchronous_standby_names on %q: %w", s.Node, err) }
	after, ok := syncAfter(t)
	if !ok {
		return fail(fmt.Errorf("no setting recorded: fact %s is set by the check pg.sync_after at preflight", cluster.SyncAfterFact))
	}
	want, err := pg.ParseSyncStandbyNames(after)
	if err != nil {
		return fail(fmt.Errorf("fact %s %q: %w", cluster.SyncAfterFact, after, err))
	}
	n, err := t.Node(s.Node)
	if err != nil {
		return fail(err)
	}
	conn, err := connectNode(ctx, t, n, remaining(ctx))
	if err != nil {
		return fail(err)
	}
	defer closeConn(conn)
	cur, err := pg.ReadSetting(ctx, conn, "synchronous_standby_names")
	if err != nil {
		return fail(fmt.Errorf("read it: %w", err))
	}
	if got, err := pg.ParseSyncStandbyNames(cur.Value); err == nil && got.Equal(want) {
		t.Unchanged(fmt.Sprintf("synchronous_standby_names on %s is already %s: nothing to change", s.Node, sqlQuote(cur.Value)))
		return nil
	}
	if _, done := t.Facts.Get(cluster.SyncWasFact(s.Node)); !done {
		t.Facts.Set(cluster.SyncWasAlteredFact(s.Node), strconv.FormatBool(cur.FromAutoConf()))
		t.Facts.Set(cluster.SyncWasFact(s.Node), cur.Value)
	}
	if err := applySyncStandbyNames(ctx, conn, alterSyncSQL(after), want); err != nil {
		return fail(err)
	}
	t.Print(fmt.Sprintf("synchronous_standby_names on %s: %s -> %s (in effect once it is the primary)", s.Node, sqlQuote(cur.Value), sqlQuote(after)))
	return nil
}

// applySyncStandbyNames runs an ALTER SYSTEM statement on
// synchronous_standby_names and pg_reload_conf(), then waits (bounded)
// until the node shows the setting as want: a reload is asynchronous, and
// the next step must find it in effect.
func applySyncStandbyNames(ctx context.Context, conn *pgx.Conn, alter string, want pg.SyncConfig) error {
	const name = "synchronous_standby_names"
	if _, err := conn.Exec(ctx, alter); err != nil {
		return fmt.Errorf("%s: %w", alter, err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("pg_reload_conf(): %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, settingApplyWait)
	defer cancel()
	return poll(wctx, 10*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		var v string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			return false, "", fmt.Errorf("read %s after the reload: %w", name, err)
		}
		got, err := pg.ParseSyncStandbyNames(v)
		return err == nil && got.Equal(want), fmt.Sprintf("%s is still %s after the reload", name, sqlQuote(v)), nil
	})
}
