package main

// The repmgr comparison: on a repmgr sandbox (real repmgr, a repmgrd per
// node, the sandbox's sshd for repmgr's own ssh), Runs round trips pg1 ->
// pg2 -> pg1 through the shipped repmgr-switchover playbook, with the
// engine, and Runs more through repmgr's own `repmgr standby switchover
// --siblings-follow`, run on the candidate as the servers' user, the canary
// writing through PgBouncer both ways. repmgr knows nothing of the pooler,
// which keeps sending clients to the old primary; the benchmark repoints
// PgBouncer to the new primary right after repmgr returns, as an operator
// would by hand (byhand.go), and that time counts in the window the canary
// sees.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/repmgr"
	"github.com/switchover/switchover/internal/sandbox"
)

const repmgrPlaybook = "repmgr-switchover"

// The repmgr modes.
const (
	modeRepmgrPlaybook = "repmgr playbook" // our playbook, with the engine
	modeRepmgrOwn      = "repmgr own"      // repmgr standby switchover --siblings-follow, PgBouncer repointed by hand
)

// repmgrOwnTimeout bounds repmgr's own switchover.
const repmgrOwnTimeout = 3 * time.Minute

// repmgrResult is the repmgr part of the benchmark and of the last line
// ("repmgr"); the rows stay out of the JSON.
type repmgrResult struct {
	Playbook managerMode  `json:"playbook"`
	Own      *managerMode `json:"repmgr_standby_switchover"` // null when the sandbox has no sshd for it
	// OwnSkipped says why there is no row for repmgr's own switchover.
	OwnSkipped string `json:"repmgr_standby_switchover_skipped,omitempty"`
	rows       []*switchover
	skipped    string // why the whole comparison did not run: repmgr is not installed
}

// repmgrOwnSkipped is why repmgr's own switchover has no row on a machine
// without sshd.
const repmgrOwnSkipped = "no sshd on this machine: repmgr standby switchover needs ssh between the nodes"

// repmgrBench runs the comparison and prints its rows, or says why it is
// skipped and returns a result that says so; its summary is printed with
// the report's.
func (b *bench) repmgrBench(ctx context.Context) (*repmgrResult, error) {
	bin, err := sandbox.FindBinDir("")
	if err != nil {
		return nil, err
	}
	if _, _, err := sandbox.FindRepmgr(bin); err != nil {
		fmt.Fprintf(b.out, "\n== repmgr: skipped: %v\n", err)
		return &repmgrResult{skipped: err.Error()}, nil
	}
	rb, err := loadPlaybook(repmgrPlaybook)
	if err != nil {
		return nil, err
	}
	if err := b.up(ctx, 2, sandbox.ManagerRepmgr); err != nil {
		return nil, err
	}
	own := b.sb.RepmgrSSH()
	if own {
		fmt.Fprintf(b.out, "   %s per way: %q in-process, and `repmgr -f DIR/repmgr-CANDIDATE.conf standby switchover --siblings-follow` on the candidate\n",
			plural(b.o.Runs, "round trip"), repmgrPlaybook)
		fmt.Fprintln(b.out, "   repmgr leaves PgBouncer on the old primary: the benchmark repoints it right after repmgr returns, as an operator would by hand")
	} else {
		fmt.Fprintf(b.out, "   %s of %q; %s, so no row for repmgr's own switchover\n",
			plural(b.o.Runs, "round trip"), repmgrPlaybook, repmgrOwnSkipped)
	}
	fmt.Fprintln(b.out)
	patroniHeader(b.out)
	res := &repmgrResult{}
	dirs := [][2]string{{"pg1", "pg2"}, {"pg2", "pg1"}}
	for i := 1; i <= b.o.Runs; i++ {
		for _, d := range dirs {
			if err := b.waitRepmgrSettled(ctx, d[0]); err != nil {
				return nil, err
			}
			s, err := b.switchover(ctx, rb, modeRepmgrPlaybook, b.sb.Inventory(), i, d[0], d[1])
			if err != nil {
				return nil, err
			}
			printRepmgr(b.out, s, "")
			res.rows = append(res.rows, s)
		}
	}
	for i := 1; own && i <= b.o.Runs; i++ {
		for _, d := range dirs {
			if err := b.waitRepmgrSettled(ctx, d[0]); err != nil {
				return nil, err
			}
			s, note, err := b.repmgrOwn(ctx, i, d[0], d[1])
			if err != nil {
				return nil, err
			}
			printRepmgr(b.out, s, note)
			res.rows = append(res.rows, s)
		}
	}
	if err := b.waitRepmgrSettled(ctx, "pg1"); err != nil {
		return nil, err
	}
	if err := b.down(); err != nil {
		return nil, err
	}
	res.tally(own)
	return res, nil
}

// tally puts the rows' figures in the result's last-line fields; own says
// whether repmgr's own switchover ran.
func (p *repmgrResult) tally(own bool) {
	p.Playbook = managerModeOf(p.rows, modeRepmgrPlaybook, (*switchover).repmgrToWritesMS, true)
	p.Own, p.OwnSkipped = nil, repmgrOwnSkipped
	if own {
		m := managerModeOf(p.rows, modeRepmgrOwn, (*switchover).repmgrToWritesMS, false)
		p.Own, p.OwnSkipped = &m, ""
	}
}

// addTo puts the comparison in the last line as "repmgr", or says why it
// did not run.
func (p *repmgrResult) addTo(r *result) {
	if p.skipped != "" {
		r.Repmgr, r.RepmgrSkipped = nil, p.skipped
		return
	}
	r.Repmgr = p
}

