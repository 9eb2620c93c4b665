package playbooks_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/transport"
	"github.com/switchover/switchover/playbooks"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

func TestMain(m *testing.M) { sandboxtest.MainThen(m, printFaultTable) }

const streaming = "postgres-streaming-switchover"

// events collects a run's events.
type events struct {
	mu  sync.Mutex
	all []journal.Event
}

func (e *events) Observe(ev journal.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) text() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, ev := range e.all {
		fmt.Fprintf(&b, "%s %s %s %s", ev.Type, ev.Step, ev.State, ev.Phase)
		if ev.Check != nil {
			fmt.Fprintf(&b, " [%s %s: %s | %s]", ev.Check.Kind, ev.Check.Status, ev.Check.Observed, ev.Check.Detail)
		}
		if ev.Effect != nil {
			fmt.Fprintf(&b, " {%s: %s}", ev.Effect.Node, ev.Effect.Command)
		}
		if ev.Output != "" {
			fmt.Fprintf(&b, " | %s", ev.Output)
		}
		if ev.Error != "" {
			fmt.Fprintf(&b, " error=%s", ev.Error)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// actionsRun lists the main steps whose action started. (The finally
// section's pooler resume runs in every case, and is a no-op on a pooler
// that was not paused.)
func (e *events) actionsRun() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		if ev.Type == journal.EventStep && ev.State == journal.StateRunning && ev.Section == spec.SectionSteps {
			out = append(out, ev.Step)
		}
	}
	return out
}

// plan resolves a shipped playbook against the sandbox's inventory.
func plan(t *testing.T, sb *sandbox.Sandbox, name string, vars ...string) *spec.Plan {
	t.Helper()
	src, ok := playbooks.Read(name)
	if !ok {
		t.Fatalf("no playbook %s", name)
	}
	return planFrom(t, sb, "playbook:"+name, src, vars...)
}

