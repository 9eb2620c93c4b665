package pg

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Session is another client's session that could stall a switchover: it
// holds a lock (advisory locks included) or keeps a transaction open.
type Session struct {
	PID         int
	User        string
	Application string
	State       string
	XactAge     time.Duration // 0 when no transaction is open
	Locks       []string      // e.g. "advisory (granted)", "relation app.t AccessShareLock"
	Query       string
}

// String renders a session on one line, for check details and prompts.
func (s Session) String() string {
	q := strings.Join(strings.Fields(s.Query), " ")
	if len(q) > 80 {
		q = q[:77] + "..."
	}
	locks := "no locks"
	if len(s.Locks) > 0 {
		locks = strings.Join(s.Locks, ", ")
	}
	return fmt.Sprintf("pid %d  user %s  app %q  %s  xact %s  holds %s  query: %s",
		s.PID, s.User, s.Application, s.State, s.XactAge.Round(time.Millisecond), locks, q)
}

// BlockingSessions lists the client sessions on a node, other than the
// caller's, that hold a granted lock other than their own transaction's
// (advisory locks count), or whose transaction has been open longer than
// maxXactAge. Switchover's own checks, running a statement at the same
// moment on another connection, are not counted: their catalog locks last
// as long as one query.
func BlockingSessions(ctx context.Context, q Querier, maxXactAge time.Duration) ([]Session, error) {
	rows, err := q.Query(ctx, `
SELECT a.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''), coalesce(a.state, ''),
       coalesce(extract(epoch FROM clock_timestamp() - a.xact_start), 0)::float8,
       coalesce(array_agg(
         CASE WHEN l.locktype = 'relation' AND l.database = cur.oid
              THEN 'relation ' || l.relation::regclass::text || ' ' || l.mode
              WHEN l.locktype = 'relation'
              THEN 'relation ' || l.relation::text || ' in database ' || coalesce(d.datname, l.database::text) || ' ' || l.mode
              ELSE l.locktype || ' ' || l.mode END
         ORDER BY l.locktype, l.mode) FILTER (WHERE l.locktype IS NOT NULL), '{}'),
       coalesce(a.query, '')
FROM pg_stat_activity a
LEFT JOIN pg_locks l ON l.pid = a.pid AND l.granted
     AND l.locktype NOT IN ('virtualxid', 'transactionid')
LEFT JOIN pg_database d ON d.oid = l.database
CROSS JOIN (SELECT oid FROM pg_database WHERE datname = current_database()) cur
WHERE a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
  AND NOT (a.application_name = 'switchover' AND a.state = 'active')
GROUP BY a.pid, a.usename, a.application_name, a.state, a.xact_start, a.query, cur.oid
HAVING count(l.locktype) > 0
    OR (a.xact_start IS NOT NULL AND clock_timestamp() - a.xact_start > make_interval(secs => $1))
ORDER BY a.pid`, maxXactAge.Seconds())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		var s Session
		var age float64
		if err := rows.Scan(&s.PID, &s.User, &s.Application, &s.State, &age, &s.Locks, &s.Query); err != nil {
			return nil, err
		}
		s.XactAge = time.Duration(age * float64(time.Second))
		out = append(out, s)
	}
	return out, rows.Err()
}

// Slots is how a server's connection slots stand: how many client
// backends run, of max_connections, and how many of those are reserved
// for superusers (superuser_reserved_connections, and PostgreSQL 16's
// reserved_connections) and so closed to an ordinary client.
type Slots struct {
	Used, Max, Reserved int
}

// Free is how many more ordinary clients the server takes.
func (s Slots) Free() int { return max(0, s.Max-s.Reserved-s.Used) }

// ConnectionSlots reads a server's connection slots.
func ConnectionSlots(ctx context.Context, q Querier) (Slots, error) {
	var s Slots
	err := q.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int,
		current_setting('max_connections')::int,
		current_setting('superuser_reserved_connections')::int + coalesce(current_setting('reserved_connections', true), '0')::int`).
		Scan(&s.Used, &s.Max, &s.Reserved)
	return s, err
}
