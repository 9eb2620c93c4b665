// Package pg is switchover's access to PostgreSQL: connections with safe
// defaults, log sequence numbers, and the one inspection of a node (role,
// timeline, upstream, positions) that checks, steps and the sandbox share.
package pg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	conninfopkg "github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/pgbouncer"
)

// Querier is the part of a connection that checks and steps use, so their
// logic can be tested against a fake and run against *pgx.Conn.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

var _ Querier = (*pgx.Conn)(nil)

// DefaultConnectTimeout bounds a connection attempt when the connection
// string does not.
const DefaultConnectTimeout = 5 * time.Second

// Connect opens a connection to conninfo, a libpq keyword/value string or
// URL. Unless the string says otherwise: the connect timeout is bounded,
// the session is named "switchover" in pg_stat_activity, and every
// statement is bounded by statementTimeout (0 leaves the server's default).
func Connect(ctx context.Context, conninfo string, statementTimeout time.Duration) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(conninfopkg.Effective(conninfo))
	if err != nil {
		return nil, fmt.Errorf("connection string: %w", scrub(err))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "switchover"
	}
	if statementTimeout > 0 {
		cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(statementTimeout.Milliseconds(), 10)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, scrub(err)
	}
	return conn, nil
}

// ConnectPooled opens a client connection through a connection pooler in
// transaction mode: no statement cache (server connections are shared, so a
// prepared statement may already exist on one, or be missing), and no
// statement_timeout startup parameter (PgBouncer refuses it); the caller's
// context bounds each query instead.
func ConnectPooled(ctx context.Context, conninfo string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(conninfopkg.Effective(conninfo))
	if err != nil {
		return nil, fmt.Errorf("connection string: %w", scrub(err))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.StatementCacheCapacity, cfg.DescriptionCacheCapacity = 0, 0
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, scrub(err)
	}
	return conn, nil
}

// ConnectAdmin opens a connection to a PgBouncer admin console (see
// pgbouncer.Dial), for callers that send their own commands; the others
// read and act through a pgbouncer.Client.
func ConnectAdmin(ctx context.Context, conninfo string) (*pgx.Conn, error) {
	return pgbouncer.Dial(ctx, conninfo)
}

// scrub keeps a connection error's message short and free of the
// connection string (pgx quotes parts of it, and masks only the password
// fields it recognises).
func scrub(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return err
	}
	var ce *pgconn.ParseConfigError
	if errors.As(err, &ce) {
		return conninfopkg.Problem("", ce)
	}
	return err
}

// CheckConninfo reports whether conninfo resolves, without connecting, to
// exactly one server (see conninfo.Resolve). The error says what is wrong
// and never repeats the string, which may hold a password.
func CheckConninfo(conninfo string) error {
	_, err := conninfopkg.Resolve(conninfo)
	return err
}

// LSN is a PostgreSQL write-ahead log position.
type LSN uint64

// ParseLSN reads the text form, e.g. 0/3000148.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("%q is not an LSN (want X/Y in hex)", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not an LSN (want X/Y in hex)", s)
	}
	return LSN(h<<32 | l), nil
}

// String renders the text form.
func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&0xFFFFFFFF) }

// Role is a node's role. The zero value is unknown.
type Role string

// The roles of a node.
const (
	RolePrimary Role = "primary"
	RoleStandby Role = "standby"
)

// State is what a node says about itself.
type State struct {
	Role        Role
	Version     int // server_version_num, e.g. 150008
	Timeline    int
	CurrentLSN  LSN    // primary: pg_current_wal_lsn()
	ReceiveLSN  LSN    // standby: last WAL received and flushed
	ReplayLSN   LSN    // standby: last WAL replayed
	Upstream    string // standby: host:port it streams from ("" when not streaming)
	Streaming   bool   // standby: the WAL receiver is streaming
	SlotName    string // standby: the slot it streams through
	ReplayPause bool   // standby: replay is paused
	// ApplyDelay is a standby's recovery_min_apply_delay: it replays WAL
	// that late, and once its WAL receiver stops (a new upstream) opens
	// none again until its delayed replay reaches the end of the WAL it
	// has. Such a standby is never a candidate.
	ApplyDelay time.Duration
	// Configured is the host:port a standby's primary_conninfo names: where
	// it will stream from, whether or not it streams now ("" when unset,
	// unreadable without pg_read_all_settings, or not one address). The
	// rest of the setting, a password among it, is not kept.
	Configured string
}

