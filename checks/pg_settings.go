package checks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "pg.settings_match",
		Doc:  "each named setting has the same current value on every node",
		Params: []params.Spec{
			{Name: "nodes", Type: params.Nodes,
				Doc: "inventory nodes to compare; empty means every node of the inventory"},
			{Name: "settings", Type: params.Strings, Required: true,
				Doc: "names of the settings to compare, e.g. [wal_level, max_connections, max_wal_senders]"},
		},
		New: newSettingsMatch,
	})
}

// SettingsMatch passes when every one of Settings has the same value, as
// current_setting() shows it, on every one of Nodes. A standby promoted with
// a smaller max_connections or another wal_level is a different server from
// the one the clients had: this finds the drift before the switch.
type SettingsMatch struct {
	Nodes    []string // empty: every node of the inventory
	Settings []string
}

var _ Check = (*SettingsMatch)(nil)

func newSettingsMatch(v params.Values) (Check, error) {
	c := &SettingsMatch{Nodes: dedupe(v.Nodes("nodes")), Settings: dedupe(v.Strings("settings"))}
	if len(c.Settings) == 0 {
		return nil, errors.New("settings: name at least one setting")
	}
	return c, nil
}

// Describe implements Check.
func (c *SettingsMatch) Describe(*cluster.Target) string {
	if len(c.Settings) == 1 {
		return fmt.Sprintf("%s has the same value on %s", c.Settings[0], describeNodes(c.Nodes))
	}
	return fmt.Sprintf("%s have the same values on %s", strings.Join(c.Settings, ", "), describeNodes(c.Nodes))
}

// settingText renders a setting's value for messages, quoted when it would
// otherwise be unreadable (empty, or with spaces or separators).
func settingText(v string) string {
	if v == "" || strings.ContainsAny(v, " \t,;=\"'") {
		return fmt.Sprintf("%q", v)
	}
	return v
}

// Run implements Check.
func (c *SettingsMatch) Run(ctx context.Context, t *cluster.Target) Result {
	names, err := nodeNames(t, c.Nodes)
	if err != nil {
		return Errored(err)
	}
	// current_setting(name, true) is NULL for an unknown name, so one
	// unknown name does not hide the others.
	answers := askNodes(ctx, t, names, func(ctx context.Context, q pg.Querier) ([]*string, error) {
		rows, err := q.Query(ctx, `SELECT current_setting(s.name, true)
			FROM unnest($1::text[]) WITH ORDINALITY AS s(name, i) ORDER BY s.i`, c.Settings)
		if err != nil {
			return nil, fmt.Errorf("read settings: %s", queryProblem(ctx, err))
		}
		vals, err := pgx.CollectRows(rows, pgx.RowTo[*string])
		if err != nil {
			return nil, fmt.Errorf("read settings: %s", queryProblem(ctx, err))
		}
		if len(vals) != len(c.Settings) {
			return nil, fmt.Errorf("read settings: %d values for %d settings", len(vals), len(c.Settings))
		}
		return vals, nil
	})
	var problems []string
	values := map[string]map[string]string{} // setting → node → value
	unknown := map[string][]string{}         // setting → nodes that do not know it
	for _, a := range answers {
		if a.Err != nil {
			problems = append(problems, a.Err.Error())
			continue
		}
		for i, s := range c.Settings {
			if a.Val[i] == nil {
				unknown[s] = append(unknown[s], a.Node)
				continue
			}
			if values[s] == nil {
				values[s] = map[string]string{}
			}
			values[s][a.Node] = *a.Val[i]
		}
	}
	for _, s := range c.Settings {
		if nodes := unknown[s]; len(nodes) > 0 {
			problems = append(problems, fmt.Sprintf("setting %q is unknown on %s", s, strings.Join(nodes, ", ")))
		}
	}
	if len(problems) > 0 {
		return Result{Status: Error, Observed: strings.Join(problems, "; "), Values: map[string]any{"settings": values}}
	}
	var same, differ, detail []string
	for _, s := range c.Settings {
		groups := groupByValue(names, values[s])
		if len(groups) == 1 {
			same = append(same, fmt.Sprintf("%s=%s", s, settingText(groups[0].value)))
			continue
		}
		parts := make([]string, len(groups))
		for i, g := range groups {
			parts[i] = fmt.Sprintf("%s on %s", settingText(g.value), strings.Join(g.nodes, ", "))
		}
		differ = append(differ, fmt.Sprintf("%s: %s", s, strings.Join(parts, "; ")))
		perNode := make([]string, len(names))
		for i, n := range names {
			perNode[i] = fmt.Sprintf("%s=%s", n, settingText(values[s][n]))
		}
		detail = append(detail, fmt.Sprintf("%s: %s", s, strings.Join(perNode, ", ")))
	}
	r := Result{Values: map[string]any{"settings": values}}
	if len(differ) == 0 {
		r.Status = Pass
		r.Observed = fmt.Sprintf("the same on %s: %s", strings.Join(names, ", "), strings.Join(same, ", "))
		return r
	}
	r.Status = Fail
	r.Observed = fmt.Sprintf("%d of %d settings differ between nodes: %s",
		len(differ), len(c.Settings), strings.Join(differ, " | "))
	r.Wanted = fmt.Sprintf("the same value on %s for %s", strings.Join(names, ", "), strings.Join(c.Settings, ", "))
	r.Detail = strings.Join(detail, "\n")
	return r
}

// valueGroup is the nodes that share one value of a setting.
type valueGroup struct {
	value string
	nodes []string
}

// groupByValue groups nodes by their value, the most common value first
// (ties in the order of first appearance), so the odd node comes last.
func groupByValue(nodes []string, byNode map[string]string) []valueGroup {
	var groups []valueGroup
	for _, n := range nodes {
		v := byNode[n]
		i := slices.IndexFunc(groups, func(g valueGroup) bool { return g.value == v })
		if i < 0 {
			groups = append(groups, valueGroup{value: v})
			i = len(groups) - 1
		}
		groups[i].nodes = append(groups[i].nodes, n)
	}
	slices.SortStableFunc(groups, func(a, b valueGroup) int { return len(b.nodes) - len(a.nodes) })
	return groups
}
