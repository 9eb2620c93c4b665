package faults

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/switchover/switchover/internal/canary"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
)

// row is one case of the table printed at the end.
type row struct {
	fault    string
	killedAt string // the journal's last event when the process died
	outcome  string // resumed done, rolled back, or what went wrong
	exit     string // resume's exit code (after --settle rerun when asked)
	lost     string
	roles    string
	window   string
	verdict  string // ok or FAIL
}

var (
	rowsMu sync.Mutex
	rows   []row
)

func addRow(r row) {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	rows = append(rows, r)
}

// table renders the rows aligned.
func table() string {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "FAULT\tKILLED AT (last journal event)\tOUTCOME\tRESUME EXIT\tLOST\tROLES AFTER\tCANARY WINDOW\tRESULT")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.fault, r.killedAt, r.outcome, r.exit, r.lost, r.roles, r.window, r.verdict)
	}
	w.Flush()
	return b.String()
}

// TestMain runs the suite, then prints the table of kill cases (and writes
// it to $FAULTS_TABLE when set), then the table of faults injected around
// in-process runs (appended to $FAULTS_TABLE). Each test brings up a
// sandbox of its own (sandboxtest.New and the like), brought down when it
// ends; sandboxtest.Main is not used because it exits before the tables
// could be printed.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if len(rows) > 0 {
		out := table()
		fmt.Print("\nfault suite: SIGKILL, then switchover resume\n" + out)
		if path := os.Getenv("FAULTS_TABLE"); path != "" {
			if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "FAULTS_TABLE: %v\n", err)
				code = 1
			}
		}
	}
	printFaultTable()
	testbin.Remove()
	os.Exit(code)
}

// playbook is the streaming replication switchover, which most cases run.
const playbook = "postgres-streaming-switchover"

// killCap is the clients' budget (pause_max_hold) of the kill cases.
const killCap = 12 * time.Second

// fault is where a case kills the run.
type fault struct {
	name  string
	step  string
	state string        // "done": between steps; "running": inside the action
	after time.Duration // how long after the event the kill lands (0: at once)
}

// faults: after each main step's "done" (the next step has not acted yet)
// and inside each destructive action ("running" is journaled before the
// action starts, so the kill cuts it off).
var faults = []fault{
	{"SIGKILL after preflight", "preflight", "done", 0},
	{"SIGKILL after start-canary", "start-canary", "done", 0},
	{"SIGKILL after checkpoint", "checkpoint", "done", 0},
	{"SIGKILL after pause-pooler", "pause-pooler", "done", 0},
	{"SIGKILL inside stop-primary", "stop-primary", "running", 0},
	{"SIGKILL after stop-primary", "stop-primary", "done", 0},
	{"SIGKILL inside promote", "promote", "running", 0},
	{"SIGKILL after promote", "promote", "done", 0},
	{"SIGKILL after repoint-pooler", "repoint-pooler", "done", 0},
	{"SIGKILL after resume-pooler", "resume-pooler", "done", 0},
	{"SIGKILL after rejoin-old-primary", "rejoin-old-primary", "done", 0},
	{"SIGKILL after other-standbys-follow", "other-standbys-follow", "done", 0},
	{"SIGKILL after verify", "verify", "done", 0},
}

// rerunSafe names the steps that a resume may settle with --settle rerun
// when their postconditions do not hold after the kill, and why that is
// safe there.
var rerunSafe = map[string]string{
	// pg_ctl stop on a primary that is already stopped, or stopping after
	// the killed run's SIGINT, only stops it (or finds it stopped); the
	// ensures then verify the candidate has the shutdown checkpoint.
	"stop-primary": "stopping a stopped or stopping primary again changes nothing",
	// The old primary is stopped (stop-primary is done, its ensures held),
	// so promoting the candidate again cannot make a second primary;
	// pg_promote on a node already promoted fails cleanly, and a node not
	// yet promoted is promoted exactly as the run would have.
	"promote": "the old primary is down (stop-primary done), so a second promotion attempt cannot make two primaries",
}

var cutOff = regexp.MustCompile(`step "([^"]+)" was cut off while its action ran`)

// TestKillAndResume runs every fault against one sandbox, alternating the
// direction of the switchover.
func TestKillAndResume(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	testbin.Build(t)
	for i, f := range faults {
		ok := t.Run(f.name, func(t *testing.T) { runCase(t, sb, playbook, i, f) })
		if !ok {
			// Go on: every case checks the topology first and says so when
			// an earlier one left the cluster broken.
			t.Logf("case %q failed", f.name)
		}
	}
}