// Delayed reports whether a standby applies WAL late on purpose.
func (s State) Delayed() bool { return s.ApplyDelay > 0 }

// ApplyDelayText is the delay as a DBA writes it: 1h, 30m, 1h30m, 90s.
func (s State) ApplyDelayText() string {
	t := s.ApplyDelay.String()
	if strings.HasSuffix(t, "m0s") {
		t = strings.TrimSuffix(t, "0s")
	}
	if strings.HasSuffix(t, "h0m") {
		t = strings.TrimSuffix(t, "0m")
	}
	return t
}

// Major returns the major version, e.g. 15.
func (s State) Major() int { return s.Version / 10000 }

// InspectReplay asks a node what a catch-up poll needs, in one light
// query: whether it is in recovery and, on a standby, its receive and
// replay positions and whether replay is paused. On a primary it is
// Inspect. Inspect's standby query reads pg_settings twice and the control
// file, some 1 ms on an idle machine and several on one busy with a
// shutdown; this one reads shared memory only, so a poll every millisecond
// costs the node nothing.
func InspectReplay(ctx context.Context, q Querier) (State, error) {
	var st State
	var recovery, paused bool
	var recv, replay *string
	err := q.QueryRow(ctx, `SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
		CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END`).Scan(&recovery, &recv, &replay, &paused)
	if err != nil {
		return st, err
	}
	if !recovery {
		return Inspect(ctx, q)
	}
	st.Role = RoleStandby
	st.ReplayPause = paused
	if recv != nil {
		st.ReceiveLSN, _ = ParseLSN(*recv)
	}
	if replay != nil {
		st.ReplayLSN, _ = ParseLSN(*replay)
	}
	return st, nil
}

// Inspect asks a node what it is. On a standby, the timeline is the one it
// receives (or, with no receiver, the one it replays).
func Inspect(ctx context.Context, q Querier) (State, error) {
	var st State
	var recovery bool
	if err := q.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_setting('server_version_num')::int`).Scan(&recovery, &st.Version); err != nil {
		return st, err
	}
	if !recovery {
		st.Role = RolePrimary
		var lsn string
		err := q.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text,
			('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int`).Scan(&lsn, &st.Timeline)
		if err != nil {
			return st, err
		}
		st.CurrentLSN, err = ParseLSN(lsn)
		return st, err
	}
	st.Role = RoleStandby
	var recv, replay, host, status, slot, configured *string
	var port, rtli *int
	var delayMS *int64
	// pg_settings hides primary_conninfo's row from a role that may not
	// read it, where current_setting() would fail the whole query.
	err := q.QueryRow(ctx, `SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
			r.sender_host, r.sender_port, r.status, r.received_tli, r.slot_name,
			pg_is_wal_replay_paused(), (SELECT timeline_id FROM pg_control_checkpoint()),
			(SELECT setting::bigint FROM pg_settings WHERE name = 'recovery_min_apply_delay'),
			(SELECT setting FROM pg_settings WHERE name = 'primary_conninfo')
		FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver r ON true`).Scan(
		&recv, &replay, &host, &port, &status, &rtli, &slot, &st.ReplayPause, &st.Timeline, &delayMS, &configured)
	if err != nil {
		return st, err
	}
	if delayMS != nil {
		st.ApplyDelay = time.Duration(*delayMS) * time.Millisecond
	}
	if configured != nil && *configured != "" {
		if r, err := conninfopkg.Resolve(*configured); err == nil {
			st.Configured = r.Address()
		}
	}
	if recv != nil {
		st.ReceiveLSN, _ = ParseLSN(*recv)
	}
	if replay != nil {
		st.ReplayLSN, _ = ParseLSN(*replay)
	}
	if status != nil && *status == "streaming" {
		st.Streaming = true
	}
	if host != nil && port != nil {
		st.Upstream = fmt.Sprintf("%s:%d", *host, *port)
	}
	if rtli != nil && *rtli > 0 {
		st.Timeline = *rtli
	}
	if slot != nil {
		st.SlotName = *slot
	}
	return st, nil
}

// IsLoopback reports whether host names this machine's loopback interface,
// so that 127.0.0.1, ::1 and localhost count as one place.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
