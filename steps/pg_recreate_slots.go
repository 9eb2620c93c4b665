package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "pg.recreate_slots",
		Doc:  "creates on the new primary the physical slots of other consumers (backup tools) that pg.consumer_slots recorded on the old primary, reserving WAL at once",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the new primary"},
		},
		New: func(v params.Values) (Step, error) {
			s := &PGRecreateSlots{Node: v.Node("node")}
			if s.Node == "" {
				return nil, errors.New("node is empty")
			}
			return s, nil
		},
	})
}

// PGRecreateSlots is a step that gives the new primary the physical
// replication slots other consumers used on the old one (fact
// slots.recreate, recorded at preflight): slots do not replicate, and a
// backup tool streaming WAL through one would otherwise find none, and the
// new primary would recycle WAL it has not fetched. Each is created with
// its WAL reserved at once; one that exists already is left as it is.
type PGRecreateSlots struct {
	Node string
}

var _ Step = (*PGRecreateSlots)(nil)

// createSlotSQL creates a physical slot that reserves WAL at once.
func createSlotSQL(name string) string {
	return fmt.Sprintf("SELECT pg_create_physical_replication_slot(%s, true)", sqlQuote(name))
}

// Describe implements Step.
func (s *PGRecreateSlots) Describe(t *cluster.Target) Effect {
	var names []string
	recorded := false
	if t != nil && t.Facts != nil {
		var v string
		v, recorded = t.Facts.Get(cluster.SlotsToRecreateFact)
		names = cluster.SplitList(v)
	}
	switch {
	case !recorded:
		return Effect{Node: nodeWhere(t, s.Node),
			Command: "for each slot recorded at preflight, unless pg_replication_slots has it: SELECT pg_create_physical_replication_slot(<name>, true)",
			Changes: fmt.Sprintf("the physical slots of other consumers exist on %s", s.Node)}
	case len(names) == 0:
		return Effect{Node: nodeWhere(t, s.Node), Command: "nothing: no physical slot of another consumer on the old primary"}
	}
	var stmts []string
	for _, n := range names {
		stmts = append(stmts, createSlotSQL(n))
	}
	return Effect{Node: nodeWhere(t, s.Node), Command: "unless pg_replication_slots has it: " + strings.Join(stmts, "; "),
		Changes: fmt.Sprintf("physical slots %s exist on %s, reserving WAL from now on; their consumers must connect to %s", strings.Join(names, ", "), s.Node, s.Node)}
}

// Apply implements Step.
func (s *PGRecreateSlots) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("recreate slots on %q: %w", s.Node, err) }
	if t == nil || t.Facts == nil {
		return fail(errors.New("no run facts"))
	}
	v, ok := t.Facts.Get(cluster.SlotsToRecreateFact)
	if !ok {
		return fail(fmt.Errorf("no slots recorded: fact %s is set by the check pg.consumer_slots at preflight", cluster.SlotsToRecreateFact))
	}
	names := cluster.SplitList(v)
	if len(names) == 0 {
		t.Unchanged("no physical slot of another consumer was on the old primary: nothing to create")
		return nil
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
	for _, name := range names {
		var kind *string
		if err := conn.QueryRow(ctx, "SELECT (SELECT slot_type FROM pg_replication_slots WHERE slot_name = $1)", name).Scan(&kind); err != nil {
			return fail(fmt.Errorf("look for slot %s: %w", name, err))
		}
		switch {
		case kind != nil && *kind == "physical":
			t.Print(fmt.Sprintf("slot %s exists on %s already", name, s.Node))
			continue
		case kind != nil:
			return fail(fmt.Errorf("slot %s exists on %s as a %s slot, not physical", name, s.Node, *kind))
		}
		var lsn *string
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT lsn::text FROM pg_create_physical_replication_slot(%s, true)", sqlQuote(name))).Scan(&lsn); err != nil {
			return fail(fmt.Errorf("%s: %w", createSlotSQL(name), err))
		}
		from := "now"
		if lsn != nil {
			from = *lsn
		}
		t.Print(fmt.Sprintf("created physical slot %s on %s, reserving WAL from %s; its consumer must now stream from %s", name, s.Node, from, s.Node))
	}
	return nil
}
