package checks

import (
	"context"
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/patroni"
)

func init() {
	Register(Definition{
		Kind:    "patroni.leader",
		Manager: cluster.ManagerPatroni,
		Doc:     "every Patroni member that answers shows exactly one leader (the leader lock is held) and it is the node; PostgreSQL agrees: the node is out of recovery and no other member is",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the expected leader (its Patroni member name)"},
		},
		New: func(v params.Values) (Check, error) {
			return &PatroniLeader{Node: v.Node("node")}, nil
		},
	})
	Register(Definition{
		Kind:    "patroni.candidate_ok",
		Manager: cluster.ManagerPatroni,
		Doc:     "the node is a running Patroni replica, not tagged nofailover, with lag under max_lag and Patroni's maximum_lag_on_failover; in synchronous_mode, a synchronous standby",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the switchover candidate (its Patroni member name)"},
			{Name: "max_lag", Type: params.Bytes, Default: "16MB", Doc: "the most lag, in bytes, the candidate may have"},
		},
		New: func(v params.Values) (Check, error) {
			return &PatroniCandidate{Node: v.Node("node"), MaxLag: v.Int("max_lag")}, nil
		},
	})
}

// patroniAPIs names the APIs a check asks, for Describe.
func patroniAPIs(t *cluster.Target) string {
	c, err := patroni.ForTarget(t)
	if err != nil {
		return "patroni's REST API"
	}
	return strings.Join(c.URLs(), ", ")
}

// PatroniLeader passes when the members agree that Node holds the leader
// lock. Each member's API is asked, since a member cut off from the DCS
// can hold an old view; one with exactly one leader, and that leader not
// Node, fails the check. A cluster with no leader has no leader lock: the
// DCS has lost it, or a failover is under way.
type PatroniLeader struct {
	Node string
}

var _ Check = (*PatroniLeader)(nil)

// Describe implements Check.
func (c *PatroniLeader) Describe(t *cluster.Target) string {
	return fmt.Sprintf("GET /cluster at each of %s shows exactly one leader, %s, and PostgreSQL on the members agrees (%s out of recovery, no other member)", patroniAPIs(t), c.Node, c.Node)
}

// Run implements Check.
func (c *PatroniLeader) Run(ctx context.Context, t *cluster.Target) Result {
	client, err := patroni.ForTarget(t)
	if err != nil {
		return Errored(err)
	}
	wanted := fmt.Sprintf("exactly one leader, %s, in every member's view", c.Node)
	var problems, views []string
	answered := 0
	var bad *Result
	var last *patroni.State
	for _, v := range client.ClusterEach(ctx) {
		if v.Err != nil {
			problems = append(problems, v.Err.Error())
			continue
		}
		answered++
		last = v.State
		views = append(views, fmt.Sprintf("%s: %s", v.State.URL, v.State))
		leaders := v.State.Leaders()
		if bad != nil {
			continue
		}
		switch {
		case len(leaders) == 0:
			r := Failed(fmt.Sprintf("GET %s shows no leader: the leader lock is not held (%s)", v.State.URL, v.State), wanted)
			bad = &r
		case len(leaders) > 1:
			r := Failed(fmt.Sprintf("GET %s shows %d leaders (%s)", v.State.URL, len(leaders), v.State), wanted)
			bad = &r
		case leaders[0].Name != c.Node:
			r := Failed(fmt.Sprintf("GET %s shows %s as the leader, not %s (%s)", v.State.URL, leaders[0].Name, c.Node, v.State), wanted)
			bad = &r
		}
	}
	detail := strings.Join(append(views, problems...), "\n")
	if bad != nil {
		bad.Detail = detail
		return *bad
	}
	if answered == 0 {
		return Result{Status: Error, Observed: "no patroni REST API answered, so who leads is unknown: " + strings.Join(problems, "; "), Detail: detail}
	}
	seen, disagree := pgAgrees(ctx, t, last, c.Node)
	detail += "\n" + strings.Join(seen, "\n")
	if disagree != "" {
		r := Failed(disagree, wanted+", and PostgreSQL agreeing")
		r.Detail = detail
		return r
	}
	r := Passed(fmt.Sprintf("%s holds the leader lock in the view of %d of %d members' APIs, and PostgreSQL agrees", c.Node, answered, answered+len(problems)))
	r.Detail = detail
	r.Values = map[string]any{"leader": c.Node, "answered": answered, "unreachable": len(problems)}
	return r
}

