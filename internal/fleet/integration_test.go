package fleet_test

// The fleet against real clusters: six sandboxes (a primary, a standby
// and PgBouncer each), the real binary run as an operator runs it, and
// every cluster watched from outside while the fleet runs: a writer
// through its pooler (no acknowledged commit lost) and a sampler of its
// nodes' roles (never two writable primaries). The cases run one after
// another on the same clusters, each under a fleet name of its own: a
// cluster's timeline counts its switchovers.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/canary"
	"github.com/switchover/switchover/internal/fleet"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
	"github.com/switchover/switchover/runbook/journal"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Remove()
	os.Exit(code)
}

// fleetLimit bounds one fleet command; waitLimit every wait for a
// condition.
const (
	fleetLimit = 4 * time.Minute
	waitLimit  = 2 * time.Minute
)

// onSandboxes is the clusters c1..c6 and the directory of their
// inventories (clusters/cN/inventory.yaml, each named cN).
type onSandboxes struct {
	sbs []*sandbox.Sandbox
	dir string
}

func (o *onSandboxes) name(i int) string { return fmt.Sprintf("c%d", i+1) }

// writeFleet writes a fleet file under the directory and returns its path.
func (o *onSandboxes) writeFleet(t *testing.T, file, src string) string {
	t.Helper()
	path := filepath.Join(o.dir, file)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// primary returns the node that is the primary of sb now and its
// timeline; it fails t unless exactly one node is.
func primary(t *testing.T, sb *sandbox.Sandbox) (string, int64) {
	t.Helper()
	var names []string
	var tl int64
	for _, s := range sb.Status(context.Background()) {
		if s.Err == nil && s.State.Role == pg.RolePrimary {
			names = append(names, s.Node.Name)
			tl = int64(s.State.Timeline)
		}
	}
	if len(names) != 1 {
		t.Fatalf("primaries: %v, want one (%s)", names, sandboxtest.Topology(t, sb))
	}
	return names[0], tl
}

// watch is what watches every cluster from outside during a case.
type watch struct {
	samplers []*sandboxtest.Sampler
	writers  []*canary.Writer
	before   []int64 // timelines
	primary  []string
}

func (o *onSandboxes) watch(t *testing.T, tag string) *watch {
	t.Helper()
	w := &watch{}
	for i, sb := range o.sbs {
		p, tl := primary(t, sb)
		w.primary, w.before = append(w.primary, p), append(w.before, tl)
		w.samplers = append(w.samplers, sandboxtest.StartSampler(sb))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cw, err := canary.Start(ctx, canary.Options{Conninfo: sb.ClientConninfo(), Table: "fleet_writer", Interval: 20 * time.Millisecond,
			RunID: fmt.Sprintf("%s-%s-%d", tag, o.name(i), time.Now().UnixNano())})
		cancel()
		if err != nil {
			t.Fatalf("%s: writer: %v", o.name(i), err)
		}
		t.Cleanup(cw.Close)
		w.writers = append(w.writers, cw)
	}
	return w
}

// finish stops the watchers: no split, nothing lost; it returns how many
// switchovers each cluster went through (its timeline's growth) and its
// primary now.
func (w *watch) finish(t *testing.T, o *onSandboxes) (switched []int64, now []string) {
	t.Helper()
	for i, sb := range o.sbs {
		w.samplers[i].Finish().CheckKeptOnPrimary(t, sb)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		rep, err := w.writers[i].Stop(ctx)
		cancel()
		if err != nil {
			t.Errorf("%s: the writer through the pooler: %v", o.name(i), err)
		} else if len(rep.Lost) > 0 || rep.Acked == 0 {
			t.Errorf("%s: the writer through the pooler: %d acknowledged, %d lost %v", o.name(i), rep.Acked, len(rep.Lost), rep.Lost)
		}
		p, tl := primary(t, sb)
		switched, now = append(switched, tl-w.before[i]), append(now, p)
	}
	return switched, now
}

// records reads the newest fleet run of fleet name in journal directory
// dir; nil when there is none yet.
func records(t *testing.T, dir, name string) []fleet.Record {
	t.Helper()
	id, err := fleet.Latest(fleet.Dir(dir, name))
	if err != nil || id == "" {
		return nil
	}
	recs, err := fleet.ReadJournal(fleet.Dir(dir, name), id)
	if err != nil {
		return nil
	}
	return recs
}

// waitRecords polls the fleet journal until match holds.
func waitRecords(t *testing.T, dir, name, what string, match func([]fleet.Record) bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !match(records(t, dir, name)) {
		if time.Now().After(deadline) {
			t.Fatalf("fleet %s: %s did not happen within %s", name, what, waitLimit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// started reports whether the records show cluster's run started.
func started(recs []fleet.Record, cluster string) bool {
	for _, r := range recs {
		if r.Cluster == cluster && r.Event == fleet.EventClusterStarted {
			return true
		}
	}
	return false
}

// doneRuns counts, per cluster, the done (non-dry) runs tagged with
// fleet key in journal directory dir.
func doneRuns(t *testing.T, dir, key string) map[string]int {
	t.Helper()
	out := map[string]int{}
	runs, err := journal.ListRuns(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range runs {
		if s.DryRun || s.Status != string(journal.OutcomeDone) {
			continue
		}
		evs, err := journal.ReadJournal(dir, s.ID)
		if err == nil && evs[0].Run.Fleet == key {
			out[s.Cluster]++
		}
	}
	return out
}

// maxAtOnce is the most clusters the records show running at once.
func maxAtOnce(recs []fleet.Record) int {
	running := map[string]bool{}
	most := 0
	for _, r := range recs {
		switch r.Event {
		case fleet.EventClusterStarting, fleet.EventClusterWaiting:
			running[r.Cluster] = true
		case fleet.EventClusterFinished, fleet.EventClusterSkipped:
			delete(running, r.Cluster)
		}
		most = max(most, len(running))
	}
	return most
}

func fleetFile(name, clusters, extra string) string {
	return fmt.Sprintf("fleet: %s\nplaybook: postgres-streaming-switchover\nclusters:\n%s%s", name, clusters, extra)
}

const sixClusters = "  - inventory: \"clusters/c[1-6]/inventory.yaml\"\n"

const threeWaves = `waves:
  - {name: canary, clusters: 1}
  - {name: second, clusters: 2}
  - {name: rest}
concurrency: {max: 2}
`

func TestFleetOnSandboxes(t *testing.T) {
	o := &onSandboxes{sbs: sandboxtest.NewMany(t, 6, 1), dir: t.TempDir()}
	for i, sb := range o.sbs {
		b, err := os.ReadFile(sb.Inventory())
		if err != nil {
			t.Fatal(err)
		}
		inv := strings.Replace(string(b), "cluster: sandbox", "cluster: "+o.name(i), 1)
		d := filepath.Join(o.dir, "clusters", o.name(i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "inventory.yaml"), []byte(inv), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testbin.Build(t)
	// Each case leaves every cluster healthy for the next.
	for _, c := range []struct {
		name string
		run  func(*testing.T, *onSandboxes)
	}{
		{"waves of 1, 2 and 3, at most 2 at once", fleetAll},
		{"a long transaction halts the fleet after its wave; resume finishes", fleetHalt},
		{"the fleet process killed mid-wave; resume finishes", fleetKilled},
		{"two fleet runs at once over overlapping clusters", fleetOverlap},
	} {
		if !t.Run(c.name, func(t *testing.T) { c.run(t, o) }) {
			return // the clusters may not be as the next case expects
		}
	}
}

// Six clusters in waves of 1, 2 and 3, at most 2 at once: every primary
// moved once, nothing lost, never two writable primaries, exit 0.
func fleetAll(t *testing.T, o *onSandboxes) {
	jdir := t.TempDir()
	path := o.writeFleet(t, "all.yaml", fleetFile("fleet-all", sixClusters, threeWaves+"halt: {lost_commits: 0, client_errors_over: 0}\n"))
	w := o.watch(t, "all")
	r := testbin.Run(t, fleetLimit, o.dir, "fleet", "run", path, "--yes", "--journal-dir", jdir)
	switched, now := w.finish(t, o)
	if r.Code != 0 {
		t.Fatalf("fleet run: %s", r)
	}
	for i := range o.sbs {
		if switched[i] != 1 || now[i] == w.primary[i] {
			t.Errorf("%s: %d switchovers, primary %s → %s; want one, moved", o.name(i), switched[i], w.primary[i], now[i])
		}
	}
	recs := records(t, jdir, "fleet-all")
	if most := maxAtOnce(recs); most > 2 {
		t.Errorf("%d clusters at once, want at most 2", most)
	}
	var order []string
	for _, rec := range recs {
		if rec.Event == fleet.EventWaveStarted {
			order = append(order, rec.Wave)
		}
	}
	if !slices.Equal(order, []string{"canary", "second", "rest"}) {
		t.Errorf("waves: %v", order)
	}
	st := testbin.Run(t, time.Minute, o.dir, "fleet", "status", path, "--journal-dir", jdir)
	if st.Code != 0 || strings.Count(st.Stdout, " done ") < 6 {
		t.Errorf("fleet status: %s", st)
	}
	// The same as JSON lines, each about a cluster carrying it.
	st = testbin.Run(t, time.Minute, o.dir, "fleet", "status", path, "--journal-dir", jdir, "--log-format", "json")
	done := 0
	for _, line := range strings.Split(strings.TrimSpace(st.Stdout), "\n") {
		var e struct {
			Event, Cluster, State string
			Outcome               *fleet.Outcome
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("fleet status --log-format json: %v: %s", err, line)
		}
		if e.Event == "status.cluster" && e.Cluster != "" && e.State == "done" && e.Outcome != nil && e.Outcome.Figures.Lost != nil && *e.Outcome.Figures.Lost == 0 {
			done++
		}
	}
	if done != 6 {
		t.Errorf("fleet status --log-format json: %d clusters done with 0 lost, want 6:\n%s", done, st.Stdout)
	}
	t.Logf("fleet run:\n%s", r.Stdout)
}

// A long transaction on a wave-2 cluster's primary, opened once the fleet
// has started (after its plan): its run is refused at preflight
// (pg.no_long_transactions: a session idle in transaction, or a
// transaction older than max_xact_age, 1s for that cluster), the fleet
// halts after wave 2 (the other wave-2 cluster finishes), wave 3 is
// untouched; once the transaction ends, resume finishes the rest.
func fleetHalt(t *testing.T, o *onSandboxes) {
	jdir := t.TempDir()
	clusters := "  - inventory: clusters/c1/inventory.yaml\n  - inventory: clusters/c2/inventory.yaml\n" +
		"  - inventory: clusters/c3/inventory.yaml\n    vars: {max_xact_age: 1s}\n  - inventory: \"clusters/c[4-6]/inventory.yaml\"\n"
	path := o.writeFleet(t, "halt.yaml", fleetFile("fleet-halt", clusters, threeWaves))
	w := o.watch(t, "halt")
	p := testbin.Start(t, fleetLimit, o.dir, "fleet", "run", path, "--yes", "--journal-dir", jdir)
	waitRecords(t, jdir, "fleet-halt", "c1 starting", func(recs []fleet.Record) bool {
		return slices.ContainsFunc(recs, func(r fleet.Record) bool { return r.Event == fleet.EventClusterStarting })
	})
	// A client's session (switchover's own do not count), idle in a
	// transaction that grows older than max_xact_age.
	c3 := o.sbs[2]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	holder, err := pg.Connect(ctx, c3.Conninfo(sandboxtest.Node(t, c3, w.primary[2]), "postgres")+" application_name=nightly-report", 0)
	if err == nil {
		t.Cleanup(func() { holder.Close(context.Background()) })
		_, err = holder.Exec(ctx, "BEGIN; SELECT txid_current()")
	}
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	r := p.Wait()
	if r.Code != 4 || !strings.Contains(r.Stderr, "halted by c3") {
		t.Fatalf("fleet run: %s; want exit 4, halted by c3", r)
	}
	t.Logf("fleet run, halted:\n%s", r)
	recs := records(t, jdir, "fleet-halt")
	for _, name := range []string{"c4", "c5", "c6"} {
		if slices.ContainsFunc(recs, func(r fleet.Record) bool { return r.Cluster == name && r.Event == fleet.EventClusterStarting }) {
			t.Errorf("%s (wave 3) was started after the halt", name)
		}
	}
	st := testbin.Run(t, time.Minute, o.dir, "fleet", "status", path, "--journal-dir", jdir)
	t.Logf("after the halt:\n%s", st.Stdout)
	if !strings.Contains(st.Stdout, "halted by c3") || strings.Count(st.Stdout, " halted ") < 3 {
		t.Errorf("fleet status after the halt: %s", st)
	}
	// Resume without acknowledging the halt is refused; with --yes it is.
	if r := testbin.Run(t, time.Minute, o.dir, "fleet", "resume", path, "--journal-dir", jdir); r.Code != 5 {
		t.Errorf("resume without --yes: %s; want exit 5", r)
	} else {
		t.Logf("fleet resume without --yes: %s", r.Stderr)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	_, err = holder.Exec(ctx, "ROLLBACK")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	r = testbin.Run(t, fleetLimit, o.dir, "fleet", "resume", path, "--yes", "--journal-dir", jdir)
	switched, _ := w.finish(t, o)
	if r.Code != 0 {
		t.Fatalf("fleet resume: %s", r)
	}
	t.Logf("fleet resume:\n%s", r.Stdout)
	for i := range o.sbs {
		if switched[i] != 1 {
			t.Errorf("%s: %d switchovers, want 1", o.name(i), switched[i])
		}
	}
	if n := doneRuns(t, jdir, "fleet-halt"); len(n) != 6 || n["c1"] != 1 || n["c3"] != 1 {
		t.Errorf("done runs per cluster: %v", n)
	}
}

// The fleet process SIGKILLed while wave 2's runs are under way: its
// children finish by their own rules, and resume waits for them (or
// finds them finished), then finishes: every cluster switched once.
func fleetKilled(t *testing.T, o *onSandboxes) {
	jdir := t.TempDir()
	path := o.writeFleet(t, "killed.yaml", fleetFile("fleet-killed", sixClusters, threeWaves))
	w := o.watch(t, "killed")
	p := testbin.Start(t, fleetLimit, o.dir, "fleet", "run", path, "--yes", "--journal-dir", jdir)
	waitRecords(t, jdir, "fleet-killed", "wave 2's runs started", func(recs []fleet.Record) bool {
		return started(recs, "c2") && started(recs, "c3")
	})
	p.MustKill()
	r := testbin.Run(t, fleetLimit, o.dir, "fleet", "resume", path, "--yes", "--journal-dir", jdir)
	switched, _ := w.finish(t, o)
	if r.Code != 0 {
		t.Fatalf("fleet resume: %s", r)
	}
	t.Logf("fleet resume:\n%s", r.Stdout)
	for i := range o.sbs {
		if switched[i] != 1 {
			t.Errorf("%s: %d switchovers, want exactly 1", o.name(i), switched[i])
		}
	}
	n := doneRuns(t, jdir, "fleet-killed")
	for i := range o.sbs {
		if n[o.name(i)] != 1 {
			t.Errorf("%s: %d done runs, want exactly 1 (%v)", o.name(i), n[o.name(i)], n)
		}
	}
}

// Two runs of one fleet started together from two journal directories
// (two bastions) over overlapping clusters, both starting with the two
// they share: each cluster is switched by exactly one of them; the other's
// run is refused while the first holds the cluster (exit 6), and the fleet
// skips it as done by another run of the fleet once it is.
func fleetOverlap(t *testing.T, o *onSandboxes) {
	jA, jB := t.TempDir(), t.TempDir()
	a := o.writeFleet(t, "overlap-a.yaml", fleetFile("fleet-overlap", "  - inventory: \"clusters/c[34]/inventory.yaml\"\n  - inventory: \"clusters/c[12]/inventory.yaml\"\n", "concurrency: {max: 2}\n"))
	b := o.writeFleet(t, "overlap-b.yaml", fleetFile("fleet-overlap", "  - inventory: \"clusters/c[3-6]/inventory.yaml\"\n", "concurrency: {max: 2}\n"))
	w := o.watch(t, "overlap")
	pa := testbin.Start(t, fleetLimit, o.dir, "fleet", "run", a, "--yes", "--journal-dir", jA)
	pb := testbin.Start(t, fleetLimit, o.dir, "fleet", "run", b, "--yes", "--journal-dir", jB)
	ra, rb := pa.Wait(), pb.Wait()
	switched, _ := w.finish(t, o)
	if ra.Code != 0 || rb.Code != 0 {
		t.Fatalf("fleet A: %s\nfleet B: %s", ra, rb)
	}
	t.Logf("fleet A:\n%s\nfleet B:\n%s", ra.Stdout, rb.Stdout)
	if n := strings.Count(ra.Stdout+rb.Stdout, "skipped: done by another run of this fleet"); n != 2 {
		t.Errorf("%d clusters skipped as done by another run of this fleet, want the 2 shared", n)
	}
	na, nb := doneRuns(t, jA, "fleet-overlap"), doneRuns(t, jB, "fleet-overlap")
	for i := range o.sbs {
		c := o.name(i)
		if switched[i] != 1 || na[c]+nb[c] != 1 {
			t.Errorf("%s: %d switchovers, done runs %d by A and %d by B; want exactly one in all", c, switched[i], na[c], nb[c])
		}
	}
}
