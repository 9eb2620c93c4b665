package main

// Two PgBouncers: on a sandbox with two PgBouncers in front of the cluster
// (sandbox up --poolers 2), Runs round trips pg1 -> pg2 -> pg1 of the
// shipped streaming playbook, the run's canary writing through the first
// pooler and a second writer of the benchmark's own through the other. The
// playbook pauses, repoints and resumes both; a switchover's window is the
// longer of the two writers' gaps, its client errors and lost commits the
// two writers' together.

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/switchover/switchover/internal/canary"
	"github.com/switchover/switchover/internal/sandbox"
)

// modeTwoPoolers is the mode of the two-PgBouncer switchovers.
const modeTwoPoolers = "2 pgbouncers"

// twoPoolersResult is the two-PgBouncer part of the last line; the rows
// stay out of the JSON.
type twoPoolersResult struct {
	modeResult
	rows []*switchover
}

// twoPoolerRow is one switchover: the run's own figures (its canary, through
// the first pooler) and the second writer's through the other.
type twoPoolerRow struct {
	*switchover
	canaryMS float64 // the run's canary's window alone
	second   canary.Report
}

// twoPoolers runs the two-PgBouncer switchovers.
func (b *bench) twoPoolers(ctx context.Context) (*twoPoolersResult, error) {
	dir := filepath.Join(b.work, "sandbox-2-poolers")
	fmt.Fprintf(b.out, "\n== sandbox up: pg1 primary, 2 standbys, two PgBouncers in front (%s)\n", dir)
	uctx, cancel := context.WithTimeout(ctx, upTimeout)
	start := time.Now()
	sb, err := sandbox.Up(uctx, sandbox.Options{Dir: dir, Standbys: 2, Poolers: 2,
		Log: func(format string, args ...any) { fmt.Fprintf(b.log, "  sandbox: "+format+"\n", args...) }})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("sandbox up (2 poolers): %w", err)
	}
	b.sb = sb
	pgbs := sb.Poolers()
	fmt.Fprintf(b.out, "   up in %s: PgBouncers %s on 127.0.0.1:%d and %s on 127.0.0.1:%d\n",
		time.Since(start).Round(time.Millisecond), pgbs[0].Name, pgbs[0].Port, pgbs[1].Name, pgbs[1].Port)
	fmt.Fprintf(b.out, "   the run's canary writes through %s, a second writer through %s; both must be paused, repointed and resumed\n\n", pgbs[0].Name, pgbs[1].Name)
	twoPoolersHeader(b.out)
	res := &twoPoolersResult{}
	for i := 1; i <= b.o.Runs; i++ {
		for _, d := range [][2]string{{"pg1", "pg2"}, {"pg2", "pg1"}} {
			row, err := b.twoPoolerSwitchover(ctx, pgbs[1], i, d[0], d[1])
			if err != nil {
				return nil, err
			}
			row.print(b.out)
			res.rows = append(res.rows, row.switchover)
		}
	}
	if b.o.Keep {
		fmt.Fprintf(b.out, "-keep: the two-pooler sandbox %s is brought down all the same, for the next sandbox\n", sb.Dir)
	}
	if err := b.down(); err != nil {
		return nil, err
	}
	res.modeResult = statsOf(res.rows, modeTwoPoolers).result()
	return res, nil
}

// twoPoolerSwitchover runs one switchover with the second writer going
// through pooler second, and folds that writer's figures into the row.
func (b *bench) twoPoolerSwitchover(ctx context.Context, second sandbox.Pooler, i int, from, to string) (*twoPoolerRow, error) {
	what := fmt.Sprintf("%s switchover %s -> %s (round trip %d)", modeTwoPoolers, from, to, i)
	w, err := canary.Start(ctx, canary.Options{Conninfo: b.sb.PoolerClientConninfo(second), RunID: fmt.Sprintf("bench-second-pooler-%d-%s-%d", i, to, time.Now().UnixNano())})
	if err != nil {
		return nil, fmt.Errorf("%s: the second writer: %w", what, err)
	}
	defer w.Close()
	s, err := b.switchover(ctx, b.rb, modeTwoPoolers, b.sb.Inventory(), i, from, to)
	if err != nil {
		return nil, err
	}
	// Let the second writer commit again after the resume, so the gap it
	// measures is closed.
	if err := sleep(ctx, 300*time.Millisecond); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, canaryStopTimeout)
	r, err := w.Stop(sctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%s: the second writer: %w", what, err)
	}
	row := &twoPoolerRow{switchover: s, canaryMS: s.windowMS, second: r}
	// The switchover's figures are both writers' together.
	s.windowMS = max(s.windowMS, float64(r.Window.Microseconds())/1000)
	s.errors += r.Errors
	s.lost += len(r.Lost)
	s.acked += r.Acked
	return row, nil
}

func twoPoolersHeader(w io.Writer) {
	fmt.Fprintf(w, "%3s  %-9s  %10s  %6s  %4s  %6s  %17s  %17s  %13s\n",
		"run", "direction", "window_ms", "errors", "lost", "acked", "canary window_ms", "second window_ms", "switchover_ms")
}

func (r *twoPoolerRow) print(w io.Writer) {
	fmt.Fprintf(w, "%3d  %-9s  %10s  %6d  %4d  %6d  %17s  %17s  %13s\n",
		r.run, r.from+"->"+r.to, ms(r.windowMS), r.errors, r.lost, r.acked,
		ms(r.canaryMS), ms(float64(r.second.Window.Microseconds())/1000), ms(r.totalMS))
	if len(r.second.ErrorKinds) > 0 {
		fmt.Fprintln(w, "        second writer's first error: "+r.second.ErrorKinds[0])
	}
}

// summary prints the two-PgBouncer figures over every switchover.
func (res *twoPoolersResult) summary(w io.Writer, runs int) {
	fmt.Fprintf(w, "== two PgBouncers: %d switchovers (%s pg1 -> pg2 -> pg1), the canary through one, a second writer through the other\n", 2*runs, plural(runs, "round trip"))
	s := statsOf(res.rows, modeTwoPoolers)
	table(w, [][]string{
		{"mode", "window_ms min", "median", "max", "client errors", "lost", "switchover_ms median"},
		{modeTwoPoolers, ms(minOf(s.window)).String(), ms(median(s.window)).String(), ms(maxOf(s.window)).String(),
			fmt.Sprint(s.errors), fmt.Sprint(s.lost), ms(median(s.total)).String()},
	}, 1)
	fmt.Fprintln(w, "   window: the longer of the two writers' longest gaps; errors and lost: both writers'")
}

// addTo puts the figures in the last line as "two_poolers".
func (res *twoPoolersResult) addTo(r *result) { r.TwoPoolers = &res.modeResult }
