package steps

import (
	"context"
	"fmt"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/logical"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "logical.sync_sequences",
		Doc:  "sets every sequence of one node's database on another's exactly as it is (setval with last_value and is_called), in one transaction; a sequence the other lacks fails it, named",
		Params: []params.Spec{
			{Name: "from", Type: params.Node, Required: true, Doc: "inventory node whose sequences are read (blue's primary, clients held)"},
			{Name: "to", Type: params.Node, Required: true, Doc: "inventory node whose sequences are set (green's primary)"},
		},
		New: func(v params.Values) (Step, error) {
			s := &LogicalSyncSequences{From: v.Node("from"), To: v.Node("to")}
			return s, params.DistinctNodes(s.From, "from", s.To, "to")
		},
	})
}

// LogicalSyncSequences is a step of the cutover: logical replication
// carries a table's rows, not its sequence (PostgreSQL before 18), so
// green's sequences stand where the schema copy made them. With clients
// held, each is set to blue's value exactly, is_called included, so the
// next nextval() on green returns what it would have on blue.
type LogicalSyncSequences struct {
	From, To string
}

var _ Step = (*LogicalSyncSequences)(nil)

// Describe implements Step.
func (s *LogicalSyncSequences) Describe(t *cluster.Target) Effect {
	return Effect{Node: nodeWhere(t, s.To),
		Command: fmt.Sprintf("on %s: SELECT last_value, is_called FROM <each sequence>; on %s, one transaction: %s for each", s.From, s.To, logical.SetSequenceSQL),
		Changes: fmt.Sprintf("every sequence on %s continues where %s's stands", s.To, s.From)}
}

// Apply implements Step.
func (s *LogicalSyncSequences) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("sync sequences from %q to %q: %w", s.From, s.To, err) }
	from, err := logicalConn(ctx, t, s.From)
	if err != nil {
		return fail(err)
	}
	defer closeConn(from)
	to, err := logicalConn(ctx, t, s.To)
	if err != nil {
		return fail(err)
	}
	defer closeConn(to)
	start := time.Now()
	seqs, err := logical.ReadSequences(ctx, from)
	if err != nil {
		return fail(err)
	}
	if err := logical.SetSequences(ctx, to, seqs); err != nil {
		return fail(fmt.Errorf("%w; none was set (one transaction)", err))
	}
	t.Print(fmt.Sprintf("%d sequences of %s set on %s in %s", len(seqs), s.From, s.To, since(start)))
	return nil
}
