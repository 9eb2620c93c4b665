package cluster

// The facts a run's steps record about holding clients and what clients
// saw, named once here for the steps that record them and the engine and
// report that read them.
const (
	// PausedByRunFact is what the pooler's pause and resume record: "yes"
	// while this run holds clients, "sent" once a PAUSE has gone out, "no"
	// once they go on.
	PausedByRunFact = "pgbouncer.paused_by_run"

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
