package main

// Tests of the real binary, run the way an operator or a script runs it:
// no terminal (stdin is /dev/null), a journal directory of its own, exit
// codes and output read from outside the process. Faults are real: the
// process is killed with SIGKILL mid-run and interrupted with SIGINT.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var (
	buildOnce sync.Once
	binDir    string // holds the binary; removed by TestMain
	binPath   string
	buildErr  error
)

// TestMain runs the tests, brings the shared sandbox down and removes the
// binary built for them.
func TestMain(m *testing.M) {
	sandboxtest.MainThen(m, func() {
		if binDir != "" {
			os.RemoveAll(binDir)
		}
	})
}

// binary builds cmd/switchover once per test process and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "switchover-bin-")
		if buildErr != nil {
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		binPath = filepath.Join(binDir, "switchover")
		out, err := exec.Command(goTool, "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// cmdTimeout bounds every synchronous run of the binary.
const cmdTimeout = 30 * time.Second

// pollTimeout bounds every wait for a file or a journal entry.
const pollTimeout = 10 * time.Second

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

func (r result) output() string { return r.stdout + r.stderr }

// command prepares the binary with stdin from /dev/null, in dir, with
// XDG_STATE_HOME pointing into the test's temp dir so that a forgotten
// --journal-dir never writes to the real home.
func command(t *testing.T, ctx context.Context, dir string, args ...string) *exec.Cmd {
	t.Helper()
	bin := binary(t)
	var cmd *exec.Cmd
	if ctx != nil {
		cmd = exec.CommandContext(ctx, bin, args...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	cmd.Dir = dir
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devnull.Close() })
	cmd.Stdin = devnull
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, ".state"), "NO_COLOR=1")
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// run runs the binary to completion (bounded by cmdTimeout).
func run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := command(t, ctx, dir, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("switchover %s: did not finish within %s\n%s%s", strings.Join(args, " "), cmdTimeout, stdout.String(), stderr.String())
	}
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("switchover %s: %v", strings.Join(args, " "), err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// mustRun runs the binary and fails the test unless it exits with want.
func mustRun(t *testing.T, want int, dir string, args ...string) result {
	t.Helper()
	r := run(t, dir, args...)
	if r.code != want {
		t.Fatalf("switchover %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

// syncBuffer is a bytes.Buffer safe to read while the process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is the binary running in the background.
type proc struct {
	t              *testing.T
	args           []string
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	code           int
}

// start runs the binary in the background. Cleanup kills it by PID if the
// test has not already waited for it.
func start(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, args: args, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = command(t, nil, dir, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start switchover %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			t.Errorf("switchover %s (pid %d) did not die after SIGKILL", strings.Join(args, " "), p.cmd.Process.Pid)
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits (bounded) for the process to exit and returns how it did.
func (p *proc) wait(limit time.Duration) result {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		p.t.Fatalf("switchover %s (pid %d) still running after %s\n--- stdout:\n%s--- stderr:\n%s",
			strings.Join(p.args, " "), p.cmd.Process.Pid, limit, p.stdout, p.stderr)
	}
	return result{code: p.code, stdout: p.stdout.String(), stderr: p.stderr.String()}
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !p.exited() {
		p.t.Fatalf("kill pid %d: %v", p.cmd.Process.Pid, err)
	}
	r := p.wait(5 * time.Second)
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		p.t.Fatalf("switchover %s: exited by itself before the kill: %s", strings.Join(p.args, " "), r)
	}
}

// journalEvent is the part of a journal line or JSON log line the tests
// read, under the names scripts rely on.
type journalEvent struct {
	Seq     int    `json:"seq"`
	Event   string `json:"event"`
	RunID   string `json:"run_id"`
	Step    string `json:"step"`
	State   string `json:"state"`
	Phase   string `json:"phase"`
	Outcome string `json:"outcome"`
	Message string `json:"message"`
}

// newestJournal returns the most recently written journal under
// journalDir/runs, or "" when there is none yet.
func newestJournal(t *testing.T, journalDir string) string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(journalDir, "runs", "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	newest, newestT := "", time.Time{}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if newest == "" || st.ModTime().After(newestT) || (st.ModTime().Equal(newestT) && p > newest) {
			newest, newestT = p, st.ModTime()
		}
	}
	return newest
}

// readJournal parses the complete lines of a journal; a line being written
// is ignored.
func readJournal(t *testing.T, path string) []journalEvent {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []journalEvent
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 || line[len(line)-1] != '\n' {
			continue
		}
		var e journalEvent
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("journal %s: line %q: %v", path, line, err)
		}
		out = append(out, e)
	}
	return out
}

// waitJournal polls the newest journal until an event matches, the process
// exits, or pollTimeout passes.
func waitJournal(t *testing.T, p *proc, journalDir, what string, match func(journalEvent) bool) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		if path := newestJournal(t, journalDir); path != "" {
			for _, e := range readJournal(t, path) {
				if match(e) {
					return
				}
			}
		}
		if p.exited() {
			t.Fatalf("waiting for %s: switchover %s exited first: %s", what, strings.Join(p.args, " "), p.wait(time.Second))
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not in the journal after %s\n--- stdout:\n%s--- stderr:\n%s", what, pollTimeout, p.stdout, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func stepState(step, state string) func(journalEvent) bool {
	return func(e journalEvent) bool { return e.Event == "step" && e.Step == step && e.State == state }
}

// waitFile polls until path's content satisfies ok.
func waitFile(t *testing.T, p *proc, path, what string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		b, _ := os.ReadFile(path)
		if ok(string(b)) {
			return
		}
		if p.exited() {
			t.Fatalf("waiting for %s: switchover exited first: %s", what, p.wait(time.Second))
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
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	var rows []runsRow
	header := true
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if header {
			if len(f) < 5 || f[0] != "RUN" || f[4] != "STATUS" { // STARTED is one word here, two in a row
				t.Fatalf("switchover runs: want a RUN ... STATUS header, got:\n%s", r.stdout)
			}
			header = false
			continue
		}
		if len(f) < 6 {
			t.Fatalf("switchover runs: short row %q in:\n%s", sc.Text(), r.stdout)
		}
		rows = append(rows, runsRow{id: f[0], status: f[5]})
	}
	return rows
}

// runIDIn finds the run id in the first line of human output:
// "run ID: ...", "dry run ID: ..." or "resuming run ID: ...".
var runIDLine = regexp.MustCompile(`(?m)^(?:dry run|resuming run|run) (\d{8}T\d{6}Z-[0-9a-f]+):`)

func runIDIn(t *testing.T, r result) string {
	t.Helper()
	m := runIDLine.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no run id in the output:\n%s", r)
	}
	return m[1]
}

