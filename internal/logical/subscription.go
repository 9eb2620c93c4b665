package logical

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/pg"
)

// Subscription is a subscription as its subscriber has it.
type Subscription struct {
	Name         string
	Enabled      bool
	Conninfo     string // the connection string to the publisher, as given (never shown: it may hold a password)
	Slot         string // its slot on the publisher; "" for NONE
	Publications []string
}

// Upstream is the publisher's host:port and database the subscription's
// connection string names, for messages and comparisons.
func (s *Subscription) Upstream() (addr, database string, err error) {
	r, err := conninfo.Resolve(s.Conninfo)
	if err != nil {
		return "", "", fmt.Errorf("the connection string of subscription %s: %w", s.Name, err)
	}
	return r.Address(), r.Database, nil
}

// ReadSubscription reads a subscription of the database q is connected
// to; nil when there is none of that name. Reading its connection string
// needs a superuser (pg_subscription.subconninfo is not granted to others).
func ReadSubscription(ctx context.Context, q Querier, name string) (*Subscription, error) {
	s := &Subscription{Name: name}
	var slot *string
	err := q.QueryRow(ctx, `SELECT subenabled, subconninfo, subslotname, subpublications FROM pg_subscription
WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`, name).
		Scan(&s.Enabled, &s.Conninfo, &slot, &s.Publications)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read subscription %s: %w", name, err)
	}
	if slot != nil {
		s.Slot = *slot
	}
	return s, nil
}

// SubscribeOptions are what CREATE SUBSCRIPTION is given.
type SubscribeOptions struct {
	Name        string
	Conninfo    string // the publisher's, without a password
	Publication string
	CopyData    bool
	// SynchronousCommit is the apply worker's synchronous_commit; ""
	// leaves PostgreSQL's default (off).
	SynchronousCommit string
	// Version is the subscriber's server_version_num: streaming = off is
	// said explicitly from PostgreSQL 14 (wait_applied relies on it, and
	// later versions may change the default).
	Version int
}

// CreateSubscriptionSQL creates and enables a subscription with a slot of
// its name on the publisher, created at the publisher's current position;
// with copy_data the tables are copied first.
func CreateSubscriptionSQL(o SubscribeOptions) string {
	with := fmt.Sprintf("copy_data = %t, create_slot = true, enabled = true", o.CopyData)
	if o.Version >= 140000 {
		with += ", streaming = off"
	}
	if o.SynchronousCommit != "" {
		with += ", synchronous_commit = " + Literal(o.SynchronousCommit)
	}
	return fmt.Sprintf("CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s WITH (%s)",
		Ident(o.Name), Literal(o.Conninfo), Ident(o.Publication), with)
}

// Subscribe creates a subscription (see CreateSubscriptionSQL); the
// session passes the DDL guard and the fence for it.
func Subscribe(ctx context.Context, q Querier, o SubscribeOptions) error {
	done, err := Privileged(ctx, q)
	defer done()
	if err != nil {
		return err
	}
	if _, err := q.Exec(ctx, CreateSubscriptionSQL(o)); err != nil {
		return fmt.Errorf("create subscription %s: %w", o.Name, err)
	}
	return nil
}

// SynchronousCommit reads a subscription's synchronous_commit.
func SynchronousCommit(ctx context.Context, q Querier, name string) (string, error) {
	var v string
	err := q.QueryRow(ctx, `SELECT subsynccommit FROM pg_subscription WHERE subname = $1
  AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`, name).Scan(&v)
	if err != nil {
		return "", fmt.Errorf("read subscription %s: %w", name, err)
	}
	return v, nil
}

// SetSynchronousCommit changes a subscription's synchronous_commit (its
// apply worker restarts to take it).
func SetSynchronousCommit(ctx context.Context, q Querier, name, value string) error {
	done, err := Privileged(ctx, q)
	defer done()
	if err != nil {
		return err
	}
	if _, err := q.Exec(ctx, fmt.Sprintf("ALTER SUBSCRIPTION %s SET (synchronous_commit = %s)", Ident(name), Literal(value))); err != nil {
		return fmt.Errorf("set synchronous_commit of subscription %s: %w", name, err)
	}
	return nil
}

// SetEnabled enables or disables a subscription; it reports whether it
// changed anything.
func SetEnabled(ctx context.Context, q Querier, name string, enabled bool) (bool, error) {
	s, err := ReadSubscription(ctx, q, name)
	if err != nil {
		return false, err
	}
	if s == nil {
		return false, fmt.Errorf("no subscription %s in this database", name)
	}
	if s.Enabled == enabled {
		return false, nil
	}
	done, err := Privileged(ctx, q)
	defer done()
	if err != nil {
		return false, err
	}
	verb := "DISABLE"
	if enabled {
		verb = "ENABLE"
	}
	if _, err := q.Exec(ctx, fmt.Sprintf("ALTER SUBSCRIPTION %s %s", Ident(name), verb)); err != nil {
		return false, fmt.Errorf("ALTER SUBSCRIPTION %s %s: %w", name, verb, err)
	}
	return true, nil
}

