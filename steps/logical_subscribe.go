package steps

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/logical"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "logical.subscribe",
		Doc:  "subscribes a node to another's publication (CREATE SUBSCRIPTION, with a slot made on the publisher); a disabled subscription of that name to the same publisher, the way back's, has its slot moved to the publisher's current position first and is enabled, so that no change is applied twice",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "inventory node that subscribes (green's primary; blue's for the reverse direction)"},
			{Name: "upstream", Type: params.Node, Required: true, Doc: "inventory node that publishes; the connection string is its inventory conninfo without a password (the subscriber's OS user supplies it from its ~/.pgpass or passfile)"},
			{Name: "publication", Type: params.String, Required: true, Doc: "the publication on upstream"},
			{Name: "subscription", Type: params.String, Required: true, Doc: "the subscription's name, and its slot's on upstream"},
			{Name: "copy_data", Type: params.Bool, Default: "true", Doc: "copy the tables' rows first (the initial copy, blue to green); false for a direction whose rows are there already (the reverse subscription at the cutover): then only changes from the slot's creation on are applied"},
			{Name: "synchronous_commit", Type: params.String, Enum: []string{"off", "local", "remote_write", "on", "remote_apply"},
				Doc: "the apply worker's synchronous_commit; empty leaves PostgreSQL's (off) on a new subscription and an existing one as it is. With off the subscriber confirms what it applied only once its WAL writer has flushed it (wal_writer_delay, 200ms by default), which logical.wait_applied waits for inside the held window: give local before the cutover (the apply worker restarts to take it); off copies and catches up faster"},
		},
		New: func(v params.Values) (Step, error) {
			s := &LogicalSubscribe{Node: v.Node("node"), Upstream: v.Node("upstream"), Publication: v.String("publication"),
				Subscription: v.String("subscription"), CopyData: v.Bool("copy_data"), SynchronousCommit: v.String("synchronous_commit")}
			if err := params.DistinctNodes(s.Node, "node", s.Upstream, "upstream"); err != nil {
				return nil, err
			}
			if err := needName("publication", s.Publication); err != nil {
				return nil, err
			}
			return s, needName("subscription", s.Subscription)
		},
	})
}

// LogicalSubscribe is a step that makes a node follow another's
// publication. A new subscription gets a slot of its name on the
// publisher, created where the publisher's WAL is now: with copy_data the
// rows are copied first, each table from a snapshot consistent with its
// slot; without, the subscriber must have the rows already (the reverse
// direction after a cutover, when both sides are equal).
//
// The way back finds the subscription of the first direction there,
// disabled at the cutover. Its slot still stands where the cutover left
// it, and the publisher has since applied the other side's changes: fed
// to the subscriber, they would be applied twice. So the slot is first
// moved to the publisher's current position (pg_replication_slot_advance,
// or made anew there if it is gone), then the subscription is enabled. A
// subscription of that name to another server, or without the
// publication, is refused.
type LogicalSubscribe struct {
	Node, Upstream, Publication, Subscription string
	CopyData                                  bool
	SynchronousCommit                         string // "" leaves it
}

var _ Step = (*LogicalSubscribe)(nil)

// conninfo is the connection string the subscription is given: the
// upstream's inventory conninfo resolved to server, user, database and
// TLS settings, application_name the subscription's, never a password.
func (s *LogicalSubscribe) conninfo(t *cluster.Target) (conninfo.Resolved, error) {
	r, err := nodeConninfo(t, s.Upstream)
	if err != nil {
		return r, err
	}
	r.ApplicationName = s.Subscription
	return r, nil
}

// Describe implements Step.
func (s *LogicalSubscribe) Describe(t *cluster.Target) Effect {
	ci := fmt.Sprintf("<conninfo of %s, no password>", s.Upstream)
	if r, err := s.conninfo(t); err == nil {
		ci = r.String()
	}
	create := logical.CreateSubscriptionSQL(logical.SubscribeOptions{Name: s.Subscription, Conninfo: ci, Publication: s.Publication, CopyData: s.CopyData, SynchronousCommit: s.SynchronousCommit, Version: 140000})
	alter := ""
	if s.SynchronousCommit != "" {
		alter = fmt.Sprintf("; when it exists with another synchronous_commit: ALTER SUBSCRIPTION %s SET (synchronous_commit = '%s')", logical.Ident(s.Subscription), s.SynchronousCommit)
	}
	changes := fmt.Sprintf("%s applies every change committed on %s from now on", s.Node, s.Upstream)
	if s.CopyData {
		changes = fmt.Sprintf("%s copies every published table's rows from %s, then applies every change committed there", s.Node, s.Upstream)
	}
	return Effect{Node: nodeWhere(t, s.Node),
		Command: fmt.Sprintf("when missing: %s%s; when it exists disabled: on %s %s for its slot, then on %s ALTER SUBSCRIPTION %s ENABLE", create, alter, s.Upstream, logical.AdvanceSlotSQL, s.Node, logical.Ident(s.Subscription)),
		Changes: changes + "; a slot on " + s.Upstream + " keeps its WAL until the subscription confirms it"}
}

