package steps

import (
	"context"
	"fmt"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "pg.checkpoint",
		Doc:  "runs CHECKPOINT on a node, so that the shutdown checkpoint that follows is short",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: nodeSpecDoc},
		},
		New: func(v params.Values) (Step, error) {
			return &PGCheckpoint{Node: v.Node("node")}, nil
		},
	})
}

// PGCheckpoint is a step that writes every dirty buffer out ahead of a
// shutdown: the shutdown checkpoint then has little left to write, and the
// primary is down, and clients paused, for less time.
type PGCheckpoint struct {
	Node string
}

var _ Step = (*PGCheckpoint)(nil)

// checkpointSQL is what Checkpoint runs.
const checkpointSQL = "CHECKPOINT"

// Describe implements Step.
func (c *PGCheckpoint) Describe(t *cluster.Target) Effect {
	return Effect{Node: nodeWhere(t, c.Node), Command: checkpointSQL,
		Changes: fmt.Sprintf("writes every dirty buffer of %s to disk now (I/O, no change to data), so the shutdown checkpoint that follows is short", c.Node)}
}

// Apply implements Step.
func (c *PGCheckpoint) Apply(ctx context.Context, t *cluster.Target) error {
	n, err := t.Node(c.Node)
	if err != nil {
		return fmt.Errorf("checkpoint %q: %w", c.Node, err)
	}
	conn, err := connectNode(ctx, t, n, remaining(ctx))
	if err != nil {
		return fmt.Errorf("checkpoint %q: %w", c.Node, err)
	}
	defer closeConn(conn)
	start := time.Now()
	if _, err := conn.Exec(ctx, checkpointSQL); err != nil {
		return fmt.Errorf("checkpoint %q: %w", c.Node, err)
	}
	t.Print(fmt.Sprintf("checkpoint on %s done in %s", c.Node, since(start)))
	return nil
}
