package checks

import (
	"context"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/transport"
)

// RemotePoller is a check whose evaluation runs a command on a host. Polled
// with within:, such a check would send one command per poll: over ssh one
// session and its round trips each time, several times the interval a
// runbook asks for. A RemotePoller instead sends one command that polls on
// the host itself (transport.PollScript) until what it reads there would
// pass, or until the poll's deadline, and decides from the last reading as
// Run decides from its one. The engine uses it when a check has within:;
// without within:, Run evaluates once.
type RemotePoller interface {
	Check
	// PollRemote evaluates the check as Run does, except that a command it
	// runs on a host reads again on the host, every p.Every, until its
	// reading passes or p.Until; the verdict comes from the last reading,
	// with the same statuses and messages as Run's. A check whose
	// evaluation did not reach the host (it concluded from a server that
	// answered, say) returns at once, and the engine polls again as for any
	// check.
	PollRemote(ctx context.Context, t *cluster.Target, p Poll) Result
}

// Poll is how a RemotePoller polls on the host: until when, and how often.
type Poll struct {
	Until time.Time     // no new reading starts after it
	Every time.Duration // between readings
}

// command is read as one command for the host: polled there until done
// holds (see transport.PollScript) when p is set, read once when p is nil.
func (p *Poll) command(read, done string) string {
	if p == nil {
		return read
	}
	return transport.PollScript(read, done, time.Until(p.Until), p.Every)
}
