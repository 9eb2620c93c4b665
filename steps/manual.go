package steps

import (
	"context"
	"errors"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "manual",
		Doc:  "asks the operator to confirm a checklist item was done by hand",
		Params: []params.Spec{
			{Name: "text", Type: params.String, Required: true, Doc: `what the operator must confirm, e.g. "announce the window in #ops"`},
		},
		New: func(v params.Values) (Step, error) {
			text := strings.TrimSpace(v.String("text"))
			if text == "" {
				return nil, errors.New(`parameter "text" is empty`)
			}
			return &ChecklistItem{Text: text}, nil
		},
	})
}

// ChecklistItem is a step done by a person, not by the tool: the run stops
// until the operator confirms it, so the runbook records who did what and
// when even for the parts that cannot be automated.
type ChecklistItem struct {
	Text string
}

var _ Manual = (*ChecklistItem)(nil)

// Checklist implements Manual.
func (c *ChecklistItem) Checklist() string { return c.Text }

// Describe implements Step.
func (c *ChecklistItem) Describe(*cluster.Target) Effect {
	return Effect{Node: "operator", Command: c.Text, Changes: "nothing by itself; an operator confirms it was done"}
}

// Apply implements Step and does nothing: the engine asks the operator to
// confirm Checklist() instead of calling Apply (in scripted mode only
// --approve STEP confirms it), so reaching Apply changes nothing.
func (c *ChecklistItem) Apply(context.Context, *cluster.Target) error { return nil }
