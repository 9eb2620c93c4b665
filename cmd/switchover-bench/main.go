// Command switchover-bench measures what DESIGN.md calls the measures that
// matter, on real sandbox clusters: the write-unavailability window a
// client sees, the client errors, the acknowledged commits lost (must be 0),
// the time a switchover takes and the time spent in preconditions, and how
// the preflight grows with the number of standbys.
//
// It brings up a sandbox (pg1 primary, two standbys, PgBouncer in front),
// times the preflight alone, then runs RUNS round trips pg1 -> pg2 -> pg1 of
// the shipped streaming playbook in-process with the canary going through
// PgBouncer ("pooler"), and RUNS more with the inventory's pooler: section
// removed, the canary writing through a multi-host read-write connection
// string ("direct"). Last it times the preflight on a sandbox with eight
// standbys. Every sandbox is brought down at the end, also on a failure or
// an interrupt. The last line printed is one JSON object with the figures.
//
//	go run ./cmd/switchover-bench -runs 5
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/playbooks"
	"github.com/switchover/switchover/runbook"
)

const playbook = "postgres-streaming-switchover"

// Bounds on every wait, so that a stuck server stops the benchmark instead
// of hanging it.
const (
	upTimeout         = 4 * time.Minute
	downTimeout       = 90 * time.Second
	switchoverTimeout = 3 * time.Minute
	preflightTimeout  = time.Minute
)

// The modes: where the canary writes through.
const (
	modePooler = "pooler" // through PgBouncer, which the playbook pauses and repoints
	modeDirect = "direct" // the inventory has no pooler: a multi-host read-write connection string
)

type options struct {
	runs     int
	portBase int
	keep     bool
}

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", 5, "round trips pg1 -> pg2 -> pg1 per mode, and preflight runs per sandbox")
	flag.IntVar(&o.portBase, "port-base", 0, "PgBouncer's port, node i on port-base+i (default: a free block below 32000)")
	flag.BoolVar(&o.keep, "keep", false, "leave the sandbox in use, its journals and inventories up and on disk when the benchmark ends or stops")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: switchover-bench [-runs N] [-port-base PORT] [-keep]\n\n"+
			"Measures the write-unavailability window, client errors, lost commits, switchover and\n"+
			"precondition times of the %s playbook on sandbox clusters.\n\n", playbook)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 || o.runs < 1 || o.portBase < 0 || o.portBase > 65000 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signalContext()
	err := run(ctx, o)
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case err == nil:
	case interrupted:
		fmt.Fprintf(os.Stderr, "switchover-bench: interrupted: %v\n", err)
		os.Exit(130)
	default:
		fmt.Fprintf(os.Stderr, "switchover-bench: %v\n", err)
		os.Exit(1)
	}
}

// signalContext is cancelled by the first SIGINT or SIGTERM. Later ones are
// only acknowledged: the sandbox is brought down first, within a bound.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case <-sigs:
				n++
				if n == 1 {
					fmt.Fprintln(os.Stderr, "\ninterrupt: stopping; the sandbox is brought down first")
					cancel()
					continue
				}
				fmt.Fprintf(os.Stderr, "\ninterrupt: still bringing the sandbox down (at most %s)\n", downTimeout)
			case <-done:
				return
			}
		}
	}()
	return ctx, func() { signal.Stop(sigs); close(done); cancel() }
}

// bench is one benchmark: its work directory and the sandbox that is up.
type bench struct {
	o       options
	work    string // /tmp/switchover-bench-*: sandboxes, journals, inventories
	journal string
	rb      *runbook.Runbook
	sb      *sandbox.Sandbox // the sandbox that is up, nil when none
}

