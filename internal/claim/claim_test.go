package claim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/transport"
)

func TestMain(m *testing.M) { sandboxtest.Main(m) }

func holder(id string) Holder {
	return Holder{RunID: id, User: "dba", Host: "bastion-" + id, PID: 4242, Since: time.Now().UTC().Truncate(time.Second)}
}

// waitClaimOn polls node until its claim is want ("" for none).
func waitClaimOn(t *testing.T, s *Store, node, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		nc := s.readNode(context.Background(), node)
		got := ""
		if nc.holder != nil {
			got = nc.holder.RunID
		}
		if nc.err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("claim on %s: got %q (err %v), want %q", node, got, nc.err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClaimIsHeldInTheCluster(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	ctx := context.Background()
	s := &Store{Cluster: sb.Cluster()}

	if err := s.Check(ctx, "a"); err != nil {
		t.Fatalf("check on a fresh cluster: %v", err)
	}
	if err := s.Take(ctx, holder("a"), "", false); err != nil {
		t.Fatalf("take a: %v", err)
	}
	// The row replicates: every standby shows it, as a second operator's
	// run asking any node would see it.
	for _, n := range []string{"pg2", "pg3"} {
		waitClaimOn(t, s, n, "a")
	}

	err := s.Take(ctx, holder("b"), "", false)
	var he *HeldError
	if !errors.As(err, &he) {
		t.Fatalf("second run: got %v, want a HeldError", err)
	}
	if he.Holder.RunID != "a" || he.Holder.Host != "bastion-a" || he.Holder.PID != 4242 {
		t.Errorf("holder named: %+v", he.Holder)
	}
	if err := s.Check(ctx, "b"); !errors.As(err, &he) {
		t.Errorf("check by another run: got %v, want a HeldError", err)
	}
	if err := s.Check(ctx, "a"); err != nil {
		t.Errorf("check by the holder: %v", err)
	}
	// The holder resuming keeps its claim; a new run id resuming it too.
	if err := s.Take(ctx, holder("a"), "", false); err != nil {
		t.Errorf("the holder again: %v", err)
	}
	if err := s.Take(ctx, holder("a2"), "a", false); err != nil {
		t.Errorf("resume of a: %v", err)
	}
	// Take over, then release: the next run finds nothing.
	if err := s.Take(ctx, holder("b"), "", true); err != nil {
		t.Fatalf("take over: %v", err)
	}
	if err := s.Release(ctx, "a"); err != nil {
		t.Fatalf("release by a run that no longer holds it: %v", err)
	}
	if err := s.Check(ctx, "c"); !errors.As(err, &he) || he.Holder.RunID != "b" {
		t.Fatalf("a release by another run must leave b's claim: %v", err)
	}
	if err := s.Release(ctx, "b"); err != nil {
		t.Fatalf("release: %v", err)
	}
	for _, n := range []string{"pg1", "pg2", "pg3"} {
		waitClaimOn(t, s, n, "")
	}
	if err := s.Take(ctx, holder("c"), "", false); err != nil {
		t.Fatalf("take after release: %v", err)
	}
}

func TestClaimTwoRunsAtOnce(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	ctx := context.Background()
	s := &Store{Cluster: sb.Cluster()}
	for round := 0; round < 5; round++ {
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				errs[i] = s.Take(ctx, holder(fmt.Sprintf("r%d-%d", round, i)), "", false)
			}(i)
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			var he *HeldError
			switch {
			case err == nil:
				won++
			case errors.As(err, &he):
			default:
				t.Errorf("round %d run %d: %v", round, i, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d runs claimed the cluster at once, want exactly 1 (%v)", round, won, errs)
		}
		// Clear the round's winner.
		conn, err := pg.Connect(ctx, sb.Cluster().Nodes["pg1"].Conninfo, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "DELETE FROM "+Table); err != nil {
			t.Fatal(err)
		}
		pg.Release(conn)
	}
}

func TestClaimRefusesWithoutAPrimary(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	ctx := context.Background()
	s := &Store{Cluster: sb.Cluster()}
	if err := s.Take(ctx, holder("a"), "", false); err != nil {
		t.Fatal(err)
	}
	waitClaimOn(t, s, "pg2", "a")
	stopNode(t, sb, "pg1")
	// Mid-switchover, a resume of the holder keeps the claim the standby
	// shows; another run is refused, naming the holder.
	if err := s.Take(ctx, holder("a"), "a", false); err != nil {
		t.Errorf("resume with no primary: %v", err)
	}
	var he *HeldError
	if err := s.Take(ctx, holder("b"), "", false); !errors.As(err, &he) || he.Node != "pg2" {
		t.Errorf("another run with the primary stopped: got %v, want the claim seen on pg2", err)
	}
}

func stopNode(t *testing.T, sb *sandbox.Sandbox, name string) {
	t.Helper()
	n, ok := sb.Node(name)
	if !ok {
		t.Fatalf("no node %s", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ex := transport.Local{User: sb.RunAs}
	out, err := ex.Run(ctx, fmt.Sprintf("%s/pg_ctl stop -D %s -m fast -w", sb.BinDir, n.DataDir))
	if err != nil || out.ExitCode != 0 {
		t.Fatalf("stop %s: %v %s", name, err, out.Combined())
	}
}

// With Patroni managing the cluster, the claim is copied into its dynamic
// configuration (its DCS), where Patroni's members and tools see it, and
// removed with the row.
func TestClaimInPatronisDCS(t *testing.T) {
	sb := sandboxtest.NewPatroni(t, 1)
	ctx := context.Background()
	c := sb.Cluster()
	s := &Store{Cluster: c}
	pc, err := patroni.New(c.Manager)
	if err != nil {
		t.Fatal(err)
	}
	dcsClaim := func() any {
		t.Helper()
		cfg, err := pc.Config(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Raw[patroni.ClaimKey]
	}
	// Each member answers /config from what it last read of the DCS, on
	// its own loop: poll until the member asked has seen the change.
	waitDCS := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			v := dcsClaim()
			got, _ := v.(map[string]any)
			if (want == "" && v == nil) || (want != "" && got["run_id"] == want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Patroni's /config %s = %v, want run %q's claim", patroni.ClaimKey, v, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := s.Take(ctx, holder("a"), "", false); err != nil {
		t.Fatalf("take: %v", err)
	}
	waitDCS("a")
	var he *HeldError
	if err := s.Take(ctx, holder("b"), "", false); !errors.As(err, &he) || he.Holder.RunID != "a" {
		t.Fatalf("a second run: got %v, want refused naming run a", err)
	}
	if err := s.Release(ctx, "a"); err != nil {
		t.Fatalf("release: %v", err)
	}
	// At once, whatever the members' copies of the configuration say: the
	// row in PostgreSQL decides.
	if err := s.Take(ctx, holder("b"), "", false); err != nil {
		t.Fatalf("take after release: %v", err)
	}
	waitDCS("b")
	if err := s.Release(ctx, "b"); err != nil {
		t.Fatal(err)
	}
}

// Of two primaries, one read-only by default (an old primary whose fence
// lost its synchronous_standby_names to its manager) is not a second one:
// the claim goes on the other. Two that take writes are refused.
func TestClaimBesideAReadOnlyOldPrimary(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	ctx := context.Background()
	s := &Store{Cluster: sb.Cluster()}
	sandboxtest.Exec(t, sb, "pg2", "SELECT pg_promote()")
	sandboxtest.EventuallyQuery(t, sb, "pg2", "SELECT pg_is_in_recovery()::text", "false")
	if err := s.Take(ctx, holder("a"), "", false); err == nil || !strings.Contains(err.Error(), "more than one node takes writes (pg1, pg2)") {
		t.Fatalf("two primaries taking writes: %v, want refused naming both", err)
	}
	sandboxtest.Exec(t, sb, "pg1", "ALTER SYSTEM SET default_transaction_read_only = on", "SELECT pg_reload_conf()")
	sandboxtest.EventuallyQuery(t, sb, "pg1", "SELECT reset_val FROM pg_settings WHERE name = 'default_transaction_read_only'", "on")
	if err := s.Take(ctx, holder("a"), "", false); err != nil {
		t.Fatalf("beside an old primary read-only by default: %v", err)
	}
	waitClaimOn(t, s, "pg2", "a")
}

// A fleet's record that it switched the cluster is kept on the primary,
// replicates to every standby (any copy counts), and the first record of
// a fleet stays.
func TestFleetDoneRecord(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	ctx := context.Background()
	s := &Store{Cluster: sb.Cluster()}
	if d, err := s.FleetDone(ctx, "monthly"); err != nil || d != nil {
		t.Fatalf("on a fresh cluster: %+v, %v; want none", d, err)
	}
	first := Done{Fleet: "monthly", RunID: "a", User: "dba", Host: "bastion-a", At: time.Now().UTC().Truncate(time.Second)}
	if err := s.MarkFleetDone(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := first
	second.RunID, second.Host = "b", "bastion-b"
	if err := s.MarkFleetDone(ctx, second); err != nil {
		t.Fatal(err)
	}
	if d, err := s.FleetDone(ctx, "monthly"); err != nil || d == nil || d.RunID != "a" || d.Host != "bastion-a" || !d.At.Equal(first.At) {
		t.Fatalf("record: %+v, %v; want the first, run a", d, err)
	}
	if d, err := s.FleetDone(ctx, "monthly@2027-01-12T22:00:00Z"); err != nil || d != nil {
		t.Errorf("another fleet's record: %+v, %v; want none", d, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := s.readDone(ctx, "pg2", "monthly")
		if err == nil && d != nil && d.RunID == "a" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby's copy: %+v, %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
