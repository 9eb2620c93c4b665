package steps

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/logical"
	"github.com/switchover/switchover/internal/logical/logicaltest"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

// runLogicalCheck builds a check of kind and runs it once.
func runLogicalCheck(t *testing.T, tg *cluster.Target, kind string, raw map[string]string) checks.Result {
	t.Helper()
	d, ok := checks.Lookup(kind)
	if !ok {
		t.Fatalf("no check %s", kind)
	}
	r := map[string]params.Raw{}
	for k, v := range raw {
		r[k] = params.Raw{Scalar: v}
	}
	v, probs := params.Decode(d.Params, r)
	if len(probs) > 0 {
		t.Fatalf("decode %s: %v", kind, probs)
	}
	c, err := d.New(v)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := c.Run(ctx, tg)
	t.Logf("%s %v: %s: %s\n  wanted: %s\n  %s", kind, raw, res.Status, res.Observed, res.Wanted, strings.ReplaceAll(res.Detail, "\n", "\n  "))
	return res
}

// wantCheck runs a check and fails the test unless it comes to status,
// with every one of words in what it observed.
func wantCheck(t *testing.T, tg *cluster.Target, kind string, raw map[string]string, status checks.Status, words ...string) checks.Result {
	t.Helper()
	res := runLogicalCheck(t, tg, kind, raw)
	if res.Status != status {
		t.Fatalf("%s: %s (%s), want %s", kind, res.Status, res.Observed, status)
	}
	for _, w := range words {
		if !strings.Contains(res.Observed, w) {
			t.Errorf("%s: %q does not say %q", kind, res.Observed, w)
		}
	}
	return res
}

// writer inserts rows into orders on a node, one transaction each, as fast
// as it can, until stopped; it knows the last id it got acknowledged.
type writer struct {
	stop chan struct{}
	done chan struct{}
	last atomic.Int64
	n    atomic.Int64
	err  error
}

func startWriter(t *testing.T, conninfo, note string) *writer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, conninfo+" application_name=app", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer pg.Release(conn)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			var id int64
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := conn.QueryRow(ctx, "INSERT INTO orders (note) VALUES ($1) RETURNING id", note).Scan(&id)
			if err == nil {
				_, err = conn.Exec(ctx, "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, now())")
			}
			cancel()
			if err != nil {
				w.err = err
				return
			}
			w.last.Store(id)
			w.n.Add(1)
		}
	}()
	return w
}

// halt stops the writer, as a pooler's PAUSE would hold it, and returns
// the last id it got acknowledged.
func (w *writer) halt(t *testing.T) int64 {
	t.Helper()
	close(w.stop)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the writer did not stop within 30s")
	}
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
	return w.last.Load()
}

