package checks

import (
	"context"
	"errors"
	"fmt"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "pg.slots_recreated",
		Doc:  "the new primary has every physical slot of other consumers that pg.consumer_slots recorded on the old primary",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "inventory node that is the new primary"},
		},
		New: func(v params.Values) (Check, error) {
			c := &SlotsRecreated{Node: v.Node("node")}
			if c.Node == "" {
				return nil, errors.New("node is empty")
			}
			return c, nil
		},
	})
}

// SlotsRecreated passes when every physical slot recorded at preflight
// (fact slots.recreate) exists on the new primary, in use or not: its
// consumer (a backup tool) has a slot to stream from again.
type SlotsRecreated struct {
	Node string
}

var _ Check = (*SlotsRecreated)(nil)

// recorded returns the slots pg.consumer_slots recorded, and whether it ran.
func recordedSlots(t *cluster.Target) ([]string, bool) {
	if t == nil || t.Facts == nil {
		return nil, false
	}
	v, ok := t.Facts.Get(cluster.SlotsToRecreateFact)
	return cluster.SplitList(v), ok
}

// Describe implements Check.
func (c *SlotsRecreated) Describe(t *cluster.Target) string {
	names, ok := recordedSlots(t)
	switch {
	case !ok:
		return fmt.Sprintf("the physical slots recorded at preflight exist on %s", c.Node)
	case len(names) == 0:
		return "no physical slot of another consumer was recorded at preflight: nothing to find"
	}
	return (&PGSlots{Node: c.Node, Slots: names}).Describe(t)
}

// Run implements Check.
func (c *SlotsRecreated) Run(ctx context.Context, t *cluster.Target) Result {
	if _, err := t.Node(c.Node); err != nil {
		return Errored(err)
	}
	names, ok := recordedSlots(t)
	if !ok {
		return Errored(fmt.Errorf("no slots recorded: fact %s is set by pg.consumer_slots at preflight", cluster.SlotsToRecreateFact))
	}
	if len(names) == 0 {
		return Passed("no physical slot of another consumer was on the old primary")
	}
	return (&PGSlots{Node: c.Node, Slots: names}).Run(ctx, t)
}
