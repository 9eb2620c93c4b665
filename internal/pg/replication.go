package pg

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

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

// WALSender is a row of a node's pg_stat_replication: a standby (or another
// client of the replication protocol) streaming from it.
type WALSender struct {
	Application string // application_name: the standby's name in synchronous_standby_names
	State       string // e.g. "streaming", "catchup"
	SyncState   string // "async", "potential", "sync" or "quorum"
}

// Synchronous reports whether a commit may wait for this standby now: it is
// a sync (FIRST) or quorum (ANY) standby.
func (w WALSender) Synchronous() bool { return w.SyncState == "sync" || w.SyncState == "quorum" }

// ReadWALSenders returns the node's pg_stat_replication, ordered by
// application_name.
func ReadWALSenders(ctx context.Context, q Querier) ([]WALSender, error) {
	rows, err := q.Query(ctx, `SELECT coalesce(application_name, ''), coalesce(state, ''), coalesce(sync_state, '')
		FROM pg_stat_replication ORDER BY application_name, pid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []WALSender
	for rows.Next() {
		var w WALSender
		if err := rows.Scan(&w.Application, &w.State, &w.SyncState); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// ReceiverApplicationName returns the application_name a standby's WAL
// receiver gives its upstream (application_name in its primary_conninfo,
// else the fallback), read from pg_stat_wal_receiver; "" when the standby
// does not stream, the caller may not see the connection string, or it
// names none.
func ReceiverApplicationName(ctx context.Context, q Querier) (string, error) {
	var conninfo *string
	if err := q.QueryRow(ctx, `SELECT (SELECT conninfo FROM pg_stat_wal_receiver LIMIT 1)`).Scan(&conninfo); err != nil {
		return "", err
	}
	if conninfo == nil {
		return "", nil
	}
	return ConninfoApplicationName(*conninfo), nil
}

// ConninfoApplicationName is the application_name a connection string
// gives the server (its fallback_application_name when it sets none), or ""
// when it cannot be read.
func ConninfoApplicationName(conninfo string) string {
	cfg, err := pgconn.ParseConfig(conninfo)
	if err != nil {
		return ""
	}
	if app := cfg.RuntimeParams["application_name"]; app != "" {
		return app
	}
	return cfg.RuntimeParams["fallback_application_name"] // pgx keeps keys it does not know as they are
}
