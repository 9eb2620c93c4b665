package checks

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "pg.same_major_version",
		Doc:  "every node runs the same PostgreSQL major version",
		Params: []params.Spec{
			{Name: "nodes", Type: params.Nodes,
				Doc: "inventory nodes to compare; empty means every node of the inventory"},
		},
		New: newSameMajorVersion,
	})
}

// SameMajorVersion passes when every one of Nodes reports the same major
// version (server_version_num / 10000). Streaming replication, and so a
// switchover, works only between servers of one major version; a node left
// on the old one after a half-finished upgrade is found here, not at
// promotion.
type SameMajorVersion struct {
	Nodes []string // empty: every node of the inventory
}

var _ Check = (*SameMajorVersion)(nil)

func newSameMajorVersion(v params.Values) (Check, error) {
	return &SameMajorVersion{Nodes: dedupe(v.Nodes("nodes"))}, nil
}

// Describe implements Check.
func (c *SameMajorVersion) Describe(*cluster.Target) string {
	return fmt.Sprintf("%s run the same PostgreSQL major version", describeNodes(c.Nodes))
}

// Run implements Check.
func (c *SameMajorVersion) Run(ctx context.Context, t *cluster.Target) Result {
	names, err := nodeNames(t, c.Nodes)
	if err != nil {
		return Errored(err)
	}
	answers := askNodes(ctx, t, names, func(ctx context.Context, q pg.Querier) (int, error) {
		var num int
		if err := q.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&num); err != nil {
			return 0, fmt.Errorf("read server_version_num: %s", queryProblem(ctx, err))
		}
		return num, nil
	})
	var seen, problems []string
	versions := map[string]int{}
	var majors []string
	for _, a := range answers {
		if a.Err != nil {
			problems = append(problems, a.Err.Error())
			continue
		}
		versions[a.Node] = a.Val
		seen = append(seen, fmt.Sprintf("%s=%s", a.Node, serverVersion(a.Val)))
		if m := majorVersion(a.Val); !slices.Contains(majors, m) {
			majors = append(majors, m)
		}
	}
	values := map[string]any{"versions": versions}
	if len(problems) > 0 {
		observed := strings.Join(problems, "; ")
		if len(seen) > 0 {
			observed += "; seen: " + strings.Join(seen, ", ")
		}
		return Result{Status: Error, Observed: observed, Values: values}
	}
	observed := "server versions: " + strings.Join(seen, ", ")
	if len(majors) == 1 {
		r := Passed(fmt.Sprintf("%s (major %s on every node)", observed, majors[0]))
		r.Values = values
		return r
	}
	r := Failed(fmt.Sprintf("%s: %d major versions (%s)", observed, len(majors), strings.Join(majors, ", ")),
		fmt.Sprintf("one major version on %s: a standby streams only from a primary of its own major version", strings.Join(names, ", ")))
	r.Values = values
	return r
}
