package checks

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
)

// managerAgrees holds a cluster manager's view against what PostgreSQL
// itself says: the node the manager names primary must be out of recovery,
// and no other member may be. A manager's view comes from its own store and
// loop; a server promoted or started behind its back shows only in
// PostgreSQL, and two servers taking writes is the worst a switchover can
// leave. Members the inventory does not list cannot be asked; one that
// does not answer is noted, not failed (quorum.reachable is the check for
// that). names says, for a sentence, how the manager names primary
// ("patroni shows pg1 as the leader").
func managerAgrees(ctx context.Context, t *cluster.Target, members []string, primary, names string) (seen []string, disagree string) {
	var asked []string
	for _, m := range members {
		if t != nil && t.Cluster != nil && t.Cluster.Nodes[m] != nil {
			asked = append(asked, m)
		} else {
			seen = append(seen, fmt.Sprintf("PostgreSQL on %s not asked: the inventory has no node %s", m, m))
		}
	}
	var primaries []string
	for _, a := range askNodes(ctx, t, asked, pg.Inspect) {
		switch {
		case a.Err != nil && a.Node == primary:
			return append(seen, a.Err.Error()), fmt.Sprintf("%s, but PostgreSQL on it does not answer: %v", names, a.Err)
		case a.Err != nil:
			seen = append(seen, fmt.Sprintf("PostgreSQL on %s does not answer: %v", a.Node, a.Err))
		case a.Val.Role == pg.RolePrimary:
			primaries = append(primaries, a.Node)
			seen = append(seen, fmt.Sprintf("PostgreSQL on %s: primary, timeline %d", a.Node, a.Val.Timeline))
		default:
			seen = append(seen, fmt.Sprintf("PostgreSQL on %s: in recovery, timeline %d", a.Node, a.Val.Timeline))
			if a.Node == primary {
				disagree = fmt.Sprintf("%s, but PostgreSQL on %s is in recovery (a standby)", names, primary)
			}
		}
	}
	others := slices.DeleteFunc(slices.Clone(primaries), func(n string) bool { return n == primary })
	switch {
	case disagree != "" && len(others) > 0:
		return seen, fmt.Sprintf("%s, while PostgreSQL on %s is out of recovery", disagree, strings.Join(others, ", "))
	case len(others) > 0:
		return seen, fmt.Sprintf("%s, but PostgreSQL on %s is out of recovery too: more than one server takes writes", names, strings.Join(others, ", "))
	}
	return seen, disagree
}
