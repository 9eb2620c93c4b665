package main

// Tests of the real binary, run the way an operator or a script runs it:
// no terminal (stdin is /dev/null), a journal directory of its own, exit
// codes and output read from outside the process. Faults are real: the
// process is killed with SIGKILL mid-run and interrupted with SIGINT.

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestMain runs the tests, brings the shared sandbox down and removes the
// binary built for them.
func TestMain(m *testing.M) {
	sandboxtest.MainThen(m, testbin.Remove)
}

// cmdTimeout bounds every synchronous run of the binary.
const cmdTimeout = 30 * time.Second

// procTimeout bounds a run started in the background: the tests kill,
// interrupt or wait for theirs well before.
const procTimeout = 2 * time.Minute

// pollTimeout bounds every wait for a file or a journal entry.
const pollTimeout = 10 * time.Second

// run runs the binary to completion (bounded by cmdTimeout).
func run(t *testing.T, dir string, args ...string) testbin.Result {
	t.Helper()
	return testbin.Run(t, cmdTimeout, dir, args...)
}

// mustRun runs the binary and fails the test unless it exits with want.
func mustRun(t *testing.T, want int, dir string, args ...string) testbin.Result {
	t.Helper()
	r := run(t, dir, args...)
	if r.Code != want {
		t.Fatalf("switchover %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

// start runs the binary in the background (bounded by procTimeout).
func start(t *testing.T, dir string, args ...string) *testbin.Proc {
	t.Helper()
	return testbin.Start(t, procTimeout, dir, args...)
}

// waitFile polls until path's content satisfies ok.
func waitFile(t *testing.T, p *testbin.Proc, path, what string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		b, _ := os.ReadFile(path)
		if ok(string(b)) {
			return
		}
		if p.Exited() {
			t.Fatalf("waiting for %s: switchover exited first: %s", what, p.WaitWithin(time.Second))
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %s is %q after %s", what, path, b, pollTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func assertLog(t *testing.T, path, want string) {
	t.Helper()
	if got := readLog(t, path); got != want {
		t.Fatalf("%s: want %q, got %q", path, want, got)
	}
}

func assertNotExist(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("%s: want no such file (nothing ran), got err=%v", path, err)
	}
}

func assertContains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Fatalf("%s: want %q in:\n%s", what, w, s)
		}
	}
}

// runsRow is one row of `switchover runs`.
type runsRow struct{ id, status string }

// listRuns runs `switchover runs` and parses its table.
func listRuns(t *testing.T, dir, journalDir string) []runsRow {
	t.Helper()
	r := mustRun(t, 0, dir, "runs", "--journal-dir", journalDir)
	sc := bufio.NewScanner(strings.NewReader(r.Stdout))
	var rows []runsRow
	header := true
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if header {
			if len(f) < 5 || f[0] != "RUN" || f[4] != "STATUS" { // STARTED is one word here, two in a row
				t.Fatalf("switchover runs: want a RUN ... STATUS header, got:\n%s", r.Stdout)
			}
			header = false
			continue
		}
		if len(f) < 6 {
			t.Fatalf("switchover runs: short row %q in:\n%s", sc.Text(), r.Stdout)
		}
		rows = append(rows, runsRow{id: f[0], status: f[5]})
	}
	return rows
}

// runIDIn finds the run id in the first line of human output:
// "run ID: ...", "dry run ID: ..." or "resuming run ID: ...".
var runIDLine = regexp.MustCompile(`(?m)^(?:dry run|resuming run|run) (\d{8}T\d{6}Z-[0-9a-f]+):`)

func runIDIn(t *testing.T, r testbin.Result) string {
	t.Helper()
	m := runIDLine.FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("no run id in the output:\n%s", r)
	}
	return m[1]
}

// exampleRunbookFile is the first runbook of docs/runbooks.md, which shows it
// verbatim (internal/docs checks that); runbook/spec loads it too.
const exampleRunbookFile = "../../runbook/spec/testdata/valid/example.yaml"

