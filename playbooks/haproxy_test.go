package playbooks_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook/journal"
)

// routedWriter commits numbered rows through HAProxy, each on a
// connection that is opened again after an error, and keeps which were
// acknowledged, when they were sent and acknowledged, and by which server
// port.
type routedWriter struct {
	conninfo string
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	acked    []routedAck
	errors   int
}

type routedAck struct {
	id   int
	port int
	sent time.Time // just before the INSERT went
	at   time.Time // once its acknowledgement was read
}

const writerTable = "haproxy_writer"

func startRoutedWriter(t *testing.T, conninfo string) *routedWriter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pg.Connect(ctx, conninfo, 0)
	if err != nil {
		t.Fatalf("connect through haproxy: %v", err)
	}
	_, err = c.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+writerTable+" (id int PRIMARY KEY, port int)")
	c.Close(ctx)
	if err != nil {
		t.Fatalf("create %s through haproxy: %v", writerTable, err)
	}
	w := &routedWriter{conninfo: conninfo, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *routedWriter) loop() {
	defer close(w.done)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for id := 1; ; id++ {
		select {
		case <-w.stop:
			return
		case <-time.After(5 * time.Millisecond):
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if conn == nil {
			c, err := pg.Connect(ctx, w.conninfo, 0)
			if err != nil {
				cancel()
				w.mu.Lock()
				w.errors++
				w.mu.Unlock()
				continue
			}
			conn = c
		}
		var port int
		sent := time.Now()
		err := conn.QueryRow(ctx, "INSERT INTO "+writerTable+" (id, port) VALUES ($1, inet_server_port()) RETURNING port", id).Scan(&port)
		cancel()
		w.mu.Lock()
		if err != nil {
			w.errors++
			conn.Close(context.Background())
			conn = nil
		} else {
			w.acked = append(w.acked, routedAck{id: id, port: port, sent: sent, at: time.Now()})
		}
		w.mu.Unlock()
	}
}

func (w *routedWriter) finish() ([]routedAck, int) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked, w.errors
}

// stepTime is when a main step reached state, zero when it did not.
func stepTime(ev *playbookstest.Events, step string, state journal.StepState) time.Time {
	for _, e := range ev.All() {
		if playbookstest.IsStep(e, step, state) {
			return e.Time
		}
	}
	return time.Time{}
}

