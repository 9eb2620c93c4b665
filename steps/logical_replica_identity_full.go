package steps

import (
	"context"
	"errors"
	"fmt"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/logical"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind:        "logical.replica_identity_full",
		Destructive: true,
		Doc:         "sets REPLICA IDENTITY FULL on every user table of a node that has no primary key and no replica identity of its own, so that its updates and deletes can be published; nothing when there is none",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "inventory node whose tables are changed (blue's primary)"},
			{Name: "lock_timeout", Type: params.Duration, Default: "2s", Doc: "how long each ALTER TABLE may wait for its lock before the step fails (a busy table is not stalled behind it)"},
		},
		New: func(v params.Values) (Step, error) {
			s := &LogicalReplicaIdentityFull{Node: v.Node("node"), LockTimeout: v.Duration("lock_timeout").Milliseconds()}
			if s.Node == "" {
				return nil, errors.New("node is empty")
			}
			return s, nil
		},
	})
}

// LogicalReplicaIdentityFull is a step of the preparation, the
// counterpart of logical.replica_identity with allow_full: a table with
// no primary key cannot have its updates and deletes published (the
// publisher refuses them, failing the application) until it has a replica
// identity. FULL logs the whole old row of each change and makes the
// subscriber find it by a sequential scan: fine for small tables, slow for
// large ones (give those a key instead). Each ALTER TABLE takes a short
// ACCESS EXCLUSIVE lock, bounded by lock_timeout.
type LogicalReplicaIdentityFull struct {
	Node        string
	LockTimeout int64 // milliseconds
}

var _ Step = (*LogicalReplicaIdentityFull)(nil)

// Describe implements Step.
func (s *LogicalReplicaIdentityFull) Describe(t *cluster.Target) Effect {
	return Effect{Node: nodeWhere(t, s.Node),
		Command: fmt.Sprintf("SET lock_timeout = %d; for each user table with no primary key and REPLICA IDENTITY DEFAULT: ALTER TABLE <table> REPLICA IDENTITY FULL", s.LockTimeout),
		Changes: fmt.Sprintf("updates and deletes of those tables on %s log the whole old row (more WAL) and can be published", s.Node)}
}

// Apply implements Step.
func (s *LogicalReplicaIdentityFull) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("replica identity full on %q: %w", s.Node, err) }
	conn, err := logicalConn(ctx, t, s.Node)
	if err != nil {
		return fail(err)
	}
	defer closeConn(conn)
	tables, err := logical.ReadTables(ctx, conn)
	if err != nil {
		return fail(err)
	}
	todo := logical.WithoutIdentity(tables)
	if len(todo) == 0 {
		t.Unchanged(fmt.Sprintf("every user table on %s has a replica identity", s.Node))
		return nil
	}
	done, err := logical.Privileged(ctx, conn)
	defer done()
	if err != nil {
		return fail(err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("SET lock_timeout = %d", s.LockTimeout)); err != nil {
		return fail(err)
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "RESET lock_timeout") }()
	for i, tb := range todo {
		if _, err := conn.Exec(ctx, logical.SetIdentityFullSQL(tb)); err != nil {
			return fail(fmt.Errorf("%s: %w (%d of %d tables set before it)", tb, err, i, len(todo)))
		}
		t.Print(fmt.Sprintf("%s on %s: REPLICA IDENTITY FULL", tb, s.Node))
	}
	return nil
}
