package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
	"github.com/switchover/switchover/playbooks"
)

// fullSuite reports whether the long variants run (SWITCHOVER_FULL=1):
// every fault of the kill suite on hosts of their own, not only a subset.
func fullSuite() bool { return os.Getenv("SWITCHOVER_FULL") == "1" }

// hostFaults are the kill cases that run on hosts of their own in every
// test run: inside the two actions that cross the point of no return. The
// whole list runs with SWITCHOVER_FULL=1.
var hostFaults = []string{"SIGKILL inside stop-primary", "SIGKILL inside promote"}

// TestOnHostsOfTheirOwn runs, on one multi-host sandbox (every node and
// PgBouncer on a host of its own, reached over ssh): the monthly rolling
// patch, killed in the middle of its standby phase and resumed; the
// primary's host cut off while it is being stopped; and the kill suite's
// cases inside stop-primary and promote (all of them with
// SWITCHOVER_FULL=1). The runs use the shipped playbooks with a longer
// check timeout (patientPlaybook). Each case leaves one healthy cluster
// for the next, with the primary wherever it ended.
func TestOnHostsOfTheirOwn(t *testing.T) {
	sb := sandboxtest.NewHosts(t, 2)
	testbin.Build(t)
	// Checks over ssh on a loaded machine may keep the journal still for
	// longer than on one host. No test of the package runs in parallel.
	journalStall = cmdTimeout
	t.Cleanup(func() { journalStall = pollTimeout })
	books := t.TempDir()
	rolling, streaming := patientPlaybook(t, books, "postgres-rolling-patch"), patientPlaybook(t, books, playbook)
	for _, c := range []struct {
		name string
		run  func(t *testing.T, sb *sandbox.Sandbox, runbook string)
		book string
	}{
		{"rolling patch killed mid-way and resumed", rollingPatchKilledAndResumed, rolling},
		{"the primary's host cut off during its stop", primaryCutDuringStop, streaming},
	} {
		if !t.Run(c.name, func(t *testing.T) { c.run(t, sb, c.book) }) {
			t.Logf("case %q failed", c.name)
		}
	}
	for i, f := range faults {
		if !fullSuite() && !containsString(hostFaults, f.name) {
			continue
		}
		name := f.name + " (hosts)"
		f.name = name
		if !t.Run(name, func(t *testing.T) { runCase(t, sb, streaming, 100+i, f) }) {
			t.Logf("case %q failed", name)
		}
	}
}

// patientPlaybook writes a copy of a shipped playbook into dir whose checks
// each have 30s instead of 10s (defaults.check_timeout): on a machine
// loaded by other work, the checks over ssh of a preflight that opens a
// connection to every host at once can take longer than 10s, and a refusal
// there is the machine's, not the playbook's. Everything else is the
// shipped playbook's.
func patientPlaybook(t *testing.T, dir, name string) string {
	t.Helper()
	src, ok := playbooks.Read(name)
	if !ok {
		t.Fatalf("no shipped playbook %s", name)
	}
	patient := strings.Replace(string(src), "\ndefaults:\n", "\ndefaults:\n  check_timeout: 30s\n", 1)
	if patient == string(src) {
		t.Fatalf("playbook %s has no defaults section to set check_timeout in", name)
	}
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(patient), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// startTimes reads every node's pg_postmaster_start_time().
func startTimes(t *testing.T, sb *sandbox.Sandbox) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	for _, n := range sb.Nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c := connectNode(t, sb, n.Name)
		var at time.Time
		err := c.QueryRow(ctx, "SELECT pg_postmaster_start_time()").Scan(&at)
		cancel()
		if err != nil {
			t.Fatalf("%s: pg_postmaster_start_time(): %v", n.Name, err)
		}
		out[n.Name] = at
	}
	return out
}

// startsLogged counts the times a node's postmaster started ("starting
// PostgreSQL", not said by a promotion) in the log the switchover's
// pg_ctl start and restart write, past offset bytes.
func startsLogged(n sandbox.Node, offset int64) (int, int64) {
	b, err := os.ReadFile(filepath.Join(n.DataDir, "switchover-start.log"))
	if err != nil {
		return 0, 0
	}
	if offset > int64(len(b)) {
		offset = 0
	}
	return strings.Count(string(b[offset:]), "LOG:  starting PostgreSQL "), int64(len(b))
}

