package faults

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
	"github.com/switchover/switchover/runbook"
)

const pgafPlaybook = "pg-auto-failover-switchover"

// pgafFaults kill the pg-auto-failover-switchover playbook while the
// monitor carries on without us. The resume must find the promotion done
// or under way and follow it rather than ask again, resume the pooler and
// finish: one primary, the candidate, the monitor settled.
//
// Killed 300 ms into the switchover step, the monitor is draining the old
// primary while the run's guard looks for somewhere to send the held
// clients: the old primary still takes writes for a moment, and the guard
// must not take it (what it took would be lost when the monitor promotes
// the candidate): it follows the monitor and sends them to the node the
// monitor has settled as the primary.
var pgafFaults = []fault{
	{"pg_auto_failover: SIGKILL after switchover", "switchover", "done", 0},
	{"pg_auto_failover: SIGKILL 300ms into switchover", "switchover", "running", 300 * time.Millisecond},
}

// pgafFullFaults are the longer variants, run with SWITCHOVER_FULL=1.
var pgafFullFaults = []fault{
	{"pg_auto_failover: SIGKILL after pause-pooler", "pause-pooler", "done", 0},
	{"pg_auto_failover: SIGKILL inside switchover", "switchover", "running", 0},
	{"pg_auto_failover: SIGKILL 1s into switchover", "switchover", "running", time.Second},
}

