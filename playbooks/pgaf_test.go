package playbooks_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	clustertopology "github.com/switchover/switchover/internal/topology"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/steps"
)

const pgafSwitchover = "pg-auto-failover-switchover"

// pgafAgrees fails the test unless the monitor shows every node settled
// with primary the primary, and pgaf.primary (the monitor's view held
// against PostgreSQL's on every node) passes.
func pgafAgrees(t *testing.T, sb *sandbox.Sandbox, primary string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := sb.PgafView(ctx)
	if err != nil {
		t.Fatalf("the monitor's view: %v", err)
	}
	if why := v.Unsettled(); why != "" || v.Primary() != primary {
		t.Errorf("the monitor shows %s (unsettled: %q), want it settled with %s the primary", v, why, primary)
	}
	top := clustertopology.Inspect(ctx, sb.Cluster(), clustertopology.Options{})
	switch av := top.Pgaf; {
	case av == nil || av.Error != "":
		t.Errorf("status has no monitor's view: %+v", av)
	case av.Primary != primary || av.Unsettled != "" || len(av.Others) > 0:
		t.Errorf("status: the monitor's view %+v, want %s the primary, settled, no node outside the inventory", *av, primary)
	}
	for _, n := range top.Nodes {
		if n.Disagrees != "" || n.Pgaf == nil {
			t.Errorf("status: %s: the monitor's state %v, disagrees %q; want a state and no disagreement", n.Name, n.Pgaf, n.Disagrees)
		}
	}
	tg := &cluster.Target{Cluster: sb.Cluster(), Facts: &cluster.Facts{}}
	if r := (&checks.PgafPrimary{Node: primary}).Run(ctx, tg); r.Status != checks.Pass {
		t.Errorf("pgaf.primary %s: %s: %s\n%s", primary, r.Status, r.Observed, r.Detail)
	}
}

// A pg_auto_failover switchover there and back, pg1 -> pg2 -> pg1, through
// the playbook with the canary: no acknowledged commit lost either way; the
// monitor settled after each with the candidate the primary and PostgreSQL
// agreeing; the old primary streams from the new one; writes through
// PgBouncer land on the new primary. Then a run that names the wrong
// primary stops at preflight with nothing done.
func TestPgafSwitchoverThereAndBack(t *testing.T) {
	sb := sandboxtest.NewPgaf(t, 1)
	sandboxtest.LogPgafEventsOnFailure(t, sb)
	ports := map[string]int{}
	for _, n := range sb.Nodes {
		ports[n.Name] = n.Port
	}
	if got := sandboxtest.WriteThroughPooler(t, sb); got != ports["pg1"] {
		t.Fatalf("before: the pooler wrote to port %d, want pg1 (%d)", got, ports["pg1"])
	}
	for _, d := range [][2]string{{"pg1", "pg2"}, {"pg2", "pg1"}} {
		from, to := d[0], d[1]
		ev, err := playbookstest.Run(t, sb, pgafSwitchover, false, "primary="+from, "candidate="+to)
		if err != nil {
			t.Fatalf("pg_auto_failover switchover %s -> %s: %v\n%s", from, to, err, ev.Text())
		}
		f := ev.Facts()
		if race := f[steps.PgafRaceFact]; race != "" {
			// pg_auto_failover's own race (see steps.PgafRaceFact): the
			// promotion waits for the monitor's demote timeout, the old
			// primary fenced, clients held in the pooler; the canary's
			// commits may time out meanwhile, none may be lost.
			t.Logf("%s -> %s: %s", from, to, race)
			if f["canary.lost"] != "0" {
				t.Errorf("%s -> %s: canary facts %v, want canary.lost 0", from, to, f)
			}
		} else if f["canary.lost"] != "0" || f["canary.errors"] != "0" {
			t.Errorf("%s -> %s: canary facts %v, want canary.lost 0 and canary.errors 0", from, to, f)
		}
		topo := sandboxtest.Topology(t, sb)
		wantStandby := fmt.Sprintf("%s=standby<%d/", from, ports[to])
		if !strings.Contains(topo, to+"=primary/") || strings.Count(topo, "=primary/") != 1 || !strings.Contains(topo, wantStandby) {
			t.Errorf("%s -> %s: topology %s, want %s the only primary and %s streaming from it (%s...)", from, to, topo, to, from, wantStandby)
		}
		pgafAgrees(t, sb, to)
		if got := sandboxtest.WriteThroughPooler(t, sb); got != ports[to] {
			t.Errorf("%s -> %s: the pooler wrote to port %d, want %s (%d)", from, to, got, to, ports[to])
		}
		t.Logf("%s -> %s: %s; canary window %s ms, %s acked", from, to, topo, f["canary.window_ms"], f["canary.acked"])
	}

	before := sandboxtest.Topology(t, sb)
	ev, err := playbookstest.Run(t, sb, pgafSwitchover, false, "primary=pg2", "candidate=pg1")
	if !errors.Is(err, runbook.ErrPrecondition) {
		t.Fatalf("run naming pg2 the primary: %v, want a precondition failure (exit 3)\n%s", err, ev.Text())
	}
	if got := ev.ActionsRun(); len(got) != 0 {
		t.Errorf("actions ran: %v, want none\n%s", got, ev.Text())
	}
	if !strings.Contains(ev.Text(), "pg1 is a primary") && !strings.Contains(ev.Text(), "names pg1 the primary, not pg2") {
		t.Errorf("the output does not say pg1 is the primary:\n%s", ev.Text())
	}
	if got := sandboxtest.Topology(t, sb); got != before {
		t.Errorf("topology changed: %s, was %s", got, before)
	}
}
