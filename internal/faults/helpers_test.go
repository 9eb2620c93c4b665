package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
)

// cmdTimeout bounds every run of the binary.
const cmdTimeout = 90 * time.Second

// pollTimeout bounds every wait for a journal entry or a cluster state.
const pollTimeout = 10 * time.Second

// journalStall is how long killWhen and signalWhen wait for the journal to
// grow: pollTimeout, raised by the cases on hosts of their own, where a
// step's checks over ssh on a loaded machine may take longer.
var journalStall = pollTimeout

var (
	buildOnce sync.Once
	binDir    string // holds the binary; removed by TestMain
	binPath   string
	buildErr  error
)

// binary builds cmd/switchover once per test process and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "switchover-faults-bin-")
		if buildErr != nil {
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		binPath = filepath.Join(binDir, "switchover")
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool, "build", "-o", binPath, "../../cmd/switchover")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

func (r result) output() string { return r.stdout + r.stderr }

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

// proc is the binary running in the background, stdin from /dev/null,
// bounded by cmdTimeout, killed by PID in Cleanup if still running.
type proc struct {
	t              *testing.T
	args           []string
	cmd            *exec.Cmd
	cancel         context.CancelFunc
	stdout, stderr *syncBuffer
	done           chan struct{}
	code           int
}

func start(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	p := &proc{t: t, args: args, cancel: cancel, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, binary(t), args...)
	p.cmd.Dir = dir
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devnull.Close() })
	p.cmd.Stdin = devnull
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, ".state"), "NO_COLOR=1")
	p.cmd.WaitDelay = 2 * time.Second
	if err := p.cmd.Start(); err != nil {
		cancel()
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
		defer cancel()
		if p.exited() {
			return
		}
		_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
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

// wait waits (bounded by the command's own timeout) for the process to exit.
func (p *proc) wait() result {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(cmdTimeout + 5*time.Second):
		p.t.Fatalf("switchover %s (pid %d) still running after %s", strings.Join(p.args, " "), p.cmd.Process.Pid, cmdTimeout)
	}
	return result{code: p.code, stdout: p.stdout.String(), stderr: p.stderr.String()}
}