const exampleRunbook = `name: example
vars:
  dir: /tmp/switchover-example
steps:
  - name: first
    action:
      exec: {command: "echo one >> ${dir}/log"}
  - name: second
    destructive: true
    requires:
      - exec: {command: "test -d ${dir}"}
    action:
      exec: {command: "echo two >> ${dir}/log"}
    ensures:
      - exec: {command: "grep -q two ${dir}/log"}
`

// TestBinaryExample walks the README example: validate, plan, a scripted
// run refused for want of approval, the approved run, runs, and the JSON log.
func TestBinaryExample(t *testing.T) {
	t.Parallel()
	work, jdir := t.TempDir(), t.TempDir()
	d := t.TempDir()
	file := filepath.Join(work, "example.yaml")
	writeFile(t, file, exampleRunbook)
	logPath := filepath.Join(d, "log")
	jd := "--journal-dir=" + jdir

	r := mustRun(t, 0, work, "validate", file)
	assertContains(t, "validate", r.stdout, "valid", "2 steps (1 destructive)")

	r = mustRun(t, 0, work, "plan", file, "--var", "dir="+d, jd)
	assertContains(t, "plan", r.stdout, "would run", "echo one >> "+d+"/log", "echo two >> "+d+"/log", "nothing was changed")
	planID := runIDIn(t, r)
	assertNotExist(t, logPath)

	r = mustRun(t, 5, work, "run", file, "--var", "dir="+d, jd)
	assertContains(t, "run without --yes", r.output(), "--approve second")
	assertContains(t, "run without --yes", r.stdout, "nothing was changed")
	declinedID := runIDIn(t, r)
	assertNotExist(t, logPath)

	r = mustRun(t, 0, work, "run", file, "--var", "dir="+d, "--yes", jd)
	assertContains(t, "run --yes", r.stdout, "approved", "(--yes)", "done in")
	doneID := runIDIn(t, r)
	assertLog(t, logPath, "one\ntwo\n")
	if r.stderr != "" {
		t.Errorf("run --yes: want nothing on stderr, got %q", r.stderr)
	}

	// JSON log: only JSON lines, each with an event and the run id.
	if err := os.Remove(logPath); err != nil {
		t.Fatal(err)
	}
	r = mustRun(t, 0, work, "run", file, "--var", "dir="+d, "--yes", "--log-format", "json", jd)
	assertLog(t, logPath, "one\ntwo\n")
	var seq []string
	jsonID := ""
	for i, line := range strings.Split(strings.TrimRight(r.stdout, "\n"), "\n") {
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
		assertContains(t, "run after "+when, r.stderr, "did not finish", "switchover resume")
	}

	// (i) Killed between steps: s3 waits on its gate.
	p := start(t, work, "run", file, "--var", "dir="+d, jd)
	waitJournal(t, p, jdir, "s3 checking", stepState("s3", "checking"))
	runID := strings.TrimSuffix(filepath.Base(newestJournal(t, jdir)), ".jsonl")
	p.kill()
	assertLog(t, logPath, logOf("s1", "s2"))
	refused("a kill between steps")
	if rows := listRuns(t, work, jdir); len(rows) != 1 || rows[0] != (runsRow{runID, "interrupted"}) {
		t.Fatalf("switchover runs after the kill: want [{%s interrupted}], got %v", runID, rows)
	}

	// (ii) Killed inside a non-idempotent action (s5 sleeps, then logs).
	writeFile(t, filepath.Join(d, "gate"), "")
	p = start(t, work, "resume", jd)
	waitJournal(t, p, jdir, "s5 running", stepState("s5", "running"))
	p.kill()
	assertLog(t, logPath, logOf("s1", "s2", "s3", "s4"))
	refused("a kill mid-action")

	// A scripted resume cannot decide whether s5 happened: a person must.
	r := mustRun(t, 4, work, "resume", jd)
	assertContains(t, "resume without --settle", r.output(), `step "s5"`, "--settle")
	assertLog(t, logPath, logOf("s1", "s2", "s3", "s4"))
	refused("a resume that needs a decision")

	// (iii) --settle rerun runs s5 again; then the idempotent s6 is killed
	// before its effect.
	p = start(t, work, "resume", "--settle", "rerun", jd)
	waitJournal(t, p, jdir, "s6 running", stepState("s6", "running"))
	p.kill()
	assertLog(t, logPath, logOf("s1", "s2", "s3", "s4", "s5"))
	refused("a kill in an idempotent action")

	// (iv) s6 is idempotent, so a resume reruns it without asking; s7 is
	// killed after its effect, before its action returned.
	p = start(t, work, "resume", jd)
	waitJournal(t, p, jdir, "s7 running", stepState("s7", "running"))
	waitFile(t, p, logPath, "s7 in the log", func(s string) bool { return strings.HasSuffix(s, "s7\n") })
	p.kill()
	assertLog(t, logPath, logOf("s1", "s2", "s3", "s4", "s5", "s6", "s7"))
	refused("a kill after an action's effect")

	// s7's postconditions hold, so it counts as done without a rerun.
	r = mustRun(t, 0, work, "resume", jd)
	assertContains(t, "last resume", r.stdout, "resuming run "+runID, "postconditions hold", "done in")
	assertLog(t, logPath, logOf("s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"))

	if rows := listRuns(t, work, jdir); len(rows) != 1 || rows[0] != (runsRow{runID, "done"}) {
		t.Fatalf("switchover runs at the end: want [{%s done}], got %v", runID, rows)
	}
	// The journal is one run; s5 ran twice (cut off, then settled by
	// rerun), s6 twice (cut off, idempotent), s7 once.
	var running []string
	for i, e := range readJournal(t, filepath.Join(jdir, "runs", runID+".jsonl")) {
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
	waitJournal(t, p, jdir, "s2 running", stepState("s2", "running"))
	id := strings.TrimSuffix(filepath.Base(newestJournal(t, jdir)), ".jsonl")
	p.kill()
	assertLog(t, logPath, logOf("s1"))

	// Resume needs the runbook the run started with.
	writeFile(t, file, strings.Replace(decideRunbook, "echo s3", "echo S3", 1))
	r := mustRun(t, 2, work, "resume", jd)
	assertContains(t, "resume with a changed runbook", r.stderr, "changed since run "+id)
	writeFile(t, file, decideRunbook)

	// Asked twice, the answer is the same: a person must decide. Asking
	// must not change the run's state.
	for i := 1; i <= 2; i++ {
		r := mustRun(t, 4, work, "resume", jd)
		assertContains(t, fmt.Sprintf("resume #%d without --settle", i), r.output(), `step "s2"`, "--settle rerun", "--settle done")
		assertLog(t, logPath, logOf("s1"))
		if rows := listRuns(t, work, jdir); len(rows) != 1 || rows[0] != (runsRow{id, "interrupted"}) {
			t.Fatalf("switchover runs after resume #%d: want [{%s interrupted}], got %v", i, id, rows)
		}
		r = mustRun(t, 6, work, "run", file, "--var", "dir="+d, jd)
		assertContains(t, "run", r.stderr, "did not finish", "switchover resume "+id)
	}
	mustRun(t, 2, work, "resume", "--settle", "maybe", jd)

	r = mustRun(t, 0, work, "resume", "--settle", "rerun", jd)
	assertContains(t, "resume --settle rerun", r.stdout, "settled", "rerun")
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
	waitJournal(t, first, jdir, "nap running", stepState("nap", "running"))
	holder := strings.TrimSuffix(filepath.Base(newestJournal(t, jdir)), ".jsonl")

	r := mustRun(t, 6, work, "run", file, "--var", "dir="+d, jd)
	assertContains(t, "second run", r.stderr, "held by run "+holder, fmt.Sprintf("pid %d", first.cmd.Process.Pid))
	if n := len(listRuns(t, work, jdir)); n != 1 {
		t.Errorf("the refused run left a journal: %d runs listed, want 1", n)
	}
	// Nor can the running run be resumed from elsewhere.
	r = mustRun(t, 6, work, "resume", holder, jd)
	assertContains(t, "resume of a running run", r.stderr, "held by run "+holder)
	// A dry run takes no lock and is not refused.
	mustRun(t, 0, work, "plan", file, "--var", "dir="+d, jd)

	first.kill()
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
	waitJournal(t, p, jdir, "gated waiting", func(e journalEvent) bool { return e.Event == "check.waiting" && e.Step == "gated" })
	sent := time.Now()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	r := p.wait(5 * time.Second)
	if took := time.Since(sent); took > 5*time.Second {
		t.Fatalf("SIGINT: took %s to exit", took)
	}
	if r.code != 5 {
		t.Fatalf("SIGINT: want exit 5, got %s", r)
	}
	assertContains(t, "after SIGINT", r.output(), "suspended", "switchover resume")
	assertLog(t, filepath.Join(d, "log"), logOf("before"))
	id := strings.TrimSuffix(filepath.Base(newestJournal(t, jdir)), ".jsonl")
	if rows := listRuns(t, work, jdir); len(rows) != 1 || rows[0] != (runsRow{id, "suspended"}) {
		t.Fatalf("switchover runs: want [{%s suspended}], got %v", id, rows)
	}

	writeFile(t, filepath.Join(d, "gate"), "")
	r = mustRun(t, 0, t.TempDir(), "resume", id, jd)
	assertContains(t, "resume", r.stdout, "resuming run "+id, "cluster tiny")
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
	waitJournal(t, p, jdir, "long running", stepState("long", "running"))
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	// The first interrupt is taken before the second is sent: two sent
	// before the program reads either arrive as one.
	for deadline := time.Now().Add(pollTimeout); !strings.Contains(p.stderr.String(), "interrupt: stopping at the next safe point"); time.Sleep(20 * time.Millisecond) {
		if p.exited() {
			t.Fatalf("first SIGINT: exited while the action ran: %s", p.wait(time.Second))
		}
		if time.Now().After(deadline) {
			t.Fatalf("first SIGINT: not taken within %s; stderr:\n%s", pollTimeout, p.stderr)
		}
	}
	// The action is not cut off by the first interrupt. Nothing marks an
	// action that goes on, so this waits a while to see no exit.
	time.Sleep(500 * time.Millisecond)
	if p.exited() {
		t.Fatalf("first SIGINT: exited while the action ran: %s", p.wait(time.Second))
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	r := p.wait(5 * time.Second)
	if r.code != 5 {
		t.Fatalf("second SIGINT: want exit 5, got %s", r)
	}
	assertContains(t, "after two SIGINTs", r.stderr, "stopping at the next safe point", "stopping at once", "switchover resume")
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
		assertContains(t, "validate", r.stderr, "2 problems", file+":4:5:", `unknown key "acton"`, file+":7:18:")
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
		assertContains(t, "validate", r.stderr, "2 problems", file2+":4:14:", `unknown action "exek"`, file2+":6:30:", `undefined variable "nope"`)
		r = mustRun(t, 2, work, "run", file, "--journal-dir", t.TempDir())
		assertContains(t, "run", r.stderr, file+":4:5:")
		for _, bad := range []string{"goroutine ", "panic", ".go:"} {
			if strings.Contains(r.output(), bad) {
				t.Fatalf("invalid runbook: output has %q (a stack trace?):\n%s", bad, r)
			}
		}
	})

	t.Run("unknown flag", func(t *testing.T) {
		t.Parallel()
		r := mustRun(t, 2, work, "run", "--no-such-flag", "x.yaml")
		assertContains(t, "unknown flag", r.stderr, "unknown flag: --no-such-flag")
		if strings.Contains(r.output(), "goroutine ") {
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
		assertContains(t, "precondition", r.stdout, "this step changed nothing", "nothing was changed")
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
		assertContains(t, "failed run", r.output(), "rollback", "actions ran: change, break")
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
		assertContains(t, "run", r.stderr, "nothing was done")
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
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(kind) + `( |$)`).MatchString(r.stdout) {
				t.Errorf("%s: no %s in:\n%s", cmd, kind, r.stdout)
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
		if err := json.Unmarshal([]byte(r.stdout), &docs); err != nil {
			t.Fatalf("%s --json: %v\n%s", cmd, err, r.stdout)
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
	assertContains(t, "checks", r.stdout, "within")

	r = mustRun(t, 0, work, "playbooks")
	if !regexp.MustCompile(`(?m)^example\s`).MatchString(r.stdout) {
		t.Fatalf("playbooks: no example in:\n%s", r.stdout)
	}
	r = mustRun(t, 0, work, "playbooks", "show", "example")
	shown := filepath.Join(work, "shown.yaml")
	writeFile(t, shown, r.stdout)
	mustRun(t, 0, work, "validate", shown)
	mustRun(t, 2, work, "playbooks", "show", "no-such-playbook")

	r = mustRun(t, 0, work, "version")
	if !regexp.MustCompile(`^switchover \S+`).MatchString(r.stdout) {
		t.Errorf("version: got %q", r.stdout)
	}
	r = mustRun(t, 0, work, "completion", "bash")
	assertContains(t, "completion bash", r.stdout, "bash completion", "switchover")

	d, jdir := t.TempDir(), t.TempDir()
	mustRun(t, 0, work, "validate", "example")
	r = mustRun(t, 0, work, "run", "example", "--var", "dir="+d, "--yes", "--journal-dir", jdir)
	assertLog(t, filepath.Join(d, "log"), "one\ntwo\n")
	r = mustRun(t, 0, work, "run", "playbook:example", "--var", "dir="+d, "--yes", "--journal-dir", jdir)
	assertLog(t, filepath.Join(d, "log"), "one\ntwo\none\ntwo\n")
}