// waitWrites waits until the writer has committed n rows more.
func (w *writer) waitWrites(t *testing.T, n int64) {
	t.Helper()
	want := w.n.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for w.n.Load() < want {
		if w.err != nil || time.Now().After(deadline) {
			t.Fatalf("writer: %d rows, want %d (%v)", w.n.Load(), want, w.err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sequenceState is a sequence's last_value and is_called on a node.
func sequenceState(t *testing.T, p *logicaltest.Pair, node string) string {
	return p.Query(t, node, "SELECT last_value || '/' || is_called FROM orders_id_seq")
}

// TestLogicalMove runs a blue/green move step by step on two real servers,
// as the prepare, cutover, way back and cleanup playbooks will: the gates,
// the schema copy with the DDL guard on, publish and subscribe with the
// initial copy of pgbench's tables, the cutover under a writer (fence,
// catch-up, sequences exact, counts), the reverse subscription on the
// fenced blue, the way back re-enabling the first subscription without
// applying anything twice, a schema difference refused, and the cleanup.
func TestLogicalMove(t *testing.T) {
	p := logicaltest.New(t)
	out := &printed{}
	tg := out.target(p.Target.Cluster)
	blueGreen := map[string]string{"from": "blue", "to": "green"}

	p.Sh(t, fmt.Sprintf("%s/pgbench -i -s 1 -q -h 127.0.0.1 -p %d -U postgres postgres", p.BinDir, p.Port("blue")))
	p.Exec(t, "blue", "CREATE TABLE orders (id bigserial PRIMARY KEY, note text NOT NULL, at timestamptz NOT NULL DEFAULT now())",
		"INSERT INTO orders (note) SELECT 'seed' FROM generate_series(1, 500)")

	// The gates.
	wantCheck(t, tg, "logical.wal_level", map[string]string{"node": "blue"}, checks.Pass)
	wantCheck(t, tg, "logical.wal_level", map[string]string{"node": "green", "as": "subscriber"}, checks.Pass)
	wantCheck(t, tg, "logical.replica_identity", map[string]string{"node": "blue"}, checks.Fail, "public.pgbench_history (no primary key")
	wantCheck(t, tg, "logical.replica_identity", map[string]string{"node": "blue", "allow_full": "true"}, checks.Pass, "public.pgbench_history")
	mustApply(t, tg, out, "logical.replica_identity_full", map[string]string{"node": "blue"})
	if got := p.Query(t, "blue", "SELECT relreplident FROM pg_class WHERE relname = 'pgbench_history'"); got != "f" {
		t.Fatalf("pgbench_history's replica identity is %s, want f", got)
	}
	wantCheck(t, tg, "logical.replica_identity", map[string]string{"node": "blue", "allow_full": "true"}, checks.Pass)
	wantCheck(t, tg, "logical.unsupported", map[string]string{"node": "blue"}, checks.Pass)
	p.Exec(t, "blue", "CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY)", "SELECT lo_create(0)")
	wantCheck(t, tg, "logical.unsupported", map[string]string{"node": "blue"}, checks.Fail, "1 large objects", "public.scratch")
	p.Exec(t, "blue", "DROP TABLE scratch", "SELECT lo_unlink(oid) FROM pg_largeobject_metadata")
	wantCheck(t, tg, "logical.extensions", blueGreen, checks.Pass)
	wantCheck(t, tg, "pg.no_long_transactions", map[string]string{"node": "blue"}, checks.Pass)

	// The schema, held still by the guard on both sides.
	mustApply(t, tg, out, "logical.ddl_guard", map[string]string{"node": "blue"})
	if o := mustApply(t, tg, out, "logical.ddl_guard", map[string]string{"node": "blue"}); !strings.Contains(strings.Join(o, "\n"), "installed already") {
		t.Errorf("a second install said %q", o)
	}
	wantCheck(t, tg, "logical.schema_same", blueGreen, checks.Fail, "missing on green", "TABLE public.orders")
	mustApply(t, tg, out, "logical.copy_schema", blueGreen)
	mustApply(t, tg, out, "logical.ddl_guard", map[string]string{"node": "green"})
	wantCheck(t, tg, "logical.schema_same", blueGreen, checks.Pass)
	if o := mustApply(t, tg, out, "logical.copy_schema", blueGreen); !strings.Contains(strings.Join(o, "\n"), "nothing to copy") {
		t.Errorf("copy_schema again said %q", o)
	}
	if _, err := p.Connect(t, "blue").Exec(testCtx(t, 10*time.Second), "CREATE TABLE sneaky (id int)"); err == nil || !strings.Contains(err.Error(), logical.GuardMessage) {
		t.Fatalf("CREATE TABLE on blue under the guard: %v", err)
	}

	// Publish, subscribe, copy.
	mustApply(t, tg, out, "logical.publish", map[string]string{"node": "blue", "publication": "upgrade"})
	if o := mustApply(t, tg, out, "logical.publish", map[string]string{"node": "blue", "publication": "upgrade"}); !strings.Contains(strings.Join(o, "\n"), "already") {
		t.Errorf("publish again said %q", o)
	}
	sub := map[string]string{"node": "green", "upstream": "blue", "publication": "upgrade", "subscription": "blue_to_green"}
	mustApply(t, tg, out, "logical.subscribe", sub)
	w := startWriter(t, p.Conninfo("blue"), "blue")
	o := mustApply(t, tg, out, "logical.wait_copy", map[string]string{"subscriber": "green", "publisher": "blue", "subscription": "blue_to_green", "every": "200ms", "within": "80s"})
	if !strings.Contains(strings.Join(o, "\n"), "4/5 tables ready") && !strings.Contains(strings.Join(o, "\n"), "5/5 tables ready") {
		t.Errorf("wait_copy printed no progress of 5 tables: %q", o)
	}
	if v, ok := tg.Facts.Get(CopyFact("blue_to_green", "tables")); !ok || v != "5" {
		t.Errorf("fact of the copied tables = %q", v)
	}
	caughtUp := map[string]string{"subscriber": "green", "publisher": "blue", "subscription": "blue_to_green"}
	wantCheck(t, tg, "logical.caught_up", caughtUp, checks.Pass, "5 tables ready")
	mustApply(t, tg, out, "logical.subscribe", sub) // there and enabled: nothing

	// Before the cutover: the apply worker confirms at once.
	mustApply(t, tg, out, "logical.subscribe", map[string]string{"node": "green", "upstream": "blue", "publication": "upgrade", "subscription": "blue_to_green", "synchronous_commit": "local"})
	wantCheck(t, tg, "logical.caught_up", caughtUp, checks.Pass)

	// The cutover, the writer stopped as a pause would hold it.
	w.waitWrites(t, 200)
	last := w.halt(t)
	mustApply(t, tg, out, "logical.fence", map[string]string{"node": "blue"})
	o = mustApply(t, tg, out, "logical.wait_applied", map[string]string{"subscriber": "green", "publisher": "blue", "subscription": "blue_to_green", "within": "20s"})
	if got := p.Query(t, "green", "SELECT max(id) FROM orders"); got != fmt.Sprint(last) {
		t.Fatalf("green's last order is %s once wait_applied is done, blue's last acknowledged %d", got, last)
	}
	if v, ok := tg.Facts.Get(AppliedFact("blue_to_green")); !ok || v == "" {
		t.Error("no fact of the applied position")
	}
	_ = o
	mustApply(t, tg, out, "logical.sync_sequences", blueGreen)
	if b, g := sequenceState(t, p, "blue"), sequenceState(t, p, "green"); b != g {
		t.Fatalf("orders_id_seq: blue %s, green %s", b, g)
	}
	mustApply(t, tg, out, "logical.compare_counts", map[string]string{"from": "blue", "to": "green", "sample": "0"})
	mustApply(t, tg, out, "logical.disable_subscription", map[string]string{"node": "green", "subscription": "blue_to_green"})
	mustApply(t, tg, out, "logical.publish", map[string]string{"node": "green", "publication": "upgrade_back"})
	back := map[string]string{"node": "blue", "upstream": "green", "publication": "upgrade_back", "subscription": "green_to_blue", "copy_data": "false", "synchronous_commit": "local"}
	mustApply(t, tg, out, "logical.subscribe", back)

	// Clients on green; blue, fenced, follows.
	w = startWriter(t, p.Conninfo("green"), "green")
	w.waitWrites(t, 200)
	if _, err := p.Connect(t, "blue").Exec(testCtx(t, 10*time.Second), "INSERT INTO orders (note) VALUES ('direct on fenced blue')"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("a write on fenced blue: %v, want a read-only refusal", err)
	}

	// The way back.
	last = w.halt(t)
	mustApply(t, tg, out, "logical.fence", map[string]string{"node": "green"})
	mustApply(t, tg, out, "logical.wait_applied", map[string]string{"subscriber": "blue", "publisher": "green", "subscription": "green_to_blue", "within": "20s"})
	if got := p.Query(t, "blue", "SELECT max(id) FROM orders"); got != fmt.Sprint(last) {
		t.Fatalf("fenced blue's last order is %s, green's last acknowledged %d: the apply stopped under the fence", got, last)
	}
	mustApply(t, tg, out, "logical.sync_sequences", map[string]string{"from": "green", "to": "blue"})
	mustApply(t, tg, out, "logical.compare_counts", map[string]string{"from": "green", "to": "blue", "tables": "orders"})
	mustApply(t, tg, out, "logical.disable_subscription", map[string]string{"node": "blue", "subscription": "green_to_blue"})
	o = mustApply(t, tg, out, "logical.subscribe", sub) // disabled: its slot advanced, enabled
	if !strings.Contains(strings.Join(o, "\n"), "moved to") {
		t.Errorf("the way back's subscribe did not advance the slot: %q", o)
	}
	mustApply(t, tg, out, "logical.unfence", map[string]string{"node": "blue"})
	if o := mustApply(t, tg, out, "logical.unfence", map[string]string{"node": "blue"}); !strings.Contains(strings.Join(o, "\n"), "not fenced") {
		t.Errorf("unfence again said %q", o)
	}
	w = startWriter(t, p.Conninfo("blue"), "blue again")
	w.waitWrites(t, 100)
	w.halt(t)
	mustApply(t, tg, out, "logical.wait_applied", map[string]string{"subscriber": "green", "publisher": "blue", "subscription": "blue_to_green", "within": "20s"})
	mustApply(t, tg, out, "logical.compare_counts", map[string]string{"from": "blue", "to": "green", "sample": "0"})
	if got := p.Query(t, "green", "SELECT coalesce(sum(apply_error_count + sync_error_count), 0) FROM pg_stat_subscription_stats"); got != "0" {
		t.Errorf("green's subscription met %s errors: a change was applied twice?", got)
	}
	if b, g := p.Query(t, "blue", "SELECT count(*) FROM orders WHERE note = 'seed'"), p.Query(t, "green", "SELECT count(*) FROM orders WHERE note = 'seed'"); b != "500" || g != "500" {
		t.Errorf("seed orders: %s on blue, %s on green, want 500", b, g)
	}

	// DDL on one side only is a schema difference, refused by name.
	p.Exec(t, "blue", "SET switchover.allow_ddl = on", "ALTER TABLE orders ADD COLUMN channel text")
	res := wantCheck(t, tg, "logical.schema_same", blueGreen, checks.Fail, "TABLE public.orders")
	if !strings.Contains(res.Detail, "+++ green") || !strings.Contains(res.Detail, "channel text") {
		t.Errorf("schema_same's excerpt:\n%s", res.Detail)
	}
	if _, err := apply(t, tg, out, "logical.copy_schema", blueGreen); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("copy_schema onto a differing green: %v", err)
	}

	// Cleanup, twice.
	mustApply(t, tg, out, "logical.disable_subscription", map[string]string{"node": "green", "subscription": "blue_to_green"})
	for i := 0; i < 2; i++ {
		o1 := mustApply(t, tg, out, "logical.cleanup", map[string]string{"node": "green", "subscription": "blue_to_green", "publication": "upgrade_back"})
		o2 := mustApply(t, tg, out, "logical.cleanup", map[string]string{"node": "blue", "subscription": "green_to_blue", "publication": "upgrade"})
		all := strings.Join(append(o1, o2...), "\n")
		if i == 0 && (!strings.Contains(all, "subscription blue_to_green dropped, with its slot") || !strings.Contains(all, "DDL guard removed")) {
			t.Errorf("cleanup said %q", all)
		}
		if i == 1 && strings.Contains(all, "dropped") {
			t.Errorf("a second cleanup dropped something: %q", all)
		}
	}
	for _, node := range []string{"blue", "green"} {
		if got := p.Query(t, node, "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_subscription) + (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_event_trigger)"); got != "0" {
			t.Errorf("%s keeps %s slots, subscriptions, publications or event triggers after the cleanup", node, got)
		}
	}
}