// TestBinaryExample walks the example of docs/runbooks.md: validate, plan,
// a scripted run refused for want of approval, the approved run, runs, and
// the JSON log.
func TestBinaryExample(t *testing.T) {
	t.Parallel()
	work, jdir := t.TempDir(), t.TempDir()
	d := t.TempDir()
	file := filepath.Join(work, "example.yaml")
	example, err := os.ReadFile(exampleRunbookFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, file, string(example))
	logPath := filepath.Join(d, "log")
	jd := "--journal-dir=" + jdir

	r := mustRun(t, 0, work, "validate", file)
	assertContains(t, "validate", r.Stdout, "valid", "2 steps (1 destructive)")

	r = mustRun(t, 0, work, "plan", file, "--var", "dir="+d, jd)
	assertContains(t, "plan", r.Stdout, "would run", "echo one >> "+d+"/log", "echo two >> "+d+"/log", "nothing was changed")
	planID := runIDIn(t, r)
	assertNotExist(t, logPath)

	r = mustRun(t, 5, work, "run", file, "--var", "dir="+d, jd)
	assertContains(t, "run without --yes", r.Output(), "--approve second")
	assertContains(t, "run without --yes", r.Stdout, "nothing was changed")
	declinedID := runIDIn(t, r)
	assertNotExist(t, logPath)

	r = mustRun(t, 0, work, "run", file, "--var", "dir="+d, "--yes", jd)
	assertContains(t, "run --yes", r.Stdout, "approved", "(--yes)", "done in")
	doneID := runIDIn(t, r)
	assertLog(t, logPath, "one\ntwo\n")
	if r.Stderr != "" {
		t.Errorf("run --yes: want nothing on stderr, got %q", r.Stderr)
	}

	// JSON log: only JSON lines, each with an event and the run id.
	if err := os.Remove(logPath); err != nil {
		t.Fatal(err)
	}
	r = mustRun(t, 0, work, "run", file, "--var", "dir="+d, "--yes", "--log-format", "json", jd)
	assertLog(t, logPath, "one\ntwo\n")
	var seq []string
	jsonID := ""
	for i, line := range strings.Split(strings.TrimRight(r.Stdout, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("--log-format json: line %d is not JSON: %q (%v)", i+1, line, err)
		}
		ev, _ := m["event"].(string)
		id, _ := m["run_id"].(string)
		if ev == "" || id == "" {
			t.Fatalf("--log-format json: line %d lacks event or run_id: %q", i+1, line)
		}
		if jsonID == "" {
			jsonID = id
		} else if id != jsonID {
			t.Fatalf("--log-format json: line %d: run_id %q, want %q throughout", i+1, id, jsonID)
		}
		entry := ev
		if s, _ := m["step"].(string); s != "" {
			entry += " " + s
		}
		if s, _ := m["state"].(string); s != "" {
			entry += " " + s
		}
		if s, _ := m["outcome"].(string); s != "" {
			entry += " " + s
		}
		seq = append(seq, entry)
	}
	golden(t, filepath.Join("testdata", "example_events.golden"), strings.Join(seq, "\n")+"\n")

	// runs: newest first, each with its status.
	rows := listRuns(t, work, jdir)
	want := []runsRow{{jsonID, "done"}, {doneID, "done"}, {declinedID, "declined"}, {planID, "dry-run"}}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("switchover runs: want %v (newest first), got %v", want, rows)
	}
}

// golden compares got with the golden file, or rewrites it under -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, got)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs (run with -update to accept):\n--- want:\n%s--- got:\n%s", path, want, got)
	}
}

