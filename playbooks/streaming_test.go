package playbooks_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks/playbookstest"
)

// TestMain runs the tests and brings down the sandbox they share, if one
// was brought up (sandboxtest.Shared).
func TestMain(m *testing.M) { sandboxtest.Main(m) }

// A switchover pg1 -> pg2 and back: afterwards exactly one primary, both
// others streaming from it, a write through PgBouncer lands on it.
func TestStreamingSwitchoverRoundTrip(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	pg1, pg2 := sandboxtest.Node(t, sb, "pg1"), sandboxtest.Node(t, sb, "pg2")
	if got := sandboxtest.WriteThroughPooler(t, sb); got != pg1.Port {
		t.Fatalf("before: the pooler wrote to port %d, want pg1 (%d)", got, pg1.Port)
	}

	ev, err := playbookstest.Run(t, sb, playbookstest.Streaming, false)
	if err != nil {
		t.Fatalf("switchover pg1 -> pg2: %v\n%s", err, ev.Text())
	}
	want := fmt.Sprintf("pg1=standby<%d/2 pg2=primary/2 pg3=standby<%d/2", pg2.Port, pg2.Port)
	if got := sandboxtest.Topology(t, sb); got != want {
		t.Fatalf("after pg1 -> pg2: %s, want %s", got, want)
	}
	if got := sandboxtest.WriteThroughPooler(t, sb); got != pg2.Port {
		t.Fatalf("after pg1 -> pg2: the pooler wrote to port %d, want pg2 (%d)", got, pg2.Port)
	}

	ev, err = playbookstest.Run(t, sb, playbookstest.Streaming, false, "primary=pg2", "candidate=pg1")
	if err != nil {
		t.Fatalf("switchover pg2 -> pg1: %v\n%s", err, ev.Text())
	}
	want = fmt.Sprintf("pg1=primary/3 pg2=standby<%d/3 pg3=standby<%d/3", pg1.Port, pg1.Port)
	if got := sandboxtest.Topology(t, sb); got != want {
		t.Fatalf("after pg2 -> pg1: %s, want %s", got, want)
	}
	if got := sandboxtest.WriteThroughPooler(t, sb); got != pg1.Port {
		t.Fatalf("after the round trip: the pooler wrote to port %d, want pg1 (%d)", got, pg1.Port)
	}
}

// Writers keep committing through PgBouncer during the switch: every row
// whose commit was acknowledged is on the new primary.
func TestStreamingSwitchoverLosesNoAcknowledgedCommit(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	setup := sandboxtest.Connect(t, sb, "pg1", "app")
	if _, err := setup.Exec(context.Background(), "CREATE TABLE acked (id bigint PRIMARY KEY, writer int)"); err != nil {
		t.Fatal(err)
	}
	var (
		stop   atomic.Bool
		mu     sync.Mutex
		acked  []int64
		errs   atomic.Int64
		nextID atomic.Int64
		wg     sync.WaitGroup
	)
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *pgx.Conn
			for !stop.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if c == nil {
					var err error
					if c, err = pg.ConnectPooled(ctx, sb.ClientConninfo()); err != nil {
						errs.Add(1)
						cancel()
						time.Sleep(20 * time.Millisecond)
						continue
					}
				}
				id := nextID.Add(1)
				_, err := c.Exec(ctx, "INSERT INTO acked VALUES ($1, $2)", id, w)
				cancel()
				if err != nil {
					errs.Add(1)
					c.Close(context.Background())
					c = nil
					continue
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
			if c != nil {
				c.Close(context.Background())
			}
		}()
	}
	ackedNow := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	// waitCommits waits until n more commits than from are acknowledged.
	waitCommits := func(what string, from, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for ackedNow() < from+n {
			if time.Now().After(deadline) {
				stop.Store(true)
				wg.Wait()
				t.Fatalf("%s: %d commits acknowledged within 10s, want %d (%d client errors)", what, ackedNow()-from, n, errs.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The writers commit before the switch starts and after it ends, so
	// the switch falls among their commits.
	waitCommits("before the switch", 0, 25)
	ev, err := playbookstest.Run(t, sb, playbookstest.Streaming, false)
	if err == nil {
		waitCommits("after the switch", ackedNow(), 25)
	}
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatalf("switchover: %v\n%s", err, ev.Text())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 50 {
		t.Fatalf("only %d commits acknowledged: the writers did not run through the switch", len(acked))
	}
	c := sandboxtest.Connect(t, sb, "pg2", "app")
	var missing []int64
	for _, id := range acked {
		var ok bool
		if err := c.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM acked WHERE id = $1)", id).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged commits are missing on the new primary: %v", len(missing), len(acked), missing)
	}
	t.Logf("%d commits acknowledged through PgBouncer during the switch, all on pg2; %d client errors", len(acked), errs.Load())
}

// A dry run changes nothing and shows every action with its exact SQL or
// command.
func TestStreamingSwitchoverDryRunChangesNothing(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	before, pooler := sandboxtest.Topology(t, sb), sandboxtest.PoolerTarget(t, sb)
	ev, err := playbookstest.Run(t, sb, playbookstest.Streaming, true)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, ev.Text())
	}
	if got := sandboxtest.Topology(t, sb); got != before {
		t.Fatalf("a dry run changed the topology: %s, was %s", got, before)
	}
	if got := sandboxtest.PoolerTarget(t, sb); got != pooler {
		t.Fatalf("a dry run changed the pooler: %s, was %s", got, pooler)
	}
	if got := ev.ActionsRun(); len(got) != 0 {
		t.Fatalf("a dry run ran actions: %v", got)
	}
	text := ev.Text()
	for _, want := range []string{"CHECKPOINT", "PAUSE app", "pg_ctl", "stop", "pg_promote(", "RESUME app"} {
		if !strings.Contains(text, want) {
			t.Errorf("the dry run does not show %q:\n%s", want, text)
		}
	}
}
