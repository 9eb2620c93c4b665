package steps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

// What the logical.* steps share: a connection to a node by name, and the
// checks of their parameters.

// logicalConn connects to a node of the inventory by name, each statement
// bounded by what is left of ctx.
func logicalConn(ctx context.Context, t *cluster.Target, name string) (*pgx.Conn, error) {
	n, err := t.Node(name)
	if err != nil {
		return nil, err
	}
	return connectNode(ctx, t, n, remaining(ctx))
}

// needName checks a name parameter.
func needName(param, v string) error {
	if v == "" {
		return errors.New(param + " is empty")
	}
	return nil
}

// subscriptionWait checks the parameters of a step that waits on a
// subscription (logical.wait_copy, logical.wait_applied): two distinct
// nodes, the subscription's name, and a positive poll and bound.
func subscriptionWait(subscriber, publisher, subscription string, every, within time.Duration) error {
	if err := params.DistinctNodes(subscriber, "subscriber", publisher, "publisher"); err != nil {
		return err
	}
	if every <= 0 || within <= 0 {
		return fmt.Errorf("within and every must be positive")
	}
	return needName("subscription", subscription)
}
