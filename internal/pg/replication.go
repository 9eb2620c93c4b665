package pg

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/pgbouncer"
	"github.com/switchover/switchover/internal/transport"
)

// ReplayDelay is how long a standby's replay is behind: the age of the
// last transaction it replayed while it has received WAL it has not yet
// replayed, and 0 when it has replayed all it received. ok is false when
// it cannot tell (nothing replayed since it started).
func ReplayDelay(ctx context.Context, q Querier) (d time.Duration, ok bool, err error) {
	var secs *float64
	err = q.QueryRow(ctx, `SELECT CASE
		WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
		ELSE extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) END::float8`).Scan(&secs)
	if err != nil || secs == nil {
		return 0, false, err
	}
	return time.Duration(max(*secs, 0) * float64(time.Second)), true, nil
}

// SynchronousStandbyNames reads synchronous_standby_names as the server
// has it: "" when synchronous replication is off.
func SynchronousStandbyNames(ctx context.Context, q Querier) (string, error) {
	var s string
	err := q.QueryRow(ctx, `SELECT current_setting('synchronous_standby_names')`).Scan(&s)
	return s, err
}

// WALSender is a row of a primary's (or cascading standby's)
// pg_stat_replication: one standby streaming from it.
type WALSender struct {
	PID          int
	App          string // application_name the standby connected with
	State        string // streaming, catchup, ...
	SyncState    string // async, potential, sync, quorum
	SyncPriority int
	SlotName     string // the slot it streams through, "" for none
	// ClientAddr is the address the standby connects from ("" over a Unix
	// socket); ClientHostname is its name, when the server has
	// log_hostname on.
	ClientAddr     string
	ClientHostname string
	// Logical is a logical WAL sender (a subscription or a decoding
	// client, connected to a database), not a standby.
	Logical bool
	// ReplayLag is pg_stat_replication.replay_lag: how long the standby's
	// replay took to confirm the last WAL flushed here; nil when the
	// server has no recent measure (an idle standby reports none).
	ReplayLag *time.Duration
}

// WALSenders reads pg_stat_replication, each sender with the slot it
// streams through.
func WALSenders(ctx context.Context, q Querier) ([]WALSender, error) {
	rows, err := q.Query(ctx, `SELECT r.pid, coalesce(r.application_name, ''), coalesce(r.state, ''),
		coalesce(r.sync_state, ''), coalesce(r.sync_priority, 0), coalesce(s.slot_name::text, ''),
		extract(epoch FROM r.replay_lag)::float8,
		coalesce(host(r.client_addr), ''), coalesce(r.client_hostname, ''), a.datname IS NOT NULL
		FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid
		LEFT JOIN pg_stat_activity a ON a.pid = r.pid
		ORDER BY r.application_name, r.pid`)
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_replication: %w", err)
	}
	defer rows.Close()
	var out []WALSender
	for rows.Next() {
		var w WALSender
		var lag *float64
		if err := rows.Scan(&w.PID, &w.App, &w.State, &w.SyncState, &w.SyncPriority, &w.SlotName, &lag,
			&w.ClientAddr, &w.ClientHostname, &w.Logical); err != nil {
			return nil, fmt.Errorf("read pg_stat_replication: %w", err)
		}
		if lag != nil {
			d := time.Duration(*lag * float64(time.Second))
			w.ReplayLag = &d
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pg_stat_replication: %w", err)
	}
	return out, nil
}

// PoolerDatabase is one [databases] entry as PgBouncer's SHOW DATABASES
// shows it: pgbouncer.Database, under the name callers not yet moved to
// the pgbouncer client know.
type PoolerDatabase = pgbouncer.Database

// ShowDatabases reads a PgBouncer admin console's SHOW DATABASES through
// the pgbouncer client, on a connection q the caller opened.
func ShowDatabases(ctx context.Context, q Querier) ([]PoolerDatabase, error) {
	return pgbouncer.New(q).Databases(ctx)
}

// Synchronous reports whether a commit may wait for this standby now: it is
// a sync (FIRST) or quorum (ANY) standby.
func (w WALSender) Synchronous() bool { return w.SyncState == "sync" || w.SyncState == "quorum" }

// Setting is a server setting as pg_settings shows it, with where its value
// comes from, so that a change can be undone exactly.
type Setting struct {
	Name       string
	Value      string
	Source     string // e.g. "default", "configuration file"
	SourceFile string // "" when unknown or not from a file
}

// FromAutoConf reports whether the value was set with ALTER SYSTEM (it
// lives in postgresql.auto.conf).
func (s Setting) FromAutoConf() bool { return strings.HasSuffix(s.SourceFile, "postgresql.auto.conf") }

// ReadSetting returns a setting of the node q is connected to.
func ReadSetting(ctx context.Context, q Querier, name string) (Setting, error) {
	s := Setting{Name: name}
	var file *string
	err := q.QueryRow(ctx, `SELECT setting, source, sourcefile FROM pg_settings WHERE name = $1`, name).
		Scan(&s.Value, &s.Source, &file)
	if file != nil {
		s.SourceFile = *file
	}
	return s, err
}

// ReceiverApplicationName returns the application_name a standby's WAL
// receiver gives its upstream (application_name in its primary_conninfo,
// else the fallback), read from pg_stat_wal_receiver; "" when the standby
// does not stream, the caller may not see the connection string, or it
// names none.
func ReceiverApplicationName(ctx context.Context, q Querier) (string, error) {
	var ci *string
	if err := q.QueryRow(ctx, `SELECT (SELECT conninfo FROM pg_stat_wal_receiver LIMIT 1)`).Scan(&ci); err != nil {
		return "", err
	}
	if ci == nil {
		return "", nil
	}
	return conninfo.ApplicationName(*ci), nil
}

// ReplicationProbe is the shell command that opens a replication
// connection with conninfo, as a WAL receiver would, and asks
// IDENTIFY_SYSTEM: it prints "system identifier|timeline|position|" and
// exits 0, or prints the server's refusal. psql is taken from binDir
// ("" for the PATH); it never waits for a password prompt, and gives up
// connecting after 5s. conninfo must not hold a password: the command
// line is visible to every process on the host.
func ReplicationProbe(binDir, conninfo string) string {
	psql := "psql"
	if binDir != "" {
		psql = strings.TrimRight(binDir, "/") + "/psql"
	}
	return fmt.Sprintf("PGCONNECT_TIMEOUT=5 %s -X -A -t -w -d %s -c IDENTIFY_SYSTEM",
		transport.ShellQuote(psql), transport.ShellQuote(conninfo+" replication=true"))
}