// planFrom resolves a runbook's source against the sandbox's inventory.
func planFrom(t *testing.T, sb *sandbox.Sandbox, label string, src []byte, vars ...string) *spec.Plan {
	t.Helper()
	rb, err := spec.LoadRunbook(label, src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(sb.Inventory())
	if err != nil {
		t.Fatal(err)
	}
	inv, err := spec.LoadInventory(sb.Inventory(), b)
	if err != nil {
		t.Fatal(err)
	}
	vars = withPrimary(rb, inv, vars)
	decls, err := spec.ParseVarFlags(vars)
	if err != nil {
		t.Fatal(err)
	}
	p, err := spec.Resolve(rb, inv, decls)
	if err != nil {
		t.Fatalf("resolve %s: %v", label, err)
	}
	return p
}

// withPrimary adds primary=NODE, the sandbox's first node (where it
// starts the primary), to the variables of a runbook that declares a
// primary when they do not give it: the tests name the primary they
// expect, where `switchover run` would find it in the cluster.
func withPrimary(rb *spec.Runbook, inv *spec.Inventory, vars []string) []string {
	if !slices.ContainsFunc(rb.Vars, func(d spec.VarDecl) bool { return d.Name == "primary" }) ||
		slices.ContainsFunc(vars, func(v string) bool { return strings.HasPrefix(v, "primary=") }) {
		return vars
	}
	return append(slices.Clip(vars), "primary="+inv.Cluster.NodeOrder()[0])
}

// run runs a playbook scripted (--yes) and returns its events and error.
func run(t *testing.T, sb *sandbox.Sandbox, name string, dry bool, vars ...string) (*events, error) {
	t.Helper()
	ev := &events{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, err := runbook.Run(ctx, plan(t, sb, name, vars...), runbook.Options{
		DryRun: dry, Yes: true, Observer: ev, JournalDir: t.TempDir(),
	})
	return ev, err
}

// topology returns each node's role and upstream, e.g. "pg1=primary/1 pg2=standby<54321/1".
func topology(t *testing.T, sb *sandbox.Sandbox) string {
	t.Helper()
	var parts []string
	for _, s := range sb.Status(context.Background()) {
		if s.Err != nil {
			parts = append(parts, s.Node.Name+"=down")
			continue
		}
		role := string(s.State.Role)
		if s.State.Role == pg.RoleStandby {
			role += "<" + s.State.Upstream[strings.LastIndex(s.State.Upstream, ":")+1:]
		}
		parts = append(parts, fmt.Sprintf("%s=%s/%d", s.Node.Name, role, s.State.Timeline))
	}
	return strings.Join(parts, " ")
}

// poolerTarget is the host:port in the pooler's database entry.
func poolerTarget(t *testing.T, sb *sandbox.Sandbox) string {
	t.Helper()
	b, err := os.ReadFile(sb.PoolerConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "app") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// writeThroughPooler commits one row through PgBouncer and says which
// server took it.
func writeThroughPooler(t *testing.T, sb *sandbox.Sandbox) int {
	t.Helper()
	// Polled: a write through the pooler is the condition, and a loaded
	// machine may take PgBouncer a moment to reach the server. What a
	// failed attempt met is logged, with PgBouncer's last lines.
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for attempt := 1; ; attempt++ {
		port, err := writeOnce(sb)
		if err == nil {
			if last != nil {
				t.Logf("a write through the pooler took %d attempts; the first failed: %v", attempt, last)
			}
			return port
		}
		if last == nil {
			last = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("write through the pooler, %d attempts in 30s: %v (first: %v)\nPgBouncer's last lines:\n%s", attempt, err, last, tailOf(filepath.Join(filepath.Dir(sb.PoolerConfig()), "pgbouncer.log"), 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// writeOnce writes one row through the pooler and returns the port of the
// server it landed on.
func writeOnce(sb *sandbox.Sandbox) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pg.ConnectPooled(ctx, sb.ClientConninfo())
	if err != nil {
		return 0, fmt.Errorf("connect through the pooler: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE TABLE IF NOT EXISTS probe (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())"); err != nil {
		return 0, fmt.Errorf("write through the pooler: %w", err)
	}
	var port int
	if err := c.QueryRow(ctx, "INSERT INTO probe DEFAULT VALUES RETURNING inet_server_port()").Scan(&port); err != nil {
		return 0, fmt.Errorf("write through the pooler: %w", err)
	}
	return port, nil
}

// tailOf is the last n lines of a file, or why it cannot be read.
func tailOf(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func node(t *testing.T, sb *sandbox.Sandbox, name string) sandbox.Node {
	t.Helper()
	n, ok := sb.Node(name)
	if !ok {
		t.Fatalf("no node %s", name)
	}
	return n
}

func connect(t *testing.T, sb *sandbox.Sandbox, name, db string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pg.Connect(ctx, sb.Conninfo(node(t, sb, name), db), 0)
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// A switchover pg1 -> pg2 and back: afterwards exactly one primary, both
// others streaming from it, a write through PgBouncer lands on it.
func TestStreamingSwitchoverRoundTrip(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	pg1, pg2 := node(t, sb, "pg1"), node(t, sb, "pg2")
	if got := writeThroughPooler(t, sb); got != pg1.Port {
		t.Fatalf("before: the pooler wrote to port %d, want pg1 (%d)", got, pg1.Port)
	}

	ev, err := run(t, sb, streaming, false)
	if err != nil {
		t.Fatalf("switchover pg1 -> pg2: %v\n%s", err, ev.text())
	}
	want := fmt.Sprintf("pg1=standby<%d/2 pg2=primary/2 pg3=standby<%d/2", pg2.Port, pg2.Port)
	if got := topology(t, sb); got != want {
		t.Fatalf("after pg1 -> pg2: %s, want %s", got, want)
	}
	if got := writeThroughPooler(t, sb); got != pg2.Port {
		t.Fatalf("after pg1 -> pg2: the pooler wrote to port %d, want pg2 (%d)", got, pg2.Port)
	}

	ev, err = run(t, sb, streaming, false, "primary=pg2", "candidate=pg1")
	if err != nil {
		t.Fatalf("switchover pg2 -> pg1: %v\n%s", err, ev.text())
	}
	want = fmt.Sprintf("pg1=primary/3 pg2=standby<%d/3 pg3=standby<%d/3", pg1.Port, pg1.Port)
	if got := topology(t, sb); got != want {
		t.Fatalf("after pg2 -> pg1: %s, want %s", got, want)
	}
	if got := writeThroughPooler(t, sb); got != pg1.Port {
		t.Fatalf("after the round trip: the pooler wrote to port %d, want pg1 (%d)", got, pg1.Port)
	}
}

// Writers keep committing through PgBouncer during the switch: every row
// whose commit was acknowledged is on the new primary.
func TestStreamingSwitchoverLosesNoAcknowledgedCommit(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	setup := connect(t, sb, "pg1", "app")
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
	ev, err := run(t, sb, streaming, false)
	if err == nil {
		waitCommits("after the switch", ackedNow(), 25)
	}
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatalf("switchover: %v\n%s", err, ev.text())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 50 {
		t.Fatalf("only %d commits acknowledged: the writers did not run through the switch", len(acked))
	}
	c := connect(t, sb, "pg2", "app")
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

// A session on the candidate holding a lock stops the run at preflight:
// exit 3, no action ran, the primary is unchanged.
func TestStreamingSwitchoverStopsOnALockOnTheCandidate(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	primary := connect(t, sb, "pg1", "app")
	if _, err := primary.Exec(context.Background(), "CREATE TABLE busy (id int)"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, sb, "pg2")
	before := topology(t, sb)
	tests := []struct {
		name string
		take string
		see  string
	}{
		{"a table lock in an open transaction", "BEGIN; LOCK TABLE busy IN ACCESS SHARE MODE", "in database app AccessShareLock"},
		{"an advisory lock", "SELECT pg_advisory_lock(4242)", "advisory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			holder := connect(t, sb, "pg2", "app")
			for _, stmt := range strings.Split(tt.take, "; ") {
				if _, err := holder.Exec(context.Background(), stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			ev, err := run(t, sb, streaming, false)
			if !errors.Is(err, runbook.ErrPrecondition) {
				t.Fatalf("run with %s on the candidate: %v, want a precondition failure (exit 3)\n%s", tt.name, err, ev.text())
			}
			if got := ev.actionsRun(); len(got) != 0 {
				t.Fatalf("actions ran: %v, want none", got)
			}
			if !strings.Contains(ev.text(), tt.see) || !strings.Contains(ev.text(), "pg.no_blocking_sessions fail") {
				t.Fatalf("the output does not name the blocking session (%q):\n%s", tt.see, ev.text())
			}
			if got := topology(t, sb); got != before {
				t.Fatalf("topology changed: %s, was %s", got, before)
			}
			holder.Close(context.Background())
		})
	}
}

func waitReplayed(t *testing.T, sb *sandbox.Sandbox, standby string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var lag int64 = -1
		for _, s := range sb.Status(context.Background()) {
			if s.Node.Name == standby && s.Err == nil {
				lag = s.LagBytes
			}
		}
		if lag == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not catch up within 10s", standby)
}

// The candidate stopped: the run stops before any action and names it.
func TestStreamingSwitchoverStopsWhenTheCandidateIsDown(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	stopNode(t, sb, "pg2")
	ev, err := run(t, sb, streaming, false)
	if !errors.Is(err, runbook.ErrPrecondition) {
		t.Fatalf("run with pg2 stopped: %v, want a precondition failure\n%s", err, ev.text())
	}
	if got := ev.actionsRun(); len(got) != 0 {
		t.Fatalf("actions ran: %v, want none", got)
	}
	if !strings.Contains(err.Error()+ev.text(), "pg2") || !strings.Contains(ev.text(), "unreachable") {
		t.Fatalf("the failure does not say pg2 is unreachable: %v\n%s", err, ev.text())
	}
}

func stopNode(t *testing.T, sb *sandbox.Sandbox, name string) {
	t.Helper()
	n := node(t, sb, name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := sbExec(sb).Run(ctx, fmt.Sprintf("%s/pg_ctl stop -D %s -m fast -w", sb.BinDir, n.DataDir))
	if err != nil || out.ExitCode != 0 {
		t.Fatalf("stop %s: %v %s", name, err, out.Combined())
	}
}

// Replay paused on the candidate: it cannot catch up with the stopped
// primary; the step fails at its deadline and the rollback leaves pg1
// serving writes through PgBouncer.
func TestStreamingSwitchoverRollsBackWhenTheCandidateCannotCatchUp(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	pg1 := node(t, sb, "pg1")
	cand := connect(t, sb, "pg2", "postgres")
	if _, err := cand.Exec(context.Background(), "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	writeThroughPooler(t, sb) // WAL the paused candidate will not replay
	ev, err := run(t, sb, streaming, false, "catch_up_within=3s")
	if !errors.Is(err, runbook.ErrAction) {
		t.Fatalf("run with replay paused on pg2: %v, want an action failure (exit 4)\n%s", err, ev.text())
	}
	text := ev.text()
	for _, want := range []string{"pg.caught_up fail", "section.started", "restart-old-primary done", "resume-pooler-on-old-primary done"} {
		if !strings.Contains(text, want) {
			t.Errorf("events lack %q:\n%s", want, text)
		}
	}
	for _, s := range ev.actionsRun() {
		if s == "promote" {
			t.Fatalf("promote ran:\n%s", text)
		}
	}
	if got := writeThroughPooler(t, sb); got != pg1.Port {
		t.Fatalf("after the rollback the pooler wrote to port %d, want pg1 (%d)", got, pg1.Port)
	}
	if got := topology(t, sb); !strings.HasPrefix(got, "pg1=primary/1 pg2=standby") {
		t.Fatalf("after the rollback: %s, want pg1 primary on timeline 1 and pg2 a standby", got)
	}
}

// A dry run changes nothing and shows every action with its exact SQL or
// command.
func TestStreamingSwitchoverDryRunChangesNothing(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	before, pooler := topology(t, sb), poolerTarget(t, sb)
	ev, err := run(t, sb, streaming, true)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, ev.text())
	}
	if got := topology(t, sb); got != before {
		t.Fatalf("a dry run changed the topology: %s, was %s", got, before)
	}
	if got := poolerTarget(t, sb); got != pooler {
		t.Fatalf("a dry run changed the pooler: %s, was %s", got, pooler)
	}
	if got := ev.actionsRun(); len(got) != 0 {
		t.Fatalf("a dry run ran actions: %v", got)
	}
	text := ev.text()
	for _, want := range []string{"CHECKPOINT", "PAUSE app", "pg_ctl", "stop", "pg_promote(", "RESUME app"} {
		if !strings.Contains(text, want) {
			t.Errorf("the dry run does not show %q:\n%s", want, text)
		}
	}
}

func sbExec(sb *sandbox.Sandbox) transport.Executor { return transport.Local{User: sb.RunAs} }
