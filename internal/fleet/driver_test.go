package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/claim"
)

// fakeRunner switches clusters in memory, counting how many run at once,
// overall and per label value.
type fakeRunner struct {
	mu       sync.Mutex
	running  map[string]bool
	most     int
	mostPer  map[string]int // "dc=a" -> most at once
	labels   map[string]map[string]string
	runs     map[string]int // cluster -> runs started
	outcome  func(cluster string, n int) Outcome
	refused  map[string]string
	took     time.Duration
	sequence []string
}

func newFakeRunner(cs []*Cluster) *fakeRunner {
	r := &fakeRunner{running: map[string]bool{}, mostPer: map[string]int{}, labels: map[string]map[string]string{}, runs: map[string]int{}, refused: map[string]string{}, took: 20 * time.Millisecond}
	for _, c := range cs {
		r.labels[c.Name] = c.Labels
	}
	return r
}

func (r *fakeRunner) Plan(_ context.Context, c *Cluster) Verdict {
	if why, ok := r.refused[c.Name]; ok {
		return Verdict{Cluster: c.Name, ExitCode: 3, Why: why}
	}
	return Verdict{Cluster: c.Name, Ready: true, Primary: "pg1", Candidate: "pg2", Runbook: "pb"}
}

func (r *fakeRunner) Run(ctx context.Context, c *Cluster, out string, report func(Progress)) Outcome {
	r.mu.Lock()
	r.runs[c.Name]++
	n := r.runs[c.Name]
	r.running[c.Name] = true
	r.sequence = append(r.sequence, c.Name)
	r.most = max(r.most, len(r.running))
	for k, v := range r.labels[c.Name] {
		same := 0
		for other := range r.running {
			if r.labels[other][k] == v {
				same++
			}
		}
		r.mostPer[k+"="+v] = max(r.mostPer[k+"="+v], same)
	}
	r.mu.Unlock()
	id := fmt.Sprintf("run-%s-%d", c.Name, n)
	report(Progress{PID: 1})
	report(Progress{RunID: id})
	report(Progress{RunID: id, Step: "preflight"})
	time.Sleep(r.took)
	r.mu.Lock()
	delete(r.running, c.Name)
	r.mu.Unlock()
	o := Outcome{ExitCode: 0, Status: "done"}
	if r.outcome != nil {
		o = r.outcome(c.Name, n)
	}
	o.RunID = id
	return o
}

func (r *fakeRunner) Resume(ctx context.Context, c *Cluster, id, out string, report func(Progress)) Outcome {
	r.mu.Lock()
	r.runs[c.Name+" resumed"]++
	r.mu.Unlock()
	return Outcome{RunID: id, Status: "done"}
}

func (r *fakeRunner) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[name]
}

type fakeRuns struct {
	mu        sync.Mutex
	runs      map[string]RunState
	found     []RunState
	durations []time.Duration
}

func (f *fakeRuns) Run(id string) (RunState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs, ok := f.runs[id]
	if !ok {
		return RunState{}, fmt.Errorf("no run %s", id)
	}
	return rs, nil
}

func (f *fakeRuns) Find(key, inventory string, since time.Time) ([]RunState, error) {
	return f.found, nil
}

func (f *fakeRuns) Durations(string) []time.Duration { return f.durations }

type fakeRecords struct {
	mu   sync.Mutex
	done map[string]*claim.Done
	held map[string]int // cluster -> how many more looks find it held
}

func (f *fakeRecords) Done(_ context.Context, c *Cluster, key string) (*claim.Done, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done[c.Name], nil
}

func (f *fakeRecords) Held(_ context.Context, c *Cluster) (*claim.Holder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held[c.Name] > 0 {
		f.held[c.Name]--
		return &claim.Holder{RunID: "other"}, nil
	}
	return nil, nil
}

