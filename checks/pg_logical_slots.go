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
		Kind: "pg.logical_slots",
		Doc:  "the primary has no logical replication slot that the switchover would lose (PostgreSQL 17+: failover slots synchronised on the candidate are kept), unless the runbook allows losing them",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "inventory node that is the primary now; its pg_replication_slots is read"},
			{Name: "candidate", Type: params.Node, Required: true,
				Doc: "inventory node about to be promoted; on PostgreSQL 17+ its synchronised failover slots are read"},
			{Name: "kept_on_candidate", Type: params.Bool, Default: "false",
				Doc: "a logical slot of the same name on the candidate counts as kept, as with Patroni's permanent slots, which Patroni copies to its replicas"},
			{Name: "allow_loss", Type: params.Bool, Default: "false",
				Doc: "pass anyway, listing the slots that will be lost (their consumers must be re-created by hand)"},
		},
		New: func(v params.Values) (Check, error) {
			c := &LogicalSlots{Node: v.Node("node"), Candidate: v.Node("candidate"),
				AllowLoss: v.Bool("allow_loss"), KeptOnCandidate: v.Bool("kept_on_candidate")}
			switch {
			case c.Node == "":
				return nil, errors.New("node is empty")
			case c.Candidate == "":
				return nil, errors.New("candidate is empty")
			case c.Node == c.Candidate:
				return nil, fmt.Errorf("node and candidate are both %q", c.Node)
			}
			return c, nil
		},
	})
}

// LogicalSlots passes when no logical replication slot on the primary
// would be lost by the switchover. A logical slot lives on its primary
// only: PostgreSQL up to 16 cannot carry it to a standby, so after the
// promotion its consumer (a subscription, a CDC pipeline) finds no slot and
// has lost its place in the change stream. On PostgreSQL 17 and later a
// slot created with failover = true and synchronised on the candidate
// (synced) survives, and passes; so does, with KeptOnCandidate, a slot the
// cluster manager keeps on the candidate itself (Patroni's permanent
// slots). AllowLoss lets the run go on, listing
// what will be lost (fact slots.logical_lost).
type LogicalSlots struct {
	Node      string
	Candidate string
	AllowLoss bool
	// KeptOnCandidate counts a logical slot of the same name on the
	// candidate as kept.
	KeptOnCandidate bool
}

var _ Check = (*LogicalSlots)(nil)

// logicalSlotsSQL is what the check reads, on the primary and (17+) on the
// candidate.
const logicalSlotsSQL = "SELECT slot_name, plugin, database, active, confirmed_flush_lsn, pg_current_wal_lsn() - confirmed_flush_lsn AS lag FROM pg_replication_slots WHERE slot_type = 'logical'"

// Describe implements Check.
func (c *LogicalSlots) Describe(*cluster.Target) string {
	d := fmt.Sprintf("on %s: %s; on PostgreSQL 17+ also failover, and synced on %s; every logical slot would be lost by the switch", c.Node, logicalSlotsSQL, c.Candidate)
	if c.KeptOnCandidate {
		d = fmt.Sprintf("on %s: %s; one that %s has too (the cluster manager keeps it there) is kept; every other would be lost by the switch", c.Node, logicalSlotsSQL, c.Candidate)
	}
	if c.AllowLoss {
		return d + " (allowed: they are listed)"
	}
	return d + " (refused)"
}

// Run implements Check.
func (c *LogicalSlots) Run(ctx context.Context, t *cluster.Target) Result {
	return withWanted(c.run(ctx, t), c, t)
}

func (c *LogicalSlots) run(ctx context.Context, t *cluster.Target) Result {
	slots, err := readSlots(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	var logical []pg.ReplicationSlot
	failover := false
	for _, s := range slots {
		if s.Type == "logical" {
			logical = append(logical, s)
			failover = failover || s.Failover
		}
	}
	var onCandidate []pg.ReplicationSlot
	if failover || (c.KeptOnCandidate && len(logical) > 0) {
		if onCandidate, err = readSlots(ctx, t, c.Candidate); err != nil {
			return Errored(err)
		}
	}
	r := c.judge(logical, onCandidate)
	if lost, ok := r.Values["lost"].([]string); ok && r.Status == Pass && len(lost) > 0 && t != nil && t.Facts != nil {
		t.Facts.Set(cluster.LogicalSlotsLostFact, strings.Join(lost, "\n"))
	}
	return r
}

// readSlots reads a node's pg_replication_slots.
func readSlots(ctx context.Context, t *cluster.Target, node string) ([]pg.ReplicationSlot, error) {
	conn, err := connectNode(ctx, t, node)
	if err != nil {
		return nil, err
	}
	defer closeConn(conn)
	slots, err := pg.ReadReplicationSlots(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("read pg_replication_slots on %s: %s", node, queryProblem(ctx, err))
	}
	return slots, nil
}

// judge sorts the primary's logical slots into kept (failover slots
// synchronised on the candidate) and lost.
func (c *LogicalSlots) judge(logical, onCandidate []pg.ReplicationSlot) Result {
	synced := map[string]bool{}
	for _, s := range onCandidate {
		if s.Type == "logical" && (s.Synced || c.KeptOnCandidate) {
			synced[s.Name] = true
		}
	}
	var kept, lost []string
	for _, s := range logical {
		if (s.Failover || c.KeptOnCandidate) && synced[s.Name] {
			kept = append(kept, s.String())
		} else {
			lost = append(lost, s.String())
		}
	}
	values := map[string]any{"kept": nonNil(kept), "lost": nonNil(lost)}
	wanted := fmt.Sprintf("no logical replication slot on %s that the switch would lose", c.Node)
	if len(logical) == 0 {
		r := Passed(fmt.Sprintf("no logical replication slot on %s", c.Node))
		r.Wanted, r.Values = wanted, values
		return r
	}
	seen := ""
	if len(kept) > 0 {
		seen = fmt.Sprintf("logical slots that %s has too, kept: %s", c.Candidate, strings.Join(kept, "; "))
	}
	if len(lost) == 0 {
		r := Passed(seen)
		r.Wanted, r.Values = wanted, values
		return r
	}
	if seen != "" {
		seen += "; "
	}
	seen += fmt.Sprintf("logical slots on %s that %s would not have after its promotion: %s", c.Node, c.Candidate, strings.Join(lost, "; "))
	why := "PostgreSQL before 17 cannot move a logical slot to a standby, so its consumer would lose its place in the change stream; on PostgreSQL 17+ a slot created with failover = true and synchronised on the candidate (sync_replication_slots = on) passes"
	if c.AllowLoss {
		r := Passed(seen + ": allowed to be lost (allow_loss); their consumers must be set up again on the new primary")
		r.Wanted, r.Values = wanted, values
		r.Detail = why
		return r
	}
	r := Failed(seen+": "+why, wanted+", or the runbook's allow_logical_slot_loss: true to lose them knowingly")
	r.Values = values
	return r
}