// Apply implements Step.
func (s *LogicalSubscribe) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error {
		return fmt.Errorf("subscribe %q to %q: %w", s.Node, s.Upstream, err)
	}
	up, err := s.conninfo(t)
	if err != nil {
		return fail(err)
	}
	conn, err := logicalConn(ctx, t, s.Node)
	if err != nil {
		return fail(err)
	}
	defer closeConn(conn)
	sub, err := logical.ReadSubscription(ctx, conn, s.Subscription)
	if err != nil {
		return fail(err)
	}
	if sub == nil {
		var version int
		if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
			return fail(err)
		}
		start := time.Now()
		if err := logical.Subscribe(ctx, conn, logical.SubscribeOptions{Name: s.Subscription, Conninfo: up.String(),
			Publication: s.Publication, CopyData: s.CopyData, SynchronousCommit: s.SynchronousCommit, Version: version}); err != nil {
			return fail(err)
		}
		what := "changes from now on"
		if s.CopyData {
			what = "a copy of every table, then the changes"
		}
		t.Print(fmt.Sprintf("subscription %s created on %s in %s, slot %s on %s: %s", s.Subscription, s.Node, since(start), s.Subscription, s.Upstream, what))
		return nil
	}
	addr, db, err := sub.Upstream()
	if err != nil {
		return fail(err)
	}
	if addr != up.Address() || db != up.Database {
		return fail(fmt.Errorf("subscription %s exists on %s and subscribes to %s database %s, not %s's (%s database %s); nothing done", s.Subscription, s.Node, addr, db, s.Upstream, up.Address(), up.Database))
	}
	if !slices.Contains(sub.Publications, s.Publication) {
		return fail(fmt.Errorf("subscription %s exists on %s with publications %v, not %s; nothing done", s.Subscription, s.Node, sub.Publications, s.Publication))
	}
	if s.SynchronousCommit != "" {
		was, err := logical.SynchronousCommit(ctx, conn, s.Subscription)
		if err != nil {
			return fail(err)
		}
		if was != s.SynchronousCommit {
			if err := logical.SetSynchronousCommit(ctx, conn, s.Subscription, s.SynchronousCommit); err != nil {
				return fail(err)
			}
			t.Print(fmt.Sprintf("subscription %s on %s: synchronous_commit %s, was %s", s.Subscription, s.Node, s.SynchronousCommit, was))
			if sub.Enabled {
				return nil
			}
		}
	}
	if sub.Enabled {
		t.Unchanged(fmt.Sprintf("subscription %s on %s is there and enabled, from %s", s.Subscription, s.Node, s.Upstream))
		return nil
	}
	if sub.Slot == "" {
		return fail(fmt.Errorf("subscription %s on %s has no slot (slot_name = NONE): it cannot be enabled; drop it (logical.cleanup) and subscribe again", s.Subscription, s.Node))
	}
	if err := logical.WaitWorkerGone(ctx, conn, s.Subscription, 10*time.Millisecond); err != nil {
		return fail(err)
	}
	upConn, err := logicalConn(ctx, t, s.Upstream)
	if err != nil {
		return fail(err)
	}
	defer closeConn(upConn)
	at, err := logical.AdvanceSlot(ctx, upConn, sub.Slot)
	if err != nil {
		return fail(fmt.Errorf("%w; subscription %s stays disabled", err, s.Subscription))
	}
	t.Print(fmt.Sprintf("slot %s on %s moved to %s, %s's current position: what %s wrote before is not sent again", sub.Slot, s.Upstream, at, s.Upstream, s.Upstream))
	if _, err := logical.SetEnabled(ctx, conn, s.Subscription, true); err != nil {
		return fail(err)
	}
	t.Print(fmt.Sprintf("subscription %s on %s enabled again, from %s", s.Subscription, s.Node, s.Upstream))
	return nil
}
