package main

// The logical cutover: on a sandbox with a green server beside blue
// (sandbox up --green), blue's database app filled by pgbench -i, the
// shipped logical-prepare once, then Runs round trips pg1 -> green1 -> pg1
// of logical-cutover, the run's canary writing through PgBouncer into the
// replicated canary table. Its window beside the physical switchover's is
// what a blue/green move costs clients against a streaming switchover.

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/runbook/spec"
)

// The logical playbooks the row runs.
const (
	LogicalPrepare = "logical-prepare"
	LogicalCutover = "logical-cutover"
)

// modeLogical is the mode of the logical cutovers.
const modeLogical = "logical cutover"

// logicalGoalMS is what the logical cutover is held to: clients held
// under a second (median), with no error.
const logicalGoalMS = 1000

// logicalHeld are the steps of logical-cutover from the pause to the
// resume: the time clients are held.
var logicalHeld = []string{"pause-pooler", "fence-from", "wait-applied", "sync-sequences", "compare-canary", "compare-sample",
	"stop-forward", "publish-reverse", "subscribe-reverse", "unfence-to", "repoint-pooler", "resume-pooler"}

// logicalResult is the logical cutover's part of the last line.
type logicalResult struct {
	modeResult
	// Steps are the median times of the steps clients are held through.
	Steps map[string]med `json:"held_steps_ms"`
	rows  []*switchover
}

// logical runs the logical cutover row.
func (b *bench) logical(ctx context.Context) (*logicalResult, error) {
	dir := filepath.Join(b.work, "sandbox-green")
	fmt.Fprintf(b.out, "\n== sandbox up --green: pg1 primary, 1 standby, PgBouncer in front, green1 beside (%s)\n", dir)
	uctx, cancel := context.WithTimeout(ctx, upTimeout)
	start := time.Now()
	sb, err := sandbox.Up(uctx, sandbox.Options{Dir: dir, PortBase: b.o.PortBase, Standbys: 1, Green: true,
		Log: func(format string, args ...any) { fmt.Fprintf(b.log, "  sandbox: "+format+"\n", args...) }})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("sandbox up --green: %w", err)
	}
	b.sb = sb
	pg1, _ := sb.Node("pg1")
	ictx, cancel := context.WithTimeout(ctx, loadInitTimeout)
	out, err := exec.CommandContext(ictx, filepath.Join(sb.BinDir, "pgbench"), "-i", "-q", "-s", "1", sb.Conninfo(pg1, "app")).CombinedOutput()
	cancel()
	if err != nil {
		return nil, fmt.Errorf("pgbench -i on pg1: %w: %s", err, lastLine(string(out)))
	}
	prepare, err := loadPlaybook(LogicalPrepare)
	if err != nil {
		return nil, err
	}
	p, err := planOf(prepare, sb.Inventory(), "from=pg1", "to="+sandbox.GreenNode, "allow_replica_identity_full=true")
	if err != nil {
		return nil, err
	}
	if _, err := b.execute(ctx, p, switchoverTimeout); err != nil {
		return nil, fmt.Errorf("%s: %w", LogicalPrepare, err)
	}
	fmt.Fprintf(b.out, "   up and prepared in %s: green1 follows pg1 by logical replication (pgbench's tables, pgbench_history with REPLICA IDENTITY FULL)\n\n",
		time.Since(start).Round(time.Millisecond))
	cutover, err := loadPlaybook(LogicalCutover)
	if err != nil {
		return nil, err
	}
	header(b.out)
	res := &logicalResult{}
	for i := 1; i <= b.o.Runs; i++ {
		for _, d := range [][2]string{{"pg1", sandbox.GreenNode}, {sandbox.GreenNode, "pg1"}} {
			s, err := b.logicalCutover(ctx, cutover, i, d[0], d[1])
			if err != nil {
				return nil, err
			}
			s.print(b.out)
			res.rows = append(res.rows, s)
		}
	}
	if b.o.Keep {
		fmt.Fprintf(b.out, "-keep: the green sandbox %s is brought down all the same, for the next sandbox\n", sb.Dir)
	}
	if err := b.down(); err != nil {
		return nil, err
	}
	res.tally()
	return res, nil
}

// logicalCutover runs logical-cutover once, from -> to, and measures it.
func (b *bench) logicalCutover(ctx context.Context, rb *spec.Runbook, i int, from, to string) (*switchover, error) {
	what := fmt.Sprintf("%s %s -> %s (round trip %d)", modeLogical, from, to, i)
	p, err := planOf(rb, b.sb.Inventory(), "from="+from, "to="+to)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	evs, err := b.execute(ctx, p, switchoverTimeout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	s, err := measure(evs, modeLogical, i, from, to)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return s, nil
}

// tally sums the rows into the figures of the last line. A held step's
// time is its checks, action and postconditions, but for the pause,
// whose checks run before clients are held: its action alone.
func (r *logicalResult) tally() {
	r.modeResult = statsOf(r.rows, modeLogical).result()
	r.Steps = map[string]med{}
	for _, name := range logicalHeld {
		var xs []float64
		for _, s := range r.rows {
			if s.mode != modeLogical {
				continue
			}
			if ph, ok := s.phases[name]; ok {
				held := ph.checks + ph.action + ph.ensures
				if name == "pause-pooler" {
					held = ph.action
				}
				xs = append(xs, held)
			} else if d, ok := s.steps[name]; ok && name != "pause-pooler" {
				xs = append(xs, d)
			}
		}
		if len(xs) > 0 {
			r.Steps[name] = med{ms(median(xs))}
		}
	}
}

// summary prints the logical cutover's figures beside the goal, and the
// median of each step clients are held through.
func (r *logicalResult) summary(w io.Writer, runs int) {
	fmt.Fprintf(w, "== logical cutover: %d cutovers (%s pg1 -> green1 -> pg1, logical-cutover through PgBouncer)\n", 2*runs, plural(runs, "round trip"))
	s := statsOf(r.rows, modeLogical)
	table(w, [][]string{
		{"mode", "window_ms min", "median", "max", "client errors", "lost", "switchover_ms median"},
		{modeLogical, ms(minOf(s.window)).String(), ms(median(s.window)).String(), ms(maxOf(s.window)).String(),
			fmt.Sprint(s.errors), fmt.Sprint(s.lost), ms(median(s.total)).String()},
	}, 1)
	verdict := "met"
	if median(s.window) >= logicalGoalMS || s.errors > 0 || s.lost > 0 {
		verdict = "NOT met"
	}
	fmt.Fprintf(w, "   goal: clients held under %d ms (median) with 0 client errors and 0 lost: %s\n", logicalGoalMS, verdict)
	rows := [][]string{{"held step", "median ms"}}
	defer fmt.Fprintln(w, "   (pause-pooler: its action alone; its checks run before clients are held)")
	for _, name := range logicalHeld {
		if m, ok := r.Steps[name]; ok {
			rows = append(rows, []string{name, m.Median.String()})
		}
	}
	table(w, rows, 1)
}

// addTo puts the figures in the last line as "logical_cutover".
func (r *logicalResult) addTo(res *result) { res.LogicalCutover = r }