// killRunbook has a step that waits on a gate (s3), a step whose effect
// happens at the end of its action (s5), the same made idempotent (s6),
// and a step whose effect happens at the start of its action (s7). Every
// step appends its name to the log, and its ensures look for it.
const killRunbook = `name: kill-resume
vars:
  dir: /nonexistent
  nap: "2"
steps:
  - name: s1
    action: {exec: {command: "echo s1 >> ${dir}/log"}}
    ensures: [{exec: {command: "grep -qx s1 ${dir}/log"}}]
  - name: s2
    action: {exec: {command: "echo s2 >> ${dir}/log"}}
    ensures: [{exec: {command: "grep -qx s2 ${dir}/log"}}]
  - name: s3
    requires:
      - exec: {command: "test -f ${dir}/gate", within: 60s, every: 100ms}
    action: {exec: {command: "echo s3 >> ${dir}/log"}}
    ensures: [{exec: {command: "grep -qx s3 ${dir}/log"}}]
  - name: s4
    action: {exec: {command: "echo s4 >> ${dir}/log"}}
    ensures: [{exec: {command: "grep -qx s4 ${dir}/log"}}]
  - name: s5
    action: {exec: {command: "sleep ${nap}; echo s5 >> ${dir}/log"}}
    ensures: [{exec: {command: "grep -qx s5 ${dir}/log"}}]
  - name: s6
    idempotent: true
    action: {exec: {command: "sleep ${nap}; echo s6 >> ${dir}/log"}}
    ensures: [{exec: {command: "grep -qx s6 ${dir}/log"}}]
  - name: s7
    action: {exec: {command: "echo s7 >> ${dir}/log; sleep ${nap}"}}
    ensures: [{exec: {command: "grep -qx s7 ${dir}/log"}}]
  - name: s8
    action: {exec: {command: "echo s8 >> ${dir}/log"}}
    ensures: [{exec: {command: "grep -qx s8 ${dir}/log"}}]
`

func logOf(names ...string) string {
	if len(names) == 0 {
		return ""
	}
	return strings.Join(names, "\n") + "\n"
}

// TestBinaryKillAndResume kills the tool with SIGKILL between steps and in
// the middle of actions, and resumes each time: in the end every side
// effect happened exactly once, in order.
func TestBinaryKillAndResume(t *testing.T) {
	t.Parallel()
	work, jdir, d := t.TempDir(), t.TempDir(), t.TempDir()
	file := filepath.Join(work, "kill.yaml")
	writeFile(t, file, killRunbook)
	logPath := filepath.Join(d, "log")
	jd := "--journal-dir=" + jdir

	// A plain run after a kill is refused: the run did not finish.
	refused := func(when string) {
		t.Helper()
		r := mustRun(t, 6, work, "run", file, "--var", "dir="+d, jd)
		assertContains(t, "run after "+when, r.Stderr, "did not finish", "switchover resume")
	}

	// (i) Killed between steps: s3 waits on its gate.
	p := start(t, work, "run", file, "--var", "dir="+d, jd)
	p.WaitJournal(jdir, "s3 checking", pollTimeout, testbin.StepState("s3", "checking"))
	runID := strings.TrimSuffix(filepath.Base(testbin.NewestJournal(t, jdir)), ".jsonl")
	p.MustKill()
	assertLog(t, logPath, logOf("s1", "s2"))
	refused("a kill between steps")
	if rows := listRuns(t, work, jdir); len(rows) != 1 || rows[0] != (runsRow{runID, "interrupted"}) {
		t.Fatalf("switchover runs after the kill: want [{%s interrupted}], got %v", runID, rows)
	}

	// (ii) Killed inside a non-idempotent action (s5 sleeps, then logs).
	writeFile(t, filepath.Join(d, "gate"), "")
	p = start(t, work, "resume", jd)
	p.WaitJournal(jdir, "s5 running", pollTimeout, testbin.StepState("s5", "running"))
	p.MustKill()
	assertLog(t, logPath, logOf("s1", "s2", "s3", "s4"))
	refused("a kill mid-action")

	// A scripted resume cannot decide whether s5 happened: a person must.
	r := mustRun(t, 4, work, "resume", jd)
	assertContains(t, "resume without --settle", r.Output(), `step "s5"`, "--settle")
	assertLog(t, logPath, logOf("s1", "s2", "s3", "s4"))
	refused("a resume that needs a decision")

	// (iii) --settle rerun runs s5 again; then the idempotent s6 is killed
	// before its effect.
	p = start(t, work, "resume", "--settle", "rerun", jd)
	p.WaitJournal(jdir, "s6 running", pollTimeout, testbin.StepState("s6", "running"))
	p.MustKill()
	assertLog(t, logPath, logOf("s1", "s2", "s3", "s4", "s5"))
	refused("a kill in an idempotent action")

	// (iv) s6 is idempotent, so a resume reruns it without asking; s7 is
	// killed after its effect, before its action returned.
	p = start(t, work, "resume", jd)
	p.WaitJournal(jdir, "s7 running", pollTimeout, testbin.StepState("s7", "running"))
	waitFile(t, p, logPath, "s7 in the log", func(s string) bool { return strings.HasSuffix(s, "s7\n") })
	p.MustKill()
	assertLog(t, logPath, logOf("s1", "s2", "s3", "s4", "s5", "s6", "s7"))
	refused("a kill after an action's effect")

	// s7's postconditions hold, so it counts as done without a rerun.
	r = mustRun(t, 0, work, "resume", jd)
	assertContains(t, "last resume", r.Stdout, "resuming run "+runID, "postconditions hold", "done in")
	assertLog(t, logPath, logOf("s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"))

	if rows := listRuns(t, work, jdir); len(rows) != 1 || rows[0] != (runsRow{runID, "done"}) {
		t.Fatalf("switchover runs at the end: want [{%s done}], got %v", runID, rows)
	}
	// The journal is one run; s5 ran twice (cut off, then settled by
	// rerun), s6 twice (cut off, idempotent), s7 once.
	var running []string
	for i, e := range testbin.ReadJournal(t, filepath.Join(jdir, "runs", runID+".jsonl")) {
		if e.RunID != runID {
			t.Fatalf("journal of %s holds an event of run %q", runID, e.RunID)
		}
		if e.Seq != i+1 {
			t.Fatalf("journal of %s: event %d (%s) has seq %d: want seq to number on across resumes", runID, i+1, e.Event, e.Seq)
		}
		if e.Event == "step" && e.State == "running" {
			running = append(running, e.Step)
		}
	}
	if got, want := strings.Join(running, ","), "s1,s2,s3,s4,s5,s5,s6,s6,s7,s8"; got != want {
		t.Errorf("actions started, per the journal: want %s, got %s", want, got)
	}

	// The finished run let go of the cluster: a new run starts.
	d2 := t.TempDir()
	writeFile(t, filepath.Join(d2, "gate"), "")
	mustRun(t, 0, work, "run", file, "--var", "dir="+d2, "--var", "nap=0", jd)
	assertLog(t, filepath.Join(d2, "log"), logOf("s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"))
}

