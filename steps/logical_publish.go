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
		Kind: "logical.publish",
		Doc:  "creates a publication of every user table of a node's database (switchover's own schema left out), or adds the tables it lacks; nothing when it has them all",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "inventory node that publishes (blue's primary; green's for the way back)"},
			{Name: "publication", Type: params.String, Required: true, Doc: "the publication's name"},
		},
		New: func(v params.Values) (Step, error) {
			s := &LogicalPublish{Node: v.Node("node"), Publication: v.String("publication")}
			if s.Node == "" {
				return nil, errors.New("node is empty")
			}
			return s, needName("publication", s.Publication)
		},
	})
}

// LogicalPublish is a step that publishes a database's tables for a move:
// every ordinary and partitioned user table but the unlogged ones
// (logical.unsupported refuses those), listed by name. Not FOR ALL
// TABLES: that would publish switchover's own schema too, whose run claim
// each cluster keeps for itself and whose rows would collide on the
// subscriber. The list is the tables of now; DDL is held by the DDL guard
// meanwhile, and the step run again adds what is new. Sequences are not
// replicated by PostgreSQL before 18's publications: logical.sync_sequences
// sets them at the cutover.
type LogicalPublish struct {
	Node, Publication string
}

var _ Step = (*LogicalPublish)(nil)

// Describe implements Step.
func (s *LogicalPublish) Describe(t *cluster.Target) Effect {
	return Effect{Node: nodeWhere(t, s.Node),
		Command: fmt.Sprintf("when missing: %s; when it lacks tables: %s", logical.CreatePublicationSQL(s.Publication, []string{"<every user table>"}), logical.AddTablesSQL(s.Publication, []string{"<those it lacks>"})),
		Changes: fmt.Sprintf("publication %s on %s lists every user table; subscribers can copy and follow them (no change to the data)", s.Publication, s.Node)}
}

// Apply implements Step.
func (s *LogicalPublish) Apply(ctx context.Context, t *cluster.Target) error {
	conn, err := logicalConn(ctx, t, s.Node)
	if err != nil {
		return fmt.Errorf("publish on %q: %w", s.Node, err)
	}
	defer closeConn(conn)
	did, err := logical.Publish(ctx, conn, s.Publication)
	if err != nil {
		return fmt.Errorf("publish on %q: %w", s.Node, err)
	}
	if did == "" {
		t.Unchanged(fmt.Sprintf("publication %s on %s lists every user table already", s.Publication, s.Node))
		return nil
	}
	t.Print(did + " on " + s.Node)
	return nil
}