func run(ctx context.Context, o options) (err error) {
	src, ok := playbooks.Read(playbook)
	if !ok {
		return fmt.Errorf("no shipped playbook %s", playbook)
	}
	rb, err := runbook.LoadRunbook("playbook:"+playbook, src)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "switchover-bench-")
	if err != nil {
		return err
	}
	// The servers may run as another user (postgres, when we are root):
	// they must reach their directories inside.
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	b := &bench{o: o, work: work, journal: filepath.Join(work, "journal"), rb: rb}
	defer func() {
		if derr := b.finish(err != nil); derr != nil && err == nil {
			err = derr
		}
	}()
	if err := os.Mkdir(b.journal, 0o700); err != nil {
		return err
	}
	fmt.Printf("switchover-bench: %s, %s per mode; work directory %s\n", playbook, plural(o.runs, "round trip"), work)

	if err := b.up(ctx, 2); err != nil {
		return err
	}
	pre2, err := b.preflight(ctx)
	if err != nil {
		return err
	}
	direct, err := b.directInventory()
	if err != nil {
		return err
	}
	fmt.Println()
	var all []*switchover
	header()
	for _, m := range []struct{ mode, inventory string }{{modePooler, b.sb.Inventory()}, {modeDirect, direct}} {
		for i := 1; i <= o.runs; i++ {
			for _, d := range [][2]string{{"pg1", "pg2"}, {"pg2", "pg1"}} {
				s, err := b.switchover(ctx, m.mode, m.inventory, i, d[0], d[1])
				if err != nil {
					return err
				}
				s.print()
				all = append(all, s)
			}
		}
	}
	if err := b.down(); err != nil {
		return err
	}

	pat, err := b.patroni(ctx)
	if err != nil {
		return err
	}

	if err := b.up(ctx, 8); err != nil {
		return err
	}
	pre8, err := b.preflight(ctx)
	if err != nil {
		return err
	}
	if o.keep {
		b.keepNote(os.Stdout)
	} else if err := b.down(); err != nil {
		return err
	}
	fmt.Println()
	return report(o.runs, all, pre2, pre8, pat)
}

// up brings up a sandbox with n standbys in the work directory.
func (b *bench) up(ctx context.Context, standbys int) error {
	return b.upManaged(ctx, standbys, "")
}

// upManaged brings up a sandbox with n standbys under a manager: "" for
// plain streaming replication, sandbox.ManagerPatroni for Patroni and etcd.
func (b *bench) upManaged(ctx context.Context, standbys int, manager string) error {
	dir := filepath.Join(b.work, fmt.Sprintf("sandbox-%d", standbys))
	what := ""
	if manager != "" {
		dir = filepath.Join(b.work, fmt.Sprintf("sandbox-%s-%d", manager, standbys))
		what = ", managed by " + manager
	}
	fmt.Printf("\n== sandbox up: pg1 primary, %d standbys, PgBouncer in front%s (%s)\n", standbys, what, dir)
	uctx, cancel := context.WithTimeout(ctx, upTimeout)
	defer cancel()
	start := time.Now()
	sb, err := sandbox.Up(uctx, sandbox.Options{Dir: dir, PortBase: b.o.portBase, Standbys: standbys, Manager: manager,
		Log: func(format string, args ...any) { fmt.Fprintf(os.Stderr, "  sandbox: "+format+"\n", args...) }})
	if err != nil {
		return fmt.Errorf("sandbox up (%d standbys): %w", standbys, err)
	}
	b.sb = sb
	fmt.Printf("   up in %s: PgBouncer on 127.0.0.1:%d, nodes on %d-%d\n",
		time.Since(start).Round(time.Millisecond), sb.PortBase, sb.PortBase+1, sb.PortBase+len(sb.Nodes))
	return nil
}

// down brings the sandbox that is up down.
func (b *bench) down() error {
	if b.sb == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), downTimeout)
	defer cancel()
	sb := b.sb
	b.sb = nil
	if err := sb.Down(ctx); err != nil {
		return fmt.Errorf("sandbox down %s: %w (its processes may still run: `switchover sandbox down --dir %s`)", sb.Dir, err, sb.Dir)
	}
	return nil
}

// finish brings down what is still up and removes the work directory,
// unless -keep asks to leave them for a look.
func (b *bench) finish(failed bool) error {
	if b.o.keep {
		if failed {
			b.keepNote(os.Stderr)
		}
		return nil
	}
	wasUp := b.sb != nil
	err := b.down()
	if err == nil {
		err = os.RemoveAll(b.work)
	}
	if failed && wasUp && err == nil {
		fmt.Fprintln(os.Stderr, "switchover-bench: the sandbox was brought down (run with -keep to leave it up for a look)")
	}
	return err
}