const decideRunbook = `name: decide
vars:
  dir: /nonexistent
steps:
  - name: s1
    action: {exec: {command: "echo s1 >> ${dir}/log"}}
  - name: s2
    action: {exec: {command: "sleep 2; echo s2 >> ${dir}/log"}}
    ensures: [{exec: {command: "grep -qx s2 ${dir}/log"}}]
  - name: s3
    action: {exec: {command: "echo s3 >> ${dir}/log"}}
`

// TestBinaryResumeNeedsDecision: a step cut off mid-action, not
// idempotent, whose postconditions do not hold, cannot be settled by a
// scripted resume: it exits 4, says --settle, changes nothing and leaves
// the run resumable; --settle rerun then finishes it.
func TestBinaryResumeNeedsDecision(t *testing.T) {
	t.Parallel()
	work, jdir, d := t.TempDir(), t.TempDir(), t.TempDir()
	file := filepath.Join(work, "decide.yaml")
	writeFile(t, file, decideRunbook)
	logPath := filepath.Join(d, "log")
	jd := "--journal-dir=" + jdir
	p := start(t, work, "run", file, "--var", "dir="+d, jd)
	p.WaitJournal(jdir, "s2 running", pollTimeout, testbin.StepState("s2", "running"))
	id := strings.TrimSuffix(filepath.Base(testbin.NewestJournal(t, jdir)), ".jsonl")
	p.MustKill()
	assertLog(t, logPath, logOf("s1"))

	// Resume needs the runbook the run started with.
	writeFile(t, file, strings.Replace(decideRunbook, "echo s3", "echo S3", 1))
	r := mustRun(t, 2, work, "resume", jd)
	assertContains(t, "resume with a changed runbook", r.Stderr, "changed since run "+id)
	writeFile(t, file, decideRunbook)

	// Asked twice, the answer is the same: a person must decide. Asking
	// must not change the run's state.
	for i := 1; i <= 2; i++ {
		r := mustRun(t, 4, work, "resume", jd)
		assertContains(t, fmt.Sprintf("resume #%d without --settle", i), r.Output(), `step "s2"`, "--settle rerun", "--settle done")
		assertLog(t, logPath, logOf("s1"))
		if rows := listRuns(t, work, jdir); len(rows) != 1 || rows[0] != (runsRow{id, "interrupted"}) {
			t.Fatalf("switchover runs after resume #%d: want [{%s interrupted}], got %v", i, id, rows)
		}
		r = mustRun(t, 6, work, "run", file, "--var", "dir="+d, jd)
		assertContains(t, "run", r.Stderr, "did not finish", "switchover resume "+id)
	}
	mustRun(t, 2, work, "resume", "--settle", "maybe", jd)

	r = mustRun(t, 0, work, "resume", "--settle", "rerun", jd)
	assertContains(t, "resume --settle rerun", r.Stdout, "settled", "rerun")
	assertLog(t, logPath, logOf("s1", "s2", "s3"))
	if rows := listRuns(t, work, jdir); len(rows) != 1 || rows[0] != (runsRow{id, "done"}) {
		t.Fatalf("switchover runs: want [{%s done}], got %v", id, rows)
	}
}

