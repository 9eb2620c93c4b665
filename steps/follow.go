package steps

import (
	"context"
	"fmt"
	"time"

	"github.com/switchover/switchover/internal/cluster"
)

// writableSQL is what the candidate is asked: a primary out of recovery
// whose sessions are not read-only.
const writableSQL = "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"

// switchoverPoll is how often a step following a cluster manager's
// switchover asks PostgreSQL on the candidate whether it takes writes;
// managerPoll how often it reads the manager's view, which it reads at
// once when the candidate takes writes.
const (
	switchoverPoll = 10 * time.Millisecond
	managerPoll    = 100 * time.Millisecond
)

// managerFollow follows a switchover a cluster manager carries out, the
// loop every manager's switchover step shares: until the manager's view
// and PostgreSQL on the candidate agree that the candidate is the primary
// taking writes, the manager goes another way, the run cuts the step off,
// or the deadline passes. V is the manager's view.
type managerFollow[V any] struct {
	// writable asks PostgreSQL on the candidate whether it takes writes.
	writable writesProbe
	// look reads the manager's view.
	look func(ctx context.Context) (V, error)
	// judge decides on each view read: done once the switchover has
	// settled (writes says whether PostgreSQL on the candidate took
	// writes when asked just before), an error when the manager went
	// another way, which ends the step.
	judge func(v V, writes bool) (done bool, err error)
	// wake, when set, runs at every tick before anything else; an error
	// ends the step (the manager refused the request).
	wake func() error
	// quiet is how long after the start neither PostgreSQL nor the
	// manager is asked (a refusal comes at once: then neither need be).
	quiet time.Duration
}

// followed is how following ended when the switchover did not settle: the
// run cut it off (Cut), or the deadline passed; and what was seen last.
type followed[V any] struct {
	Cut      error // the run's context error when it cut the step off
	Last     V     // the manager's last view, when Seen
	Seen     bool
	LastErr  error  // the manager could not be read after Last
	Postgres string // what PostgreSQL on the candidate answered last
}

// run follows from start until deadline. It returns nil, nil when the
// switchover settled; an error from judge or wake as it is; otherwise how
// it ended.
func (f *managerFollow[V]) run(ctx context.Context, t *cluster.Target, start, deadline time.Time) (*followed[V], error) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	end := &followed[V]{Postgres: "not asked yet"}
	var lastLook time.Time
	tick := time.NewTicker(switchoverPoll)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
		if f.wake != nil {
			if err := f.wake(); err != nil {
				return nil, err
			}
		}
		if ctx.Err() != nil {
			end.Cut = ctx.Err()
			return end, nil
		}
		if !time.Now().Before(deadline) {
			return end, nil
		}
		if time.Since(start) < f.quiet {
			continue
		}
		ok, seen, err := f.writable(dctx, t)
		if err != nil {
			end.Postgres = err.Error()
		} else {
			end.Postgres = seen
		}
		if !ok && time.Since(lastLook) < managerPoll {
			continue
		}
		lastLook = time.Now()
		v, err := f.look(dctx)
		if err != nil {
			if time.Now().Before(deadline) {
				end.LastErr = err // not merely cut off by the deadline
			}
			continue
		}
		end.Last, end.Seen, end.LastErr = v, true, nil
		done, err := f.judge(v, ok)
		if err != nil {
			return nil, err
		}
		if done {
			return nil, nil
		}
	}
}

// writesProbe says whether a node takes writes now, and what was seen.
type writesProbe func(ctx context.Context, t *cluster.Target) (ok bool, seen string, err error)

// candidateWrites is the probe a manager-driven switchover follows: set
// (a test's) when given, else takesWrites on the candidate.
func candidateWrites(t *cluster.Target, candidate string, set writesProbe) (writesProbe, error) {
	if set != nil {
		return set, nil
	}
	n, err := t.Node(candidate)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, t *cluster.Target) (bool, string, error) { return takesWrites(ctx, t, n) }, nil
}

// takesWrites asks PostgreSQL on n whether it is out of recovery with
// read-write sessions, and says what it saw.
func takesWrites(ctx context.Context, t *cluster.Target, n *cluster.Node) (bool, string, error) {
	qctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := connectNode(qctx, t, n, time.Second)
	if err != nil {
		return false, "", err
	}
	defer closeConn(conn)
	var recovery bool
	var readOnly string
	if err := conn.QueryRow(qctx, writableSQL).Scan(&recovery, &readOnly); err != nil {
		return false, "", fmt.Errorf("%s: %w", n.Name, err)
	}
	switch {
	case recovery:
		return false, "in recovery (a standby)", nil
	case readOnly != "off":
		return false, "out of recovery, but transaction_read_only is " + readOnly, nil
	}
	return true, "out of recovery, read-write", nil
}