// pgAgrees holds Patroni's view against PostgreSQL's (see managerAgrees).
func pgAgrees(ctx context.Context, t *cluster.Target, st *patroni.State, leader string) (seen []string, disagree string) {
	var members []string
	for _, m := range st.Members {
		members = append(members, m.Name)
	}
	return managerAgrees(ctx, t, members, leader, fmt.Sprintf("patroni shows %s as the leader", leader))
}

// PatroniCandidate passes when Patroni would promote Node: a replica that
// runs or streams, not tagged nofailover, whose lag is known and within
// both our bound and Patroni's maximum_lag_on_failover (above which
// Patroni itself refuses the switchover).
type PatroniCandidate struct {
	Node   string
	MaxLag int64
}

var _ Check = (*PatroniCandidate)(nil)

// Describe implements Check.
func (c *PatroniCandidate) Describe(t *cluster.Target) string {
	return fmt.Sprintf("GET /cluster and /config at %s: %s is a running replica, not nofailover, lag at most %s and maximum_lag_on_failover",
		patroniAPIs(t), c.Node, params.FormatBytes(c.MaxLag))
}

// Run implements Check.
func (c *PatroniCandidate) Run(ctx context.Context, t *cluster.Target) Result {
	client, err := patroni.ForTarget(t)
	if err != nil {
		return Errored(err)
	}
	st, err := client.Cluster(ctx)
	if err != nil {
		return Errored(err)
	}
	cfg, err := client.Config(ctx)
	if err != nil {
		return Errored(err)
	}
	bound := min(c.MaxLag, cfg.MaximumLagOnFailover)
	wanted := fmt.Sprintf("%s a replica (running or streaming), not nofailover, lag known and at most %d bytes (max_lag %d, maximum_lag_on_failover %d)",
		c.Node, bound, c.MaxLag, cfg.MaximumLagOnFailover)
	m, ok := st.Member(c.Node)
	if !ok {
		return Failed(fmt.Sprintf("GET %s lists no member %s (%s)", st.URL, c.Node, st), wanted)
	}
	var why string
	switch {
	case !m.Role.IsReplica():
		why = fmt.Sprintf("%s is %s, not a replica", c.Node, m.Role)
	case !m.State.IsUp():
		why = fmt.Sprintf("%s is %s, not running or streaming", c.Node, m.State)
	case bool(m.Tags.NoFailover):
		why = fmt.Sprintf("%s is tagged nofailover: Patroni will not promote it", c.Node)
	case cfg.SynchronousMode && !m.Role.IsSynchronous():
		why = fmt.Sprintf("Patroni runs in synchronous_mode and %s is a %s, not a synchronous standby: Patroni switches over only to one", c.Node, m.Role)
	case !m.Lag.Known:
		why = fmt.Sprintf("%s's lag is unknown", c.Node)
	case m.Lag.Bytes > c.MaxLag:
		why = fmt.Sprintf("%s lags %d bytes, more than max_lag %d", c.Node, m.Lag.Bytes, c.MaxLag)
	case m.Lag.Bytes > cfg.MaximumLagOnFailover:
		why = fmt.Sprintf("%s lags %d bytes, more than Patroni's maximum_lag_on_failover %d", c.Node, m.Lag.Bytes, cfg.MaximumLagOnFailover)
	}
	values := map[string]any{"candidate": c.Node, "role": m.Role, "state": m.State, "lag": m.Lag.String(),
		"timeline": m.Timeline, "nofailover": bool(m.Tags.NoFailover), "noloadbalance": bool(m.Tags.NoLoadBalance),
		"maximum_lag_on_failover": cfg.MaximumLagOnFailover, "synchronous_mode": cfg.SynchronousMode}
	var r Result
	if why != "" {
		r = Failed(fmt.Sprintf("%s (GET %s: %s)", why, st.URL, m), wanted)
	} else {
		r = Passed(fmt.Sprintf("%s is a %s %s with lag %d bytes (at most %d)", c.Node, m.Role, m.State, m.Lag.Bytes, bound))
	}
	if m.Tags.NoLoadBalance {
		r.Detail = fmt.Sprintf("%s is tagged noloadbalance: read-only traffic is kept off it", c.Node)
	}
	r.Values = values
	return r
}