// keepNote says what -keep left behind.
func (b *bench) keepNote(w io.Writer) {
	if b.sb != nil {
		fmt.Fprintf(w, "-keep: the sandbox stays up in %s; `switchover sandbox down --dir %s` brings it down\n", b.sb.Dir, b.sb.Dir)
	}
	fmt.Fprintf(w, "-keep: journals and inventories stay in %s\n", b.work)
}

// directInventory writes a copy of the sandbox's inventory without its
// pooler: section, so that the canary writes through a multi-host
// read-write connection string and the pooler steps do nothing.
func (b *bench) directInventory() (string, error) {
	src, err := os.ReadFile(b.sb.Inventory())
	if err != nil {
		return "", err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return "", fmt.Errorf("%s: %w", b.sb.Inventory(), err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return "", fmt.Errorf("%s: not a mapping", b.sb.Inventory())
	}
	root := doc.Content[0]
	found := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "pooler" {
			root.Content = append(root.Content[:i], root.Content[i+2:]...)
			found = true
			break
		}
	}
	if !found {
		return "", fmt.Errorf("%s: no pooler: section; the pooler mode needs one", b.sb.Inventory())
	}
	var out strings.Builder
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	path := filepath.Join(b.work, "inventory-direct.yaml")
	return path, os.WriteFile(path, []byte(out.String()), 0o644)
}

// plan resolves the playbook against an inventory with --var overrides.
func (b *bench) plan(inventory string, vars ...string) (*runbook.Plan, error) {
	return b.planOf(b.rb, inventory, vars...)
}

// planOf resolves a runbook against an inventory with --var overrides.
func (b *bench) planOf(rb *runbook.Runbook, inventory string, vars ...string) (*runbook.Plan, error) {
	src, err := os.ReadFile(inventory)
	if err != nil {
		return nil, err
	}
	inv, err := runbook.LoadInventory(inventory, src)
	if err != nil {
		return nil, err
	}
	decls, err := runbook.ParseVarFlags(vars)
	if err != nil {
		return nil, err
	}
	return runbook.Resolve(rb, inv, decls)
}

// recorder keeps a run's events.
type recorder struct{ events []runbook.Event }

func (r *recorder) Observe(ev runbook.Event) { r.events = append(r.events, ev) }

// execute runs a plan scripted (as with --yes) and returns its events. A
// run that does not end done is an error carrying the engine's error.
func (b *bench) execute(ctx context.Context, p *runbook.Plan, limit time.Duration) ([]runbook.Event, error) {
	rec := &recorder{}
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	res, err := runbook.Run(rctx, p, runbook.Options{Yes: true, Observer: rec, JournalDir: b.journal})
	if err == nil && (res == nil || res.Outcome != runbook.OutcomeDone) {
		err = fmt.Errorf("the run ended %v, not done", outcome(res))
	}
	if err != nil {
		if res != nil && res.Journal != "" && b.o.keep {
			err = fmt.Errorf("%w (journal: %s)", err, res.Journal)
		}
		if rctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w (the benchmark's bound of %s ran out)", err, limit)
		}
		return rec.events, err
	}
	return rec.events, nil
}

func outcome(res *runbook.Result) any {
	if res == nil {
		return "without a result"
	}
	return res.Outcome
}

// preflight runs the playbook's first step alone, b.o.runs times, and
// returns how long its preconditions took each time.
func (b *bench) preflight(ctx context.Context) ([]float64, error) {
	standbys := len(b.sb.Nodes) - 1
	var out []float64
	for i := 1; i <= b.o.runs; i++ {
		p, err := b.plan(b.sb.Inventory())
		if err != nil {
			return nil, err
		}
		if len(p.Steps) == 0 || p.Steps[0].Name != "preflight" {
			return nil, fmt.Errorf("%s: the first step is not preflight", playbook)
		}
		p.Steps, p.Finally = p.Steps[:1], nil
		evs, err := b.execute(ctx, p, preflightTimeout)
		if err != nil {
			return nil, fmt.Errorf("preflight alone, %d standbys, run %d: %w", standbys, i, err)
		}
		t := analyse(evs)
		d, ok := t.steps["preflight"]
		if !ok {
			return nil, fmt.Errorf("preflight alone, %d standbys, run %d: the step never reached done", standbys, i)
		}
		out = append(out, d)
	}
	fmt.Printf("   preflight alone, %d standbys: median %s ms (min %s, max %s) over %s\n",
		standbys, ms(median(out)), ms(minOf(out)), ms(maxOf(out)), plural(len(out), "run"))
	return out, nil
}

