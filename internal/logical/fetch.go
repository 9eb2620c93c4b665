package logical

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/transport"
)

// DumpOptions are the options of every schema dump: the schema alone,
// without what differs between two clusters by design (publications,
// subscriptions, owners, privileges, tablespaces) and without
// switchover's own schema; -w never waits for a password prompt.
const DumpOptions = "--schema-only --no-publications --no-subscriptions --no-owner --no-privileges --no-tablespaces -w --exclude-schema=" + Schema

// DumpCommand is the command line that dumps the schema of the database
// conninfo names with the pg_dump at pgDump. conninfo must hold no
// password: a command line is visible to every user of the host; the
// host's OS user authenticates with its own ~/.pgpass or passfile.
func DumpCommand(pgDump, conninfo string) string {
	return fmt.Sprintf("LC_ALL=C PGCONNECT_TIMEOUT=10 %s %s -d %s",
		transport.ShellQuote(pgDump), DumpOptions, transport.ShellQuote(conninfo))
}

// dumpPage is how much of a dump one command reads back: under what an
// executor keeps of a command's output.
const dumpPage = 48 << 10

// FetchDump runs DumpCommand on a host through ex into a file of its own
// there (mode 0600), reads the file back a page at a time (a schema may be
// larger than what one command's output may carry), and removes it. The
// error names pg_dump and its last line, never the connection string.
func FetchDump(ctx context.Context, ex transport.Executor, pgDump, conninfo string) (string, error) {
	cmd := `umask 077; f=$(mktemp "${TMPDIR:-/tmp}/switchover-schema.XXXXXX") || exit 1; ` +
		`if ` + DumpCommand(pgDump, conninfo) + ` -f "$f"; then wc -c <"$f"; echo "$f"; else rc=$?; rm -f "$f"; exit $rc; fi`
	out, err := ex.Run(ctx, cmd)
	if err != nil {
		return "", fmt.Errorf("pg_dump on %s: %w", ex.Where(), err)
	}
	if out.ExitCode != 0 {
		return "", fmt.Errorf("pg_dump on %s exited %d: %s", ex.Where(), out.ExitCode, lastLine(out))
	}
	fields := strings.Fields(out.Stdout)
	if len(fields) != 2 {
		return "", fmt.Errorf("pg_dump on %s: unexpected answer %q", ex.Where(), out.Stdout)
	}
	size, err := strconv.Atoi(fields[0])
	file := fields[1]
	if err != nil || !strings.HasPrefix(file, "/") {
		return "", fmt.Errorf("pg_dump on %s: unexpected answer %q", ex.Where(), out.Stdout)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = ex.Run(rctx, "rm -f "+transport.ShellQuote(file))
	}()
	var b strings.Builder
	for b.Len() < size {
		page, err := ex.Run(ctx, fmt.Sprintf("tail -c +%d %s | head -c %d", b.Len()+1, transport.ShellQuote(file), dumpPage))
		if err != nil {
			return "", fmt.Errorf("read the dump on %s: %w", ex.Where(), err)
		}
		if page.ExitCode != 0 || page.Stdout == "" {
			return "", fmt.Errorf("read the dump on %s at byte %d of %d: %s", ex.Where(), b.Len(), size, lastLine(page))
		}
		b.WriteString(page.Stdout)
	}
	if b.Len() != size {
		return "", fmt.Errorf("read %d bytes of the dump on %s, which has %d", b.Len(), ex.Where(), size)
	}
	return b.String(), nil
}

// lastLine is the last line a command printed, stderr first.
func lastLine(out transport.Output) string {
	for _, s := range []string{out.Stderr, out.Stdout} {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		lines := strings.Split(s, "\n")
		return strings.TrimSpace(lines[len(lines)-1])
	}
	return "no output"
}

// Restore runs a schema (Dump.Restorable) on the server q is connected
// to, as one transaction: all of it, or nothing. The session passes the
// DDL guard and the fence for that transaction.
func Restore(ctx context.Context, q Querier, script string) error {
	script = "SET LOCAL " + AllowDDLSetting + " = on;\nSET LOCAL transaction_read_only = off;\n" + script
	if err := inTransaction(ctx, q, script); err != nil {
		return fmt.Errorf("restore the schema: %w", err)
	}
	return nil
}
