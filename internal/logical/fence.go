package logical

import (
	"context"
	"fmt"
	"time"

	"github.com/switchover/switchover/internal/pg"
)

// The fence of a node in a move: new transactions there are read-only for
// every client (default_transaction_read_only = on, with ALTER SYSTEM, so
// that it holds for every database, role and session to come), and the
// client sessions open are ended, so that none that set
// default_transaction_read_only off for itself goes on.
//
// A subscription's apply worker still applies on a fenced node: it writes
// through the executor's row functions, not through statements, and
// PostgreSQL's read-only check is the statements' (tested:
// TestFenceKeepsApplying). The WAL senders of a fenced publisher go on
// too: they only read. Unlike pg.ApplyFence, this fence does not set
// synchronous_standby_names: a subscriber's apply worker whose
// subscription has synchronous_commit = on would wait for the fence's
// standby that never comes, and stop applying.

// FenceSetting is the setting the fence changes.
const FenceSetting = "default_transaction_read_only"

// FenceSQL is what Fence runs, for plans.
const FenceSQL = "ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf(); SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"

// ReadFence reads what the fence would replace: postgresql.auto.conf's
// value of FenceSetting, nil when it sets none. A value that is the
// fence's own ("on", from an earlier attempt) is taken from prior, the
// record of that attempt.
func ReadFence(ctx context.Context, q Querier, prior pg.Fence) (pg.Fence, error) {
	now, err := pg.ReadAutoConf(ctx, q, []string{FenceSetting})
	if err != nil {
		return nil, err
	}
	f := pg.Fence{}
	v, set := now[FenceSetting]
	switch {
	case set && v == "on":
		f[FenceSetting] = prior[FenceSetting]
	case set:
		f[FenceSetting] = &v
	default:
		f[FenceSetting] = nil
	}
	return f, nil
}

// Fence fences the node q is connected to, waiting up to wait for the
// server to take the setting, and returns how many client sessions it
// ended. The session q is on must not have set default_transaction_read_only
// itself (it would not see the reload).
func Fence(ctx context.Context, q Querier, wait time.Duration) (int, error) {
	if _, err := q.Exec(ctx, "ALTER SYSTEM SET default_transaction_read_only = on"); err != nil {
		return 0, fmt.Errorf("ALTER SYSTEM SET default_transaction_read_only: %w", err)
	}
	if err := reloadUntil(ctx, q, wait, "on"); err != nil {
		return 0, err
	}
	var ended int
	if err := q.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`).Scan(&ended); err != nil {
		return 0, fmt.Errorf("end the client sessions: %w", err)
	}
	return ended, nil
}

// Unfence puts back what f recorded, when the setting still holds the
// fence's value; it reports whether it changed anything.
func Unfence(ctx context.Context, q Querier, f pg.Fence, wait time.Duration) (bool, error) {
	now, err := pg.ReadAutoConf(ctx, q, []string{FenceSetting})
	if err != nil {
		return false, err
	}
	if now[FenceSetting] != "on" {
		return false, nil
	}
	stmt, want := "ALTER SYSTEM RESET default_transaction_read_only", ""
	if p := f[FenceSetting]; p != nil {
		stmt, want = "ALTER SYSTEM SET default_transaction_read_only = "+Literal(*p), *p
	}
	if _, err := q.Exec(ctx, stmt); err != nil {
		return false, fmt.Errorf("%s: %w", stmt, err)
	}
	return true, reloadUntil(ctx, q, wait, want)
}

// Fenced reports whether the server's configuration makes transactions
// read-only by default (postgresql.auto.conf sets it so).
func Fenced(ctx context.Context, q Querier) (bool, error) {
	now, err := pg.ReadAutoConf(ctx, q, []string{FenceSetting})
	if err != nil {
		return false, err
	}
	return now[FenceSetting] == "on", nil
}

// reloadUntil reloads the configuration and waits until this session
// sees default_transaction_read_only as want ("" for whatever is not the
// fence's "on").
func reloadUntil(ctx context.Context, q Querier, wait time.Duration, want string) error {
	if _, err := q.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("pg_reload_conf(): %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		var got string
		if err := q.QueryRow(ctx, `SELECT current_setting('default_transaction_read_only')`).Scan(&got); err != nil {
			return err
		}
		if got == want || (want == "" && got != "on") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server did not take its new configuration within %s (default_transaction_read_only is %s)", wait, got)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
