package pg

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// OpenXact is a client session with a transaction that would hold up a
// pause or a stop.
type OpenXact struct {
	PID         int
	User        string
	Application string
	Client      string // address:port, or "local" for a Unix socket
	State       string
	XactStart   time.Time
	XactAge     time.Duration
	Query       string
}

// String renders the session on one line for the check's detail.
func (s OpenXact) String() string {
	return fmt.Sprintf("pid %d  user %s  app %q  client %s  %s  xact %s  query: %s",
		s.PID, s.User, s.Application, s.Client, s.State, s.XactAge.Round(time.Millisecond), ShortQuery(s.Query, 80))
}

// ShortQuery is a query on one line (runs of blanks and newlines made one
// space, no trailing semicolon), cut to at most n characters.
func ShortQuery(q string, n int) string {
	q = strings.TrimRight(strings.Join(strings.Fields(q), " "), "; ")
	if r := []rune(q); len(r) > n {
		q = string(r[:n-3]) + "..."
	}
	return q
}

// OpenTransactions lists the client sessions other than the caller's and
// switchover's own whose transaction is older than maxAge or that are idle
// in transaction, the oldest first.
func OpenTransactions(ctx context.Context, q Querier, maxAge time.Duration) ([]OpenXact, error) {
	rows, err := q.Query(ctx, `
SELECT pid, coalesce(usename, ''), coalesce(application_name, ''),
       CASE WHEN client_addr IS NULL THEN 'local' ELSE host(client_addr) || ':' || client_port END,
       coalesce(state, ''), xact_start, extract(epoch FROM clock_timestamp() - xact_start)::float8, coalesce(query, '')
FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'
  AND coalesce(application_name, '') <> 'switchover'
  AND xact_start IS NOT NULL
  AND (state LIKE 'idle in transaction%' OR clock_timestamp() - xact_start > make_interval(secs => $1))
ORDER BY xact_start, pid`, maxAge.Seconds())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OpenXact
	for rows.Next() {
		var s OpenXact
		var age float64
		if err := rows.Scan(&s.PID, &s.User, &s.Application, &s.Client, &s.State, &s.XactStart, &age, &s.Query); err != nil {
			return nil, err
		}
		s.XactAge = time.Duration(age * float64(time.Second))
		out = append(out, s)
	}
	return out, rows.Err()
}