// TestBinaryTwoRunsAtOnce: a second run of a cluster is refused and told
// who holds it.
func TestBinaryTwoRunsAtOnce(t *testing.T) {
	t.Parallel()
	work, jdir, d := t.TempDir(), t.TempDir(), t.TempDir()
	file := filepath.Join(work, "slow.yaml")
	writeFile(t, file, `name: slow
vars:
  dir: /nonexistent
steps:
  - name: nap
    action: {exec: {command: "sleep 5"}}
  - name: after
    action: {exec: {command: "echo after >> ${dir}/log"}}
`)
	jd := "--journal-dir=" + jdir
	first := start(t, work, "run", file, "--var", "dir="+d, jd)
	first.WaitJournal(jdir, "nap running", pollTimeout, testbin.StepState("nap", "running"))
	holder := strings.TrimSuffix(filepath.Base(testbin.NewestJournal(t, jdir)), ".jsonl")

	r := mustRun(t, 6, work, "run", file, "--var", "dir="+d, jd)
	assertContains(t, "second run", r.Stderr, "held by run "+holder, fmt.Sprintf("pid %d", first.Cmd.Process.Pid))
	if n := len(listRuns(t, work, jdir)); n != 1 {
		t.Errorf("the refused run left a journal: %d runs listed, want 1", n)
	}
	// Nor can the running run be resumed from elsewhere.
	r = mustRun(t, 6, work, "resume", holder, jd)
	assertContains(t, "resume of a running run", r.Stderr, "held by run "+holder)
	// A dry run takes no lock and is not refused.
	mustRun(t, 0, work, "plan", file, "--var", "dir="+d, jd)

	first.MustKill()
	assertNotExist(t, filepath.Join(d, "log"))
}

// TestBinaryInterrupt: SIGINT while a check waits suspends the run at once;
// resume finishes it.
func TestBinaryInterrupt(t *testing.T) {
	t.Parallel()
	work, jdir, d := t.TempDir(), t.TempDir(), t.TempDir()
	file := filepath.Join(work, "gate.yaml")
	writeFile(t, file, `name: gated
vars:
  dir: /nonexistent
steps:
  - name: before
    action: {exec: {command: "echo before >> ${dir}/log"}}
  - name: gated
    requires:
      - exec: {command: "test -f ${dir}/gate", within: 60s}
    action: {exec: {command: "echo gated >> ${dir}/log"}}
`)
	writeFile(t, filepath.Join(work, "inv.yaml"), "cluster: tiny\nnodes:\n  pg1:\n    host: local\n")
	jd := "--journal-dir=" + jdir
	// Relative paths: resume below runs from another directory.
	p := start(t, work, "run", "gate.yaml", "-i", "inv.yaml", "--var", "dir="+d, jd)
	p.WaitJournal(jdir, "gated waiting", pollTimeout, func(e testbin.Event) bool { return e.Event == "check.waiting" && e.Step == "gated" })
	sent := time.Now()
	if err := p.Cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	r := p.WaitWithin(5 * time.Second)
	if took := time.Since(sent); took > 5*time.Second {
		t.Fatalf("SIGINT: took %s to exit", took)
	}
	if r.Code != 5 {
		t.Fatalf("SIGINT: want exit 5, got %s", r)
	}
	assertContains(t, "after SIGINT", r.Output(), "suspended", "switchover resume")
	assertLog(t, filepath.Join(d, "log"), logOf("before"))
	id := strings.TrimSuffix(filepath.Base(testbin.NewestJournal(t, jdir)), ".jsonl")
	if rows := listRuns(t, work, jdir); len(rows) != 1 || rows[0] != (runsRow{id, "suspended"}) {
		t.Fatalf("switchover runs: want [{%s suspended}], got %v", id, rows)
	}

	writeFile(t, filepath.Join(d, "gate"), "")
	r = mustRun(t, 0, t.TempDir(), "resume", id, jd)
	assertContains(t, "resume", r.Stdout, "resuming run "+id, "cluster tiny")
	assertLog(t, filepath.Join(d, "log"), logOf("before", "gated"))
	if rows := listRuns(t, work, jdir); len(rows) != 1 || rows[0] != (runsRow{id, "done"}) {
		t.Fatalf("switchover runs: want [{%s done}], got %v", id, rows)
	}
}

