package main

// What an operator does by hand, outside the engine, in the comparison
// runs: plain patronictl, then pointing PgBouncer at the new leader. The
// playbooks' own switchovers never come here: they run with the engine.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/canary"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/transport"
)

// patronictlSwitchover runs `patronictl -c DIR/pg1.yml switchover --leader
// FROM --candidate TO --force` on the sandbox, as the servers' user, and
// fails unless patronictl says it switched over.
func patronictlSwitchover(ctx context.Context, sb *sandbox.Sandbox, ctl, from, to string) error {
	cmd := fmt.Sprintf("%s -c %s switchover --leader %s --candidate %s --force",
		shellQuote(ctl), shellQuote(sb.Dir+"/pg1.yml"), shellQuote(from), shellQuote(to))
	out, err := transport.Local{User: sb.RunAs}.Run(ctx, cmd)
	if err != nil {
		return fmt.Errorf("%s: %w: %s", cmd, err, out.Combined())
	}
	if out.ExitCode != 0 || !strings.Contains(out.Stdout, "Successfully switched over") {
		return fmt.Errorf("%s: exit %d: %s", cmd, out.ExitCode, out.Combined())
	}
	return nil
}

// repointPoolerByHand is what an operator does after plain patronictl,
// which leaves PgBouncer on the old leader: set the port of the pooler's
// database entry in pgbouncer.ini to the new leader's, then RELOAD on the
// admin console. Whether it took shows when a write through the pooler
// commits (waitWritable).
func repointPoolerByHand(ctx context.Context, sb *sandbox.Sandbox, to string) error {
	n, ok := sb.Node(to)
	if !ok {
		return fmt.Errorf("the sandbox has no node %s", to)
	}
	p := sb.Cluster().ClientPooler()
	if p == nil || p.Config == "" || p.Database == "" {
		return errors.New("the sandbox's inventory names no pooler config and database")
	}
	src, err := os.ReadFile(p.Config)
	if err != nil {
		return err
	}
	text, err := withEntryPort(string(src), p.Database, n.Port)
	if err != nil {
		return fmt.Errorf("%s: %w", p.Config, err)
	}
	// The file exists: it keeps its owner and mode.
	if err := os.WriteFile(p.Config, []byte(text), 0o640); err != nil {
		return err
	}
	conn, err := pg.ConnectAdmin(ctx, p.Admin)
	if err != nil {
		return fmt.Errorf("connect to the pgbouncer admin console: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "RELOAD"); err != nil {
		return fmt.Errorf("RELOAD: %w", err)
	}
	return nil
}

var portSetting = regexp.MustCompile(`\bport\s*=\s*[0-9]+`)

// withEntryPort sets port= of db's entry in the [databases] section of a
// PgBouncer configuration, as an operator's editor would, and leaves every
// other line as it was.
func withEntryPort(text, db string, port int) (string, error) {
	lines := strings.SplitAfter(text, "\n")
	section, found := "", -1
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") && strings.HasSuffix(trimmed, "]") {
			section = strings.ToLower(strings.TrimSpace(trimmed[1 : len(trimmed)-1]))
			continue
		}
		if section != "databases" || trimmed == "" || trimmed[0] == ';' || trimmed[0] == '#' {
			continue
		}
		if key, _, ok := strings.Cut(trimmed, "="); !ok || strings.TrimSpace(key) != db {
			continue
		}
		if found >= 0 {
			return "", fmt.Errorf("[databases] has more than one entry %s", db)
		}
		found = i
	}
	if found < 0 {
		return "", fmt.Errorf("[databases] has no entry %s", db)
	}
	key, value, _ := strings.Cut(lines[found], "=")
	if n := len(portSetting.FindAllStringIndex(value, -1)); n != 1 {
		return "", fmt.Errorf("[databases] entry %s has %d port= settings, not one", db, n)
	}
	lines[found] = key + "=" + portSetting.ReplaceAllString(value, "port="+strconv.Itoa(port))
	return strings.Join(lines, ""), nil
}

// waitWritable waits until a write transaction commits through conninfo:
// the pooler reaches a primary again.
func waitWritable(ctx context.Context, conninfo string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for {
		last = tryWrite(ctx, conninfo)
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the pooler did not take writes within %s after the repoint: %w", limit, last)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

func tryWrite(ctx context.Context, conninfo string) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pg.ConnectPooled(cctx, conninfo)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	// txid_current() assigns a transaction id: a standby refuses it.
	_, err = conn.Exec(cctx, "SELECT txid_current()")
	return err
}

// shellQuote quotes s as one word for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// byHand is one switchover by a manager's own command, as an operator runs
// it: a canary of our own writing through PgBouncer, a moment of steady
// commits, the command (run, under its own deadline), PgBouncer repointed to
// the new primary by hand once it returns, and the canary stopped once the
// pooler takes writes again. tool names the command in the note.
func (b *bench) byHand(ctx context.Context, mode, tool string, i int, from, to string, run func(context.Context) error) (*switchover, string, error) {
	what := fmt.Sprintf("%s switchover %s -> %s (round trip %d)", mode, from, to, i)
	sb := b.sb
	w, err := canary.Start(ctx, canary.Options{Conninfo: sb.ClientConninfo(), RunID: fmt.Sprintf("bench-%s-%d-%s-%d", mode, i, to, time.Now().UnixNano())})
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", what, err)
	}
	defer w.Close()
	// A moment of steady commits before, so the window is measured from
	// the last commit before the switchover.
	if err := sleep(ctx, 300*time.Millisecond); err != nil {
		return nil, "", err
	}
	start := time.Now()
	err = run(ctx)
	toolMS := msSince(start, time.Now())
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", what, err)
	}
	rstart := time.Now()
	rctx, rcancel := context.WithTimeout(ctx, repointTimeout)
	err = repointPoolerByHand(rctx, sb, to)
	rcancel()
	if err != nil {
		return nil, "", fmt.Errorf("%s: the benchmark's repoint of PgBouncer: %w", what, err)
	}
	repointMS := msSince(rstart, time.Now())
	if err := waitWritable(ctx, sb.ClientConninfo(), writableTimeout); err != nil {
		return nil, "", fmt.Errorf("%s: %w", what, err)
	}
	totalMS := msSince(start, time.Now())
	// Let the canary commit again after the pooler takes writes, so the
	// gap it measures is closed.
	if err := sleep(ctx, 300*time.Millisecond); err != nil {
		return nil, "", err
	}
	sctx, scancel := context.WithTimeout(ctx, canaryStopTimeout)
	r, err := w.Stop(sctx)
	scancel()
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", what, err)
	}
	s := &switchover{mode: mode, from: from, to: to, run: i, endpoint: "pooler",
		windowMS: float64(r.Window.Microseconds()) / 1000, errors: r.Errors, lost: len(r.Lost), acked: r.Acked,
		timing: timing{totalMS: totalMS}}
	note := fmt.Sprintf("%s %s ms, then repoint by the benchmark %s ms", tool, ms(toolMS), ms(repointMS))
	if len(r.ErrorKinds) > 0 {
		note += "; first error: " + r.ErrorKinds[0]
	}
	return s, note, nil
}
