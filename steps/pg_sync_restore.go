package steps

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
		Kind: "pg.restore_sync_standby_names",
		Doc:  "undoes pg.set_sync_standby_names on a node (rollback): its synchronous_standby_names as it was before this run; nothing when the run did not change it",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the candidate whose setting the run changed"},
		},
		New: func(v params.Values) (Step, error) {
			s := &PGRestoreSyncStandbyNames{Node: v.Node("node")}
			if s.Node == "" {
				return nil, errors.New("node is empty")
			}
			return s, nil
		},
	})
}

// PGRestoreSyncStandbyNames is a rollback step: a run that stops before the
// promotion leaves the candidate's synchronous_standby_names as it found
// it, so that a later promotion (a failover, say) does not enforce a
// setting the operator never saw. It acts only on what this run recorded
// (facts <node>.synchronous_standby_names_was and _altered): a value set
// with ALTER SYSTEM is set again, one from elsewhere is restored with ALTER
// SYSTEM RESET.
type PGRestoreSyncStandbyNames struct {
	Node string
}

var _ Step = (*PGRestoreSyncStandbyNames)(nil)

// restoreSQL returns the statement that undoes the run's change, and the
// value recorded; ok is false when the run changed nothing.
func (s *PGRestoreSyncStandbyNames) restoreSQL(t *cluster.Target) (stmt, was string, ok bool) {
	if t == nil || t.Facts == nil {
		return "", "", false
	}
	was, ok = t.Facts.Get(cluster.SyncWasFact(s.Node))
	if !ok {
		return "", "", false
	}
	if altered, _ := t.Facts.Get(cluster.SyncWasAlteredFact(s.Node)); altered == "true" {
		return alterSyncSQL(was), was, true
	}
	return "ALTER SYSTEM RESET synchronous_standby_names", was, true
}

// Describe implements Step.
func (s *PGRestoreSyncStandbyNames) Describe(t *cluster.Target) Effect {
	stmt, was, ok := s.restoreSQL(t)
	if !ok {
		return Effect{Node: nodeWhere(t, s.Node),
			Command: "if this run changed it: ALTER SYSTEM SET synchronous_standby_names = <its value before> (or ALTER SYSTEM RESET synchronous_standby_names when it did not come from ALTER SYSTEM); SELECT pg_reload_conf()",
			Changes: fmt.Sprintf("%s's synchronous_standby_names as it was before the run; nothing if the run did not change it", s.Node)}
	}
	return Effect{Node: nodeWhere(t, s.Node), Command: stmt + "; SELECT pg_reload_conf()",
		Changes: fmt.Sprintf("%s's synchronous_standby_names back to %s, as before the run", s.Node, sqlQuote(was))}
}

// Apply implements Step.
func (s *PGRestoreSyncStandbyNames) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("restore synchronous_standby_names on %q: %w", s.Node, err) }
	stmt, was, ok := s.restoreSQL(t)
	if !ok {
		t.Unchanged(fmt.Sprintf("this run did not change synchronous_standby_names on %s: nothing to restore", s.Node))
		return nil
	}
	want, err := pg.ParseSyncStandbyNames(was)
	if err != nil {
		return fail(fmt.Errorf("recorded value %q: %w", was, err))
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
	if err := applySyncStandbyNames(ctx, conn, stmt, want); err != nil {
		return fail(err)
	}
	t.Print(fmt.Sprintf("synchronous_standby_names on %s is %s again, as before the run", s.Node, sqlQuote(was)))
	return nil
}
