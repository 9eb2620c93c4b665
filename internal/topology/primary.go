package topology

import (
	"fmt"
	"sort"
	"strings"

	"github.com/switchover/switchover/internal/pg"
)

// Health is the cluster's state as `switchover status` judges it, and what
// its exit code says. The zero value is unknown.
type Health string

// The states of a cluster, worst last. Their names are stable: they are the
// `health` of `status --json`.
const (
	HealthUnknown Health = ""
	// Healthy: one primary, every standby answers and streams.
	Healthy Health = "healthy"
	// Degraded: one primary, but a node does not answer or a standby does
	// not stream; a switchover's preflight would refuse.
	Degraded Health = "degraded"
	// NoPrimary: no node answers as a primary, or the one that does is
	// not the one every streaming standby leads to.
	NoPrimary Health = "no_primary"
	// TwoPrimaries: more than one node answers as a primary.
	TwoPrimaries Health = "two_primaries"
)

// PrimaryError says why the cluster has no one primary, with what every
// node answered, so that a refusal shows what was seen.
type PrimaryError struct {
	Health Health   // NoPrimary or TwoPrimaries
	Reason string   // the verdict in a few words
	Seen   []string // one line per node
}

func (e *PrimaryError) Error() string {
	return fmt.Sprintf("%s (seen: %s)", e.Reason, strings.Join(e.Seen, "; "))
}

// Primary is the node that is the primary now: the one node out of
// recovery, agreed by the standbys, whose upstreams lead to it. Otherwise
// it returns a *PrimaryError saying what was seen: no primary answers, two
// answer, or a standby streams from a node that does not answer here
// (which may still be a primary on the other side of a partition).
func (t *Topology) Primary() (string, error) {
	seen := t.seen()
	switch len(t.Primaries) {
	case 0:
		return "", &PrimaryError{Health: NoPrimary, Reason: "no node answers as a primary", Seen: seen}
	case 1:
	default:
		ps := append([]string(nil), t.Primaries...)
		sort.Strings(ps)
		return "", &PrimaryError{Health: TwoPrimaries,
			Reason: fmt.Sprintf("%d nodes answer as a primary: %s", len(ps), strings.Join(ps, ", ")), Seen: seen}
	}
	p := t.Primaries[0]
	for _, n := range t.Nodes {
		if !n.Reachable() || n.Role != RoleStandby || !n.Streaming || n.UpstreamNode == "" {
			continue
		}
		if end, why := t.leadsTo(n); end != p && why != "" {
			return "", &PrimaryError{Health: NoPrimary,
				Reason: fmt.Sprintf("%s answers as the primary, but %s streams from %s, %s", p, n.Name, n.UpstreamNode, why), Seen: seen}
		}
	}
	return p, nil
}

// leadsTo follows a streaming standby's upstreams to the node at the top
// of its chain. why is "" when the chain ends where it should (a primary,
// or a standby that answers and is in recovery: a cascade cut off, which
// Health reports); otherwise it says why the chain casts doubt on who the
// primary is.
func (t *Topology) leadsTo(n *Node) (end, why string) {
	cur := n
	for range len(t.Nodes) + 1 {
		up := t.Node(cur.UpstreamNode)
		switch {
		case up == nil:
			return "", ""
		case !up.Reachable():
			return up.Name, fmt.Sprintf("which does not answer here: %s may still be a primary", up.Name)
		case up.Role == RolePrimary:
			return up.Name, ""
		case !up.Streaming || up.UpstreamNode == "":
			return up.Name, ""
		}
		cur = up
	}
	return "", ""
}

// seen is one line per node: what it answered.
func (t *Topology) seen() []string {
	var out []string
	for _, n := range t.Nodes {
		switch {
		case !n.Reachable():
			out = append(out, fmt.Sprintf("%s does not answer: %s", n.Name, n.Error))
		case n.Role == RolePrimary:
			out = append(out, fmt.Sprintf("%s primary on timeline %d", n.Name, n.Timeline))
		case !n.Streaming:
			out = append(out, fmt.Sprintf("%s standby on timeline %d, not streaming", n.Name, n.Timeline))
		default:
			from := n.UpstreamNode
			if from == "" {
				from = n.Upstream
			}
			out = append(out, fmt.Sprintf("%s standby on timeline %d streaming from %s", n.Name, n.Timeline, from))
		}
	}
	return out
}

// Verdict is the cluster's health with the reasons for it, one a line.
type Verdict struct {
	Health  Health   `json:"health"`
	Reasons []string `json:"health_reasons,omitempty"`
}

// Verdict judges the cluster: no primary or two primaries first, then
// every node that does not answer and every standby that does not stream
// from the primary's chain.
func (t *Topology) Verdict() Verdict {
	if _, err := t.Primary(); err != nil {
		pe := err.(*PrimaryError)
		return Verdict{Health: pe.Health, Reasons: []string{pe.Reason}}
	}
	p := t.Primaries[0]
	var reasons []string
	for _, n := range t.Nodes {
		switch {
		case !n.Reachable():
			reasons = append(reasons, fmt.Sprintf("%s does not answer: %s", n.Name, n.Error))
		case n.Role != RoleStandby:
		case !n.Streaming:
			reasons = append(reasons, fmt.Sprintf("%s does not stream", n.Name))
		case n.UpstreamNode == "":
			// an address not in the inventory (a proxy, a VIP): the lag
			// still says whether it keeps up
		default:
			if end, _ := t.leadsTo(n); end != p {
				reasons = append(reasons, fmt.Sprintf("%s streams from %s, which does not stream from %s", n.Name, n.UpstreamNode, p))
			} else if n.UpstreamNode != p {
				reasons = append(reasons, fmt.Sprintf("%s streams from %s, a standby (cascading replication): a switchover's preflight refuses it, every standby must stream from the primary %s", n.Name, n.UpstreamNode, p))
			}
		}
		if n.Role == RolePrimary && n.SynchronousStandbyNames == pg.FenceSyncName {
			reasons = append(reasons, fmt.Sprintf("%s is fenced by a switchover (synchronous_standby_names = '%s'): it acknowledges no commit; `switchover resume` finishes that run, whose pgaf.unfence lifts the fence", n.Name, pg.FenceSyncName))
		}
		if n.Role == RolePrimary && n.FreeSlots != nil && *n.FreeSlots == 0 {
			reasons = append(reasons, fmt.Sprintf("%s has no free connection slot for an ordinary client (max_connections %d, the rest reserved for superusers): new clients are refused", n.Name, n.MaxConnections))
		}
	}
	if why := t.routerReason(); why != "" {
		reasons = append(reasons, why)
	}
	for _, pl := range t.Poolers {
		if pl.Disabled {
			reasons = append(reasons, fmt.Sprintf("pooler %s refuses new clients of %s (disabled)", pl.Name, pl.Database))
		}
	}
	if len(reasons) > 0 {
		return Verdict{Health: Degraded, Reasons: reasons}
	}
	return Verdict{Health: Healthy}
}
