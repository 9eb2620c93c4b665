package steps

import (
	"context"
	"fmt"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "sleep",
		Doc:  "waits a fixed time, e.g. for clients to drain or a manager to notice a change",
		Params: []params.Spec{
			{Name: "for", Type: params.Duration, Required: true, Doc: "how long to wait, e.g. 10s"},
		},
		New: func(v params.Values) (Step, error) {
			return &Sleep{For: v.Duration("for")}, nil
		},
	})
}

// Sleep is a step that waits a fixed time, for the pauses a runbook needs
// where there is nothing to poll.
type Sleep struct {
	For time.Duration
}

var _ Step = (*Sleep)(nil)

// Describe implements Step.
func (s *Sleep) Describe(*cluster.Target) Effect {
	return Effect{Node: "local", Command: "sleep " + s.For.String()}
}

// Apply implements Step. It returns early, with an error wrapping
// ctx.Err(), when ctx is done first.
func (s *Sleep) Apply(ctx context.Context, _ *cluster.Target) error {
	timer := time.NewTimer(s.For)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sleep %s cut off: %w", s.For, ctx.Err())
	}
}