// TestBinaryInterruptTwice: the first SIGINT lets a running action
// finish; the second cuts it off at once, and resume settles the step.
func TestBinaryInterruptTwice(t *testing.T) {
	t.Parallel()
	work, jdir, d := t.TempDir(), t.TempDir(), t.TempDir()
	file := filepath.Join(work, "long.yaml")
	writeFile(t, file, `name: long
vars:
  dir: /nonexistent
steps:
  - name: long
    action: {exec: {command: "sleep 3; echo long >> ${dir}/log"}}
    ensures: [{exec: {command: "grep -qx long ${dir}/log"}}]
  - name: after
    action: {exec: {command: "echo after >> ${dir}/log"}}
`)
	logPath := filepath.Join(d, "log")
	jd := "--journal-dir=" + jdir
	p := start(t, work, "run", file, "--var", "dir="+d, jd)
	p.WaitJournal(jdir, "long running", pollTimeout, testbin.StepState("long", "running"))
	if err := p.Cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	// The first interrupt is taken before the second is sent: two sent
	// before the program reads either arrive as one.
	for deadline := time.Now().Add(pollTimeout); !strings.Contains(p.Stderr.String(), "interrupt: stopping at the next safe point"); time.Sleep(20 * time.Millisecond) {
		if p.Exited() {
			t.Fatalf("first SIGINT: exited while the action ran: %s", p.WaitWithin(time.Second))
		}
		if time.Now().After(deadline) {
			t.Fatalf("first SIGINT: not taken within %s; stderr:\n%s", pollTimeout, p.Stderr)
		}
	}
	// The action is not cut off by the first interrupt. Nothing marks an
	// action that goes on, so this waits a while to see no exit.
	time.Sleep(500 * time.Millisecond)
	if p.Exited() {
		t.Fatalf("first SIGINT: exited while the action ran: %s", p.WaitWithin(time.Second))
	}
	if err := p.Cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	r := p.WaitWithin(5 * time.Second)
	if r.Code != 5 {
		t.Fatalf("second SIGINT: want exit 5, got %s", r)
	}
	assertContains(t, "after two SIGINTs", r.Stderr, "stopping at the next safe point", "stopping at once", "switchover resume")
	assertLog(t, logPath, "")

	r = mustRun(t, 0, work, "resume", "--settle", "rerun", jd)
	assertLog(t, logPath, logOf("long", "after"))
}

