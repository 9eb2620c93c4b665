package checks

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
		Kind: "pg.slots",
		Doc:  "named physical replication slots exist on a node, and are in use",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "inventory node that must hold the slots, usually the primary"},
			{Name: "slots", Type: params.Strings, Required: true,
				Doc: "names of the physical slots, e.g. one per standby"},
			{Name: "active", Type: params.Bool, Default: "true",
				Doc: "each slot must also be in use by a connected standby"},
		},
		New: newPGSlots,
	})
}

// PGSlots passes when every named physical replication slot exists on a
// node, and when Active is set, a WAL sender uses it. A new primary without
// its standbys' slots recycles WAL they still need; a slot that is not in
// use means its standby is not connected.
type PGSlots struct {
	Node   string
	Slots  []string
	Active bool
}

var _ Check = (*PGSlots)(nil)

func newPGSlots(v params.Values) (Check, error) {
	c := &PGSlots{Node: v.Node("node"), Active: v.Bool("active")}
	if c.Node == "" {
		return nil, errors.New("node is empty")
	}
	slots, err := nameList(v, "slots")
	if err != nil {
		return nil, err
	}
	c.Slots = slots
	if len(c.Slots) == 0 {
		return nil, errors.New("slots is empty: name at least one slot")
	}
	return c, nil
}

// Describe implements Check.
func (c *PGSlots) Describe(*cluster.Target) string {
	state := "exist"
	if c.Active {
		state = "exist and are active"
	}
	return fmt.Sprintf("physical slots %s on %s %s", strings.Join(c.Slots, ", "), c.Node, state)
}

// Run implements Check.
func (c *PGSlots) Run(ctx context.Context, t *cluster.Target) Result {
	return withWanted(c.run(ctx, t), c, t)
}

// run evaluates the check once; Run fills in what it wanted when it
// ended in an error before saying so.
func (c *PGSlots) run(ctx context.Context, t *cluster.Target) Result {
	conn, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(conn)
	type slot struct {
		kind   string
		active bool
	}
	found := map[string]slot{}
	rows, err := conn.Query(ctx, `SELECT slot_name::text, slot_type, active FROM pg_replication_slots WHERE slot_name = ANY($1::text[])`, c.Slots)
	if err != nil {
		return Errored(fmt.Errorf("%s: read pg_replication_slots: %w", c.Node, err))
	}
	for rows.Next() {
		var name string
		var s slot
		if err := rows.Scan(&name, &s.kind, &s.active); err != nil {
			rows.Close()
			return Errored(fmt.Errorf("%s: read pg_replication_slots: %w", c.Node, err))
		}
		found[name] = s
	}
	if err := rows.Err(); err != nil {
		return Errored(fmt.Errorf("%s: read pg_replication_slots: %w", c.Node, err))
	}

	var seen, missing, inactive, ok []string
	for _, name := range c.Slots {
		s, exists := found[name]
		switch {
		case !exists:
			missing = append(missing, name)
			seen = append(seen, name+" missing")
		case s.kind != "physical":
			missing = append(missing, name)
			seen = append(seen, fmt.Sprintf("%s is a %s slot, not physical", name, s.kind))
		case !s.active:
			seen = append(seen, name+" inactive")
			if c.Active {
				inactive = append(inactive, name)
			} else {
				ok = append(ok, name)
			}
		default:
			seen = append(seen, name+" active")
			ok = append(ok, name)
		}
	}
	wanted := fmt.Sprintf("physical slots %s on %s", strings.Join(c.Slots, ", "), c.Node)
	if c.Active {
		wanted += ", each active"
	}
	r := Result{Status: Pass, Observed: fmt.Sprintf("slots on %s: %s", c.Node, strings.Join(seen, ", ")), Wanted: wanted}
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, "missing: "+strings.Join(missing, ", "))
	}
	if len(inactive) > 0 {
		problems = append(problems, "inactive: "+strings.Join(inactive, ", "))
	}
	if len(problems) > 0 {
		r.Status = Fail
		r.Observed = fmt.Sprintf("%s on %s (%s)", strings.Join(problems, "; "), c.Node, strings.Join(seen, ", "))
	}
	r.Values = map[string]any{"missing": nonNil(missing), "inactive": nonNil(inactive), "ok": nonNil(ok)}
	return r
}

// nonNil returns s, or an empty list for nil, so journals show [] and
// not null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