// testFleet is n clusters in the given waves, with labels.
func testFleet(t *testing.T, n int, specs []WaveSpec, limits Limits, labels func(i int) map[string]string) *Fleet {
	t.Helper()
	cs := clustersOf(n, labels)
	waves, probs := Assign(cs, specs)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	return &Fleet{Name: "monthly", Playbook: "pb", Candidate: "auto", Clusters: cs, Waves: waves, Limits: limits, Digest: "d1"}
}

func testDriver(t *testing.T, f *Fleet, r Runner, runs *fakeRuns, recs *fakeRecords) (*Driver, *[]Record) {
	t.Helper()
	var mu sync.Mutex
	var seen []Record
	n := 0
	d := &Driver{Fleet: f, JournalDir: t.TempDir(), Runner: r, Runs: runs, Records: recs, User: "dba", Host: "bastion",
		NewID: func() string { n++; return fmt.Sprintf("fleet-%03d", n) }, Poll: 5 * time.Millisecond, StartGrace: 50 * time.Millisecond,
		Observe: func(rec Record) { mu.Lock(); seen = append(seen, rec); mu.Unlock() }}
	return d, &seen
}

func states(d *Driver) string {
	var out []string
	for _, c := range d.Fleet.Clusters {
		out = append(out, c.Name+":"+string(d.state(c.Name).State))
	}
	return strings.Join(out, " ")
}

func runFleet(t *testing.T, d *Driver) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := d.Run(ctx, d.Plan(ctx), false)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Never more clusters at once than the limits allow, overall and per
// label value; every cluster switched once.
func TestConcurrencyLimits(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		limits Limits
	}{
		{"max 2", Limits{Max: 2}},
		{"max 4, 1 per dc", Limits{Max: 4, PerLabel: map[string]int{"dc": 1}}},
		{"max 3, 2 per dc", Limits{Max: 3, PerLabel: map[string]int{"dc": 2}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := testFleet(t, 9, []WaveSpec{{Name: "canary", Count: 1}, {Name: "rest"}}, tt.limits, func(i int) map[string]string {
				return map[string]string{"dc": []string{"a", "b", "c"}[i%3]}
			})
			r := newFakeRunner(f.Clusters)
			d, _ := testDriver(t, f, r, &fakeRuns{}, &fakeRecords{})
			res := runFleet(t, d)
			if res.Result != ResultDone {
				t.Fatalf("result %s: %s", res.Result, states(d))
			}
			if r.most > tt.limits.Max || r.most < min(tt.limits.Max, 2) {
				t.Errorf("at most %d at once, want %d at most (and more than 1)", r.most, tt.limits.Max)
			}
			for label, most := range r.mostPer {
				if per, ok := tt.limits.PerLabel["dc"]; ok && most > per {
					t.Errorf("%s: %d at once, want at most %d", label, most, per)
				}
			}
			if r.sequence[0] != "c1" {
				t.Errorf("the canary wave first: %v", r.sequence)
			}
			for _, c := range f.Clusters {
				if r.count(c.Name) != 1 {
					t.Errorf("%s switched %d times", c.Name, r.count(c.Name))
				}
			}
		})
	}
}

