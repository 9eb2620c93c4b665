package logical

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/pg"
)

// Why the slot's confirmed_flush_lsn proves the apply, and not merely a
// keepalive: a subscription made here streams no transaction in progress
// (streaming = off), so its WAL sender sends a transaction whole, at its
// commit, in commit order, and reports a position in a keepalive only once
// it has sent every transaction committed before it. The apply worker
// handles messages one after the other and confirms a position (as
// flushed) only when every transaction it applied before it is flushed on
// the subscriber. So once confirmed_flush_lsn >= L, every transaction that
// committed on the publisher before L is applied, durably, on the
// subscriber. A marker row would prove no more, and would need a table of
// ours in the user's publication.

// MarkSQL is what Mark runs on the publisher.
const MarkSQL = "BEGIN READ WRITE; SELECT pg_current_wal_insert_lsn(), txid_current(); SET LOCAL synchronous_commit = local; COMMIT"

// Mark returns a position L on the publisher q is connected to past every
// commit made there so far, and makes sure L is flushed: it reads the WAL
// insert position in a transaction that takes a transaction id, whose
// commit flushes the WAL up to itself. Without that flush the WAL
// sender, which decodes flushed WAL only, would wait for the WAL writer
// to reach L (up to wal_writer_delay, 200ms by default, or more), for an
// asynchronous commit or a record that is no commit at all.
func Mark(ctx context.Context, q Querier) (pg.LSN, error) {
	if _, err := q.Exec(ctx, "BEGIN READ WRITE"); err != nil {
		return 0, err
	}
	var at string
	var xid int64
	err := q.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text, txid_current()").Scan(&at, &xid)
	if err == nil {
		_, err = q.Exec(ctx, "SET LOCAL synchronous_commit = local")
	}
	if err != nil {
		_, _ = q.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		return 0, fmt.Errorf("read the publisher's WAL position: %w", err)
	}
	if _, err := q.Exec(ctx, "COMMIT"); err != nil {
		return 0, err
	}
	return pg.ParseLSN(at)
}

// confirmedSQL reads a slot's confirmed position alone: the poll of
// WaitConfirmed, many times a second.
const confirmedSQL = "SELECT confirmed_flush_lsn::text, active FROM pg_replication_slots WHERE slot_name = $1"

// WaitConfirmed polls, every every on the one connection q, until the
// slot's confirmed_flush_lsn reaches target; it returns the last position
// seen. When ctx ends first, the error says where the slot was and
// whether a WAL sender was using it.
func WaitConfirmed(ctx context.Context, q Querier, slot string, target pg.LSN, every time.Duration) (pg.LSN, error) {
	var last pg.LSN
	active := false
	for {
		var at *string
		err := q.QueryRow(ctx, confirmedSQL, slot).Scan(&at, &active)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return 0, fmt.Errorf("no slot %s on the publisher", slot)
		case err != nil && ctx.Err() == nil:
			return last, fmt.Errorf("read slot %s: %w", slot, err)
		case err == nil && at != nil:
			if last, err = pg.ParseLSN(*at); err != nil {
				return last, err
			}
			if last >= target {
				return last, nil
			}
		}
		select {
		case <-ctx.Done():
			state := "in use by its subscription's WAL sender"
			if !active {
				state = "not in use: the subscription is disabled or cannot connect"
			}
			return last, fmt.Errorf("slot %s confirmed %s, %d bytes short of %s (%s): %w", slot, last, int64(target-last), target, state, ctx.Err())
		case <-time.After(every):
		}
	}
}

// ApplyProbe is what ProbeApply measured: how long the subscriber took to
// confirm the publisher's flushed position, or that it had not within the
// budget.
type ApplyProbe struct {
	Target pg.LSN        // the publisher's pg_current_wal_flush_lsn() when the probe began
	Last   pg.LSN        // the slot's confirmed_flush_lsn when the probe ended
	Took   time.Duration // how long the probe read the slot
}

// Done says whether the slot confirmed Target within the budget.
func (p ApplyProbe) Done() bool { return p.Last >= p.Target }

// ProbeApply takes the publisher's flushed WAL position and polls the
// slot, every every on the one connection q, until its subscriber has
// confirmed that position, for at most within. That is how long a
// subscriber with a backlog of small transactions still needs, which
// bytes of lag do not tell: with synchronous_commit local its apply worker
// syncs its WAL once a transaction, so 300 kB of one-row commits can take
// as long as 300 MB of one bulk load (seen: 0.6 s). The flushed position,
// not the inserted one: the WAL sender decodes flushed WAL only, so an
// asynchronous commit not yet written out would make the probe wait for
// the publisher's WAL writer rather than for the subscriber.
func ProbeApply(ctx context.Context, q Querier, slot string, within, every time.Duration) (ApplyProbe, error) {
	var p ApplyProbe
	var at string
	if err := q.QueryRow(ctx, "SELECT pg_current_wal_flush_lsn()::text").Scan(&at); err != nil {
		return p, fmt.Errorf("read the publisher's flushed WAL position: %w", err)
	}
	var err error
	if p.Target, err = pg.ParseLSN(at); err != nil {
		return p, err
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	p.Last, err = WaitConfirmed(wctx, q, slot, p.Target, every)
	p.Took = time.Since(start)
	switch {
	case err == nil:
		return p, nil
	case ctx.Err() == nil && wctx.Err() != nil:
		return p, nil // the budget is spent: not applied within it
	default:
		return p, err
	}
}