// TestBinaryExitCodes: each outcome has its exit code, and says what changed.
func TestBinaryExitCodes(t *testing.T) {
	t.Parallel()
	work := t.TempDir()

	t.Run("invalid runbook", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(work, "bad.yaml")
		writeFile(t, file, `name: bad
steps:
  - name: one
    acton: {exec: {command: "true"}}
  - name: two
    action: {exec: {command: "true"}}
    destructive: maybe
`)
		r := mustRun(t, 2, work, "validate", file)
		assertContains(t, "validate", r.Stderr, "2 problems", file+":4:5:", `unknown key "acton"`, file+":7:18:")
		// Problems found once the file's shape is right (kinds, parameters,
		// variables) are listed together too.
		file2 := filepath.Join(work, "bad2.yaml")
		writeFile(t, file2, `name: bad
steps:
  - name: one
    action: {exek: {command: "true"}}
  - name: two
    action: {exec: {command: "${nope}"}}
`)
		r = mustRun(t, 2, work, "validate", file2)
		assertContains(t, "validate", r.Stderr, "2 problems", file2+":4:14:", `unknown action "exek"`, file2+":6:30:", `undefined variable "nope"`)
		r = mustRun(t, 2, work, "run", file, "--journal-dir", t.TempDir())
		assertContains(t, "run", r.Stderr, file+":4:5:")
		for _, bad := range []string{"goroutine ", "panic", ".go:"} {
			if strings.Contains(r.Output(), bad) {
				t.Fatalf("invalid runbook: output has %q (a stack trace?):\n%s", bad, r)
			}
		}
	})

	t.Run("unknown flag", func(t *testing.T) {
		t.Parallel()
		r := mustRun(t, 2, work, "run", "--no-such-flag", "x.yaml")
		assertContains(t, "unknown flag", r.Stderr, "unknown flag: --no-such-flag")
		if strings.Contains(r.Output(), "goroutine ") {
			t.Fatalf("stack trace in:\n%s", r)
		}
	})

	t.Run("precondition", func(t *testing.T) {
		t.Parallel()
		d, jdir := t.TempDir(), t.TempDir()
		file := filepath.Join(d, "pre.yaml")
		writeFile(t, file, `name: pre
vars:
  dir: /nonexistent
steps:
  - name: guarded
    requires:
      - exec: {command: "false"}
    action: {exec: {command: "touch ${dir}/acted"}}
`)
		r := mustRun(t, 3, work, "run", file, "--var", "dir="+d, "--journal-dir", jdir)
		assertContains(t, "precondition", r.Stdout, "this step changed nothing", "nothing was changed")
		assertNotExist(t, filepath.Join(d, "acted"))
		if rows := listRuns(t, work, jdir); len(rows) != 1 || rows[0].status != "precondition-failed" {
			t.Fatalf("runs: want one precondition-failed run, got %v", rows)
		}
		// plan says so too, and changes nothing either.
		mustRun(t, 3, work, "plan", file, "--var", "dir="+d, "--journal-dir", jdir)
		assertNotExist(t, filepath.Join(d, "acted"))
	})

	t.Run("action fails, rollback runs", func(t *testing.T) {
		t.Parallel()
		d, jdir := t.TempDir(), t.TempDir()
		file := filepath.Join(d, "fail.yaml")
		writeFile(t, file, `name: fail
vars:
  dir: /nonexistent
steps:
  - name: change
    action: {exec: {command: "echo changed >> ${dir}/log"}}
  - name: break
    on_failure: undo
    action: {exec: {command: "echo broke >> ${dir}/log; exit 7"}}
  - name: never
    action: {exec: {command: "echo never >> ${dir}/log"}}
rollback:
  undo:
    - name: undo-change
      action: {exec: {command: "echo undone >> ${dir}/rolled-back"}}
`)
		r := mustRun(t, 4, work, "run", file, "--var", "dir="+d, "--journal-dir", jdir)
		assertLog(t, filepath.Join(d, "rolled-back"), "undone\n")
		assertLog(t, filepath.Join(d, "log"), "changed\nbroke\n")
		assertContains(t, "failed run", r.Output(), "rollback", "actions ran: change, break")
		if rows := listRuns(t, work, jdir); len(rows) != 1 || rows[0].status != "failed" {
			t.Fatalf("runs: want one failed run, got %v", rows)
		}
	})

	t.Run("journal dir under a regular file", func(t *testing.T) {
		t.Parallel()
		d := t.TempDir()
		file := filepath.Join(d, "j.yaml")
		writeFile(t, file, `name: journal
vars:
  dir: /nonexistent
steps:
  - name: act
    action: {exec: {command: "touch ${dir}/acted"}}
`)
		notDir := filepath.Join(d, "plain-file")
		writeFile(t, notDir, "")
		r := mustRun(t, 2, work, "run", file, "--var", "dir="+d, "--journal-dir", filepath.Join(notDir, "journal"))
		assertContains(t, "run", r.Stderr, "nothing was done")
		assertNotExist(t, filepath.Join(d, "acted"))
		// A dry run keeps a journal too: refused the same way.
		mustRun(t, 2, work, "plan", file, "--var", "dir="+d, "--journal-dir", filepath.Join(notDir, "journal"))
	})
}