// A run that does not exit 0 halts the fleet: the wave's running runs
// finish, no new cluster starts, the next wave is untouched; resume
// (halt acknowledged) runs what is left and never a done cluster again.
func TestHaltAndResume(t *testing.T) {
	t.Parallel()
	f := testFleet(t, 6, []WaveSpec{{Name: "canary", Count: 1}, {Name: "second", Count: 2}, {Name: "rest"}}, Limits{Max: 2}, nil)
	r := newFakeRunner(f.Clusters)
	refuse := true
	r.outcome = func(name string, n int) Outcome {
		if name == "c3" && refuse {
			return Outcome{ExitCode: 3, Status: "precondition-failed", Error: "long transaction"}
		}
		return Outcome{Status: "done"}
	}
	d, seen := testDriver(t, f, r, &fakeRuns{}, &fakeRecords{})
	res := runFleet(t, d)
	if res.Result != ResultHalted || res.Halt == nil || res.Halt.Cluster != "c3" || !strings.Contains(res.Halt.Reason, "exited 3") {
		t.Fatalf("result %+v, halt %+v", res, res.Halt)
	}
	if got := states(d); got != "c1:done c2:done c3:refused c4:pending c5:pending c6:pending" {
		t.Fatalf("states after the halt: %s", got)
	}
	if !slices.Equal(res.Left, []string{"c3", "c4", "c5", "c6"}) {
		t.Errorf("left = %v", res.Left)
	}
	var events []string
	for _, rec := range *seen {
		if rec.Event == EventWaveStarted {
			events = append(events, rec.Wave)
		}
	}
	if !slices.Equal(events, []string{"canary", "second"}) {
		t.Errorf("waves started: %v, want canary and second only", events)
	}

	// A new run is refused: this one must be resumed.
	ctx := context.Background()
	if _, err := d.Run(ctx, d.Plan(ctx), false); err == nil || !strings.Contains(err.Error(), "fleet resume") {
		t.Fatalf("a second fleet run: %v, want a refusal naming fleet resume", err)
	}
	refuse = false
	st, err := d.Resumable()
	if err != nil || st.Halt == nil || st.Halt.Cluster != "c3" {
		t.Fatalf("resumable: %+v, %v; want the halt to acknowledge", st, err)
	}
	res, err = d.Resume(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != ResultDone {
		t.Fatalf("resume: %+v: %s", res, states(d))
	}
	for _, c := range f.Clusters {
		want := 1
		if c.Name == "c3" {
			want = 2
		}
		if r.count(c.Name) != want {
			t.Errorf("%s run %d times, want %d", c.Name, r.count(c.Name), want)
		}
	}
	if _, err := d.Resumable(); err == nil {
		t.Error("a fleet run that finished done is resumable")
	}
}

func TestHaltOnFigures(t *testing.T) {
	t.Parallel()
	f := testFleet(t, 3, nil, Limits{Max: 1}, nil)
	f.Halt = HaltRules{WindowOver: time.Second}
	r := newFakeRunner(f.Clusters)
	r.outcome = func(name string, n int) Outcome {
		w := 300.0
		if name == "c2" {
			w = 1500
		}
		return Outcome{Status: "done", Figures: Figures{WindowMS: &w}}
	}
	d, _ := testDriver(t, f, r, &fakeRuns{}, &fakeRecords{})
	res := runFleet(t, d)
	if res.Result != ResultHalted || res.Halt.Cluster != "c2" || !strings.Contains(res.Halt.Reason, "over halt.window_over 1s") {
		t.Fatalf("result %+v halt %+v", res, res.Halt)
	}
	if got := states(d); got != "c1:done c2:done c3:pending" {
		t.Errorf("states: %s", got)
	}
}

// No cluster starts when the window has less time left than its
// estimated duration; the fleet says which are left.
func TestWindowEnds(t *testing.T) {
	t.Parallel()
	f := testFleet(t, 2, nil, Limits{Max: 1}, nil)
	f.Window.NotAfter = time.Now().Add(time.Hour)
	r := newFakeRunner(f.Clusters)
	d, seen := testDriver(t, f, r, &fakeRuns{durations: []time.Duration{2 * time.Hour, time.Minute}}, &fakeRecords{})
	res := runFleet(t, d)
	if res.Result != ResultWindowEnded || r.count("c1") != 0 {
		t.Fatalf("result %+v, c1 run %d times", res, r.count("c1"))
	}
	var ended *Record
	for _, rec := range *seen {
		if rec.Event == EventWindowEnded {
			ended = &rec
		}
	}
	if ended == nil || !slices.Equal(ended.Left, []string{"c1", "c2"}) {
		t.Errorf("window.ended: %+v", ended)
	}
}

// A cluster held by another run (exit 6) is tried again once let go; a
// cluster another run of this fleet switched meanwhile is skipped.
func TestLockedThenDoneElsewhere(t *testing.T) {
	t.Parallel()
	f := testFleet(t, 2, nil, Limits{Max: 2}, nil)
	r := newFakeRunner(f.Clusters)
	recs := &fakeRecords{done: map[string]*claim.Done{}, held: map[string]int{"c1": 2, "c2": 3}}
	r.outcome = func(name string, n int) Outcome {
		if n == 1 {
			if name == "c2" {
				// the other fleet run finishes c2 while this one waits
				recs.mu.Lock()
				recs.done["c2"] = &claim.Done{Fleet: "monthly", RunID: "theirs", User: "dba", Host: "bastion-b", At: time.Now()}
				recs.mu.Unlock()
			}
			return Outcome{ExitCode: 6, Status: "locked", Error: "cluster is claimed"}
		}
		return Outcome{Status: "done"}
	}
	d, _ := testDriver(t, f, r, &fakeRuns{}, recs)
	res := runFleet(t, d)
	if res.Result != ResultDone || r.count("c1") != 2 || r.count("c2") != 1 {
		t.Fatalf("result %s, c1 run %d times (want 2), c2 %d (want 1): %s", res.Result, r.count("c1"), r.count("c2"), states(d))
	}
	if cs := d.state("c2"); cs.State != StateSkipped || !strings.Contains(cs.Reason, "done by another run of this fleet: run theirs by dba@bastion-b") {
		t.Errorf("c2: %+v", cs)
	}
}

// A cluster journaled as starting, whose run id the killed fleet process
// never journaled, is found in the journal directory and never started
// again; a run journaled as running that still runs is waited for, one
// interrupted is resumed.
func TestResumeAfterAKill(t *testing.T) {
	t.Parallel()
	f := testFleet(t, 4, []WaveSpec{{Name: "one", Count: 3}, {Name: "rest"}}, Limits{Max: 3}, nil)
	r := newFakeRunner(f.Clusters)
	runs := &fakeRuns{runs: map[string]RunState{}}
	d, _ := testDriver(t, f, r, runs, &fakeRecords{})
	// What a fleet process killed mid-wave leaves behind.
	j, err := createJournal(d.dir(), "fleet-000")
	if err != nil {
		t.Fatal(err)
	}
	d.st, d.j = &Replay{ID: "fleet-000", Clusters: map[string]*ClusterState{}}, j
	for _, rec := range []Record{
		{Event: EventFleetStarted, Start: d.start()},
		{Event: EventWaveStarted, Wave: "one"},
		{Event: EventClusterStarting, Cluster: "c1", Mode: ModeRun, Attempt: 1},
		{Event: EventClusterSpawned, Cluster: "c1", PID: 999999999},
		{Event: EventClusterStarting, Cluster: "c2", Mode: ModeRun, Attempt: 1},
		{Event: EventClusterStarted, Cluster: "c2", RunID: "run-c2"},
		{Event: EventClusterStarting, Cluster: "c3", Mode: ModeRun, Attempt: 1},
		{Event: EventClusterStarted, Cluster: "c3", RunID: "run-c3"},
	} {
		if err := d.record(rec); err != nil {
			t.Fatal(err)
		}
	}
	j.close()
	runs.found = []RunState{{ID: "run-c1", Status: "done"}}
	runs.runs["run-c1"] = RunState{ID: "run-c1", Status: "done", Outcome: Outcome{RunID: "run-c1", Status: "done"}}
	runs.runs["run-c2"] = RunState{ID: "run-c2", Status: "interrupted"}
	runs.runs["run-c3"] = RunState{ID: "run-c3", Status: "running", Step: "promote"}
	go func() {
		time.Sleep(100 * time.Millisecond)
		// c3's run, of the killed fleet process, ends meanwhile.
		runs.mu.Lock()
		runs.runs["run-c3"] = RunState{ID: "run-c3", Status: "done", Outcome: Outcome{RunID: "run-c3", Status: "done"}}
		runs.mu.Unlock()
	}()
	res, err := d.Resume(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != ResultDone {
		t.Fatalf("result %+v: %s", res, states(d))
	}
	if r.count("c1") != 0 || r.count("c2") != 0 || r.count("c3") != 0 || r.count("c2 resumed") != 1 || r.count("c4") != 1 {
		t.Errorf("runs: %v; want c1 found, c2 resumed, c3 waited for, c4 run", r.runs)
	}
}

// Refused clusters are skipped only on purpose (--skip-refused), and are
// listed as skipped in the journal and the status after.
func TestSkipRefused(t *testing.T) {
	t.Parallel()
	f := testFleet(t, 3, nil, Limits{Max: 2}, nil)
	r := newFakeRunner(f.Clusters)
	r.refused["c2"] = "preflight: pg.no_long_transactions: 1 session idle in transaction"
	d, _ := testDriver(t, f, r, &fakeRuns{}, &fakeRecords{})
	ctx := context.Background()
	verdicts := d.Plan(ctx)
	if _, err := d.Run(ctx, verdicts, false); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "c2") {
		t.Fatalf("run without --skip-refused: %v", err)
	}
	res, err := d.Run(ctx, verdicts, true)
	if err != nil || res.Result != ResultDone || r.count("c2") != 0 {
		t.Fatalf("run with --skip-refused: %+v, %v; c2 run %d times", res, err, r.count("c2"))
	}
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	row := st.Clusters[1]
	if row.Cluster != "c2" || row.State != StateSkipped || !strings.Contains(row.Reason, "refused by the plan (--skip-refused): preflight: pg.no_long_transactions") {
		t.Errorf("c2 in the status: %+v", row)
	}
}

// The first interrupt stops the fleet starting clusters: the running one
// finishes, the rest are left, and resume goes on from there.
func TestInterrupt(t *testing.T) {
	t.Parallel()
	f := testFleet(t, 4, nil, Limits{Max: 1}, nil)
	r := newFakeRunner(f.Clusters)
	intr := make(chan struct{})
	r.outcome = func(name string, n int) Outcome {
		if name == "c2" {
			close(intr)
		}
		return Outcome{Status: "done"}
	}
	d, _ := testDriver(t, f, r, &fakeRuns{}, &fakeRecords{})
	d.Interrupt = intr
	res := runFleet(t, d)
	if res.Result != ResultInterrupted || states(d) != "c1:done c2:done c3:pending c4:pending" {
		t.Fatalf("result %s: %s", res.Result, states(d))
	}
	d.Interrupt = nil
	res, err := d.Resume(context.Background())
	if err != nil || res.Result != ResultDone || r.count("c1") != 1 || r.count("c3") != 1 {
		t.Fatalf("resume: %+v, %v: %s", res, err, states(d))
	}
}

// A failed run (the cluster may have changed) halts, and stays failed on
// resume unless --retry names it; a wave not approved stops the fleet.
func TestFailedAndRetry(t *testing.T) {
	t.Parallel()
	f := testFleet(t, 2, []WaveSpec{{Name: "one", Count: 1}, {Name: "two"}}, Limits{Max: 1}, nil)
	r := newFakeRunner(f.Clusters)
	r.outcome = func(name string, n int) Outcome {
		if name == "c1" && n == 1 {
			return Outcome{ExitCode: 4, Status: "failed", Step: "promote", Error: "promote timed out"}
		}
		return Outcome{Status: "done"}
	}
	d, _ := testDriver(t, f, r, &fakeRuns{}, &fakeRecords{})
	if res := runFleet(t, d); res.Result != ResultHalted || states(d) != "c1:failed c2:pending" {
		t.Fatalf("result %s: %s", res.Result, states(d))
	}
	ctx := context.Background()
	d.ApproveWave = func(_ context.Context, w Wave) error {
		if w.Name == "two" {
			return errors.New("not now")
		}
		return nil
	}
	res, err := d.Resume(ctx)
	if err != nil || res.Result != ResultDeclined || r.count("c1") != 1 {
		t.Fatalf("resume, wave two declined: %+v, %v; c1 run %d times", res, err, r.count("c1"))
	}
	d.ApproveWave = nil
	res, err = d.Resume(ctx)
	if err != nil || res.Result != ResultFailed || !slices.Equal(res.Failed, []string{"c1"}) || r.count("c1") != 1 || r.count("c2") != 1 {
		t.Fatalf("resume: %+v, %v; c1 run %d times", res, err, r.count("c1"))
	}
	d.Retry = []string{"c1"}
	res, err = d.Resume(ctx)
	if err != nil || res.Result != ResultDone || r.count("c1") != 2 {
		t.Fatalf("resume --retry c1: %+v, %v: %s", res, err, states(d))
	}
}

// A second fleet process on this machine cannot drive a fleet another
// drives (the fleet's lock, named in the refusal); status shows a running
// cluster's step from its run's journal.
func TestLockAndStatus(t *testing.T) {
	t.Parallel()
	f := testFleet(t, 2, nil, Limits{Max: 1}, nil)
	r := newFakeRunner(f.Clusters)
	runs := &fakeRuns{runs: map[string]RunState{"run-x": {ID: "run-x", Status: "running", Step: "promote", Started: time.Now().Add(-3 * time.Second)}}}
	d, _ := testDriver(t, f, r, runs, &fakeRecords{})
	held, err := AcquireLock(d.dir(), f.Name, Holder{User: "ops", Host: "bastion-2", PID: 4242, Since: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var le *LockedError
	if _, err := d.Run(ctx, d.Plan(ctx), false); !errors.As(err, &le) || le.Holder.PID != 4242 || !strings.Contains(err.Error(), "ops@bastion-2") {
		t.Fatalf("run while another fleet process drives the fleet: %v", err)
	}
	held.Release()
	// A fleet run killed while c1's run ran.
	j, err := createJournal(d.dir(), "fleet-000")
	if err != nil {
		t.Fatal(err)
	}
	d.st, d.j = &Replay{ID: "fleet-000", Clusters: map[string]*ClusterState{}}, j
	for _, rec := range []Record{
		{Event: EventFleetStarted, Start: d.start()},
		{Event: EventClusterStarting, Cluster: "c1", Mode: ModeRun, Attempt: 1},
		{Event: EventClusterStarted, Cluster: "c1", RunID: "run-x"},
	} {
		if err := d.record(rec); err != nil {
			t.Fatal(err)
		}
	}
	j.close()
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Result != "unfinished" || st.Clusters[0].State != StateRunning || st.Clusters[0].Step != "promote" || st.Clusters[0].Elapsed < 3*time.Second || st.Clusters[1].State != StatePending {
		t.Errorf("status: %+v", st)
	}
}

// A cluster whose dry run failed while another run holds it (its
// switchover under way) is busy, not refused: the fleet run starts, and
// the cluster is run once the other run lets go of it.
func TestPlanBesideAnotherRun(t *testing.T) {
	t.Parallel()
	f := testFleet(t, 2, nil, Limits{Max: 2}, nil)
	r := newFakeRunner(f.Clusters)
	r.refused["c2"] = "precondition failed: --candidate auto: no healthy standby"
	d, _ := testDriver(t, f, r, &fakeRuns{}, &fakeRecords{held: map[string]int{"c2": 1}})
	verdicts := d.Plan(context.Background())
	if v := verdicts[1]; !v.Ready || !v.Busy || !strings.Contains(v.Why, "another run holds it now: run other") {
		t.Fatalf("c2's verdict beside another run: %+v; want busy, naming the run", v)
	}
	if v := verdicts[0]; !v.Ready || v.Busy {
		t.Errorf("c1's verdict: %+v; want ready", v)
	}
	delete(r.refused, "c2")
	res, err := d.Run(context.Background(), verdicts, false)
	if err != nil || res.Result != ResultDone || r.count("c2") != 1 {
		t.Fatalf("run: %+v, %v; c2 run %d times, want once", res, err, r.count("c2"))
	}
}