// TestKillAndResumePgaf runs the pg_auto_failover faults against one
// sandbox managed by a real monitor and keepers, alternating the
// direction; after each, the monitor must show every node settled with
// the primary PostgreSQL shows.
func TestKillAndResumePgaf(t *testing.T) {
	sb := sandboxtest.NewPgaf(t, 1)
	sandboxtest.LogPgafEventsOnFailure(t, sb)
	testbin.Build(t)
	cases := pgafFaults
	if os.Getenv("SWITCHOVER_FULL") != "" {
		cases = append(append([]fault{}, pgafFaults...), pgafFullFaults...)
	}
	for i, f := range cases {
		t.Run(f.name, func(t *testing.T) {
			runCase(t, sb, pgafPlaybook, 200+i, f)
			after, err := waitHealthy(t, sb)
			if err != nil {
				t.Fatalf("after the case: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := sb.WaitPgafSettled(ctx, after.primary, 90*time.Second); err != nil {
				t.Errorf("after the case, PostgreSQL's primary is %s, but: %v", after.primary, err)
			}
			v, err := sb.PgafView(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("after: %s; the monitor shows %s", after.roles, v)
		})
	}
	t.Run("pg_auto_failover: monitor hung, then SIGKILL while clients are held", func(t *testing.T) {
		hungMonitorCase(t, sb)
	})
	t.Run("pg_auto_failover: the old primary's keeper hung while the monitor promotes", func(t *testing.T) {
		hungKeeperCase(t, sb)
	})
	t.Run("pg_auto_failover: the old primary fenced while its keeper is late, without synchronous replication", func(t *testing.T) {
		fencedOldPrimaryCase(t, sb)
	})
	t.Run("pg_auto_failover: SIGKILL once the old primary is fenced, the monitor not answering", func(t *testing.T) {
		fencedThenKilledCase(t, sb)
	})
}

// fencedThenKilledCase: the run fences the old primary and asks the
// monitor, which cannot answer (a session holds its node table locked
// against writes, as a monitor stalled on a lock would), and the run is
// killed there. The fenced old primary takes no write, so the guard has
// nowhere safe to send the held clients: it refuses them at the cap.
// Once the monitor goes on (the lock released, and with it the promotion
// the run asked), `switchover resume` finishes the switchover, its claim
// on the fenced old primary included, and enables the database: the
// candidate the primary, the fence gone, 0 lost, never two primaries.
func fencedThenKilledCase(t *testing.T, sb *sandbox.Sandbox) {
	primary, candidate := switchPair(t, sb)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lock, err := pg.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=pg_auto_failover sslmode=disable connect_timeout=5", sb.MonitorAddr(), sb.MonitorPort()), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(context.Background())
	w := startWriter(t, sb, "faults_fenced_killed")
	smp := sandboxtest.StartSampler(sb)
	t.Cleanup(func() { smp.Finish() })

	const hold = 6 * time.Second
	work, jdir := t.TempDir(), t.TempDir()
	jd := "--journal-dir=" + jdir
	p := start(t, work, "run", pgafPlaybook, "-i", sb.Inventory(), "--yes", jd,
		"--var", "primary="+primary, "--var", "candidate="+candidate, "--var", "pause_max_hold="+hold.String(), "--var", "pause_max_wait=2s")
	// The monitor's node table locked against writes once the run's
	// checks of it have passed: reads go on, the promotion waits.
	p.WaitJournal(jdir, "pause-pooler done", cmdTimeout, testbin.MainStep("pause-pooler", "done"))
	paused := time.Now()
	for _, sql := range []string{"BEGIN", "LOCK TABLE pgautofailover.node IN EXCLUSIVE MODE"} {
		if _, err := lock.Exec(ctx, sql); err != nil {
			t.Fatalf("%s on the monitor: %v", sql, err)
		}
	}
	released := false
	release := func() {
		if !released {
			released = true
			if _, err := lock.Exec(ctx, "ROLLBACK"); err != nil {
				t.Errorf("releasing the monitor's lock: %v", err)
			}
		}
	}
	defer release()
	p.KillWhen(jdir, primary+" fenced", journalStall, 200*time.Millisecond, func(e testbin.Event) bool {
		return e.Event == "action.output" && e.Step == "switchover" && strings.HasPrefix(e.Output, primary+" fenced in")
	})

	t.Logf("the run fenced %s and was killed %s after the pause, its promotion waiting on the monitor", primary, time.Since(paused).Round(time.Millisecond))

	// The guard: no node takes writes (the old primary fenced, the
	// candidate a standby): the held clients are refused by the cap.
	deadline := paused.Add(hold + time.Second)
	var d pg.PoolerDatabase
	for {
		d = showDatabase(t, sb, "app")
		if !d.Paused {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PgBouncer still holds app %s after the pause (cap %s)", time.Since(paused).Round(time.Millisecond), hold)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("PgBouncer let app go %s after the pause (cap %s): %+v", time.Since(paused).Round(time.Millisecond), hold, d)
	if !d.Disabled {
		t.Errorf("app is not disabled: the guard sent the held clients to a node while the old primary was fenced and the candidate not promoted")
	}
	if writable, err := nodeWritable(ctx, sb, primary); err != nil || writable {
		t.Errorf("the fenced old primary %s takes writes (%v, %v)", primary, writable, err)
	}

	release()
	res := runBinary(t, work, "resume", "--yes", jd)
	if res.Code == 4 && cutOff.MatchString(res.Output()) {
		res = runBinary(t, work, "resume", "--yes", "--settle", "rerun", jd)
	}
	if res.Code != 0 {
		t.Fatalf("resume: %s", res)
	}
	if !strings.Contains(res.Output(), "ENABLE app") {
		t.Errorf("the resume does not say it enabled app again: %s", res)
	}
	after, err := waitHealthy(t, sb)
	if err != nil {
		t.Fatalf("after the case: %v", err)
	}
	if after.primary != candidate {
		t.Errorf("after the case the primary is %s, want %s", after.primary, candidate)
	}
	if err := sb.WaitPgafSettled(ctx, after.primary, 90*time.Second); err != nil {
		t.Errorf("after the case: %v", err)
	}
	if fenced, err := nodeFenced(ctx, sb, primary); err != nil || fenced {
		t.Errorf("after the resume, %s still holds the fence (%v, %v)", primary, fenced, err)
	}
	stopWriter(t, w)
	smp.Finish().CheckKept(t, sb, after.primary)
}

// nodeWritable reports whether a new session on name can write: out of
// recovery and not read-only.
func nodeWritable(ctx context.Context, sb *sandbox.Sandbox, name string) (bool, error) {
	n, _ := sb.Node(name)
	c, err := pg.Connect(ctx, sb.Conninfo(n, "postgres"), 5*time.Second)
	if err != nil {
		return false, err
	}
	defer c.Close(context.Background())
	var rec bool
	var ro string
	if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')").Scan(&rec, &ro); err != nil {
		return false, err
	}
	return !rec && ro == "off", nil
}

// nodeFenced reports whether name runs with a switchover's fence, or its
// postgresql.auto.conf still holds one.
func nodeFenced(ctx context.Context, sb *sandbox.Sandbox, name string) (bool, error) {
	n, _ := sb.Node(name)
	c, err := pg.Connect(ctx, sb.Conninfo(n, "postgres"), 5*time.Second)
	if err != nil {
		return false, err
	}
	defer c.Close(context.Background())
	var inFile bool
	if err := c.QueryRow(ctx, "SELECT current_setting('synchronous_standby_names') = $1 OR EXISTS (SELECT 1 FROM pg_file_settings WHERE name = 'synchronous_standby_names' AND setting = $1)", pg.FenceSyncName).Scan(&inFile); err != nil {
		return false, err
	}
	return inFile, nil
}

// fencedOldPrimaryCase: the old primary has no synchronous standby (as a
// formation whose standby is out of the replication quorum, or that just
// came back from a standby's outage, has it) and its keeper gets no CPU
// through the switchover: every pg_autoctl process of it is frozen, its
// PostgreSQL serves on. The monitor promotes the candidate when its demote
// timeout expires (shortened here to 5s), with the old primary still
// running. Unfenced, the old primary would acknowledge direct commits
// until its keeper stops it, commits the new primary never receives: two
// writable primaries, and those commits lost. The run fences it before it
// asks the monitor: the sampler's direct writers must see no two nodes
// acknowledge commits in overlapping time, and lose nothing.
func fencedOldPrimaryCase(t *testing.T, sb *sandbox.Sandbox) {
	primary, candidate := switchPair(t, sb)
	sandboxtest.SetPgafDemoteTimeout(t, sb, 5*time.Second)
	n, _ := sb.Node(primary)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := pg.Connect(ctx, sb.Conninfo(n, "postgres"), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{"ALTER SYSTEM SET synchronous_standby_names = ''", "SELECT pg_reload_conf()"} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s on %s: %v", stmt, primary, err)
		}
	}
	conn.Close(ctx)

	w := startWriter(t, sb, "faults_fenced")
	smp := sandboxtest.StartSampler(sb)
	t.Cleanup(func() { smp.Finish() })
	// The old primary acknowledges direct commits before the run.
	waitFor(t, "the sampler's direct writer to commit on "+primary, func(context.Context) error {
		if got := smp.Acknowledged(primary); got < 5 {
			return fmt.Errorf("%d commits acknowledged", got)
		}
		return nil
	})
	thaw := sandboxtest.FreezePIDs(t, sandboxtest.PgafKeeperProcesses(t, sb, primary)...)

	work, jdir := t.TempDir(), t.TempDir()
	p := start(t, work, "run", pgafPlaybook, "-i", sb.Inventory(), "--yes", "--journal-dir="+jdir,
		"--var", "primary="+primary, "--var", "candidate="+candidate)
	// The candidate takes writes while the old primary still runs, out
	// of recovery, its keeper frozen: the moment the fence is for.
	beside := false
	deadline := time.Now().Add(pollTimeout)
	for smp.Acknowledged(candidate) < 10 || !beside {
		if smp.Acknowledged(candidate) > 0 && bothOutOfRecovery(sb, primary, candidate) {
			beside = true
		}
		if p.Exited() && smp.Acknowledged(candidate) == 0 {
			t.Fatalf("the run ended before the candidate took writes: %s", p.Wait())
		}
		if time.Now().After(deadline) {
			p.Kill()
			t.Fatalf("the candidate did not take writes beside the running old primary within %s (candidate acknowledged %d): %s",
				pollTimeout, smp.Acknowledged(candidate), p.Wait())
		}
		time.Sleep(20 * time.Millisecond)
	}
	thaw()
	res := p.Wait()
	if res.Code != 0 {
		t.Fatalf("run with the old primary's keeper frozen: %s", res)
	}
	if !strings.Contains(res.Stdout, primary+" fenced in") {
		t.Errorf("the run does not say it fenced %s:\n%s", primary, res.Stdout)
	}
	after, err := waitHealthy(t, sb)
	if err != nil {
		t.Fatalf("after the case: %v", err)
	}
	if after.primary != candidate {
		t.Errorf("after the case the primary is %s, want %s", after.primary, candidate)
	}
	if err := sb.WaitPgafSettled(ctx, after.primary, 90*time.Second); err != nil {
		t.Errorf("after the case: %v", err)
	}
	stopWriter(t, w)
	seen := smp.Finish()
	lost := seen.CheckKept(t, sb, after.primary)
	t.Logf("direct writers committed on %s; %d ticks with both nodes out of recovery, %d refused on %s; %d overlapping, %d lost",
		seen.Nodes(), seen.OutOfRecovery, seen.Failed[primary], primary, len(seen.Splits), lost)
}

// hungKeeperCase: the old primary's keeper hangs (its state machine
// stopped) as the run asks the monitor for the switchover. The monitor
// promotes the candidate anyway, read-only, and waits for the old primary
// to report it has stopped: for as long as the keeper hangs, both nodes
// answer "not in recovery". Neither takes a write an ordinary client could
// commit: the candidate refuses them (default_transaction_read_only) and
// the old primary's commits wait for its synchronous standby, which no
// longer streams. The sampler's direct writers on every node must never
// see two nodes acknowledge commits in overlapping time, and lose
// nothing; once the keeper goes on, the run finishes with 0 lost.
func hungKeeperCase(t *testing.T, sb *sandbox.Sandbox) {
	primary, candidate := switchPair(t, sb)
	w := startWriter(t, sb, "faults_hung_keeper")
	smp := sandboxtest.StartSampler(sb)
	t.Cleanup(func() { smp.Finish() })
	thaw := sandboxtest.Freeze(t, sandboxtest.PgafKeeperFSM(t, sb, primary))

	work, jdir := t.TempDir(), t.TempDir()
	p := start(t, work, "run", pgafPlaybook, "-i", sb.Inventory(), "--yes", "--journal-dir="+jdir,
		"--var", "primary="+primary, "--var", "candidate="+candidate)
	// The candidate promoted beside the running old primary, the moment
	// the old sampler took for two writable primaries, and the direct
	// writers refused on the candidate for a while (ten ticks) as the
	// old primary's wait for its synchronous standby.
	refused := -1
	deadline := time.Now().Add(pollTimeout)
	for {
		if refused < 0 && bothOutOfRecovery(sb, primary, candidate) {
			refused = smp.NotAcknowledged(candidate)
		}
		if refused >= 0 && smp.NotAcknowledged(candidate) >= refused+10 {
			break
		}
		if p.Exited() {
			t.Fatalf("the run ended before the candidate was promoted beside the running old primary: %s", p.Wait())
		}
		if time.Now().After(deadline) {
			p.Kill()
			t.Fatalf("the candidate was not promoted beside the running old primary within %s: %s", pollTimeout, p.Wait())
		}
		time.Sleep(20 * time.Millisecond)
	}
	thaw()
	res := p.Wait()
	if res.Code != 0 {
		t.Fatalf("run with the old primary's keeper hung for a while: %s", res)
	}
	after, err := waitHealthy(t, sb)
	if err != nil {
		t.Fatalf("after the case: %v", err)
	}
	if after.primary != candidate {
		t.Errorf("after the case the primary is %s, want %s", after.primary, candidate)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := sb.WaitPgafSettled(ctx, after.primary, 90*time.Second); err != nil {
		t.Errorf("after the case: %v", err)
	}
	stopWriter(t, w)
	seen := smp.Finish()
	lost := seen.CheckKept(t, sb, after.primary)
	t.Logf("direct writers committed on %s; %d ticks with both nodes out of recovery; %d overlapping, %d lost", seen.Nodes(), seen.OutOfRecovery, len(seen.Splits), lost)
}

// hungMonitorCase: the monitor hangs (its processes stopped) just after
// the run paused PgBouncer, and the run is killed. The old primary still
// takes writes, but whether the monitor is demoting it cannot be known:
// the guard must not send the held clients there, nor hold them past the
// cap. It refuses them (the database disabled, held clients cut off) at
// the cap; once the monitor answers again, the resumed run finishes the
// switchover and enables the database. 0 lost, never two primaries.
func hungMonitorCase(t *testing.T, sb *sandbox.Sandbox) {
	primary, candidate := switchPair(t, sb)
	monitor := sb.PIDs()["pgaf-monitor"]
	if monitor == 0 {
		t.Fatal("the sandbox's monitor is not running")
	}
	w := startWriter(t, sb, "faults_hung_monitor")
	smp := sandboxtest.StartSampler(sb)
	t.Cleanup(func() { smp.Finish() })

	const hold = 6 * time.Second
	work, jdir := t.TempDir(), t.TempDir()
	jd := "--journal-dir=" + jdir
	p := start(t, work, "run", pgafPlaybook, "-i", sb.Inventory(), "--yes", jd,
		"--var", "primary="+primary, "--var", "candidate="+candidate, "--var", "pause_max_hold="+hold.String(), "--var", "pause_max_wait=2s")
	// Frozen once pause-pooler's checks of the monitor have passed and
	// before the switchover step can ask it anything: no promotion is
	// asked, and the step hangs on the monitor until the kill.
	p.WaitJournal(jdir, "pause-pooler running", cmdTimeout, testbin.MainStep("pause-pooler", "running"))
	thaw := sandboxtest.Freeze(t, monitor)
	p.WaitJournal(jdir, "pause-pooler done", cmdTimeout, testbin.MainStep("pause-pooler", "done"))
	paused := time.Now()
	if !p.Kill() {
		t.Fatalf("the run ended before it could be killed: %s", p.Wait())
	}
	t.Logf("monitor frozen, the run killed %s after the pause", time.Since(paused).Round(time.Millisecond))

	// The guard acts by the cap: PgBouncer not paused, the database
	// disabled (the monitor cannot say the old primary is still its
	// primary).
	deadline := paused.Add(hold + time.Second) // the cap, and a second for this poll on a loaded machine
	var d pg.PoolerDatabase
	for {
		d = showDatabase(t, sb, "app")
		if !d.Paused {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PgBouncer still holds app %s after the pause (cap %s)", time.Since(paused).Round(time.Millisecond), hold)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("PgBouncer let app go %s after the pause (cap %s): %+v", time.Since(paused).Round(time.Millisecond), hold, d)
	if !d.Disabled {
		t.Errorf("app is not disabled: the guard resumed clients onto a primary the monitor could not vouch for")
	}
	recs, _ := runbook.ReadGuard(jdir, runIDOf(t, jdir))
	for _, r := range recs {
		if r.Event == "acted" {
			t.Logf("guard: %s", r.Message)
		}
	}

	thaw()
	res := runBinary(t, work, "resume", "--yes", jd)
	if res.Code == 4 && cutOff.MatchString(res.Output()) {
		// the switchover step was cut off; following or asking the
		// promotion again is what the step does on its own
		res = runBinary(t, work, "resume", "--yes", "--settle", "rerun", jd)
	}
	if res.Code != 0 {
		t.Fatalf("resume: %s", res)
	}
	if !strings.Contains(res.Output(), "ENABLE app") {
		t.Errorf("the resume does not say it enabled app again: %s", res)
	}
	after, err := waitHealthy(t, sb)
	if err != nil {
		t.Fatalf("after the case: %v", err)
	}
	if after.primary != candidate {
		t.Errorf("after the case the primary is %s, want %s", after.primary, candidate)
	}
	if d := showDatabase(t, sb, "app"); d.Disabled || d.Paused {
		t.Errorf("after the resume PgBouncer shows app %+v; want it taking clients", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := sb.WaitPgafSettled(ctx, after.primary, 90*time.Second); err != nil {
		t.Errorf("after the case: %v", err)
	}
	stopWriter(t, w)
	smp.Finish().CheckKept(t, sb, after.primary)
}

// bothOutOfRecovery reports whether a and b both answer "not in recovery".
func bothOutOfRecovery(sb *sandbox.Sandbox, a, b string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, name := range []string{a, b} {
		n, _ := sb.Node(name)
		if st, err := inspectNode(ctx, sb, n); err != nil || st.Role != pg.RolePrimary {
			return false
		}
	}
	return true
}

// switchPair waits for a healthy two-node cluster and returns its primary
// and the other node, the candidate.
func switchPair(t *testing.T, sb *sandbox.Sandbox) (primary, candidate string) {
	t.Helper()
	before, err := waitHealthy(t, sb)
	if err != nil {
		t.Fatalf("before the case: %v", err)
	}
	if before.primary == "pg2" {
		return "pg2", "pg1"
	}
	return before.primary, "pg2"
}
