package pg

import (
	"context"
	"strings"
)

// Archiving is how a server archives its WAL, as its settings say. The
// archive command's text is not kept: it may carry credentials.
type Archiving struct {
	Mode    string // archive_mode: off, on or always
	Command bool   // archive_command is set
	Library string // archive_library (PostgreSQL 15 and later), "" when unset
}

// Archives reports whether the server archives its WAL as a primary: a
// standby with these settings archives once it is promoted.
func (a Archiving) Archives() bool { return a.Mode != "off" && (a.Command || a.Library != "") }

// String says it in a DBA's words, e.g. "archive_mode=on, archive_command set".
func (a Archiving) String() string {
	parts := []string{"archive_mode=" + a.Mode}
	switch {
	case a.Library != "":
		parts = append(parts, "archive_library="+a.Library)
	case a.Command:
		parts = append(parts, "archive_command set")
	default:
		parts = append(parts, "no archive_command or archive_library")
	}
	return strings.Join(parts, ", ")
}

// ReadArchiving reads a server's archiving settings. With archive_mode
// off, PostgreSQL shows archive_command as "(disabled)".
func ReadArchiving(ctx context.Context, q Querier) (Archiving, error) {
	var a Archiving
	var command string
	err := q.QueryRow(ctx, `SELECT current_setting('archive_mode'), current_setting('archive_command'),
		coalesce(current_setting('archive_library', true), '')`).Scan(&a.Mode, &command, &a.Library)
	a.Command = command != "" && command != "(disabled)"
	return a, err
}

// ArchiveStatus says where a file of pg_wal stands with the archiver:
// "done" (archived), "ready" (waiting), or "" (not known to it), from
// pg_wal/archive_status (pg_ls_archive_statusdir(): pg_monitor or superuser).
func ArchiveStatus(ctx context.Context, q Querier, file string) (string, error) {
	var status string
	err := q.QueryRow(ctx, `SELECT coalesce(max(CASE WHEN name = $1 || '.done' THEN 'done' WHEN name = $1 || '.ready' THEN 'ready' END), '')
		FROM pg_ls_archive_statusdir() WHERE name IN ($1 || '.done', $1 || '.ready')`, file).Scan(&status)
	return status, err
}
