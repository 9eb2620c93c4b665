package steps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/pgaf"
)

func init() {
	Register(Definition{
		Kind:    "pgaf.unfence",
		Manager: cluster.ManagerPgAutoFailover,
		Doc:     "lifts the fence pgaf.perform_promotion put on the old primary (its postgresql.auto.conf as before), once it is a standby or the monitor has it the primary again with no promotion under way; nothing when this run fenced nothing",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the old primary the run fenced"},
		},
		New: func(v params.Values) (Step, error) {
			s := &PgafUnfence{Node: v.Node("node")}
			if s.Node == "" {
				return nil, errors.New("node is empty")
			}
			return s, nil
		},
	})
}

// FenceFact is the fact that records what a fence replaced on a node (see
// pg.Fence); "" once the fence is lifted.
func FenceFact(node string) string { return node + ".fence" }

// fenceWait bounds how long a server may take to reload its configuration
// for a fence to be set or lifted.
const fenceWait = 2 * time.Second

// fenceSQL describes the fence for plans.
const fenceSQL = "ALTER SYSTEM SET synchronous_standby_names = '" + pg.FenceSyncName + "'; ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf(); SELECT pg_terminate_backend(pid) of every other client session"

// fence fences the old primary before the monitor is asked, and journals
// what it replaced first.
func (s *PgafPromotion) fence(ctx context.Context, t *cluster.Target) error {
	n, err := t.Node(s.Primary)
	if err != nil {
		return err
	}
	conn, err := connectNode(ctx, t, n, remaining(ctx))
	if err != nil {
		return err
	}
	defer closeConn(conn)
	var prior pg.Fence
	if was, ok := t.Facts.Get(FenceFact(s.Primary)); ok && was != "" {
		prior, _ = pg.ParseFence(was)
	}
	f, err := pg.ReadFence(ctx, conn, prior)
	if err != nil {
		return err
	}
	t.Facts.Set(FenceFact(s.Primary), f.String())
	start := time.Now()
	ended, err := pg.ApplyFence(ctx, conn, fenceWait)
	if err != nil {
		return err
	}
	t.Print(fmt.Sprintf("%s fenced in %s: no commit there is acknowledged any more (synchronous_standby_names = '%s'), new transactions are read-only, %s ended",
		s.Primary, since(start), pg.FenceSyncName, plural(ended, "1 client session", fmt.Sprintf("%d client sessions", ended))))
	return nil
}