// rollingPatchKilledAndResumed: postgres-rolling-patch on hosts of their
// own, its patch command leaving a mark on each host, the run killed
// between pg3's patch and its restart (the middle of the standby phase),
// then resumed: every node patched once and restarted once (its start time
// later, one start in its log apart from the old primary's rejoin), pg2
// the primary after, no acknowledged commit lost, never two writable
// primaries.
func rollingPatchKilledAndResumed(t *testing.T, sb *sandbox.Sandbox, runbook string) {
	top, err := healthyWithin(sb, hostsWait)
	if err != nil {
		t.Fatalf("before the case: %v", err)
	}
	primary, candidate := top.primary, "pg2"
	if primary == "pg2" {
		candidate = "pg1"
	}
	marks := filepath.Join(os.TempDir(), sb.Net.Prefix+"-patched")
	os.Remove(marks)
	t.Cleanup(func() { os.Remove(marks) })
	// Each host writes its own address: the hosts share this filesystem.
	patch := fmt.Sprintf(`echo "$(hostname -I | tr -d ' ') $(date +%%s%%N)" >> %s`, marks)

	before := startTimes(t, sb)
	offsets := map[string]int64{}
	for _, n := range sb.Nodes {
		_, offsets[n.Name] = startsLogged(n, 0)
	}
	w := startWriter(t, sb, "hosts_patch")
	smp := sandboxtest.StartSampler(sb)
	work, jdir := t.TempDir(), t.TempDir()
	jd := "--journal-dir=" + jdir
	p := start(t, work, "run", runbook, "-i", sb.Inventory(), "--yes", jd,
		"--var", "primary="+primary, "--var", "candidate="+candidate, "--var", "patch_command="+patch)
	last := "pg3"
	if primary == "pg3" {
		last = "pg2"
	}
	p.KillWhen(jdir, last+".patched_at recorded", journalStall, 0, func(e testbin.Event) bool {
		return e.Fact != nil && e.Fact.Key == last+".patched_at"
	})

	evs := testbin.ReadJournalDir(t, jdir)
	t.Logf("killed after %s's patch; last journal event: %s", last, evs[len(evs)-1])

	res := runBinary(t, work, "resume", "--yes", jd)
	seen := smp.Finish()
	t.Logf("resume: exit %d\n%s", res.Code, lastLinesOf(res.Output(), 40))
	if res.Code != 0 {
		t.Fatalf("resume of the rolling patch: %s", res)
	}
	if !strings.Contains(res.Stdout, "0 lost") {
		t.Errorf("the resumed run's canary did not report 0 lost:\n%s", res.Stdout)
	}
	// The kill lands before pg3's restart, or (the watcher a moment late)
	// inside it: the resume says which it found.
	if !strings.Contains(res.Stdout, last+": patch command done by this run") && !strings.Contains(res.Stdout, last+": restarted by this run before it was cut off") {
		t.Errorf("resume does not say what it found of %s's patch and restart:\n%s", last, res.Stdout)
	}
	after := waitHealthyHosts(t, sb)
	if after.primary != candidate {
		t.Errorf("after the rolling patch: %s, want %s the primary", after.roles, candidate)
	}
	stopWriter(t, w)
	seen.CheckKept(t, sb, after.primary)

	// Patched once: one mark per host.
	b, err := os.ReadFile(marks)
	if err != nil {
		t.Fatalf("no host left a patch mark: %v", err)
	}
	perHost := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			perHost[f[0]]++
		}
	}
	// Restarted once: a later start time, one fact, one start logged (the
	// old primary also starts once as a standby when it rejoins).
	now := startTimes(t, sb)
	facts := map[string]int{}
	for _, e := range testbin.ReadJournalDir(t, jdir) {
		if e.Fact != nil && strings.HasSuffix(e.Fact.Key, ".restarted_at") {
			facts[strings.TrimSuffix(e.Fact.Key, ".restarted_at")]++
		}
	}
	for _, n := range sb.Nodes {
		addr := sb.Addr(n.Name)
		if perHost[addr] != 1 {
			t.Errorf("%s (%s) patched %d times, want once; marks:\n%s", n.Name, addr, perHost[addr], b)
		}
		if !now[n.Name].After(before[n.Name]) {
			t.Errorf("%s started %s, not after %s: not restarted", n.Name, now[n.Name], before[n.Name])
		}
		if facts[n.Name] != 1 {
			t.Errorf("%s: %d restarted_at facts in the journal, want 1", n.Name, facts[n.Name])
		}
		starts, _ := startsLogged(n, offsets[n.Name])
		want := 1
		if n.Name == primary {
			want = 2 // the rejoin as a standby, then the restart after its patch
		}
		if starts != want {
			t.Errorf("%s started %d times in switchover-start.log during the case, want %d", n.Name, starts, want)
		}
	}
	t.Logf("patch marks:\n%s", b)
}

