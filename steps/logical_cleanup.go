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
		Kind:        "logical.cleanup",
		Destructive: true,
		Doc:         "drops what a move left on a node: a subscription (with its slot on the publisher when that answers), a publication, a leftover slot, the DDL guard; each only when there, and says what it dropped",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "inventory node to clean"},
			{Name: "subscription", Type: params.String, Doc: "subscription to drop on node; empty for none"},
			{Name: "publication", Type: params.String, Doc: "publication to drop on node; empty for none"},
			{Name: "slot", Type: params.String, Doc: "replication slot to drop on node (one a subscription elsewhere left, its subscriber gone); empty for none"},
			{Name: "ddl_guard", Type: params.Bool, Default: "true", Doc: "remove the DDL guard too"},
		},
		New: func(v params.Values) (Step, error) {
			s := &LogicalCleanup{Node: v.Node("node"), Subscription: v.String("subscription"), Publication: v.String("publication"),
				Slot: v.String("slot"), Guard: v.Bool("ddl_guard")}
			if s.Node == "" {
				return nil, errors.New("node is empty")
			}
			return s, nil
		},
	})
}

// LogicalCleanup is a step that ends a move on one node, once no way back
// is wanted: a subscription left there keeps its slot on the publisher,
// and a slot keeps WAL forever, until the publisher's disk is full. A
// subscription is dropped with its slot when the publisher answers, else
// without it, and the slot left there is named (run the step on that node
// with slot: to drop it). Each part is done only when there: run again, it
// drops nothing.
type LogicalCleanup struct {
	Node, Subscription, Publication, Slot string
	Guard                                 bool
}

var _ Step = (*LogicalCleanup)(nil)

// Describe implements Step.
func (s *LogicalCleanup) Describe(t *cluster.Target) Effect {
	var cmds, what []string
	if s.Subscription != "" {
		cmds = append(cmds, "DROP SUBSCRIPTION "+logical.Ident(s.Subscription))
		what = append(what, "subscription "+s.Subscription+" and its slot on the publisher")
	}
	if s.Publication != "" {
		cmds = append(cmds, "DROP PUBLICATION "+logical.Ident(s.Publication))
		what = append(what, "publication "+s.Publication)
	}
	if s.Slot != "" {
		cmds = append(cmds, fmt.Sprintf("SELECT pg_drop_replication_slot('%s')", s.Slot))
		what = append(what, "slot "+s.Slot)
	}
	if s.Guard {
		cmds = append(cmds, logical.GuardRemoveSQL)
		what = append(what, "the DDL guard")
	}
	return Effect{Node: nodeWhere(t, s.Node), Command: "each when there: " + joinNonEmpty(cmds, "; "),
		Changes: fmt.Sprintf("drops on %s: %s", s.Node, joinNonEmpty(what, ", "))}
}

func joinNonEmpty(s []string, sep string) string {
	if len(s) == 0 {
		return "nothing"
	}
	out := s[0]
	for _, x := range s[1:] {
		out += sep + x
	}
	return out
}

// Apply implements Step.
func (s *LogicalCleanup) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("clean up %q: %w", s.Node, err) }
	conn, err := logicalConn(ctx, t, s.Node)
	if err != nil {
		return fail(err)
	}
	defer closeConn(conn)
	dropped := 0
	if s.Subscription != "" {
		said, err := logical.DropSubscription(ctx, conn, s.Subscription)
		if err != nil {
			return fail(err)
		}
		if said != "" {
			t.Print("on " + s.Node + ": " + said)
			dropped++
		}
	}
	if s.Publication != "" {
		ok, err := logical.DropPublication(ctx, conn, s.Publication)
		if err != nil {
			return fail(err)
		}
		if ok {
			t.Print(fmt.Sprintf("publication %s dropped on %s", s.Publication, s.Node))
			dropped++
		}
	}
	if s.Slot != "" {
		ok, err := logical.DropSlot(ctx, conn, s.Slot)
		if err != nil {
			return fail(err)
		}
		if ok {
			t.Print(fmt.Sprintf("slot %s dropped on %s", s.Slot, s.Node))
			dropped++
		}
	}
	if s.Guard {
		ok, err := logical.RemoveGuard(ctx, conn)
		if err != nil {
			return fail(err)
		}
		if ok {
			t.Print(fmt.Sprintf("DDL guard removed from %s", s.Node))
			dropped++
		}
	}
	if dropped == 0 {
		t.Unchanged(fmt.Sprintf("nothing of the move left on %s to drop", s.Node))
	}
	return nil
}
