package checks

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/kinds"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/topology"
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
			return &Topology{Primary: v.Node("primary"), Nodes: v.Nodes("nodes")}, nil
		},
	})
}

// Describe implements Check.
func (c *Topology) Describe(*cluster.Target) string {
	return fmt.Sprintf("%s is the only primary and every standby streams from it", c.Primary)
}

// Run implements Check.
func (c *Topology) Run(ctx context.Context, t *cluster.Target) Result {
	primary, err := t.Node(c.Primary)
	if err != nil {
		return Errored(err)
	}
	names, err := nodeNames(t, c.Nodes)
	if err != nil {
		return Errored(err)
	}
	// A connection string that cannot be read leaves the upstreams unchecked.
	primaryAddrs, _ := conninfoEndpoints(primary.Conninfo)
	top := topology.Inspect(ctx, t.Cluster, topology.Options{Nodes: names, NodesOnly: true, StateOnly: true,
		Connect: func(ctx context.Context, name string, _ *cluster.Node) (*pgx.Conn, error) {
			return connectNode(ctx, t, name)
		}})
	var primaries, problems, seen []string
	var nodes []kinds.TopologyNode // what a report shows as the topology before and after
	for _, n := range top.Nodes {
		name := n.Name
		nodes = append(nodes, topologyValue(n))
		switch {
		case !n.Reachable():
			problems = append(problems, fmt.Sprintf("%s does not answer: %s", name, n.Error))
			seen = append(seen, name+": unreachable")
		case n.Role == topology.RolePrimary:
			primaries = append(primaries, name)
			seen = append(seen, fmt.Sprintf("%s: primary (timeline %d)", name, n.Timeline))
			if name != c.Primary {
				problems = append(problems, fmt.Sprintf("%s is a primary too", name))
			}
		default:
			up := n.Upstream
			// A delayed standby repointed to the primary opens no WAL
			// receiver until its delayed replay reaches the end of the
			// WAL it has: configured for the primary is all there is to
			// see until then.
			waits := !n.Streaming && n.State.Delayed() && n.State.Configured != "" &&
				len(primaryAddrs) > 0 && matchesEndpoint(ctx, n.State.Configured, primaryAddrs)
			switch {
			case waits:
				up = fmt.Sprintf("%s once its delay allows (applies WAL %s late; primary_conninfo names %s)", c.Primary, n.State.ApplyDelayText(), n.State.Configured)
			case !n.Streaming:
				up = "not streaming"
			}
			seen = append(seen, fmt.Sprintf("%s: standby from %s (timeline %d)", name, up, n.Timeline))
			switch {
			case name == c.Primary:
				problems = append(problems, fmt.Sprintf("%s is a standby, not the primary", name))
			case waits:
			case !n.Streaming:
				problems = append(problems, fmt.Sprintf("%s does not stream", name))
			case len(primaryAddrs) > 0 && n.UpstreamNode != c.Primary && !matchesEndpoint(ctx, n.Upstream, primaryAddrs):
				problems = append(problems, fmt.Sprintf("%s streams from %s, not from %s (%s)",
					name, n.Upstream, c.Primary, strings.Join(primaryAddrs, ", ")))
			}
		}
	}
	r := Result{Observed: strings.Join(seen, "; "), Values: map[string]any{"primaries": primaries, kinds.TopologyKey: nodes}}
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

// topologyValue is one node as the check's values carry it to the journal.
func topologyValue(n *topology.Node) kinds.TopologyNode {
	v := kinds.TopologyNode{Name: n.Name, Timeline: n.Timeline}
	switch {
	case !n.Reachable():
		v.Role = "unreachable"
	case n.Role == topology.RolePrimary:
		v.Role = "primary"
	default:
		v.Role = "standby"
		v.Upstream = n.UpstreamNode
		if v.Upstream == "" {
			v.Upstream = n.Upstream
		}
		streaming := n.Streaming
		v.Streaming = &streaming
	}
	return v
}
