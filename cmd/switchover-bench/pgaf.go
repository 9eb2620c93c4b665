package main

// The pg_auto_failover comparison: on a pg_auto_failover sandbox (a real
// monitor and keepers, pg1 and one secondary), Runs round trips
// pg1 -> pg2 -> pg1 through the shipped pg-auto-failover-switchover
// playbook, with the engine, and Runs more through plain `pg_autoctl
// perform switchover`, the canary writing through PgBouncer both ways.
// pg_autoctl knows nothing of the pooler, which keeps sending clients to
// the old primary; the benchmark repoints PgBouncer to the new primary
// right after pg_autoctl returns, as an operator would by hand, and that
// time counts in the window the canary sees.

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
)

const pgafPlaybook = "pg-auto-failover-switchover"

// The pg_auto_failover modes.
const (
	modePgafPlaybook = "pgaf playbook" // our playbook, with the engine
	modePgAutoctl    = "pg_autoctl"    // pg_autoctl perform switchover, PgBouncer repointed by hand
)

// pgAutoctlTimeout bounds pg_autoctl perform switchover, which waits for
// the new primary itself (its --wait).
const pgAutoctlTimeout = 2 * time.Minute

// pgafResult is the pg_auto_failover part of the benchmark and of the
// last line ("pg_auto_failover"); the rows stay out of the JSON.
type pgafResult struct {
	Playbook  managerMode `json:"playbook"`
	PgAutoctl managerMode `json:"pg_autoctl"`
	rows      []*switchover
	skipped   string // why the comparison did not run: pg_auto_failover is not installed
}

// pgaf runs the comparison and prints its rows, or says why it is skipped
// and returns a result that says so; its summary is printed with the
// report's.
func (b *bench) pgaf(ctx context.Context) (*pgafResult, error) {
	if _, err := sandbox.FindPgAutoctl(""); err != nil {
		fmt.Fprintf(b.out, "\n== pg_auto_failover: skipped: %v\n", err)
		return &pgafResult{skipped: err.Error()}, nil
	}
	rb, err := loadPlaybook(pgafPlaybook)
	if err != nil {
		return nil, err
	}
	if err := b.up(ctx, 1, sandbox.ManagerPgAutoFailover); err != nil {
		return nil, err
	}
	fmt.Fprintf(b.out, "   %s per way: %q in-process, and `pg_autoctl perform switchover --pgdata DIR/pg1`\n",
		plural(b.o.Runs, "round trip"), pgafPlaybook)
	fmt.Fprintln(b.out, "   pg_autoctl leaves PgBouncer on the old primary: the benchmark repoints it right after pg_autoctl returns, as an operator would by hand")
	fmt.Fprintln(b.out)
	patroniHeader(b.out)
	res := &pgafResult{}
	dirs := [][2]string{{"pg1", "pg2"}, {"pg2", "pg1"}}
	for i := 1; i <= b.o.Runs; i++ {
		for _, d := range dirs {
			if err := b.sb.WaitPgafSettled(ctx, d[0], settleTimeout); err != nil {
				return nil, err
			}
			s, err := b.switchover(ctx, rb, modePgafPlaybook, b.sb.Inventory(), i, d[0], d[1])
			if err != nil {
				return nil, err
			}
			printPatroni(b.out, s, "")
			res.rows = append(res.rows, s)
		}
	}
	for i := 1; i <= b.o.Runs; i++ {
		for _, d := range dirs {
			if err := b.sb.WaitPgafSettled(ctx, d[0], settleTimeout); err != nil {
				return nil, err
			}
			s, note, err := b.pgAutoctl(ctx, i, d[0], d[1])
			if err != nil {
				return nil, err
			}
			printPatroni(b.out, s, note)
			res.rows = append(res.rows, s)
		}
	}
	if err := b.sb.WaitPgafSettled(ctx, "pg1", settleTimeout); err != nil {
		return nil, err
	}
	if b.o.Keep {
		fmt.Fprintf(b.out, "-keep: the pg_auto_failover sandbox %s is brought down all the same, for the next sandbox\n", b.sb.Dir)
	}
	if err := b.down(); err != nil {
		return nil, err
	}
	res.tally()
	return res, nil
}

// tally puts the rows' figures in the result's last-line fields.
func (p *pgafResult) tally() {
	p.Playbook = managerModeOf(p.rows, modePgafPlaybook, (*switchover).toWritesMS, true)
	p.PgAutoctl = managerModeOf(p.rows, modePgAutoctl, (*switchover).toWritesMS, false)
}

// addTo puts the comparison in the last line as "pg_auto_failover", or
// says why it did not run.
func (p *pgafResult) addTo(r *result) {
	if p.skipped != "" {
		r.PgAutoFailover, r.PgAutoFailoverSkipped = nil, p.skipped
		return
	}
	r.PgAutoFailover = p
}

// pgAutoctl runs one plain `pg_autoctl perform switchover` from -> to (the
// formation has one secondary, so the monitor can only pick to) with a
// canary of our own writing through PgBouncer, repoints PgBouncer to the
// new primary by hand once pg_autoctl returns, and waits until the pooler
// takes writes again before stopping the canary.
func (b *bench) pgAutoctl(ctx context.Context, i int, from, to string) (*switchover, string, error) {
	pg1, _ := b.sb.Node("pg1")
	return b.byHand(ctx, modePgAutoctl, "pg_autoctl", i, from, to, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, pgAutoctlTimeout)
		defer cancel()
		_, err := b.sb.RunPgAutoctl(cctx, "perform", "switchover", "--pgdata", pg1.DataDir, "--formation", "default", "--group", "0")
		return err
	})
}

// summary prints the two ways side by side, and the playbook's median per
// step.
func (p *pgafResult) summary(w io.Writer, runs int) {
	if p.skipped != "" {
		fmt.Fprintf(w, "== pg_auto_failover: skipped (%s)\n", p.skipped)
		return
	}
	fmt.Fprintf(w, "== pg_auto_failover: %d switchovers per way (%s pg1 -> pg2 -> pg1), canary through PgBouncer\n", 2*runs, plural(runs, "round trip"))
	table(w, [][]string{
		{"way", "window_ms min", "median", "max", "client errors", "lost", "switchover_ms median", "to_writes_ms median"},
		p.Playbook.summaryRow(modePgafPlaybook),
		p.PgAutoctl.summaryRow(modePgAutoctl),
	}, 1)
	fmt.Fprintln(w, "   switchover_ms: the playbook's whole run (preflight to verify, the monitor settled again);")
	fmt.Fprintln(w, "   pg_autoctl: from its start until the pooler takes writes, including the PgBouncer repoint the benchmark")
	fmt.Fprintln(w, "   does after it (plain pg_autoctl leaves the pooler on the old primary).")
	fmt.Fprintln(w, "   to_writes_ms: from the switchover request until the pooler takes writes on the new primary, both ways")
	fmt.Fprintf(w, "\n== where the time goes: median per step, pgaf playbook (%d switchovers)\n", 2*runs)
	breakdown(w, p.rows, modePgafPlaybook, median(statsOf(p.rows, modePgafPlaybook).total))
}
