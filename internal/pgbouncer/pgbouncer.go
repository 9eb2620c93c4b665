// Package pgbouncer is switchover's one client of PgBouncer's admin
// console: it opens the connection (simple protocol only, which is all the
// console speaks), reads SHOW DATABASES, SHOW USERS, SHOW CONFIG and
// SHOW STATE into typed values, parsed here and nowhere else, and sends
// the commands a switchover needs (PAUSE, RESUME, KILL, DISABLE, ENABLE,
// RELOAD). Checks, steps and the topology read the pooler through it, so
// that they all see the same columns the same way.
package pgbouncer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/conninfo"
)

// ConnectTimeout bounds a connection attempt to an admin console when the
// connection string does not.
const ConnectTimeout = 5 * time.Second

// Console is the part of a connection the client uses, so that a caller
// holding its own connection (a *pgx.Conn from Dial) can read through the
// client, and the parsing can be tested without a server.
type Console interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

var _ Console = (*pgx.Conn)(nil)

// Dial opens a connection to a PgBouncer admin console, which speaks only
// the simple query protocol: no prepared statements, no statement cache.
// It is for callers that send their own commands (tests); the others use
// Connect.
func Dial(ctx context.Context, s string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(conninfo.Effective(s))
	if err != nil {
		return nil, fmt.Errorf("connection string: %w", conninfo.Problem("", err))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = ConnectTimeout
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	cfg.StatementCacheCapacity, cfg.DescriptionCacheCapacity = 0, 0
	return pgx.ConnectConfig(ctx, cfg)
}

// Client asks one PgBouncer's admin console.
type Client struct {
	conn Console
	user string
	own  *pgx.Conn // the connection Close closes; nil when the caller owns it
}

// Connect opens a client of the admin console s names. Close it when done.
func Connect(ctx context.Context, s string) (*Client, error) {
	conn, err := Dial(ctx, s)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, user: conn.Config().User, own: conn}, nil
}

// New is a client over a connection the caller opened (see Dial) and
// closes itself.
func New(conn Console) *Client { return &Client{conn: conn} }

// Close closes the connection Connect opened, waiting a moment at most
// for the console to hear it.
func (c *Client) Close() {
	if c == nil || c.own == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.own.Close(ctx)
}

// User is the user the client logged in as ("" for a client from New):
// the user whose own pool_mode (SHOW USERS) applies to its connections.
func (c *Client) User() string { return c.user }

// Command is the console command verb acts with on database db, as it is
// sent and as plans show it: "PAUSE app", or "PAUSE" for every database
// when db is "".
func Command(verb, db string) string {
	if db == "" {
		return verb
	}
	return verb + " " + db
}

// Pause makes the console hold the queries of database db (every database
// when db is ""), once its running transactions have finished; it returns
// when they have, or when ctx ends.
func (c *Client) Pause(ctx context.Context, db string) error {
	return c.send(ctx, Command("PAUSE", db))
}

// Resume lets the held queries of database db go on (every database when
// db is ""). PgBouncer refuses it when nothing is paused (see NotPaused).
func (c *Client) Resume(ctx context.Context, db string) error {
	return c.send(ctx, Command("RESUME", db))
}

// Kill closes every client and server connection of database db at once
// and leaves the database paused.
func (c *Client) Kill(ctx context.Context, db string) error { return c.sendTo(ctx, "KILL", db) }

// Disable makes the console refuse new clients of database db until Enable.
func (c *Client) Disable(ctx context.Context, db string) error { return c.sendTo(ctx, "DISABLE", db) }

// Enable lets new clients of database db in again after Disable.
func (c *Client) Enable(ctx context.Context, db string) error { return c.sendTo(ctx, "ENABLE", db) }

// Reload makes PgBouncer read its configuration file again.
func (c *Client) Reload(ctx context.Context) error { return c.send(ctx, "RELOAD") }

// sendTo sends a command that must name a database.
func (c *Client) sendTo(ctx context.Context, verb, db string) error {
	if db == "" {
		return fmt.Errorf("%s needs a database", verb)
	}
	return c.send(ctx, Command(verb, db))
}

// send sends one command; its error names the command and wraps what
// PgBouncer (a *pgconn.PgError) or the connection said.
func (c *Client) send(ctx context.Context, command string) error {
	if _, err := c.conn.Exec(ctx, command); err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	return nil
}

// NotPaused reports whether err is PgBouncer refusing RESUME because
// nothing is paused.
func NotPaused(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.Contains(pe.Message, "not paused")
}

// unknownCommand reports whether err is PgBouncer not knowing a command
// (one newer than itself).
func unknownCommand(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.Contains(pe.Message, "invalid command")
}
