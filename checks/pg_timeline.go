package checks

import (
	"context"
	"errors"
	"fmt"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "pg.timeline",
		Doc:  "a node is on a given timeline, or on the same timeline as another node",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "inventory node to ask"},
			{Name: "is", Type: params.Int,
				Doc: "the timeline it must be on; give this or same_as"},
			{Name: "same_as", Type: params.Node,
				Doc: "a node whose timeline it must share; give this or is"},
		},
		New: newPGTimeline,
	})
}

// PGTimeline passes when a node is on the expected timeline. A promotion
// starts a new timeline: after it, the new primary's timeline is one more
// than before, and a standby on another timeline than its primary cannot
// follow it without a rewind. A standby's timeline is the one it receives,
// or without a receiver the one it replays.
type PGTimeline struct {
	Node   string
	Is     int    // 0 when SameAs is used
	SameAs string // "" when Is is used
}

var _ Check = (*PGTimeline)(nil)

func newPGTimeline(v params.Values) (Check, error) {
	c := &PGTimeline{Node: v.Node("node"), SameAs: v.Node("same_as")}
	hasIs := v.Has("is")
	if c.Node == "" {
		return nil, errors.New("node is empty")
	}
	switch {
	case hasIs && c.SameAs != "":
		return nil, errors.New("give is or same_as, not both")
	case !hasIs && c.SameAs == "":
		return nil, errors.New("give is (a timeline number) or same_as (a node)")
	case c.SameAs == c.Node:
		return nil, fmt.Errorf("same_as names %s itself", c.Node)
	}
	if hasIs {
		is := v.Int("is")
		if is < 1 || is > 1<<32-1 {
			return nil, fmt.Errorf("is %d: a timeline is a number from 1 to 4294967295", is)
		}
		c.Is = int(is)
	}
	return c, nil
}

// Describe implements Check.
func (c *PGTimeline) Describe(*cluster.Target) string {
	if c.SameAs != "" {
		return fmt.Sprintf("%s is on the same timeline as %s", c.Node, c.SameAs)
	}
	return fmt.Sprintf("%s is on timeline %d", c.Node, c.Is)
}

// Run implements Check.
func (c *PGTimeline) Run(ctx context.Context, t *cluster.Target) Result {
	return withWanted(c.run(ctx, t), c, t)
}

// run evaluates the check once; Run fills in what it wanted when it
// ended in an error before saying so.
func (c *PGTimeline) run(ctx context.Context, t *cluster.Target) Result {
	if c.SameAs != "" {
		if _, err := t.Node(c.SameAs); err != nil {
			return Errored(err)
		}
	}
	st, err := inspectNode(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	tl := st.Timeline
	values := map[string]any{"timeline": tl}
	if c.SameAs == "" {
		r := Failed(fmt.Sprintf("%s is on timeline %d", c.Node, tl), fmt.Sprintf("%s on timeline %d", c.Node, c.Is))
		if tl == c.Is {
			r.Status = Pass
		}
		r.Values = values
		return r
	}
	ost, err := inspectNode(ctx, t, c.SameAs)
	if err != nil {
		return Errored(err)
	}
	other := ost.Timeline
	values["same_as_timeline"] = other
	r := Failed(fmt.Sprintf("%s is on timeline %d, %s on timeline %d", c.Node, tl, c.SameAs, other),
		fmt.Sprintf("%s on the same timeline as %s (%d)", c.Node, c.SameAs, other))
	if tl == other {
		r.Status = Pass
	}
	r.Values = values
	return r
}
