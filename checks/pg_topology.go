package checks

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

// Topology checks the shape of the whole cluster: exactly one primary, the
// expected one, and every other node a standby streaming from it. Before a
// switchover it catches a second writable node (an old primary restarted
// without standby.signal); after it, it proves the switch is complete.
type Topology struct {
	Primary string
	Nodes   []string
}

var _ Check = (*Topology)(nil)

func init() {
	Register(Definition{
		Kind: "pg.topology",
		Doc:  "exactly one primary, the given node, and every other node a standby streaming from it",
		Params: []params.Spec{
			{Name: "primary", Type: params.Node, Required: true, Doc: "the node that must be the only primary"},
			{Name: "nodes", Type: params.Nodes, Doc: "the nodes to look at; empty means every node of the inventory"},
		},
		New: func(v params.Values) (Check, error) {
			return &Topology{Primary: v.String("primary"), Nodes: v.Strings("nodes")}, nil
		},
	})
}

// Describe implements Check.
func (c *Topology) Describe(*cluster.Target) string {
	return fmt.Sprintf("%s is the only primary and every standby streams from it", c.Primary)
}

// Run implements Check.
func (c *Topology) Run(ctx context.Context, t *cluster.Target) Result {
	names := c.Nodes
	if len(names) == 0 {
		names = t.Cluster.NodeNames()
	}
	primary, ok := t.Cluster.Nodes[c.Primary]
	if !ok {
		return Errored(fmt.Errorf("node %q is not in the inventory", c.Primary))
	}
	states := make([]pg.State, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			states[i], errs[i] = inspectNode(ctx, t, name)
		}()
	}
	wg.Wait()
	primaryAddr := hostPort(primary.Conninfo)
	var primaries, problems, seen []string
	for i, name := range names {
		st, err := states[i], errs[i]
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s does not answer: %v", name, err))
			seen = append(seen, name+": unreachable")
		case st.Role == pg.RolePrimary:
			primaries = append(primaries, name)
			seen = append(seen, fmt.Sprintf("%s: primary (timeline %d)", name, st.Timeline))
			if name != c.Primary {
				problems = append(problems, fmt.Sprintf("%s is a primary too", name))
			}
		default:
			up := st.Upstream
			if !st.Streaming {
				up = "not streaming"
			}
			seen = append(seen, fmt.Sprintf("%s: standby from %s (timeline %d)", name, up, st.Timeline))
			switch {
			case name == c.Primary:
				problems = append(problems, fmt.Sprintf("%s is a standby, not the primary", name))
			case !st.Streaming:
				problems = append(problems, fmt.Sprintf("%s does not stream", name))
			case primaryAddr != "" && !sameAddr(st.Upstream, primaryAddr):
				problems = append(problems, fmt.Sprintf("%s streams from %s, not from %s (%s)", name, st.Upstream, c.Primary, primaryAddr))
			}
		}
	}
	r := Result{Observed: strings.Join(seen, "; "), Values: map[string]any{"primaries": primaries}}
	if len(problems) == 0 {
		r.Status = Pass
		return r
	}
	r.Status = Fail
	if len(primaries) > 1 {
		sort.Strings(primaries)
		r.Observed = fmt.Sprintf("%d primaries: %s; %s", len(primaries), strings.Join(primaries, " and "), r.Observed)
	}
	r.Wanted = fmt.Sprintf("%s the only primary, every other node streaming from it", c.Primary)
	r.Detail = strings.Join(problems, "\n")
	return r
}

// inspectNode connects to a node of the inventory and inspects it.
func inspectNode(ctx context.Context, t *cluster.Target, name string) (pg.State, error) {
	n, ok := t.Cluster.Nodes[name]
	if !ok {
		return pg.State{}, fmt.Errorf("node %q is not in the inventory", name)
	}
	conn, err := pg.Connect(ctx, n.Conninfo, timeLeft(ctx))
	if err != nil {
		return pg.State{}, err
	}
	defer conn.Close(context.Background())
	return pg.Inspect(ctx, conn)
}

// timeLeft is the statement timeout for a check's queries: what is left of
// its deadline, or 5s.
func timeLeft(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		if left := time.Until(d); left > 0 {
			return left
		}
		return time.Millisecond
	}
	return 5 * time.Second
}

// hostPort returns host:port of a connection string ("" when it has none).
func hostPort(conninfo string) string {
	cfg, err := pgconn.ParseConfig(conninfo)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
}

// sameAddr compares host:port pairs, taking localhost for 127.0.0.1.
func sameAddr(a, b string) bool {
	norm := func(s string) string { return strings.Replace(s, "localhost:", "127.0.0.1:", 1) }
	return norm(a) == norm(b)
}
