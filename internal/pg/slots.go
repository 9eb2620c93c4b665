package pg

import (
	"context"
	"fmt"

	"github.com/switchover/switchover/internal/params"
)

// ReplicationSlot is a row of a node's pg_replication_slots, with how far
// its consumer is behind the node's WAL.
type ReplicationSlot struct {
	Name      string
	Type      string // "physical" or "logical"
	Plugin    string // logical: the output plugin
	Database  string // logical: the database it decodes
	Temporary bool
	Active    bool
	// ActiveApplication is the application_name of the WAL sender using
	// the slot, "" when none streams through it.
	ActiveApplication string
	RestartLSN        LSN // 0 when the slot reserves no WAL
	ConfirmedFlushLSN LSN // logical: what the consumer confirmed; 0 otherwise
	// LagBytes is how far the consumer is behind the node's current WAL
	// position (confirmed_flush_lsn for a logical slot, restart_lsn for a
	// physical one); -1 when unknown.
	LagBytes int64
	Failover bool // PostgreSQL 17+: the slot is to be synchronised to standbys
	Synced   bool // PostgreSQL 17+, on a standby: synchronised from its primary
}

// Position is how far the slot's consumer has got: the confirmed flush
// position of a logical slot, the restart position of a physical one.
func (s ReplicationSlot) Position() LSN {
	if s.Type == "logical" && s.ConfirmedFlushLSN > 0 {
		return s.ConfirmedFlushLSN
	}
	return s.RestartLSN
}

// String renders a slot on one line, for check output and reports.
func (s ReplicationSlot) String() string {
	state := "inactive"
	if s.Active {
		state = "active"
		if s.ActiveApplication != "" {
			state += fmt.Sprintf(" (%s)", s.ActiveApplication)
		}
	}
	out := fmt.Sprintf("%s (%s", s.Name, s.Type)
	if s.Type == "logical" {
		out += fmt.Sprintf(", %s on %s", s.Plugin, s.Database)
	}
	if s.Temporary {
		out += ", temporary"
	}
	out += ", " + state
	switch {
	case s.LagBytes >= 0 && s.Type == "logical":
		out += fmt.Sprintf(", confirmed %s, %s behind", s.ConfirmedFlushLSN, params.FormatBytes(s.LagBytes))
	case s.LagBytes >= 0:
		out += fmt.Sprintf(", restart_lsn %s, %s behind", s.RestartLSN, params.FormatBytes(s.LagBytes))
	case s.Type == "logical":
		out += ", nothing confirmed"
	default:
		out += ", reserves no WAL"
	}
	if s.Failover {
		out += ", failover"
	}
	if s.Synced {
		out += ", synced"
	}
	return out + ")"
}

// ReadReplicationSlots returns the node's replication slots, ordered by
// name. On PostgreSQL 17 and later it also reads failover and synced.
func ReadReplicationSlots(ctx context.Context, q Querier) ([]ReplicationSlot, error) {
	var version int
	if err := q.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		return nil, err
	}
	failover := "false, false"
	if version >= 170000 {
		failover = "s.failover, s.synced"
	}
	rows, err := q.Query(ctx, `WITH here AS (
  SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END AS lsn)
SELECT s.slot_name::text, s.slot_type, coalesce(s.plugin::text, ''), coalesce(s.database::text, ''),
       s.temporary, s.active, coalesce(r.application_name, ''),
       coalesce(s.restart_lsn::text, ''), coalesce(s.confirmed_flush_lsn::text, ''),
       coalesce(pg_wal_lsn_diff(here.lsn, CASE WHEN s.slot_type = 'logical' THEN s.confirmed_flush_lsn ELSE s.restart_lsn END), -1)::bigint,
       `+failover+`
FROM pg_replication_slots s CROSS JOIN here
LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
ORDER BY s.slot_name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ReplicationSlot
	for rows.Next() {
		var s ReplicationSlot
		var restart, confirmed string
		if err := rows.Scan(&s.Name, &s.Type, &s.Plugin, &s.Database, &s.Temporary, &s.Active, &s.ActiveApplication,
			&restart, &confirmed, &s.LagBytes, &s.Failover, &s.Synced); err != nil {
			return nil, err
		}
		if restart != "" {
			s.RestartLSN, _ = ParseLSN(restart)
		}
		if confirmed != "" {
			s.ConfirmedFlushLSN, _ = ParseLSN(confirmed)
		}
		if s.LagBytes < 0 {
			s.LagBytes = -1
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
