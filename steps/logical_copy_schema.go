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
		Kind: "logical.copy_schema",
		Doc:  "copies one node's schema to another's empty database (pg_dump --schema-only with the target's pg_dump, restored as one transaction); nothing when the schemas are the same already, refused naming the differences when the target is not empty",
		Params: []params.Spec{
			{Name: "from", Type: params.Node, Required: true, Doc: "inventory node whose schema is copied (blue's primary)"},
			{Name: "to", Type: params.Node, Required: true, Doc: "inventory node that receives it (green's primary); its bin_dir's pg_dump runs on its host"},
		},
		New: func(v params.Values) (Step, error) {
			s := &LogicalCopySchema{From: v.Node("from"), To: v.Node("to")}
			return s, params.DistinctNodes(s.From, "from", s.To, "to")
		},
	})
}

// LogicalCopySchema is a step that gives green blue's schema before the
// subscription copies the rows. The dump is pg_dump's of the newer
// version (to's), which reads the older server and writes SQL for its own;
// switchover's own schema and DDL guard are left out, and so are
// publications, subscriptions, owners, privileges and tablespaces (roles
// are global, copied by the operator with pg_dumpall --roles-only if need
// be). It is restored through a connection to to as one transaction: all
// of it or nothing. A target with user objects already is compared
// instead: the same schema is nothing to do, another is refused.
type LogicalCopySchema struct {
	From, To string
}

var _ Step = (*LogicalCopySchema)(nil)

// Describe implements Step.
func (s *LogicalCopySchema) Describe(t *cluster.Target) Effect {
	return Effect{Node: nodeWhere(t, s.To),
		Command: logical.DumpDescription(t, s.From, s.To) + "; when " + s.To + "'s has no user objects: the dump of " + s.From + " run on " + s.To + " in one transaction (BEGIN; SET LOCAL " + logical.AllowDDLSetting + " = on; <dump>; COMMIT)",
		Changes: fmt.Sprintf("creates %s's schemas, tables, indexes, functions, types, extensions... in %s's database, with no rows; nothing when it has the same schema already", s.From, s.To)}
}

// Apply implements Step.
func (s *LogicalCopySchema) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("copy the schema of %q to %q: %w", s.From, s.To, err) }
	sc, err := logical.CompareSchemas(ctx, t, s.From, s.To)
	if err != nil {
		return fail(err)
	}
	if sc.Diff.Empty() {
		t.Unchanged(fmt.Sprintf("%s has the schema of %s already: nothing to copy", s.To, s.From))
		return nil
	}
	if objs := sc.To.UserObjects(); len(objs) > 0 {
		for _, l := range splitLines(sc.Diff.Excerpt) {
			t.Print(l)
		}
		return fail(fmt.Errorf("%s's database is not empty (%d objects: %s) and its schema differs: %s; nothing was copied",
			s.To, len(objs), logical.List(objs), sc.Diff.Summary(s.From, s.To)))
	}
	conn, err := logicalConn(ctx, t, s.To)
	if err != nil {
		return fail(err)
	}
	defer closeConn(conn)
	if err := logical.Restore(ctx, conn, sc.From.Restorable()); err != nil {
		return fail(fmt.Errorf("%w; nothing was created (one transaction)", err))
	}
	after, err := logical.CompareSchemas(ctx, t, s.From, s.To)
	if err != nil {
		return fail(fmt.Errorf("copied, then compare: %w", err))
	}
	if !after.Diff.Empty() {
		for _, l := range splitLines(after.Diff.Excerpt) {
			t.Print(l)
		}
		return fail(errors.New("copied, but the schemas still differ: " + after.Diff.Summary(s.From, s.To)))
	}
	t.Print(fmt.Sprintf("schema of %s copied to %s: %d objects", s.From, s.To, len(sc.From.UserObjects())))
	return nil
}
