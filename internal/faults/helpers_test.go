package faults

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/testbin"
)

// cmdTimeout bounds every run of the binary.
const cmdTimeout = 90 * time.Second

// pollTimeout bounds every wait for a journal entry or a cluster state.
const pollTimeout = 10 * time.Second

// journalStall is how long KillWhen and SignalWhen wait for the journal to
// grow: pollTimeout, raised by the cases on hosts of their own, where a
// step's checks over ssh on a loaded machine may take longer.
var journalStall = pollTimeout

// start runs the binary in the background in dir (see testbin.Start),
// killed if it still runs after cmdTimeout.
func start(t *testing.T, dir string, args ...string) *testbin.Proc {
	t.Helper()
	return testbin.Start(t, cmdTimeout, dir, args...)
}

// runBinary runs the binary to completion. A run killed at cmdTimeout is
// returned like any other, for the case to record what it left.
func runBinary(t *testing.T, dir string, args ...string) testbin.Result {
	t.Helper()
	return start(t, dir, args...).Wait()
}

// inspectNode asks one node what it is, bounded.
func inspectNode(ctx context.Context, sb *sandbox.Sandbox, n sandbox.Node) (pg.State, error) {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pg.Connect(cctx, sb.Conninfo(n, "postgres")+" application_name=faults-inspect", 3*time.Second)
	if err != nil {
		return pg.State{}, err
	}
	defer conn.Close(context.Background())
	return pg.Inspect(cctx, conn)
}

// topology is the cluster as the nodes describe it.
type topology struct {
	primary string
	roles   string // e.g. "pg2 primary; pg1, pg3 streaming"
}

// healthy returns the topology when exactly one node is a primary and every
// other node streams from it; otherwise an error saying what each node is.
func healthy(ctx context.Context, sb *sandbox.Sandbox) (topology, error) {
	states := map[string]pg.State{}
	var problems, primaries []string
	for _, n := range sb.Nodes {
		st, err := inspectNode(ctx, sb, n)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", n.Name, err))
			continue
		}
		states[n.Name] = st
		if st.Role == pg.RolePrimary {
			primaries = append(primaries, n.Name)
		}
	}
	if len(primaries) != 1 {
		problems = append(problems, fmt.Sprintf("primaries: %v (want exactly one)", primaries))
		return topology{}, fmt.Errorf("%s; states: %v", strings.Join(problems, "; "), describeStates(states))
	}
	prim, _ := sb.Node(primaries[0])
	var streaming []string
	for _, n := range sb.Nodes {
		st, ok := states[n.Name]
		if !ok || n.Name == prim.Name {
			continue
		}
		if !st.Streaming || !strings.HasSuffix(st.Upstream, fmt.Sprintf(":%d", prim.Port)) {
			problems = append(problems, fmt.Sprintf("%s: %s, streaming=%v from %q (want streaming from %s on port %d)",
				n.Name, st.Role, st.Streaming, st.Upstream, prim.Name, prim.Port))
			continue
		}
		streaming = append(streaming, n.Name)
	}
	if len(problems) > 0 {
		return topology{}, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return topology{primary: prim.Name, roles: fmt.Sprintf("%s primary; %s streaming", prim.Name, strings.Join(streaming, ", "))}, nil
}

func describeStates(states map[string]pg.State) string {
	var names []string
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		st := states[n]
		parts = append(parts, fmt.Sprintf("%s=%s tl%d upstream=%q streaming=%v", n, st.Role, st.Timeline, st.Upstream, st.Streaming))
	}
	return strings.Join(parts, ", ")
}

// waitHealthy polls (≤pollTimeout) until the cluster is healthy.
func waitHealthy(t *testing.T, sb *sandbox.Sandbox) (topology, error) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
		top, err := healthy(ctx, sb)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return top, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeThroughPooler commits one row through PgBouncer, as a client would.
func writeThroughPooler(sb *sandbox.Sandbox) error {
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	defer cancel()
	conn, err := pg.ConnectPooled(ctx, sb.ClientConninfo())
	if err != nil {
		return fmt.Errorf("connect through the pooler: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS faults_probe (at timestamptz NOT NULL DEFAULT clock_timestamp())"); err != nil {
		return fmt.Errorf("create faults_probe through the pooler: %w", err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO faults_probe DEFAULT VALUES"); err != nil {
		return fmt.Errorf("insert through the pooler: %w", err)
	}
	return nil
}
