package main

// The Patroni comparison: on a Patroni sandbox (real Patroni and etcd),
// Runs round trips pg1 -> pg2 -> pg1 through the shipped
// patroni-switchover playbook, with the engine, and Runs more through plain
// `patronictl switchover --force`, the canary writing through PgBouncer
// both ways. Plain patronictl knows nothing of the pooler, which keeps
// sending clients to the old leader; the benchmark repoints PgBouncer to
// the new leader right after patronictl returns, as an operator would by
// hand (byhand.go), and that time counts in the window the canary sees.

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/sandbox"
)

const patroniPlaybook = "patroni-switchover"

// The Patroni modes.
const (
	modePatroniPlaybook = "patroni playbook" // our playbook, with the engine
	modePatronictl      = "patronictl"       // patronictl switchover --force, PgBouncer repointed by hand
)

// Bounds of the patronictl mode.
const (
	patronictlTimeout = 2 * time.Minute  // patronictl itself
	repointTimeout    = 30 * time.Second // the hand repoint of PgBouncer
	writableTimeout   = 30 * time.Second // the pooler taking writes again after the repoint
	settleTimeout     = 90 * time.Second // the old leader back as a running replica
	canaryStopTimeout = 30 * time.Second // the canary's last commits and their check
)

// patroni runs the comparison, or says why it is skipped and returns nil.
func (b *bench) patroni(ctx context.Context) (*patroniResult, error) {
	if _, _, err := sandbox.FindPatroni(); err != nil {
		fmt.Fprintf(b.out, "\n== patroni: skipped: %v\n", err)
		return nil, nil
	}
	ctl, err := exec.LookPath("patronictl")
	if err != nil {
		fmt.Fprintf(b.out, "\n== patroni: skipped: patronictl not found on the PATH\n")
		return nil, nil
	}
	rb, err := loadPlaybook(patroniPlaybook)
	if err != nil {
		return nil, err
	}
	if err := b.up(ctx, 2, sandbox.ManagerPatroni); err != nil {
		return nil, err
	}
	fmt.Fprintf(b.out, "   %s per way: %q in-process, and `%s -c DIR/pg1.yml switchover --leader A --candidate B --force`\n",
		plural(b.o.Runs, "round trip"), patroniPlaybook, ctl)
	fmt.Fprintln(b.out, "   patronictl leaves PgBouncer on the old leader: the benchmark repoints it right after patronictl returns, as an operator would by hand")
	fmt.Fprintln(b.out)
	patroniHeader(b.out)
	res := &patroniResult{}
	dirs := [][2]string{{"pg1", "pg2"}, {"pg2", "pg1"}}
	for i := 1; i <= b.o.Runs; i++ {
		for _, d := range dirs {
			if err := b.waitSettled(ctx, d[0]); err != nil {
				return nil, err
			}
			s, err := b.switchover(ctx, rb, modePatroniPlaybook, b.sb.Inventory(), i, d[0], d[1])
			if err != nil {
				return nil, err
			}
			printPatroni(b.out, s, "")
			res.rows = append(res.rows, s)
		}
	}
	for i := 1; i <= b.o.Runs; i++ {
		for _, d := range dirs {
			if err := b.waitSettled(ctx, d[0]); err != nil {
				return nil, err
			}
			s, note, err := b.patronictl(ctx, ctl, i, d[0], d[1])
			if err != nil {
				return nil, err
			}
			printPatroni(b.out, s, note)
			res.rows = append(res.rows, s)
		}
	}
	if err := b.waitSettled(ctx, "pg1"); err != nil {
		return nil, err
	}
	if b.o.Keep {
		fmt.Fprintf(b.out, "-keep: the Patroni sandbox %s is brought down all the same, for the next sandbox\n", b.sb.Dir)
	}
	if err := b.down(); err != nil {
		return nil, err
	}
	res.Playbook = statsOf(res.rows, modePatroniPlaybook).result()
	res.Patronictl = statsOf(res.rows, modePatronictl).result()
	return res, nil
}

// patronictl runs one plain `patronictl switchover --force` from -> to with
// a canary of our own writing through PgBouncer, repoints PgBouncer to the
// new leader by hand once patronictl returns, and waits until the pooler
// takes writes again before stopping the canary.
func (b *bench) patronictl(ctx context.Context, ctl string, i int, from, to string) (*switchover, string, error) {
	return b.byHand(ctx, modePatronictl, "patronictl", i, from, to, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, patronictlTimeout)
		defer cancel()
		return patronictlSwitchover(cctx, b.sb, ctl, from, to)
	})
}

