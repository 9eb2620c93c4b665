package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "pg.consumer_slots",
		Doc:  "lists the physical replication slots on the primary that are not its standbys' own (a backup tool's, say) and records them, so that pg.recreate_slots creates them on the new primary",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "inventory node that is the primary now; its pg_replication_slots is read"},
		},
		New: func(v params.Values) (Check, error) {
			c := &ConsumerSlots{Node: v.Node("node")}
			if c.Node == "" {
				return nil, errors.New("node is empty")
			}
			return c, nil
		},
	})
}

// ConsumerSlots finds the physical replication slots on the primary that
// belong to other consumers than the cluster's standbys (pg_receivewal, a
// backup tool): slots do not replicate, so the new primary would not have
// them and the consumer would find nothing to stream from. A standby's own
// slot is one named after an inventory node (pg.follow's default) or used
// by a WAL sender whose application_name is an inventory node; those are
// made again by pg.follow. It records the others (fact slots.recreate) and
// always passes unless it cannot read them: keeping them is the job of
// pg.recreate_slots after the promotion.
type ConsumerSlots struct {
	Node string
}

var _ Check = (*ConsumerSlots)(nil)

// Describe implements Check.
func (c *ConsumerSlots) Describe(*cluster.Target) string {
	return fmt.Sprintf("on %s: SELECT slot_name, active, restart_lsn FROM pg_replication_slots WHERE slot_type = 'physical' AND NOT temporary, less the slots of the inventory's standbys; the rest are recorded to be created on the new primary", c.Node)
}

// Run implements Check.
func (c *ConsumerSlots) Run(ctx context.Context, t *cluster.Target) Result {
	return withWanted(c.run(ctx, t), c, t)
}

func (c *ConsumerSlots) run(ctx context.Context, t *cluster.Target) Result {
	slots, err := readSlots(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	r, names := consumerSlots(c.Node, slots, t.Cluster.NodeNames())
	if t.Facts != nil {
		t.Facts.Set(cluster.SlotsToRecreateFact, strings.Join(names, ","))
	}
	return r
}

// consumerSlots picks the physical slots that are not the standbys' own.
func consumerSlots(node string, slots []pg.ReplicationSlot, nodes []string) (Result, []string) {
	isNode := func(name string) bool {
		for _, n := range nodes {
			if strings.EqualFold(n, name) {
				return true
			}
		}
		return false
	}
	var own, other, names []string
	for _, s := range slots {
		switch {
		case s.Type != "physical" || s.Temporary:
			continue
		case isNode(s.Name) || (s.ActiveApplication != "" && isNode(s.ActiveApplication)):
			own = append(own, s.Name)
		default:
			other = append(other, s.String())
			names = append(names, s.Name)
		}
	}
	r := Passed(fmt.Sprintf("no physical slot on %s besides its standbys' own (%s)", node, describeList(own)))
	if len(other) > 0 {
		r.Observed = fmt.Sprintf("physical slots on %s of other consumers, to be created on the new primary after its promotion: %s (standbys' own: %s)",
			node, strings.Join(other, "; "), describeList(own))
	}
	r.Wanted = fmt.Sprintf("the physical slots on %s that are not its standbys' own, recorded to be created on the new primary", node)
	r.Values = map[string]any{"recreate": nonNil(names), "standby_slots": nonNil(own)}
	return r, names
}

// describeList renders names for a message, "none" for none.
func describeList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
