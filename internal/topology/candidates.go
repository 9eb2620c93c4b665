package topology

import (
	"fmt"
	"sort"
)

// Choice is a standby rated as the candidate of a switchover.
type Choice struct {
	Node     string
	Lag      int64 // bytes behind the primary
	Timeline int
	Healthy  bool   // streams from the primary, no session would block it
	Why      string // what makes it unhealthy, or how healthy it is
}

// Candidates rates every node but the primary as the candidate: healthy
// ones first, the most caught-up first. It needs the one primary Primary
// finds.
func (t *Topology) Candidates() (primary string, out []Choice, err error) {
	primary, err = t.Primary()
	if err != nil {
		return "", nil, err
	}
	for _, n := range t.Nodes {
		if n.Name == primary {
			continue
		}
		c := Choice{Node: n.Name, Timeline: n.Timeline}
		if n.LagBytes != nil {
			// A standby read a moment after the primary can be past the
			// position the primary gave: it is not behind at all.
			c.Lag = max(*n.LagBytes, 0)
		}
		switch {
		case !n.Reachable():
			c.Why = "does not answer: " + n.Error
		case n.Role != RoleStandby:
			c.Why = "is not a standby"
		case !n.Streaming:
			c.Why = "does not stream"
		case n.UpstreamNode != primary:
			c.Why = fmt.Sprintf("streams from %s, not from %s", n.Upstream, primary)
		case n.State.Delayed():
			c.Why = fmt.Sprintf("applies WAL %s late (recovery_min_apply_delay): never a candidate", n.State.ApplyDelayText())
		case n.Blocking > 0:
			c.Why = fmt.Sprintf("%d session(s) would block it", n.Blocking)
		default:
			c.Healthy = true
			c.Why = fmt.Sprintf("streams from %s, %d bytes behind, timeline %d, no blocking session", primary, c.Lag, c.Timeline)
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Healthy != out[j].Healthy {
			return out[i].Healthy
		}
		return out[i].Lag < out[j].Lag
	})
	return primary, out, nil
}