// switchover is one measured switchover.
type switchover struct {
	mode, from, to string
	run            int
	endpoint       string
	windowMS       float64
	errors         int
	lost           int
	acked          int
	timing
	slowEvents []string // the slowest step's events, when it took over a second
}

// switchover runs the playbook once, from -> to, and measures it.
func (b *bench) switchover(ctx context.Context, mode, inventory string, i int, from, to string) (*switchover, error) {
	return b.switchoverOf(ctx, b.rb, mode, inventory, i, from, to)
}

// switchoverOf runs a runbook once, from -> to, and measures it by its
// events and its canary's facts. Every mode but direct writes through the
// pooler.
func (b *bench) switchoverOf(ctx context.Context, rb *runbook.Runbook, mode, inventory string, i int, from, to string) (*switchover, error) {
	what := fmt.Sprintf("%s switchover %s -> %s (round trip %d)", mode, from, to, i)
	p, err := b.planOf(rb, inventory, "primary="+from, "candidate="+to)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	evs, err := b.execute(ctx, p, switchoverTimeout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	s := &switchover{mode: mode, from: from, to: to, run: i, timing: analyse(evs)}
	if name, d := s.slowest(); d > 1000 {
		s.slowEvents = eventsOf(evs, name)
	}
	facts := map[string]string{}
	for _, ev := range evs {
		if ev.Fact != nil {
			facts[ev.Fact.Key] = ev.Fact.Value
		}
	}
	s.endpoint = facts[runbook.FactCanaryEndpoint]
	if strings.Contains(s.endpoint, "pooler") != (mode != modeDirect) {
		return nil, fmt.Errorf("%s: the canary wrote through %q", what, s.endpoint)
	}
	var perr error
	num := func(key string) float64 {
		v, ok := facts[key]
		if !ok {
			perr = errors.Join(perr, fmt.Errorf("the canary recorded no %s", key))
			return 0
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			perr = errors.Join(perr, fmt.Errorf("fact %s=%q: %w", key, v, err))
		}
		return f
	}
	s.windowMS = num(runbook.FactCanaryWindowMS)
	s.errors = int(num(runbook.FactCanaryErrors))
	s.lost = int(num(runbook.FactCanaryLost))
	s.acked = int(num(runbook.FactCanaryAcked))
	if perr != nil {
		return nil, fmt.Errorf("%s: %w", what, perr)
	}
	if s.totalMS == 0 {
		return nil, fmt.Errorf("%s: no run.started and run.finished events to time it by", what)
	}
	return s, nil
}

// timing is where a run's time went, from its events.
type timing struct {
	totalMS   float64            // run.started to run.finished
	precondMS float64            // main steps: checking to the step's next event
	steps     map[string]float64 // checking to done
	precond   map[string]float64 // per main step: checking to the step's next event
	order     []string           // steps in the order they started
	section   map[string]runbook.Section
}

func analyse(evs []runbook.Event) timing {
	t := timing{steps: map[string]float64{}, precond: map[string]float64{}, section: map[string]runbook.Section{}}
	var started time.Time
	checking := map[string]time.Time{}
	open := map[string]bool{} // checking seen, next step event not yet
	for _, ev := range evs {
		switch ev.Type {
		case runbook.EventRunStarted:
			started = ev.Time
		case runbook.EventRunFinished:
			if !started.IsZero() {
				t.totalMS = msSince(started, ev.Time)
			}
		case runbook.EventStep:
			if ev.State == runbook.StateChecking {
				checking[ev.Step] = ev.Time
				open[ev.Step] = true
				if _, seen := t.section[ev.Step]; !seen {
					t.order = append(t.order, ev.Step)
				}
				t.section[ev.Step] = ev.Section
				continue
			}
			from, ok := checking[ev.Step]
			if !ok {
				continue
			}
			if open[ev.Step] {
				open[ev.Step] = false
				if ev.Section == runbook.SectionSteps {
					d := msSince(from, ev.Time)
					t.precond[ev.Step] += d
					t.precondMS += d
				}
			}
			if ev.State == runbook.StateDone {
				t.steps[ev.Step] = msSince(from, ev.Time)
			}
		}
	}
	return t
}

func msSince(from, to time.Time) float64 { return float64(to.Sub(from).Microseconds()) / 1000 }

func header() {
	fmt.Printf("%-6s  %3s  %-9s  %10s  %6s  %4s  %6s  %13s  %16s  %s\n",
		"mode", "run", "direction", "window_ms", "errors", "lost", "acked", "switchover_ms", "preconditions_ms", "slowest step")
}

func (s *switchover) print() {
	name, d := s.slowest()
	fmt.Printf("%-6s  %3d  %-9s  %10s  %6d  %4d  %6d  %13s  %16s  %s %s\n",
		s.mode, s.run, s.from+"->"+s.to, ms(s.windowMS), s.errors, s.lost, s.acked, ms(s.totalMS), ms(s.precondMS), name, ms(d))
	for _, l := range s.slowEvents {
		fmt.Println("        " + l)
	}
}

// slowest is the step that took longest, and how long.
func (s *switchover) slowest() (string, float64) {
	name, d := "", 0.0
	for _, n := range s.order {
		if s.steps[n] > d {
			name, d = n, s.steps[n]
		}
	}
	return name, d
}

// eventsOf renders a step's events with their offsets, to explain an
// outlier.
func eventsOf(evs []runbook.Event, step string) []string {
	var out []string
	var from time.Time
	for _, ev := range evs {
		if ev.Step != step {
			continue
		}
		if from.IsZero() {
			from = ev.Time
		}
		line := fmt.Sprintf("%8s ms  %s %s", ms(msSince(from, ev.Time)), ev.Type, ev.State)
		switch {
		case ev.Output != "":
			line += ": " + ev.Output
		case ev.Check != nil:
			line += fmt.Sprintf(": %s %s %s", ev.Check.Kind, ev.Check.Status, ev.Check.Observed)
		case ev.Error != "":
			line += ": " + ev.Error
		}
		out = append(out, line)
	}
	return out
}

// modeStats are one mode's figures over all its switchovers.
type modeStats struct {
	window       []float64
	errors, lost int
	total        []float64
	precond      []float64
}

func statsOf(all []*switchover, mode string) modeStats {
	var m modeStats
	for _, s := range all {
		if s.mode != mode {
			continue
		}
		m.window = append(m.window, s.windowMS)
		m.errors += s.errors
		m.lost += s.lost
		m.total = append(m.total, s.totalMS)
		m.precond = append(m.precond, s.precondMS)
	}
	return m
}

// report prints the summary, the pooler mode's per-step breakdown, the
// preflight figures, and last the JSON line.
func report(runs int, all []*switchover, pre2, pre8 []float64, pat *patroniResult) error {
	pooler, direct := statsOf(all, modePooler), statsOf(all, modeDirect)
	fmt.Printf("== summary: %d switchovers per mode (%s pg1 -> pg2 -> pg1)\n", 2*runs, plural(runs, "round trip"))
	rows := [][]string{{"mode", "window_ms min", "median", "max", "client errors", "lost", "switchover_ms median", "preconditions_ms median"}}
	for _, m := range []struct {
		name string
		s    modeStats
	}{{modePooler, pooler}, {modeDirect, direct}} {
		rows = append(rows, []string{m.name, ms(minOf(m.s.window)).String(), ms(median(m.s.window)).String(), ms(maxOf(m.s.window)).String(),
			strconv.Itoa(m.s.errors), strconv.Itoa(m.s.lost), ms(median(m.s.total)).String(), ms(median(m.s.precond)).String()})
	}
	table(rows, 1)
	fmt.Println("   window: the longest time the canary could not commit through the client endpoint;")
	fmt.Println("   pooler: through PgBouncer; direct: a multi-host read-write connection string, no pooler;")
	fmt.Println("   the JSON line's switchover_ms and preconditions_ms are the pooler mode's medians")

	fmt.Printf("\n== where the time goes: median per step, pooler mode (%d switchovers)\n", 2*runs)
	breakdown(all, modePooler, median(pooler.total))

	fmt.Printf("\n== preflight alone (the playbook's first step, %s each)\n", plural(runs, "run"))
	table([][]string{
		{"standbys", "median ms", "min", "max"},
		{"2", ms(median(pre2)).String(), ms(minOf(pre2)).String(), ms(maxOf(pre2)).String()},
		{"8", ms(median(pre8)).String(), ms(minOf(pre8)).String(), ms(maxOf(pre8)).String()},
	}, 0)
	fmt.Println()
	if pat != nil {
		pat.summary(runs)
		fmt.Println()
	}

	out := result{
		Runs:          runs,
		Pooler:        modeResult{Window: spread{ms(minOf(pooler.window)), ms(median(pooler.window)), ms(maxOf(pooler.window))}, ClientErrors: pooler.errors, Lost: pooler.lost},
		Direct:        modeResult{Window: spread{ms(minOf(direct.window)), ms(median(direct.window)), ms(maxOf(direct.window))}, ClientErrors: direct.errors, Lost: direct.lost},
		Preconditions: med{ms(median(pooler.precond))},
		Switchover:    med{ms(median(pooler.total))},
		Preflight:     preflightResult{Standbys2: med{ms(median(pre2))}, Standbys8: med{ms(median(pre8))}},
		Patroni:       pat,
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}

// breakdown prints the median time of each step of one mode, in run order.
func breakdown(all []*switchover, mode string, total float64) {
	var order []string
	seen := map[string]bool{}
	section := map[string]runbook.Section{}
	steps, precond := map[string][]float64{}, map[string][]float64{}
	for _, s := range all {
		if s.mode != mode {
			continue
		}
		for _, name := range s.order {
			if !seen[name] {
				seen[name] = true
				order = append(order, name)
				section[name] = s.section[name]
			}
			if d, ok := s.steps[name]; ok {
				steps[name] = append(steps[name], d)
			}
			if d, ok := s.precond[name]; ok {
				precond[name] = append(precond[name], d)
			}
		}
	}
	rows := [][]string{{"step", "section", "median ms", "in preconditions", "share"}}
	for _, name := range order {
		d := median(steps[name])
		pre := "-"
		if len(precond[name]) > 0 {
			pre = ms(median(precond[name])).String()
		}
		share := "-"
		if total > 0 {
			share = fmt.Sprintf("%.0f%%", 100*d/total)
		}
		rows = append(rows, []string{name, string(section[name]), ms(d).String(), pre, share})
	}
	rows = append(rows, []string{"whole switchover", "", ms(total).String(), "", ""})
	table(rows, 2)
}

// table prints rows in aligned columns, indented: the first left columns
// flush left (names), the others flush right (figures).
func table(rows [][]string, left int) {
	var width []int
	for _, r := range rows {
		for i, c := range r {
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], len(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		b.WriteString("  ")
		for i, c := range r {
			if i < left {
				fmt.Fprintf(&b, "  %-*s", width[i], c)
			} else {
				fmt.Fprintf(&b, "  %*s", width[i], c)
			}
		}
		fmt.Println(strings.TrimRight(b.String(), " "))
	}
}

// ms is a duration in milliseconds with one decimal, as a JSON number.
type ms float64

func (m ms) String() string               { return strconv.FormatFloat(float64(m), 'f', 1, 64) }
func (m ms) MarshalJSON() ([]byte, error) { return []byte(m.String()), nil }

type spread struct {
	Min    ms `json:"min"`
	Median ms `json:"median"`
	Max    ms `json:"max"`
}

type med struct {
	Median ms `json:"median"`
}

type modeResult struct {
	Window       spread `json:"window_ms"`
	ClientErrors int    `json:"client_errors"`
	Lost         int    `json:"lost"`
}

type preflightResult struct {
	Standbys2 med `json:"standbys_2"`
	Standbys8 med `json:"standbys_8"`
}

// result is the last line: the figures a script or a later README reads.
type result struct {
	Runs          int             `json:"runs"`
	Pooler        modeResult      `json:"pooler"`
	Direct        modeResult      `json:"direct"`
	Preconditions med             `json:"preconditions_ms"`
	Switchover    med             `json:"switchover_ms"`
	Preflight     preflightResult `json:"preflight_ms"`
	Patroni       *patroniResult  `json:"patroni"` // null when Patroni or etcd is not installed
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func minOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	m := xs[0]
	for _, x := range xs[1:] {
		m = min(m, x)
	}
	return m
}

func maxOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	m := xs[0]
	for _, x := range xs[1:] {
		m = max(m, x)
	}
	return m
}
