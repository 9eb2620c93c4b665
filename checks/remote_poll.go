package checks

import (
	"time"

	"github.com/switchover/switchover/internal/kinds"
	"github.com/switchover/switchover/internal/transport"
)

// RemotePoller is a check whose evaluation runs a command on a host, and
// polls on the host itself with within: (see kinds.RemotePoller).
type RemotePoller = kinds.RemotePoller

// Poll is how a RemotePoller polls on the host: until when, and how often.
type Poll = kinds.Poll

// pollCommand is read as one command for the host: polled there until
// done holds (see transport.PollScript) when p is set, read once when p is
// nil.
func pollCommand(p *Poll, read, done string) string {
	if p == nil {
		return read
	}
	return transport.PollScript(read, done, time.Until(p.Until), p.Every)
}
