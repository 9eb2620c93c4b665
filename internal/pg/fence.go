package pg

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// FenceSyncName is the synchronous standby a fenced primary waits for. No
// standby connects with this application_name, so no commit on a fenced
// primary is ever acknowledged.
const FenceSyncName = "switchover_fence"

// fenceSettings are what a fence sets with ALTER SYSTEM, and to what.
var fenceSettings = []struct{ name, value string }{
	{"synchronous_standby_names", FenceSyncName},
	{"default_transaction_read_only", "on"},
}

// Fence is what a primary's postgresql.auto.conf held before a fence, for
// each setting the fence changed: the value there, or nil when the file
// did not set it. It is journaled (as JSON) so that a resumed or a later
// run lifts the fence exactly.
type Fence map[string]*string

// String is the fence as JSON, for a fact.
func (f Fence) String() string {
	b, _ := json.Marshal(map[string]*string(f))
	return string(b)
}

// ParseFence reads a fence written by String.
func ParseFence(s string) (Fence, error) {
	f := Fence{}
	if err := json.Unmarshal([]byte(s), &f); err != nil {
		return nil, fmt.Errorf("a fence record %q: %w", s, err)
	}
	return f, nil
}

// ReadAutoConf reads what postgresql.auto.conf sets for names, by name:
// what ALTER SYSTEM wrote, without what the other configuration files set.
func ReadAutoConf(ctx context.Context, q Querier, names []string) (map[string]string, error) {
	return autoConf(ctx, q, names)
}

// autoConf reads what postgresql.auto.conf sets for names, by name.
func autoConf(ctx context.Context, q Querier, names []string) (map[string]string, error) {
	rows, err := q.Query(ctx, `SELECT name, setting FROM pg_file_settings
		WHERE name = ANY($1) AND sourcefile LIKE '%postgresql.auto.conf' AND error IS NULL`, names)
	if err != nil {
		return nil, fmt.Errorf("reading postgresql.auto.conf (pg_file_settings): %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, setting string
		if err := rows.Scan(&name, &setting); err != nil {
			return nil, err
		}
		out[name] = setting
	}
	return out, rows.Err()
}

func fenceNames() []string {
	names := make([]string, len(fenceSettings))
	for i, s := range fenceSettings {
		names[i] = s.name
	}
	return names
}

// ReadFence reads what a fence would replace on the server q is connected
// to. A setting that already holds the fence's value (a fence of an
// earlier attempt) is not recorded: prior, the record of that attempt,
// has it.
func ReadFence(ctx context.Context, q Querier, prior Fence) (Fence, error) {
	now, err := autoConf(ctx, q, fenceNames())
	if err != nil {
		return nil, err
	}
	f := Fence{}
	for _, s := range fenceSettings {
		v, set := now[s.name]
		switch {
		case set && v == s.value:
			if p, ok := prior[s.name]; ok {
				f[s.name] = p
			} else {
				f[s.name] = nil
			}
		case set:
			f[s.name] = &v
		default:
			f[s.name] = nil
		}
	}
	return f, nil
}

// ApplyFence fences the primary q is connected to: from the moment the
// server has reloaded its configuration, no commit there is acknowledged
// (its commits wait for FenceSyncName, a synchronous standby that never
// comes) and new transactions are read-only; then every other client
// session is ended, so that none that set synchronous_commit or
// transaction_read_only for itself goes on. It waits up to wait for the
// server to take the new settings, and returns how many sessions it ended.
func ApplyFence(ctx context.Context, q Querier, wait time.Duration) (int, error) {
	for _, s := range fenceSettings {
		if _, err := q.Exec(ctx, fmt.Sprintf("ALTER SYSTEM SET %s = %s", s.name, QuoteLiteral(s.value))); err != nil {
			return 0, fmt.Errorf("ALTER SYSTEM SET %s: %w", s.name, err)
		}
	}
	if err := reloadAndWait(ctx, q, wait, func(got map[string]string) bool {
		return got["synchronous_standby_names"] == FenceSyncName && got["default_transaction_read_only"] == "on"
	}); err != nil {
		return 0, err
	}
	var ended int
	if err := q.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`).Scan(&ended); err != nil {
		return 0, fmt.Errorf("ending the client sessions: %w", err)
	}
	return ended, nil
}

// LiftFence puts back what f recorded, for each setting that still holds
// the fence's value (one that does not was set since by someone else, a
// cluster manager say, and is left as it is). It reports whether it
// changed anything.
func LiftFence(ctx context.Context, q Querier, f Fence, wait time.Duration) (bool, error) {
	now, err := autoConf(ctx, q, fenceNames())
	if err != nil {
		return false, err
	}
	changed := false
	for _, s := range fenceSettings {
		if now[s.name] != s.value {
			continue
		}
		stmt := "ALTER SYSTEM RESET " + s.name
		if p := f[s.name]; p != nil {
			stmt = fmt.Sprintf("ALTER SYSTEM SET %s = %s", s.name, QuoteLiteral(*p))
		}
		if _, err := q.Exec(ctx, stmt); err != nil {
			return changed, fmt.Errorf("%s: %w", stmt, err)
		}
		changed = true
	}
	if !changed {
		return false, nil
	}
	return true, reloadAndWait(ctx, q, wait, func(got map[string]string) bool {
		return got["synchronous_standby_names"] != FenceSyncName
	})
}

// Fenced reports whether the server q is connected to runs with the
// fence's settings.
func Fenced(ctx context.Context, q Querier) (bool, error) {
	var sync string
	if err := q.QueryRow(ctx, `SELECT current_setting('synchronous_standby_names')`).Scan(&sync); err != nil {
		return false, err
	}
	return sync == FenceSyncName, nil
}

// reloadAndWait reloads the server's configuration and waits, up to wait,
// until this session sees settings for which ok holds (a session takes a
// reload at its next statement, as the server's other processes do at
// once).
func reloadAndWait(ctx context.Context, q Querier, wait time.Duration, ok func(map[string]string) bool) error {
	if _, err := q.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("pg_reload_conf(): %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		got := map[string]string{}
		var sync, ro string
		if err := q.QueryRow(ctx, `SELECT current_setting('synchronous_standby_names'), current_setting('default_transaction_read_only')`).Scan(&sync, &ro); err != nil {
			return err
		}
		got["synchronous_standby_names"], got["default_transaction_read_only"] = sync, ro
		if ok(got) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server did not take its new configuration within %s (synchronous_standby_names is %q, default_transaction_read_only %s)", wait, sync, ro)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// QuoteLiteral quotes s as an SQL string literal.
func QuoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