// repmgrOwn runs one `repmgr standby switchover --siblings-follow` from ->
// to on the candidate's host, with a canary of our own writing through
// PgBouncer, repoints PgBouncer to the new primary by hand once repmgr
// returns, and waits until the pooler takes writes again before stopping
// the canary.
func (b *bench) repmgrOwn(ctx context.Context, i int, from, to string) (*switchover, string, error) {
	return b.byHand(ctx, modeRepmgrOwn, "repmgr", i, from, to, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, repmgrOwnTimeout)
		defer cancel()
		out, err := repmgr.Run(cctx, b.sb.Cluster(), to, "standby", "switchover", "--siblings-follow")
		fmt.Fprintf(b.log, "  repmgr standby switchover %s -> %s:\n%s\n", from, to, out)
		return err
	})
}

// waitRepmgrSettled waits until primary is the only primary with every
// other node streaming from it (pg.topology), repmgr registers that shape
// (repmgr.agrees), and repmgrd runs unpaused on every node.
func (b *bench) waitRepmgrSettled(ctx context.Context, primary string) error {
	c := b.sb.Cluster()
	tg := &cluster.Target{Cluster: c, Facts: &cluster.Facts{}}
	topo := &checks.Topology{Primary: primary}
	agrees := &checks.RepmgrAgrees{}
	deadline := time.Now().Add(settleTimeout)
	last := ""
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r := topo.Run(cctx, tg)
		if r.Status == checks.Pass {
			r = agrees.Run(cctx, tg)
		}
		if r.Status == checks.Pass {
			last = ""
			for _, d := range repmgr.Read(cctx, c, primary).Daemons {
				if d.Error != "" || !d.Running || d.Paused {
					last += fmt.Sprintf(" %s: repmgrd running=%t paused=%t %s", d.Node, d.Running, d.Paused, d.Error)
				}
			}
			if last == "" {
				cancel()
				return nil
			}
		} else {
			last = r.Observed
		}
		cancel()
		if time.Now().After(deadline) {
			return fmt.Errorf("the repmgr cluster did not settle on %s within %s: %s", primary, settleTimeout, last)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// summary prints the two ways side by side, and where our playbook's time
// goes.
func (p *repmgrResult) summary(w io.Writer, runs int) {
	if p.skipped != "" {
		fmt.Fprintf(w, "== repmgr: skipped (%s)\n", p.skipped)
		return
	}
	fmt.Fprintf(w, "== repmgr: %d switchovers per way (%s pg1 -> pg2 -> pg1), canary through PgBouncer\n", 2*runs, plural(runs, "round trip"))
	rows := [][]string{{"way", "window_ms min", "median", "max", "client errors", "lost", "switchover_ms median", "to_writes_ms median"}}
	rows = append(rows, p.Playbook.summaryRow(modeRepmgrPlaybook))
	if p.Own != nil {
		rows = append(rows, p.Own.summaryRow(modeRepmgrOwn))
	}
	table(w, rows, 1)
	if p.OwnSkipped != "" {
		fmt.Fprintf(w, "   repmgr own: skipped (%s)\n", p.OwnSkipped)
	}
	fmt.Fprintln(w, "   switchover_ms: the playbook's whole run (repmgrd paused, preflight to verify, repmgr's metadata registered, repmgrd unpaused);")
	fmt.Fprintln(w, "   repmgr own: from its start until the pooler takes writes, including the PgBouncer repoint the benchmark does after it.")
	fmt.Fprintln(w, "   to_writes_ms: playbook: its pause-pooler to resume-pooler steps; repmgr own: as switchover_ms")
	fmt.Fprintf(w, "\n== where the time goes: median per step, repmgr playbook (%d switchovers)\n", 2*runs)
	breakdown(w, p.rows, modeRepmgrPlaybook, median(statsOf(p.rows, modeRepmgrPlaybook).total))
}

// repmgrToWritesMS is the time from the moment clients are held (or the
// switchover starts) until the pooler takes writes on the new primary.
func (s *switchover) repmgrToWritesMS() float64 {
	if s.mode == modeRepmgrOwn {
		return s.totalMS
	}
	var sum float64
	for _, step := range []string{"pause-pooler", "stop-primary", "promote", "repoint-pooler", "resume-pooler"} {
		sum += s.steps[step]
	}
	return sum
}

// RunRepmgr runs the repmgr comparison alone, as `make bench` runs it after
// the Patroni one, and prints its summary: for measuring repmgr without the
// other sandboxes.
func RunRepmgr(ctx context.Context, o Options) (err error) {
	if o.Runs < 1 {
		return fmt.Errorf("bench: runs must be at least 1, not %d", o.Runs)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	work, err := os.MkdirTemp("", "switchover-bench-")
	if err != nil {
		return err
	}
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	b := &bench{o: o, out: o.Out, log: o.Log, work: work, journal: filepath.Join(work, "journal")}
	defer func() {
		if derr := b.finish(err != nil); derr != nil && err == nil {
			err = derr
		}
	}()
	if err := os.Mkdir(b.journal, 0o700); err != nil {
		return err
	}
	res, err := b.repmgrBench(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(b.out)
	res.summary(b.out, o.Runs)
	return nil
}

func printRepmgr(w io.Writer, s *switchover, note string) {
	if note == "" {
		name, d := s.slowest()
		note = fmt.Sprintf("slowest step %s %s ms", name, ms(d))
	}
	fmt.Fprintf(w, "%-16s  %3d  %-9s  %10s  %6d  %4d  %6d  %13s  %12s  %s\n",
		s.mode, s.run, s.from+"->"+s.to, ms(s.windowMS), s.errors, s.lost, s.acked, ms(s.totalMS), ms(s.repmgrToWritesMS()), note)
}