// refence fences the old primary again when its keeper has written its
// own synchronous_standby_names over the fence's: the keeper does so as it
// carries out the monitor's wait_primary (see raced), and from then on an
// explicit read-write transaction there could commit unreplicated. It says
// what it did, or "" when the fence holds or the node is a standby.
func (s *PgafPromotion) refence(ctx context.Context, t *cluster.Target) (string, error) {
	n, err := t.Node(s.Primary)
	if err != nil {
		return "", err
	}
	conn, err := connectNode(ctx, t, n, remaining(ctx))
	if err != nil {
		return "", err
	}
	defer closeConn(conn)
	var recovery bool
	var sync, ro string
	if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_setting('synchronous_standby_names'), current_setting('default_transaction_read_only')`).Scan(&recovery, &sync, &ro); err != nil {
		return "", err
	}
	if recovery || (sync == pg.FenceSyncName && ro == "on") {
		return "", nil
	}
	start := time.Now()
	ended, err := pg.ApplyFence(ctx, conn, fenceWait)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s's keeper had set synchronous_standby_names = '%s' and default_transaction_read_only = %s over the fence; fenced again in %s, %s ended",
		s.Primary, sync, ro, since(start), plural(ended, "1 client session", fmt.Sprintf("%d client sessions", ended))), nil
}

// refenceEvery is how often, at most, the step looks whether the old
// primary's keeper has written over the fence while the monitor has it in
// wait_primary.
const refenceEvery = 250 * time.Millisecond

// lift lifts the fence on the old primary when the monitor still has it
// the primary with no promotion under way (the promotion was refused, or
// never began), and says what it did; a fence it cannot lift safely stays,
// and it says why.
func (s *PgafPromotion) lift(ctx context.Context, t *cluster.Target, c *pgaf.Client) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	u := &PgafUnfence{Node: s.Primary}
	lifted, why, err := u.liftIfSafe(ctx, t, c)
	switch {
	case err != nil:
		return fmt.Sprintf("%s stays fenced (%v): pgaf.unfence lifts it", s.Primary, err)
	case lifted:
		return fmt.Sprintf("the fence on %s is lifted (%s)", s.Primary, why)
	}
	return why
}

// anyPromoting says which node the monitor is promoting, or "".
func anyPromoting(v *pgaf.View) string {
	for _, n := range v.Nodes {
		if why := promoting(v, n.Name); why != "" && !n.Goal.IsPrimary() {
			return why
		}
	}
	return ""
}

// PgafUnfence is a step that lifts the fence pgaf.perform_promotion put on
// the old primary: the settings it replaced in postgresql.auto.conf are
// put back (a setting someone changed since, the keeper say, is left as
// it is). It lifts it only where no write can be lost by it: on a standby,
// or on a node the monitor has the primary again, settled, with no
// promotion under way; elsewhere the fence stays and the step fails
// saying why.
type PgafUnfence struct {
	Node string
}

var _ Step = (*PgafUnfence)(nil)

// Describe implements Step.
func (s *PgafUnfence) Describe(t *cluster.Target) Effect {
	return Effect{Node: nodeWhere(t, s.Node),
		Command: fmt.Sprintf("when fact %s records a fence and %s is a standby, or the monitor assigns it a primary's state with no promotion under way: ALTER SYSTEM SET (or RESET) synchronous_standby_names and default_transaction_read_only as recorded, where they still hold the fence's values; SELECT pg_reload_conf()", FenceFact(s.Node), s.Node),
		Changes: fmt.Sprintf("%s takes commits again as before the run (as a primary) or will when promoted (as a standby); nothing when the run fenced nothing", s.Node)}
}

// Apply implements Step.
func (s *PgafUnfence) Apply(ctx context.Context, t *cluster.Target) error {
	if f, ok := t.Facts.Get(FenceFact(s.Node)); !ok || f == "" {
		t.Unchanged(fmt.Sprintf("this run has no fence on %s to lift", s.Node))
		return nil
	}
	c, err := pgaf.ForTarget(t)
	if err != nil {
		return fmt.Errorf("lift the fence on %q: %w", s.Node, err)
	}
	lifted, why, err := s.liftIfSafe(ctx, t, c)
	switch {
	case err != nil:
		return fmt.Errorf("lift the fence on %q: %w", s.Node, err)
	case !lifted:
		t.Unchanged(why)
		return nil
	}
	t.Print(fmt.Sprintf("the fence on %s is lifted (%s)", s.Node, why))
	return nil
}

// liftIfSafe lifts the fence on s.Node when that loses no write, and says
// why it did; a fence already gone is not an error.
func (s *PgafUnfence) liftIfSafe(ctx context.Context, t *cluster.Target, c *pgaf.Client) (bool, string, error) {
	was, ok := t.Facts.Get(FenceFact(s.Node))
	if !ok || was == "" {
		return false, fmt.Sprintf("no fence on %s to lift", s.Node), nil
	}
	f, err := pg.ParseFence(was)
	if err != nil {
		return false, "", err
	}
	n, err := t.Node(s.Node)
	if err != nil {
		return false, "", err
	}
	conn, err := connectNode(ctx, t, n, remaining(ctx))
	if err != nil {
		return false, "", err
	}
	defer closeConn(conn)
	var recovery bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovery); err != nil {
		return false, "", err
	}
	why := s.Node + " is a standby"
	if !recovery {
		v, err := c.View(ctx)
		if err != nil {
			return false, "", fmt.Errorf("%s is out of recovery and the monitor cannot be asked whether it is still the primary: %w", s.Node, err)
		}
		node, found := v.Node(s.Node)
		if !found || !node.Goal.IsPrimary() || !node.Settled() || v.Primary() != s.Node || len(v.Primaries()) != 1 || anyPromoting(v) != "" {
			return false, "", fmt.Errorf("the monitor does not have %s the settled primary with nothing under way (%s): lifting the fence could let it acknowledge commits another node never receives", s.Node, v)
		}
		if n, err := c.PromotionsInFlight(ctx); err != nil || n > 0 {
			if err == nil {
				err = fmt.Errorf("%d promotion requests are still in flight at the monitor", n)
			}
			return false, "", fmt.Errorf("%w: one may yet promote another node, so %s stays fenced", err, s.Node)
		}
		why = fmt.Sprintf("the monitor has %s the primary, with nothing under way or in flight", s.Node)
	}
	changed, err := pg.LiftFence(ctx, conn, f, fenceWait)
	if err != nil {
		return false, "", err
	}
	t.Facts.Set(FenceFact(s.Node), "")
	if !changed {
		return false, fmt.Sprintf("%s holds none of the fence's settings any more (%s): nothing to lift", s.Node, why), nil
	}
	return true, why, nil
}
