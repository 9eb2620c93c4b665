package discover

// What one server says about itself, asked on one connection.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/pg"
)

// facts are what a server says about itself.
type facts struct {
	State       pg.State
	SystemID    string
	VersionText string
	// Started is pg_postmaster_start_time(): with the system identifier,
	// it tells one server from every other.
	Started time.Time
	// DataDir is "" when the role may not read it (superuser or
	// pg_read_all_settings).
	DataDir     string
	ClusterName string
	// OwnApp is the application_name in the server's own primary_conninfo:
	// on a standby, the name it streams under; on a primary, the name it
	// streamed under before it was promoted, when the setting is left.
	OwnApp string
	// ReceiverApp is the name a standby's WAL receiver streams under now
	// (pg_stat_wal_receiver), "" when it does not stream or may not say.
	ReceiverApp string
	Senders     []pg.WALSender
	Slots       []pg.ReplicationSlot
}

// sameServer reports whether two answers came from one server.
func (f *facts) sameServer(g *facts) bool {
	return f.SystemID == g.SystemID && f.Started.Equal(g.Started)
}

// nodeError says which server could not be read, where it was looked for
// and why.
type nodeError struct {
	What string // "the node at 127.0.0.1:5432 (--conninfo)", "pg3 at ... (Patroni's /cluster)"
	Err  error
}

func (e *nodeError) Error() string { return e.What + ": " + e.Err.Error() }
func (e *nodeError) Unwrap() error { return e.Err }

// readNode connects with dial and asks the server what it is. Its errors
// say whether nothing answers there, something that is not PostgreSQL
// answers, or PostgreSQL refuses.
func readNode(ctx context.Context, dial string, timeout time.Duration) (*facts, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*timeout)
	defer cancel()
	conn, err := pg.Connect(ctx, dial, timeout)
	if err != nil {
		return nil, connectProblem(err)
	}
	defer conn.Close(context.Background())
	f := &facts{}
	var dataDir, ownConninfo, clusterName *string
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version'), pg_postmaster_start_time(),
		(SELECT setting FROM pg_settings WHERE name = 'data_directory'),
		(SELECT setting FROM pg_settings WHERE name = 'primary_conninfo'),
		(SELECT setting FROM pg_settings WHERE name = 'cluster_name')`).Scan(&f.VersionText, &f.Started, &dataDir, &ownConninfo, &clusterName)
	if err != nil {
		return nil, notPostgres(err)
	}
	f.DataDir, f.ClusterName = deref(dataDir), deref(clusterName)
	if s := deref(ownConninfo); s != "" {
		f.OwnApp = conninfo.ApplicationName(s)
	}
	if f.State, err = pg.Inspect(ctx, conn); err != nil {
		return nil, fmt.Errorf("ask what it is: %w", err)
	}
	if f.SystemID, err = pg.SystemIdentifier(ctx, conn); err != nil {
		return nil, fmt.Errorf("%w (needs a superuser, or a role granted EXECUTE on pg_control_system())", err)
	}
	if f.State.Role == pg.RoleStandby {
		if f.ReceiverApp, err = pg.ReceiverApplicationName(ctx, conn); err != nil {
			return nil, fmt.Errorf("read pg_stat_wal_receiver: %w", err)
		}
	}
	if f.Senders, err = pg.WALSenders(ctx, conn); err != nil {
		return nil, err
	}
	if f.Slots, err = pg.ReadReplicationSlots(ctx, conn); err != nil {
		return nil, err
	}
	return f, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// errRefused marks a connection PostgreSQL itself refused (a password, a
// pg_hba.conf rule, a database that does not exist): a server answers there.
var errRefused = errors.New("PostgreSQL refused the connection")

// connectProblem says why a connection failed, in the words a DBA checks
// next: nothing listens, the server refused, or what answers is not
// PostgreSQL.
func connectProblem(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if strings.Contains(pe.Message, "unsupported startup parameter") {
			return fmt.Errorf("not a PostgreSQL server: a PgBouncer or another proxy answers there (%s); give a node's own host and port", pe.Message)
		}
		return fmt.Errorf("%w: %s (SQLSTATE %s)", errRefused, pe.Message, pe.Code)
	}
	msg := flatten(err)
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cannot connect (is PostgreSQL running there?): %s", msg)
	}
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "timeout") {
		return fmt.Errorf("no answer in time: nothing answers there (a firewall?), or what answers is not PostgreSQL: %s", msg)
	}
	return fmt.Errorf("no PostgreSQL server answers there (is it the right port?): %s", msg)
}

// flatten is err's message on one line: pgx lists each attempt on a line
// of its own.
func flatten(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n\t", "; ")), " ")
}

// notPostgres says that a server which took the connection did not answer
// as PostgreSQL does (a PgBouncer's admin console, say).
func notPostgres(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code != "" && pe.Code[:2] == "42" {
		return fmt.Errorf("not a PostgreSQL server (it does not know %s): %w", "pg_settings", err)
	}
	return fmt.Errorf("not a PostgreSQL server, or not one that lets this role read its settings: %w", err)
}

// query runs one question on a fresh connection with dial, bounded.
func query(ctx context.Context, dial string, timeout time.Duration, ask func(ctx context.Context, conn *pgx.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, 2*timeout)
	defer cancel()
	conn, err := pg.Connect(ctx, dial, timeout)
	if err != nil {
		return connectProblem(err)
	}
	defer conn.Close(context.Background())
	return ask(ctx, conn)
}