func runCase(t *testing.T, sb *sandbox.Sandbox, playbook string, i int, f fault) {
	r := row{fault: f.name, killedAt: "-", outcome: "-", exit: "-", lost: "-", roles: "-", window: "-", verdict: "FAIL"}
	defer func() {
		if !t.Failed() {
			r.verdict = "ok"
		}
		addRow(r)
	}()

	before, err := waitHealthy(t, sb)
	if err != nil {
		r.outcome = "cluster unhealthy before the case"
		t.Fatalf("before the case: %v", err)
	}
	primary := before.primary
	candidate := "pg2"
	if primary == "pg2" {
		candidate = "pg1"
	} else if primary != "pg1" {
		candidate = "pg1"
	}
	t.Logf("before: %s; switching %s -> %s", before.roles, primary, candidate)

	// Our own canary and role sampler, for the whole case: the run's own
	// canary dies with the killed process.
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	w, err := canary.Start(ctx, canary.Options{Conninfo: sb.ClientConninfo(), Table: fmt.Sprintf("faults_canary_%d", i),
		RunID: fmt.Sprintf("faults-%d-%d", i, time.Now().UnixNano())})
	cancel()
	if err != nil {
		t.Fatalf("canary: %v", err)
	}
	t.Cleanup(w.Close)
	smp := sandboxtest.StartSampler(sb)
	t.Cleanup(func() { smp.Finish() })

	work, jdir := t.TempDir(), t.TempDir()
	jd := "--journal-dir=" + jdir
	// A budget shorter than the playbook's 30s: a case killed where no
	// node takes writes waits for the guard to act at the cap, and what
	// is tested is what happens then, not how long it is.
	p := start(t, work, "run", playbook, "-i", sb.Inventory(), "--yes", jd,
		"--var", "primary="+primary, "--var", "candidate="+candidate,
		"--var", "pause_max_hold="+killCap.String(), "--var", "pause_max_wait=3s")
	p.KillWhen(jdir, f.step+" "+f.state, journalStall, f.after, testbin.MainStep(f.step, f.state))
	evs := testbin.ReadJournalDir(t, jdir)
	if len(evs) > 0 {
		r.killedAt = evs[len(evs)-1].String()
	}
	t.Logf("killed; last journal event: %s", r.killedAt)

	// An approval is given per invocation and is not carried over from the
	// killed run: the scripted resume approves again with --yes, exactly as
	// the scripted run did.
	res := runBinary(t, work, "resume", "--yes", jd)
	settled := ""
	if res.Code == 4 {
		if m := cutOff.FindStringSubmatch(res.Output()); m != nil {
			why, ok := rerunSafe[m[1]]
			if !ok {
				r.outcome, r.exit = "resume asks to settle "+m[1], fmt.Sprint(res.Code)
				t.Fatalf("resume asks a person to settle step %q, where a rerun is not known to be safe: %s", m[1], res)
			}
			t.Logf("resume asks to settle %s; rerunning it: %s", m[1], why)
			settled = " (--settle rerun " + m[1] + ")"
			res = runBinary(t, work, "resume", "--yes", "--settle", "rerun", jd)
		}
	}
	r.exit = fmt.Sprint(res.Code) + settled
	t.Logf("resume: %s", res)

	rolledBack := false
	for _, e := range testbin.ReadJournalDir(t, jdir) {
		if e.Event == "section.started" && strings.HasPrefix(e.Section, "rollback") {
			rolledBack = true
		}
	}
	wantPrimary := candidate
	switch {
	case res.Code == 0:
		r.outcome = "resumed done"
	case res.Code == 4 && rolledBack:
		r.outcome = "rolled back"
		wantPrimary = primary
	default:
		r.outcome = "resume failed"
		t.Errorf("resume: want exit 0 (or 4 after a rollback), got %s", res)
	}

	after, herr := waitHealthy(t, sb)
	if herr != nil {
		r.roles = "unhealthy"
		t.Errorf("after the case: %v", herr)
	} else {
		r.roles = after.roles
		if after.primary != wantPrimary {
			t.Errorf("after the case (%s): primary is %s, want %s", r.outcome, after.primary, wantPrimary)
		}
	}
	if err := writeThroughPooler(sb); err != nil {
		t.Errorf("after the case: a write through PgBouncer: %v", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 2*pollTimeout)
	rep, err := w.Stop(ctx)
	cancel()
	if err != nil {
		t.Errorf("canary: %v", err)
	} else {
		r.lost = fmt.Sprint(len(rep.Lost))
		r.window = rep.Window.Round(time.Millisecond).String()
		if len(rep.Lost) > 0 {
			t.Errorf("canary: %d acknowledged commits lost (ids %v)", len(rep.Lost), rep.Lost)
		}
		t.Logf("canary: %d acked, %d client errors %v, window %s", rep.Acked, rep.Errors, rep.ErrorKinds, rep.Window)
	}
	seen := smp.Finish()
	if herr == nil {
		seen.CheckKept(t, sb, after.primary)
	} else {
		seen.Check(t)
	}
}
