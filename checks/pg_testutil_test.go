package checks

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/transport"
)

// pgASandboxes bounds how many sandboxes of their own these tests keep up
// at once, besides the shared one: the machines that run them have few cores.
var pgASandboxes = make(chan struct{}, 2)

// pgANew brings up a sandbox with two standbys for a test that changes it,
// waiting for a free slot first.
func pgANew(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	pgASandboxes <- struct{}{}
	// Cleanups run last in, first out: the sandbox is down before its slot
	// is given back.
	t.Cleanup(func() { <-pgASandboxes })
	return sandboxtest.New(t, 2)
}

// pgATarget is what a runbook would give a check for the sandbox.
func pgATarget(sb *sandbox.Sandbox) *cluster.Target {
	return &cluster.Target{Cluster: sb.Cluster(), Facts: &cluster.Facts{}}
}

// pgARun runs a check once with a bounded context.
func pgARun(t *testing.T, c Check, tg *cluster.Target) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Run(ctx, tg)
}

// pgARunUntil runs a check until it reaches status or limit passes, the way
// a runbook's within: does, and returns the last result.
func pgARunUntil(t *testing.T, c Check, tg *cluster.Target, status Status, limit time.Duration) Result {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		r := pgARun(t, c, tg)
		if r.Status == status || time.Now().After(deadline) {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pgASandboxNode returns a sandbox node, failing the test when there is none.
func pgASandboxNode(t *testing.T, sb *sandbox.Sandbox, name string) sandbox.Node {
	t.Helper()
	n, ok := sb.Node(name)
	if !ok {
		t.Fatalf("sandbox has no node %s", name)
	}
	return n
}

// pgASQL runs statements on a sandbox node as the superuser.
func pgASQL(t *testing.T, sb *sandbox.Sandbox, node string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, sb.Conninfo(pgASandboxNode(t, sb, node), "postgres"), 10*time.Second)
	if err != nil {
		t.Fatalf("connect %s: %v", node, err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s on %s: %v", s, node, err)
		}
	}
}

// pgAState inspects a sandbox node.
func pgAState(t *testing.T, sb *sandbox.Sandbox, node string) (pg.State, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, sb.Conninfo(pgASandboxNode(t, sb, node), "postgres"), 5*time.Second)
	if err != nil {
		return pg.State{}, err
	}
	defer conn.Close(context.Background())
	return pg.Inspect(ctx, conn)
}

// pgAWait polls cond until it holds, failing the test after limit with
// what cond last said.
func pgAWait(t *testing.T, what string, limit time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, said := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, limit, said)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pgAStop stops a sandbox node cleanly with pg_ctl, as its OS user.
func pgAStop(t *testing.T, sb *sandbox.Sandbox, node string) {
	t.Helper()
	n := pgASandboxNode(t, sb, node)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := fmt.Sprintf("%s stop -D %s -m fast -w -t 30", pgAShellQuote(filepath.Join(sb.BinDir, "pg_ctl")), pgAShellQuote(n.DataDir))
	out, err := transport.Local{User: sb.RunAs}.Run(ctx, cmd)
	if err != nil || out.ExitCode != 0 {
		t.Fatalf("stop %s: %v, exit %d: %s", node, err, out.ExitCode, out.Combined())
	}
}

// pgAPauseReplay pauses replay on a standby and waits until the server
// says it is paused or pausing.
func pgAPauseReplay(t *testing.T, sb *sandbox.Sandbox, node string) {
	t.Helper()
	pgASQL(t, sb, node, "SELECT pg_wal_replay_pause()")
	pgAWait(t, node+" replay paused", 5*time.Second, func() (bool, string) {
		st, err := pgAState(t, sb, node)
		return err == nil && st.ReplayPause, fmt.Sprintf("%+v, %v", st, err)
	})
}

// pgAWriteSome writes on a node (the primary), so WAL moves on.
func pgAWriteSome(t *testing.T, sb *sandbox.Sandbox, node string) {
	t.Helper()
	pgASQL(t, sb, node,
		"CREATE TABLE IF NOT EXISTS pga_canary (id serial PRIMARY KEY, note text)",
		"INSERT INTO pga_canary (note) SELECT 'row ' || g FROM generate_series(1, 100) g")
}

// pgANewValues decodes raw parameters of kind into Values with defaults,
// without building the check, so tests can call New on combinations.
func pgANewValues(t *testing.T, kind string, raw map[string]string) params.Values {
	t.Helper()
	def, ok := Lookup(kind)
	if !ok {
		t.Fatalf("kind %q is not registered", kind)
	}
	rm := map[string]params.Raw{}
	for k, v := range raw {
		rm[k] = params.Raw{Scalar: v}
	}
	vals, probs := params.Decode(def.Params, rm)
	if len(probs) > 0 {
		t.Fatalf("decode %s %v: %v", kind, raw, probs)
	}
	return vals
}

// pgAAddr is a node's address as its connection string gives it.
func pgAAddr(n sandbox.Node) string { return fmt.Sprintf("127.0.0.1:%d", n.Port) }

// pgAHasValue fails the test when a result lacks a value or holds another.
func pgAHasValue(t *testing.T, r Result, key string, want any) {
	t.Helper()
	got, ok := r.Values[key]
	if !ok {
		t.Errorf("values lack %q: %v", key, r.Values)
		return
	}
	if want != nil && fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("values[%q] = %v, want %v", key, got, want)
	}
}

// pgAText is everything a result says, for assertions.
func pgAText(r Result) string { return strings.Join([]string{r.Observed, r.Wanted, r.Detail}, "\n") }