// waitSettled waits until the cluster has settled on leader, in Patroni's
// view and PostgreSQL's: /cluster shows it the running leader and every
// other member a running replica on its timeline with its lag known, and
// every other server streams from it (pg.topology). Patroni's "running"
// alone is not enough: a replica left on an old timeline runs, and Patroni
// may promote it instead of the candidate in the next switchover.
func (b *bench) waitSettled(ctx context.Context, leader string) error {
	c, err := patroni.New(b.sb.Cluster().Manager)
	if err != nil {
		return err
	}
	topo := &checks.Topology{Primary: leader}
	tg := &cluster.Target{Cluster: b.sb.Cluster(), Facts: &cluster.Facts{}}
	deadline := time.Now().Add(settleTimeout)
	last := ""
	for {
		st, err := c.Cluster(ctx)
		switch {
		case err != nil:
			last = err.Error()
		case !settledOn(st, b.sb.Nodes, leader):
			last = "/cluster: " + st.String()
		default:
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			r := topo.Run(cctx, tg)
			cancel()
			if r.Status == checks.Pass {
				return nil
			}
			last = "PostgreSQL: " + r.Observed
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster did not settle on %s within %s: %s", leader, settleTimeout, last)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// settledOn reports whether Patroni shows leader the running leader and
// every other node a running replica on the leader's timeline with its lag
// known.
func settledOn(st *patroni.State, nodes []sandbox.Node, leader string) bool {
	l, ok := st.Member(leader)
	if !ok || !l.SettledLeader() {
		return false
	}
	for _, n := range nodes {
		m, ok := st.Member(n.Name)
		if !ok {
			return false
		}
		if n.Name != leader && (!m.SettledReplica() || m.Timeline != l.Timeline || !m.Lag.Known) {
			return false
		}
	}
	return true
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func patroniHeader(w io.Writer) {
	fmt.Fprintf(w, "%-16s  %3s  %-9s  %10s  %6s  %4s  %6s  %13s  %12s  %s\n",
		"mode", "run", "direction", "window_ms", "errors", "lost", "acked", "switchover_ms", "to_writes_ms", "note")
}

// toWritesMS is the time from the switchover request to the pooler taking
// writes on the new leader, the same span both ways: for the playbook its
// switchover, repoint-pooler and resume-pooler steps (each up to its
// postconditions holding); for patronictl, from its start until a write
// through the pooler commits.
func (s *switchover) toWritesMS() float64 {
	if s.mode == modePatronictl || s.mode == modePgAutoctl {
		return s.totalMS
	}
	return s.steps["switchover"] + s.steps["repoint-pooler"] + s.steps["resume-pooler"]
}

func printPatroni(w io.Writer, s *switchover, note string) {
	if note == "" {
		name, d := s.slowest()
		note = fmt.Sprintf("slowest step %s %s ms", name, ms(d))
	}
	fmt.Fprintf(w, "%-16s  %3d  %-9s  %10s  %6d  %4d  %6d  %13s  %12s  %s\n",
		s.mode, s.run, s.from+"->"+s.to, ms(s.windowMS), s.errors, s.lost, s.acked, ms(s.totalMS), ms(s.toWritesMS()), note)
}

// summary prints the two ways side by side.
func (p *patroniResult) summary(w io.Writer, runs int) {
	fmt.Fprintf(w, "== patroni: %d switchovers per way (%s pg1 -> pg2 -> pg1), canary through PgBouncer\n", 2*runs, plural(runs, "round trip"))
	rows := [][]string{{"way", "window_ms min", "median", "max", "client errors", "lost", "switchover_ms median", "to_writes_ms median"}}
	for _, m := range []string{modePatroniPlaybook, modePatronictl} {
		s := statsOf(p.rows, m)
		var toWrites []float64
		for _, r := range p.rows {
			if r.mode == m {
				toWrites = append(toWrites, r.toWritesMS())
			}
		}
		rows = append(rows, []string{m, ms(minOf(s.window)).String(), ms(median(s.window)).String(), ms(maxOf(s.window)).String(),
			fmt.Sprint(s.errors), fmt.Sprint(s.lost), ms(median(s.total)).String(), ms(median(toWrites)).String()})
	}
	table(w, rows, 1)
	fmt.Fprintln(w, "   switchover_ms: the playbook's whole run (preflight to verify, the old leader back as a replica);")
	fmt.Fprintln(w, "   patronictl: from its start until the pooler takes writes, including the PgBouncer repoint the benchmark")
	fmt.Fprintln(w, "   does after it (plain patronictl leaves the pooler on the old leader).")
	fmt.Fprintln(w, "   to_writes_ms: from the switchover request until the pooler takes writes on the new leader, both ways")
}