// TestHAProxyStreamingSwitchover switches the primary of a sandbox with
// HAProxy in front (a TCP check, every node in the backend, the runtime
// state deciding) there and back, while an independent writer commits
// through HAProxy: HAProxy routes to the new primary right after the
// promotion, far sooner than its health checks would (rise x inter), no
// acknowledged write is lost, none lands on the old primary once it is
// drained, and there are never two primaries.
func TestHAProxyStreamingSwitchover(t *testing.T) {
	sb := sandboxtest.NewRouter(t, 1, "")
	bound := 3 * time.Second // rise x inter is 6s; fall x inter 9s
	for _, d := range []struct{ from, to string }{{"pg1", "pg2"}, {"pg2", "pg1"}} {
		t.Run(d.from+"-to-"+d.to, func(t *testing.T) {
			w := startRoutedWriter(t, sb.RouterConninfo())
			roles := sandboxtest.StartSampler(sb)
			ev, err := playbookstest.Run(t, sb, playbookstest.Streaming, false, "primary="+d.from, "candidate="+d.to)
			acked, errs := w.finish()
			roles.Finish().CheckKeptOnPrimary(t, sb)
			if err != nil {
				t.Fatalf("switchover %s -> %s: %v\n%s", d.from, d.to, err, ev.Text())
			}
			promoted := stepTime(ev, "promote", journal.StateDone)
			drained := stepTime(ev, "drain-router", journal.StateDone)
			routed := stepTime(ev, "route-router", journal.StateDone)
			if promoted.IsZero() || drained.IsZero() || routed.IsZero() {
				t.Fatalf("drain-router, promote or route-router did not finish:\n%s", ev.Text())
			}
			if gap := routed.Sub(promoted); gap > bound {
				t.Errorf("haproxy.routes_to passed %s after the promotion; want under %s (far below the checks' rise x inter)", gap, bound)
			}
			from, to := sandboxtest.Node(t, sb, d.from), sandboxtest.Node(t, sb, d.to)
			var first time.Time
			for _, a := range acked {
				// Sent once the drain was done: a write in flight as it
				// closed the sessions may still commit there, and be read
				// after it on a busy machine.
				if a.sent.After(drained) && a.port == from.Port {
					t.Errorf("write %d, sent after the drain, acknowledged by the old primary %s", a.id, d.from)
				}
				if first.IsZero() && a.at.After(promoted) && a.port == to.Port {
					first = a.at
				}
			}
			if first.IsZero() || first.Sub(promoted) > bound {
				t.Errorf("first write through haproxy on %s came %s after the promotion; want under %s", d.to, first.Sub(promoted), bound)
			}
			var got int
			c := sandboxtest.Connect(t, sb, d.to, "app")
			ids := make([]int32, 0, len(acked))
			for _, a := range acked {
				ids = append(ids, int32(a.id))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.QueryRow(ctx, "SELECT count(*) FROM "+writerTable+" WHERE id = ANY($1)", ids).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != len(acked) || len(acked) == 0 {
				t.Errorf("%d of %d acknowledged writes are on the new primary %s; want all (and some)", got, len(acked), d.to)
			}
			// HAProxy as the run left it: the new primary's server the one
			// routed to, the old primary's in maintenance (a TCP check
			// would find it up).
			tg := &cluster.Target{Cluster: sb.Cluster(), Facts: &cluster.Facts{}}
			for _, want := range []checks.RouterServerState{{Node: d.to, Is: "routable"}, {Node: d.from, Is: "maint"}, {Node: d.from, Is: "down"}} {
				if r := want.Run(ctx, tg); r.Status != checks.Pass {
					t.Errorf("haproxy.server_state %s is %s: %s, %s", want.Node, want.Is, r.Status, r.Observed)
				}
			}
			if r := (&checks.RouterServerState{Node: d.to, Is: "maint"}).Run(ctx, tg); r.Status != checks.Fail {
				t.Errorf("haproxy.server_state %s is maint: %s, want fail: %s", d.to, r.Status, r.Observed)
			}
			facts := ev.Facts()
			if facts["canary.endpoint"] != "the router" || facts["canary.lost"] != "0" {
				t.Errorf("canary: endpoint %q lost %q; want the router, 0", facts["canary.endpoint"], facts["canary.lost"])
			}
			t.Logf("%s -> %s: routed %s after the promotion, first write there %s after; writer %d acked, %d errors, 0 lost; canary window %s ms, %s errors",
				d.from, d.to, routed.Sub(promoted).Round(time.Millisecond), first.Sub(promoted).Round(time.Millisecond), len(acked), errs,
				facts["canary.window_ms"], facts["canary.errors"])
			if _, err := c.Exec(ctx, "TRUNCATE "+writerTable); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestHAProxyPatroniSwitchover (SWITCHOVER_FULL=1: a Patroni sandbox
// takes most of a minute to come up) switches the leader of a Patroni
// cluster with HAProxy in front whose checks ask Patroni (GET /primary):
// driven by the playbook, HAProxy routes to the new leader within the
// bound; left to its checks (router_steps=false), it gets there too, later;
// no acknowledged write is lost either way.
func TestHAProxyPatroniSwitchover(t *testing.T) {
	if os.Getenv("SWITCHOVER_FULL") == "" {
		t.Skip("SWITCHOVER_FULL is not set: a Patroni sandbox with HAProxy takes most of a minute to come up")
	}
	sb := sandboxtest.NewRouter(t, 1, sandbox.ManagerPatroni)
	for _, d := range []struct {
		from, to, steps string
		bound           time.Duration
	}{
		{"pg1", "pg2", "true", 3 * time.Second},
		{"pg2", "pg1", "false", 30 * time.Second},
	} {
		t.Run(d.from+"-to-"+d.to+"-router_steps-"+d.steps, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := sb.WaitRouted(ctx, d.from, 30*time.Second); err != nil {
				t.Fatal(err)
			}
			w := startRoutedWriter(t, sb.RouterConninfo())
			ev, err := playbookstest.Run(t, sb, "patroni-switchover", false, "primary="+d.from, "candidate="+d.to, "router_steps="+d.steps)
			acked, errs := w.finish()
			if err != nil {
				t.Fatalf("switchover %s -> %s: %v\n%s", d.from, d.to, err, ev.Text())
			}
			switched := stepTime(ev, "switchover", journal.StateDone)
			routed := stepTime(ev, "route-router", journal.StateDone)
			if switched.IsZero() || routed.IsZero() || routed.Sub(switched) > d.bound {
				t.Errorf("route-router done %s after the switchover; want under %s", routed.Sub(switched), d.bound)
			}
			c := sandboxtest.Connect(t, sb, d.to, "app")
			ids := make([]int32, 0, len(acked))
			for _, a := range acked {
				ids = append(ids, int32(a.id))
			}
			var got int
			if err := c.QueryRow(ctx, "SELECT count(*) FROM "+writerTable+" WHERE id = ANY($1)", ids).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != len(acked) || len(acked) == 0 {
				t.Errorf("%d of %d acknowledged writes are on the new leader %s; want all (and some)", got, len(acked), d.to)
			}
			facts := ev.Facts()
			t.Logf("%s -> %s, router_steps %s: routed %s after the switchover; writer %d acked, %d errors, 0 lost; canary window %s ms, %s errors, %s lost",
				d.from, d.to, d.steps, routed.Sub(switched).Round(time.Millisecond), len(acked), errs, facts["canary.window_ms"], facts["canary.errors"], facts["canary.lost"])
			if _, err := c.Exec(ctx, "TRUNCATE "+writerTable); err != nil {
				t.Fatal(err)
			}
		})
	}
}