// TestBinaryKindsAndPlaybooks: the listings a runbook author reads, and the
// shipped playbook run by name.
func TestBinaryKindsAndPlaybooks(t *testing.T) {
	t.Parallel()
	work := t.TempDir()

	kinds := func(cmd string, want map[string][]string) {
		t.Helper()
		r := mustRun(t, 0, work, cmd)
		for kind := range want {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(kind) + `( |$)`).MatchString(r.Stdout) {
				t.Errorf("%s: no %s in:\n%s", cmd, kind, r.Stdout)
			}
		}
		r = mustRun(t, 0, work, cmd, "--json")
		var docs []struct {
			Kind   string `json:"kind"`
			Doc    string `json:"doc"`
			Params []struct {
				Name string `json:"name"`
				Type string `json:"type"`
			} `json:"params"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &docs); err != nil {
			t.Fatalf("%s --json: %v\n%s", cmd, err, r.Stdout)
		}
		got := map[string][]string{}
		for _, d := range docs {
			if d.Doc == "" {
				t.Errorf("%s: kind %s has no doc", cmd, d.Kind)
			}
			var names []string
			for _, p := range d.Params {
				if p.Type == "" {
					t.Errorf("%s: %s.%s has no type", cmd, d.Kind, p.Name)
				}
				names = append(names, p.Name)
			}
			got[d.Kind] = names
		}
		for kind, params := range want {
			have, ok := got[kind]
			if !ok {
				t.Errorf("%s --json: no kind %s", cmd, kind)
				continue
			}
			for _, p := range params {
				if !strings.Contains(" "+strings.Join(have, " ")+" ", " "+p+" ") {
					t.Errorf("%s --json: %s: want param %s, have %v", cmd, kind, p, have)
				}
			}
		}
	}
	kinds("checks", map[string][]string{
		"exec": {"command"}, "tcp.reachable": nil, "http.ok": nil, "dns.resolves": nil, "tls.certificate": nil,
	})
	kinds("steps", map[string][]string{"exec": {"command", "node"}, "sleep": nil, "manual": {"text"}})
	r := mustRun(t, 0, work, "checks")
	assertContains(t, "checks", r.Stdout, "within")

	r = mustRun(t, 0, work, "playbooks")
	if !regexp.MustCompile(`(?m)^example\s`).MatchString(r.Stdout) {
		t.Fatalf("playbooks: no example in:\n%s", r.Stdout)
	}
	r = mustRun(t, 0, work, "playbooks", "show", "example")
	shown := filepath.Join(work, "shown.yaml")
	writeFile(t, shown, r.Stdout)
	mustRun(t, 0, work, "validate", shown)
	mustRun(t, 2, work, "playbooks", "show", "no-such-playbook")

	r = mustRun(t, 0, work, "version")
	if !regexp.MustCompile(`^switchover \S+`).MatchString(r.Stdout) {
		t.Errorf("version: got %q", r.Stdout)
	}
	r = mustRun(t, 0, work, "completion", "bash")
	assertContains(t, "completion bash", r.Stdout, "bash completion", "switchover")

	d, jdir := t.TempDir(), t.TempDir()
	mustRun(t, 0, work, "validate", "example")
	r = mustRun(t, 0, work, "run", "example", "--var", "dir="+d, "--yes", "--journal-dir", jdir)
	assertLog(t, filepath.Join(d, "log"), "one\ntwo\n")
	r = mustRun(t, 0, work, "run", "playbook:example", "--var", "dir="+d, "--yes", "--journal-dir", jdir)
	assertLog(t, filepath.Join(d, "log"), "one\ntwo\none\ntwo\n")
}
