package steps

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
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