// kill sends SIGKILL to the process by PID and waits until it is gone. It
// reports whether the kill is what ended it (false: it had exited already).
func (p *proc) kill() bool {
	p.t.Helper()
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.t.Fatalf("pid %d did not die after SIGKILL", p.cmd.Process.Pid)
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// runBinary runs the binary to completion.
func runBinary(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return start(t, dir, args...).wait()
}

// journalEvent is the part of a journal line the suite reads.
type journalEvent struct {
	Seq     int    `json:"seq"`
	Event   string `json:"event"`
	Section string `json:"section"`
	Step    string `json:"step"`
	State   string `json:"state"`
	Outcome string `json:"outcome"`
	Error   string `json:"error"`
	Output  string `json:"output"`
	Fact    *struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"fact"`
}

func (e journalEvent) String() string {
	s := e.Event
	if e.Section != "" && e.Section != "steps" {
		s += " [" + e.Section + "]"
	}
	if e.Step != "" {
		s += " " + e.Step
	}
	if e.State != "" {
		s += " " + e.State
	}
	if e.Outcome != "" {
		s += " " + e.Outcome
	}
	return s
}

// mainStep matches a main-section step reaching state.
func mainStep(step, state string) func(journalEvent) bool {
	return func(e journalEvent) bool {
		return e.Event == "step" && (e.Section == "" || e.Section == "steps") && e.Step == step && e.State == state
	}
}

// journalPath returns the run's journal under journalDir/runs ("" when
// none yet). Each case has its own journal directory: one run, one file.
func journalPath(journalDir string) string {
	paths, _ := filepath.Glob(filepath.Join(journalDir, "runs", "*.jsonl"))
	sort.Strings(paths)
	if len(paths) == 0 {
		return ""
	}
	return paths[len(paths)-1]
}

// parseJournal parses the complete lines of a journal.
func parseJournal(b []byte) ([]journalEvent, error) {
	var out []journalEvent
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 || line[len(line)-1] != '\n' {
			continue
		}
		var e journalEvent
		if err := json.Unmarshal(line, &e); err != nil {
			return out, fmt.Errorf("line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func readJournal(t *testing.T, journalDir string) []journalEvent {
	t.Helper()
	path := journalPath(journalDir)
	if path == "" {
		t.Fatalf("no journal under %s", journalDir)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := parseJournal(b)
	if err != nil {
		t.Fatalf("journal %s: %v", path, err)
	}
	return evs
}

// killWhen watches the run's journal and sends SIGKILL the moment an event
// matches. It reads what was appended every 100µs (the engine syncs each
// transition to the journal before acting on it, so the kill lands before
// the next step acts, or, when the engine is faster than the watcher, as
// early in it as can be: the journal's last event says where). The wait is
// bounded: it fails if the journal does not grow for journalStall. With
// after, the kill lands that long after the matching event, inside what it
// started.
func killWhen(t *testing.T, p *proc, journalDir, what string, after time.Duration, match func(journalEvent) bool) {
	t.Helper()
	signalWhen(t, p, journalDir, what, after, syscall.SIGKILL, match)
}

// signalWhen is killWhen with another signal: the process is sent sig and
// left to go on (SIGKILL: killWhen's wait for it to die).
func signalWhen(t *testing.T, p *proc, journalDir, what string, after time.Duration, sig syscall.Signal, match func(journalEvent) bool) {
	t.Helper()
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var pending []byte
	chunk := make([]byte, 64<<10)
	progress := time.Now()
	for {
		if f == nil {
			if path := journalPath(journalDir); path != "" {
				var err error
				if f, err = os.Open(path); err != nil {
					t.Fatal(err)
				}
			}
		}
		if f != nil {
			n, _ := f.Read(chunk)
			if n > 0 {
				progress = time.Now()
				pending = append(pending, chunk[:n]...)
				i := bytes.LastIndexByte(pending, '\n')
				if i >= 0 {
					evs, err := parseJournal(pending[:i+1])
					if err != nil {
						t.Fatalf("journal: %v", err)
					}
					pending = append([]byte(nil), pending[i+1:]...)
					for _, e := range evs {
						if match(e) {
							time.Sleep(after)
							if sig != syscall.SIGKILL {
								if p.exited() {
									t.Fatalf("waiting for %s: switchover exited by itself before the %s: %s", what, sig, p.wait())
								}
								_ = syscall.Kill(p.cmd.Process.Pid, sig)
								return
							}
							if !p.kill() {
								t.Fatalf("waiting for %s: switchover exited by itself before the kill: %s", what, p.wait())
							}
							return
						}
					}
				}
				continue
			}
		}
		if p.exited() {
			t.Fatalf("waiting for %s: switchover %s exited first: %s", what, strings.Join(p.args, " "), p.wait())
		}
		if time.Since(progress) > journalStall {
			t.Fatalf("waiting for %s: the journal did not move for %s\n--- stdout:\n%s--- stderr:\n%s", what, journalStall, p.stdout, p.stderr)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// inspectNode asks one node what it is, bounded.
func inspectNode(ctx context.Context, sb *sandbox.Sandbox, n sandbox.Node) (pg.State, error) {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pg.Connect(cctx, sb.Conninfo(n, "postgres")+" application_name=faults-inspect", 3*time.Second)
	if err != nil {
		return pg.State{}, err
	}
	defer conn.Close(context.Background())
	return pg.Inspect(cctx, conn)
}

// topology is the cluster as the nodes describe it.
type topology struct {
	primary string
	roles   string // e.g. "pg2 primary; pg1, pg3 streaming"
}

// healthy returns the topology when exactly one node is a primary and every
// other node streams from it; otherwise an error saying what each node is.
func healthy(ctx context.Context, sb *sandbox.Sandbox) (topology, error) {
	states := map[string]pg.State{}
	var problems, primaries []string
	for _, n := range sb.Nodes {
		st, err := inspectNode(ctx, sb, n)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", n.Name, err))
			continue
		}
		states[n.Name] = st
		if st.Role == pg.RolePrimary {
			primaries = append(primaries, n.Name)
		}
	}
	if len(primaries) != 1 {
		problems = append(problems, fmt.Sprintf("primaries: %v (want exactly one)", primaries))
		return topology{}, fmt.Errorf("%s; states: %v", strings.Join(problems, "; "), describeStates(states))
	}
	prim, _ := sb.Node(primaries[0])
	var streaming []string
	for _, n := range sb.Nodes {
		st, ok := states[n.Name]
		if !ok || n.Name == prim.Name {
			continue
		}
		if !st.Streaming || !strings.HasSuffix(st.Upstream, fmt.Sprintf(":%d", prim.Port)) {
			problems = append(problems, fmt.Sprintf("%s: %s, streaming=%v from %q (want streaming from %s on port %d)",
				n.Name, st.Role, st.Streaming, st.Upstream, prim.Name, prim.Port))
			continue
		}
		streaming = append(streaming, n.Name)
	}
	if len(problems) > 0 {
		return topology{}, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return topology{primary: prim.Name, roles: fmt.Sprintf("%s primary; %s streaming", prim.Name, strings.Join(streaming, ", "))}, nil
}

func describeStates(states map[string]pg.State) string {
	var names []string
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		st := states[n]
		parts = append(parts, fmt.Sprintf("%s=%s tl%d upstream=%q streaming=%v", n, st.Role, st.Timeline, st.Upstream, st.Streaming))
	}
	return strings.Join(parts, ", ")
}

// waitHealthy polls (≤pollTimeout) until the cluster is healthy.
func waitHealthy(t *testing.T, sb *sandbox.Sandbox) (topology, error) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
		top, err := healthy(ctx, sb)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return top, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeThroughPooler commits one row through PgBouncer, as a client would.
func writeThroughPooler(sb *sandbox.Sandbox) error {
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	defer cancel()
	conn, err := pg.ConnectPooled(ctx, sb.ClientConninfo())
	if err != nil {
		return fmt.Errorf("connect through the pooler: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS faults_probe (at timestamptz NOT NULL DEFAULT clock_timestamp())"); err != nil {
		return fmt.Errorf("create faults_probe through the pooler: %w", err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO faults_probe DEFAULT VALUES"); err != nil {
		return fmt.Errorf("insert through the pooler: %w", err)
	}
	return nil
}