// primaryCutDuringStop cuts the primary's host off the network the moment
// the run starts stopping it (PgBouncer paused), and heals it after a
// bounded time past the clients' budget: the run ends with exactly one
// writable primary, no acknowledged commit lost, clients not held past
// pause_max_hold, and says what happened.
func primaryCutDuringStop(t *testing.T, sb *sandbox.Sandbox, runbook string) {
	const hold = 8 * time.Second
	const cut = 12 * time.Second
	top, err := healthyWithin(sb, hostsWait)
	if err != nil {
		t.Fatalf("before the case: %v", err)
	}
	primary, candidate := top.primary, "pg2"
	if primary == "pg2" {
		candidate = "pg1"
	}
	w := startWriter(t, sb, "hosts_stop_cut")
	smp := sandboxtest.StartSampler(sb)
	pw := watchPaused(sb)
	t.Cleanup(func() { pw.finish() })
	work, jdir := t.TempDir(), t.TempDir()
	p := start(t, work, "run", runbook, "-i", sb.Inventory(), "--yes", "--journal-dir="+jdir,
		"--var", "primary="+primary, "--var", "candidate="+candidate,
		"--var", "pause_max_hold="+hold.String(), "--var", "pause_max_wait=2s")
	p.WaitJournal(jdir, "stop-primary running", cmdTimeout, testbin.MainStep("stop-primary", "running"))
	ctx, cancel := context.WithTimeout(context.Background(), hostsWait)
	err = sb.Isolate(ctx, primary)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	cutAt := time.Now()
	t.Logf("%s's host cut off at %s", primary, cutAt.Format("15:04:05.000"))
	healed := make(chan struct{})
	go func() {
		defer close(healed)
		time.Sleep(cut)
		ctx, cancel := context.WithTimeout(context.Background(), hostsWait)
		defer cancel()
		if err := sb.Heal(ctx); err != nil {
			t.Errorf("heal: %v", err)
		}
	}()
	res := p.Wait()
	<-healed
	t.Logf("the run, %s cut off during its stop for %s: exit %d\n%s", primary, cut, res.Code, lastLinesOf(res.Output(), 60))

	var end string
	waitFor(t, "one primary, every other node streaming from it", func(ctx context.Context) error {
		top, err := healthy(ctx, sb)
		end = top.primary
		return err
	})
	smp.Finish().CheckKept(t, sb, end)
	stopWriter(t, w)
	first, last := pw.finish()
	t.Logf("PgBouncer seen paused from %s to %s", first.Format("15:04:05.000"), last.Format("15:04:05.000"))
	if first.IsZero() {
		t.Error("PgBouncer was never seen paused: the case did not cut the host inside the window")
	} else if held := last.Sub(first); held > hold+windowSlack {
		t.Errorf("PgBouncer held its clients %s, past pause_max_hold %s (+%s)", held.Round(time.Millisecond), hold, windowSlack)
	}
	out := res.Output()
	switch {
	case res.Code == 0 && end == candidate:
		t.Logf("the switchover finished after the heal: %s the primary", end)
	case res.Code == 4 && end == primary:
		if !strings.Contains(out, "rollback") {
			t.Errorf("exit 4 with %s still the primary, but no rollback in the output:\n%s", primary, out)
		}
	default:
		t.Errorf("the run exited %d with %s the primary: want 0 with %s, or 4 (rolled back) with %s", res.Code, end, candidate, primary)
	}
	if !strings.Contains(out, sb.Addr(primary)) && !strings.Contains(out, primary+" does not answer") {
		t.Errorf("the run's output does not say that %s could not be reached:\n%s", primary, out)
	}
	if paused, err := poolerPaused(sb); err != nil || paused {
		t.Errorf("PgBouncer paused after the run (%v)", err)
	}
}

// pauseWatch polls PgBouncer every 50ms and keeps the first and the last
// moment it was seen holding a database paused.
type pauseWatch struct {
	sb          *sandbox.Sandbox
	stop, done  chan struct{}
	first, last time.Time
}

func watchPaused(sb *sandbox.Sandbox) *pauseWatch {
	w := &pauseWatch{sb: sb, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if paused, err := poolerPaused(sb); err == nil && paused {
				now := time.Now()
				if w.first.IsZero() {
					w.first = now
				}
				w.last = now
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// finish stops the watch and returns the first and last moment PgBouncer
// was seen paused (zero when never).
func (w *pauseWatch) finish() (first, last time.Time) {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	return w.first, w.last
}
