package cluster

import (
	"encoding/json"
	"sort"
	"strings"
)

// The facts a run's steps record about holding clients and what clients
// saw, named once here for the steps that record them and the engine and
// report that read them.
const (
	// PausedByRunFact is what the pooler's pause and resume record: "yes"
	// while this run holds clients, "sent" once a PAUSE has gone out, "no"
	// once they go on.
	PausedByRunFact = "pgbouncer.paused_by_run"

	// RefusedByGuardFact names, for each pooler, the client databases a
	// run's guard closed because no node could be trusted with writes
	// when it had to let the clients go: a Refused as JSON. The run's
	// resume enables them again once the switchover is finished or
	// rolled back, and says so.
	RefusedByGuardFact = "pgbouncer.refused_by_guard"

	// The canary writer's facts: it commits through the clients' path
	// during the switchover and counts what was acknowledged and lost.
	CanaryEndpointFact   = "canary.endpoint"
	CanaryTableFact      = "canary.table"
	CanaryAckedFact      = "canary.acked"
	CanaryErrorsFact     = "canary.errors"
	CanaryWindowMSFact   = "canary.window_ms"
	CanaryWindowFromFact = "canary.window_from"
	CanaryWindowToFact   = "canary.window_to"
	CanaryLostFact       = "canary.lost"
	CanaryLostIDsFact    = "canary.lost_ids"
	CanaryTimelineFact   = "canary.timeline"
)

// Refused is what RefusedByGuardFact holds: pooler name to database names.
type Refused map[string][]string

// String is the fact's value.
func (r Refused) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// Describe is the refusal for a person: "pgbouncer: app; pgb2: app, app_ro".
func (r Refused) Describe() string {
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + ": " + strings.Join(r[n], ", ")
	}
	return strings.Join(parts, "; ")
}
