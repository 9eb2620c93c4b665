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
		Kind: "logical.ddl_guard",
		Doc:  "installs (enabled: true) or removes (enabled: false) event triggers that refuse DDL on a node's database while a move is pending, except in a session with switchover.allow_ddl = on; nothing when it is so already",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "inventory node whose database is guarded (each cluster's primary)"},
			{Name: "enabled", Type: params.Bool, Default: "true", Doc: "true installs the guard, false removes it"},
		},
		New: func(v params.Values) (Step, error) {
			s := &LogicalDDLGuard{Node: v.Node("node"), Enabled: v.Bool("enabled")}
			if s.Node == "" {
				return nil, errors.New("node is empty")
			}
			return s, nil
		},
	})
}

// LogicalDDLGuard is a step that holds a database's schema still while a
// move is pending: logical replication carries no DDL, so a table altered
// on one side stops the apply or fails the cutover. The guard is an event
// trigger pair in switchover's schema (see logical.GuardInstallSQL): it
// refuses DDL with "switchover: DDL is refused while a logical upgrade is
// pending (...)", lets switchover's own objects and sessions with SET
// switchover.allow_ddl = on through, and is left out of the schema
// comparison and copy.
type LogicalDDLGuard struct {
	Node    string
	Enabled bool
}

var _ Step = (*LogicalDDLGuard)(nil)

// Describe implements Step.
func (s *LogicalDDLGuard) Describe(t *cluster.Target) Effect {
	if !s.Enabled {
		return Effect{Node: nodeWhere(t, s.Node), Command: logical.GuardRemoveSQL,
			Changes: fmt.Sprintf("DDL on %s is allowed again", s.Node)}
	}
	return Effect{Node: nodeWhere(t, s.Node),
		Command: fmt.Sprintf("when the event triggers %s and %s are not both there and enabled: %s", logical.GuardTrigger, logical.GuardEndTrigger, logical.GuardInstallSQL),
		Changes: fmt.Sprintf("DDL on %s's database fails (%q) unless the session sets %s = on", s.Node, logical.GuardMessage, logical.AllowDDLSetting)}
}

// Apply implements Step.
func (s *LogicalDDLGuard) Apply(ctx context.Context, t *cluster.Target) error {
	conn, err := logicalConn(ctx, t, s.Node)
	if err != nil {
		return fmt.Errorf("DDL guard on %q: %w", s.Node, err)
	}
	defer closeConn(conn)
	if s.Enabled {
		changed, err := logical.InstallGuard(ctx, conn)
		if err != nil {
			return fmt.Errorf("DDL guard on %q: %w", s.Node, err)
		}
		if !changed {
			t.Unchanged(fmt.Sprintf("the DDL guard on %s is installed already", s.Node))
			return nil
		}
		t.Print(fmt.Sprintf("DDL guard installed on %s: DDL is refused unless the session sets %s = on", s.Node, logical.AllowDDLSetting))
		return nil
	}
	changed, err := logical.RemoveGuard(ctx, conn)
	if err != nil {
		return fmt.Errorf("DDL guard on %q: %w", s.Node, err)
	}
	if !changed {
		t.Unchanged(fmt.Sprintf("no DDL guard on %s", s.Node))
		return nil
	}
	t.Print(fmt.Sprintf("DDL guard removed from %s", s.Node))
	return nil
}
