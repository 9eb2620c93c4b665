package topology

import (
	"context"
	"slices"

	"github.com/switchover/switchover/internal/claim"
	"github.com/switchover/switchover/internal/pg"
)

// nodeFact is one thing a node is asked, on the connection Inspect opened.
type nodeFact struct {
	name string
	on   Role // ask only a node of this role; "" asks every node
	read func(ctx context.Context, q pg.Querier, n *Node) error
}

// nodeFacts are the facts read from each node, in this order. The first
// decides whether the node answered at all. To add a fact: a field on Node
// and an entry here (and, if it needs other nodes' answers, one in
// clusterFacts).
var nodeFacts = []nodeFact{
	{name: "state", read: func(ctx context.Context, q pg.Querier, n *Node) error {
		s, err := pg.Inspect(ctx, q)
		if err != nil {
			return err
		}
		n.State = s
		n.Role, n.Timeline, n.Upstream, n.Streaming = s.Role, s.Timeline, s.Upstream, s.Streaming
		n.Version, n.Major = s.Version, s.Major()
		n.ApplyDelaySeconds = s.ApplyDelay.Seconds()
		return nil
	}},
	{name: "system identifier", read: func(ctx context.Context, q pg.Querier, n *Node) (err error) {
		n.SystemID, err = pg.SystemIdentifier(ctx, q)
		return err
	}},
	{name: "replay delay", on: RoleStandby, read: func(ctx context.Context, q pg.Querier, n *Node) error {
		d, ok, err := pg.ReplayDelay(ctx, q)
		if ok {
			secs := d.Seconds()
			n.LagSeconds = &secs
		}
		return err
	}},
	{name: "synchronous_standby_names", read: func(ctx context.Context, q pg.Querier, n *Node) (err error) {
		n.SynchronousStandbyNames, err = pg.SynchronousStandbyNames(ctx, q)
		return err
	}},
	{name: "wal senders", read: func(ctx context.Context, q pg.Querier, n *Node) error {
		ws, err := pg.WALSenders(ctx, q)
		for _, w := range ws {
			s := Sender{App: w.App, State: w.State, SyncState: w.SyncState, SyncPriority: w.SyncPriority, Slot: w.SlotName}
			if w.ReplayLag != nil {
				secs := w.ReplayLag.Seconds()
				s.ReplayLagSeconds = &secs
			}
			n.Senders = append(n.Senders, s)
		}
		return err
	}},
	{name: "replication slots", read: func(ctx context.Context, q pg.Querier, n *Node) error {
		slots, err := pg.ReadReplicationSlots(ctx, q)
		for _, s := range slots {
			sl := Slot{Name: s.Name, Type: s.Type, Plugin: s.Plugin, Active: s.Active, position: s.Position()}
			if s.RestartLSN > 0 {
				sl.RestartLSN = s.RestartLSN.String()
			}
			if s.ConfirmedFlushLSN > 0 {
				sl.ConfirmedFlushLSN = s.ConfirmedFlushLSN.String()
			}
			n.Slots = append(n.Slots, sl)
		}
		return err
	}},
	{name: "run claim", read: func(ctx context.Context, q pg.Querier, n *Node) (err error) {
		n.claim, err = claim.Read(ctx, q, n.cluster)
		return err
	}},
	{name: "connection slots", on: RolePrimary, read: func(ctx context.Context, q pg.Querier, n *Node) error {
		s, err := pg.ConnectionSlots(ctx, q)
		if err == nil {
			free := s.Free()
			n.FreeSlots = &free
			n.MaxConnections = s.Max
		}
		return err
	}},
	{name: "blocking sessions", read: func(ctx context.Context, q pg.Querier, n *Node) error {
		sessions, err := pg.BlockingSessions(ctx, q, DefaultStatementTimeout)
		n.Blocking = len(sessions)
		return err
	}},
}

// clusterFacts are worked out from every node's answer, in this order.
var clusterFacts = []func(ctx context.Context, t *Topology, b *addressBook){
	primaries,
	upstreams,
	lag,
	syncStates,
	slotsBehind,
	claims,
	routes,
	patroniView,
	pgafView,
	routerView,
}

// primaries lists the nodes that answered as a primary.
func primaries(_ context.Context, t *Topology, _ *addressBook) {
	for _, n := range t.Nodes {
		if n.Reachable() && n.Role == RolePrimary {
			t.Primaries = append(t.Primaries, n.Name)
		}
	}
}

// primaryLSN is the furthest current LSN of the nodes that answered as a
// primary, 0 for none.
func (t *Topology) primaryLSN() pg.LSN {
	var lsn pg.LSN
	for _, n := range t.Nodes {
		if n.Reachable() && n.Role == RolePrimary {
			lsn = max(lsn, n.State.CurrentLSN)
		}
	}
	return lsn
}

// upstreams names the node each standby streams from.
func upstreams(ctx context.Context, t *Topology, b *addressBook) {
	for _, n := range t.Nodes {
		if n.Reachable() && n.Role == RoleStandby {
			n.UpstreamNode = b.nodeAt(ctx, n.Upstream)
		}
	}
}

// lag is each standby's replay behind the primary's current LSN.
func lag(_ context.Context, t *Topology, _ *addressBook) {
	p := t.primaryLSN()
	if p == 0 {
		return
	}
	for _, n := range t.Nodes {
		if n.Reachable() && n.Role == RoleStandby {
			l := int64(p) - int64(n.State.ReplayLSN)
			n.LagBytes = &l
		}
	}
}

// syncStates finds each standby among its upstream's WAL senders, by its
// name as application_name or by the slot it streams through, and takes
// how the upstream counts it.
func syncStates(_ context.Context, t *Topology, _ *addressBook) {
	for _, n := range t.Nodes {
		if !n.Reachable() || n.Role != RoleStandby || n.UpstreamNode == "" {
			continue
		}
		up := t.Node(n.UpstreamNode)
		if up == nil {
			continue
		}
		i := slices.IndexFunc(up.Senders, func(s Sender) bool { return s.App == n.Name })
		if i < 0 && n.State.SlotName != "" {
			i = slices.IndexFunc(up.Senders, func(s Sender) bool { return s.Slot == n.State.SlotName })
		}
		if i < 0 {
			continue
		}
		s := &up.Senders[i]
		s.Node = n.Name
		n.SyncState = s.SyncState
		prio := s.SyncPriority
		n.SyncPriority = &prio
		n.ReplayLagSeconds = s.ReplayLagSeconds
	}
}

// slotsBehind is how far each slot's consumer is behind the primary.
func slotsBehind(_ context.Context, t *Topology, _ *addressBook) {
	p := t.primaryLSN()
	if p == 0 {
		return
	}
	for _, n := range t.Nodes {
		for i := range n.Slots {
			if s := &n.Slots[i]; s.position > 0 {
				b := int64(p) - int64(s.position)
				s.BehindBytes = &b
			}
		}
	}
}

// claims gathers the run claim the nodes keep: the first holder in
// inventory order, with every node that shows that run's claim.
func claims(_ context.Context, t *Topology, _ *addressBook) {
	for _, n := range t.Nodes {
		if n.claim == nil {
			continue
		}
		if t.Claim == nil {
			t.Claim = &RunClaim{Holder: *n.claim}
		}
		if n.claim.RunID == t.Claim.RunID {
			t.Claim.SeenOn = append(t.Claim.SeenOn, n.Name)
		}
	}
}