// WaitWorkerGone waits until no worker of a disabled subscription runs
// on its subscriber. ALTER SUBSCRIPTION ... DISABLE returns before the
// apply worker has stopped: it notices at its next wake-up, up to a
// second later. So the workers still there are ended (a transaction they
// were applying is rolled back, and applied again from the same position
// once the subscription is enabled); the launcher starts none for a
// disabled subscription.
func WaitWorkerGone(ctx context.Context, q Querier, name string, every time.Duration) error {
	if _, err := q.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_subscription s JOIN pg_subscription p ON p.oid = s.subid
WHERE s.subname = $1 AND s.pid IS NOT NULL AND NOT p.subenabled`, name); err != nil {
		return fmt.Errorf("end the workers of subscription %s: %w", name, err)
	}
	for {
		var n int
		if err := q.QueryRow(ctx, `SELECT count(*) FROM pg_stat_subscription WHERE subname = $1 AND pid IS NOT NULL`, name).Scan(&n); err != nil {
			return fmt.Errorf("read pg_stat_subscription: %w", err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the apply worker of subscription %s still runs: %w", name, ctx.Err())
		case <-time.After(every):
		}
	}
}

// Slot is a logical slot on the publisher, with the publisher's position.
type Slot struct {
	Name      string
	Exists    bool
	Active    bool
	Confirmed pg.LSN // confirmed_flush_lsn: what the subscriber applied and flushed
	Current   pg.LSN // the publisher's pg_current_wal_lsn()
}

// Lag is how many bytes of WAL the subscriber has yet to confirm.
func (s Slot) Lag() int64 {
	if s.Confirmed >= s.Current {
		return 0
	}
	return int64(s.Current - s.Confirmed)
}

// ReadSlot reads a slot on the publisher q is connected to.
func ReadSlot(ctx context.Context, q Querier, name string) (Slot, error) {
	s := Slot{Name: name}
	var confirmed *string
	var active *bool
	var current string
	err := q.QueryRow(ctx, `SELECT (SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1),
  (SELECT active FROM pg_replication_slots WHERE slot_name = $1), pg_current_wal_lsn()::text`, name).Scan(&confirmed, &active, &current)
	if err != nil {
		return s, fmt.Errorf("read slot %s: %w", name, err)
	}
	if s.Current, err = pg.ParseLSN(current); err != nil {
		return s, err
	}
	if active == nil {
		return s, nil
	}
	s.Exists, s.Active = true, *active
	if confirmed != nil {
		s.Confirmed, err = pg.ParseLSN(*confirmed)
	}
	return s, err
}

// AdvanceSlotSQL moves a slot to the publisher's current position.
const AdvanceSlotSQL = "SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())"

// AdvanceSlot moves a logical slot on the publisher q is connected to up
// to the publisher's current position, so that what it wrote until now is
// never decoded for the slot's subscriber; a slot that is gone is created
// there anew (pgoutput). A slot still in use by a WAL sender going away is
// tried again until ctx ends. It returns the position the slot has now.
func AdvanceSlot(ctx context.Context, q Querier, slot string) (pg.LSN, error) {
	for {
		s, err := ReadSlot(ctx, q, slot)
		if err != nil {
			return 0, err
		}
		var at string
		if !s.Exists {
			err = q.QueryRow(ctx, `SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')`, slot).Scan(&at)
		} else {
			err = q.QueryRow(ctx, `SELECT end_lsn::text FROM pg_replication_slot_advance($1, pg_current_wal_lsn())`, slot).Scan(&at)
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "55006" { // object_in_use: the WAL sender is still there
			select {
			case <-ctx.Done():
				return 0, fmt.Errorf("slot %s is still in use: %s", slot, pe.Message)
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("advance slot %s: %w", slot, err)
		}
		return pg.ParseLSN(at)
	}
}

// TableSync is the state of a subscription's tables on its subscriber.
type TableSync struct {
	Total    int
	Ready    int
	NotReady []string // "public.t (copying)" for each table not yet ready
}

// syncStates are pg_subscription_rel.srsubstate's letters in words.
var syncStates = map[string]string{"i": "waiting to copy", "d": "copying", "f": "copied, catching up", "s": "synchronised, catching up", "r": "ready"}

// ReadTableSync reads the state of every table of a subscription.
func ReadTableSync(ctx context.Context, q Querier, sub string) (TableSync, error) {
	var ts TableSync
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname, r.srsubstate::text
FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid
JOIN pg_class c ON c.oid = r.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY 1, 2`, sub)
	if err != nil {
		return ts, fmt.Errorf("read pg_subscription_rel of %s: %w", sub, err)
	}
	defer rows.Close()
	for rows.Next() {
		var schema, name, state string
		if err := rows.Scan(&schema, &name, &state); err != nil {
			return ts, err
		}
		ts.Total++
		if state == "r" {
			ts.Ready++
			continue
		}
		words := syncStates[state]
		if words == "" {
			words = "state " + state
		}
		ts.NotReady = append(ts.NotReady, fmt.Sprintf("%s (%s)", QualifiedName(schema, name), words))
	}
	return ts, rows.Err()
}

// CopiedBytes is how many bytes the table synchronisation workers of the
// subscriber have copied so far into tables not yet done
// (pg_stat_progress_copy, PostgreSQL 14+; 0 before).
func CopiedBytes(ctx context.Context, q Querier) (int64, error) {
	v, err := version(ctx, q)
	if err != nil || v < 140000 {
		return 0, err
	}
	var n int64
	err = q.QueryRow(ctx, `SELECT coalesce(sum(bytes_processed), 0)::bigint FROM pg_stat_progress_copy WHERE command = 'COPY FROM'`).Scan(&n)
	return n, err
}

// TableBytes is the size of each published table on the publisher, by
// qualified name, for the copy's progress.
func TableBytes(ctx context.Context, q Querier) (map[string]int64, error) {
	tables, err := ReadTables(ctx, q)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, t := range tables {
		out[t.String()] = t.Bytes
	}
	return out, nil
}

// NotReadyNames are the qualified names of the tables in ts.NotReady.
func (ts TableSync) NotReadyNames() []string {
	out := make([]string, len(ts.NotReady))
	for i, s := range ts.NotReady {
		out[i], _, _ = strings.Cut(s, " (")
	}
	return out
}
