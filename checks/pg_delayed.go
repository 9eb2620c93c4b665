package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/topology"
)

func init() {
	Register(Definition{
		Kind: "pg.delayed_standbys",
		Doc:  "the candidate does not apply WAL late on purpose (recovery_min_apply_delay); every standby that does is named, as one that streams from the new primary only once its delay allows",
		Params: []params.Spec{
			{Name: "candidate", Type: params.Node, Required: true, Doc: "the standby to promote"},
		},
		New: func(v params.Values) (Check, error) {
			c := &DelayedStandbys{Candidate: v.Node("candidate")}
			if c.Candidate == "" {
				return nil, errors.New("candidate is empty")
			}
			return c, nil
		},
	})
}

// DelayedStandbys fails when the candidate is a delayed standby, and names
// every other one. A standby with recovery_min_apply_delay is a copy kept
// behind on purpose (a way back from a mistaken DELETE): promoting it is
// never what a switchover means. Once repointed to the new primary it
// opens no WAL receiver until its delayed replay reaches the end of the
// WAL it has, so the run repoints it and verifies its configuration, and
// says that it streams later, instead of waiting for it.
type DelayedStandbys struct {
	Candidate string
}

var _ Check = (*DelayedStandbys)(nil)

// Describe implements Check.
func (c *DelayedStandbys) Describe(*cluster.Target) string {
	return fmt.Sprintf("recovery_min_apply_delay on every standby: %s applies WAL without delay, and every delayed standby is named", c.Candidate)
}

// Run implements Check.
func (c *DelayedStandbys) Run(ctx context.Context, t *cluster.Target) Result {
	if _, err := t.Node(c.Candidate); err != nil {
		return Errored(err)
	}
	top := topology.Inspect(ctx, t.Cluster, topology.Options{NodesOnly: true, StateOnly: true,
		Connect: func(ctx context.Context, name string, _ *cluster.Node) (*pgx.Conn, error) {
			return connectNode(ctx, t, name)
		}})
	delays := map[string]pg.State{}
	var order []string
	for _, n := range top.Nodes {
		if n.Reachable() && n.State.Delayed() {
			delays[n.Name] = n.State
			order = append(order, n.Name)
		} else if !n.Reachable() && n.Name == c.Candidate {
			return Errored(fmt.Errorf("%s does not answer: %s", n.Name, n.Error))
		}
	}
	return c.judge(order, delays)
}

func (c *DelayedStandbys) judge(order []string, delays map[string]pg.State) Result {
	values := map[string]any{}
	var others []string
	for _, name := range order {
		values[name+"_apply_delay_seconds"] = delays[name].ApplyDelay.Seconds()
		if name != c.Candidate {
			others = append(others, fmt.Sprintf("%s applies WAL %s late", name, delays[name].ApplyDelayText()))
		}
	}
	later := ""
	if len(others) > 0 {
		later = fmt.Sprintf("%s (recovery_min_apply_delay): never a candidate; after the switch repointed to %s, where it streams once its delay allows, not within this run",
			strings.Join(others, ", "), c.Candidate)
	}
	if st, ok := delays[c.Candidate]; ok {
		r := Failed(fmt.Sprintf("%s applies WAL %s late on purpose (recovery_min_apply_delay): a delayed standby is a copy kept behind, never one to promote; choose another candidate", c.Candidate, st.ApplyDelayText()),
			fmt.Sprintf("%s a standby that applies WAL without delay", c.Candidate))
		r.Detail = later
		r.Values = values
		return r
	}
	r := Passed("no standby applies WAL late (recovery_min_apply_delay)")
	if later != "" {
		r = Passed(later)
	}
	r.Values = values
	return r
}
