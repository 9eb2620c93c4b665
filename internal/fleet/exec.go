package fleet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ExecRunner runs each cluster run as the program itself in a child
// process, as an operator would run it (scripted: --yes, --log-format
// json), so that each has its own journal, claim, guard, report and exit
// code. A run's child is in a session of its own and writes to files, not
// to a pipe: it outlives the fleet process (killed, or its terminal gone)
// and finishes by its own rules; fleet resume picks it up.
type ExecRunner struct {
	// Binary is the program: os.Executable().
	Binary     string
	JournalDir string
	Playbook   string
	Candidate  string
	// Key tags every run (--fleet).
	Key string
	// Window is given to every new run (--not-before, --not-after).
	Window Window
	// Settle is given to every resume (--settle), when set.
	Settle string
	// Env is added to the children's environment.
	Env []string
	// Poll is how often a running child's output is read; 0 is 100ms.
	Poll time.Duration
}

var _ Runner = (*ExecRunner)(nil)

// childEvent is one JSON event of a child, with the fields the fleet
// reads (the README's JSON events, which are stable).
type childEvent struct {
	Event      string   `json:"event"`
	RunID      string   `json:"run_id"`
	Step       string   `json:"step"`
	State      string   `json:"state"`
	Section    string   `json:"section"`
	Phase      string   `json:"phase"`
	Outcome    string   `json:"outcome"`
	Error      string   `json:"error"`
	Message    string   `json:"message"`
	ExitCode   *int     `json:"exit_code"`
	DurationMS *int64   `json:"duration_ms"`
	NewPrimary string   `json:"new_primary"`
	OldPrimary string   `json:"old_primary"`
	Canary     *Figures `json:"canary"`
	Check      *struct {
		Kind     string `json:"kind"`
		Describe string `json:"describe"`
		Status   string `json:"status"`
		Observed string `json:"observed"`
	} `json:"check"`
	Run *struct {
		Runbook     string            `json:"runbook"`
		RunbookName string            `json:"runbook_name"`
		Vars        map[string]string `json:"vars"`
	} `json:"run"`
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

func (r *ExecRunner) runArgs(c *Cluster) []string {
	return []string{"-i", c.Inventory, "--candidate", r.Candidate, "--log-format", "json", "--journal-dir", r.JournalDir}
}

// VarsEnv is the environment variable a run, plan or resume also takes
// its variables from, one NAME=VALUE a line (--var given too wins). The
// fleet gives each cluster's variables to its runs there, not on their
// command lines, where anyone on the host could read a secret among them.
const VarsEnv = "SWITCHOVER_VARS"

// env is a child's environment: this process's, the runner's, and the
// cluster's variables.
func (r *ExecRunner) env(c *Cluster) []string {
	env := append(os.Environ(), r.Env...)
	if vars := c.VarFlags(); len(vars) > 0 {
		env = append(env, VarsEnv+"="+strings.Join(vars, "\n"))
	}
	return env
}

// Plan implements Runner: `switchover plan PLAYBOOK -i INV --candidate C
// --var ... --log-format json`, read to its end.
func (r *ExecRunner) Plan(ctx context.Context, c *Cluster) Verdict {
	args := append([]string{"plan", r.Playbook}, r.runArgs(c)...)
	cmd := exec.CommandContext(ctx, r.Binary, args...)
	cmd.Env = r.env(c)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	v := Verdict{Cluster: c.Name, ExitCode: exitCodeOf(err)}
	var failed []childEvent
	var finished *childEvent
	for _, line := range bytes.Split(stdout.Bytes(), []byte("\n")) {
		var e childEvent
		if len(bytes.TrimSpace(line)) == 0 || json.Unmarshal(line, &e) != nil {
			continue
		}
		switch {
		case e.Event == "run.started" && e.Run != nil:
			v.RunID, v.Runbook = e.RunID, e.Run.RunbookName
			v.Primary, v.Candidate = e.Run.Vars["primary"], e.Run.Vars["candidate"]
		case e.Event == "check" && e.Check != nil && e.Phase == "requires" && (e.Check.Status == "fail" || e.Check.Status == "error"):
			failed = append(failed, e)
		case e.Event == "run.finished":
			f := e
			finished = &f
		case e.Event == "validation.error" || e.Event == "error":
			if v.Why == "" {
				v.Why = e.Message
				if e.File != "" && e.Line > 0 {
					v.Why = fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Message)
				}
			}
		}
	}
	v.Ready = v.ExitCode == 0
	if v.Ready {
		return v
	}
	if finished != nil && finished.Step != "" {
		for _, f := range failed {
			if f.Step == finished.Step {
				v.Why = fmt.Sprintf("%s: %s: %s", f.Step, f.Check.Kind, f.Check.Observed)
				break
			}
		}
		if v.Why == "" {
			v.Why = finished.Step + ": " + finished.Error
		}
	}
	if v.Why == "" {
		v.Why = lastLine(stderr.String())
	}
	if v.Why == "" {
		v.Why = fmt.Sprintf("plan exited %d", v.ExitCode)
	}
	v.Why = firstLine(strings.TrimPrefix(v.Why, "error: "), 200)
	return v
}

// Run implements Runner: `switchover run PLAYBOOK -i INV --candidate C
// --var ... --yes --log-format json --fleet KEY`.
func (r *ExecRunner) Run(ctx context.Context, c *Cluster, out string, report func(Progress)) Outcome {
	args := append([]string{"run", r.Playbook}, r.runArgs(c)...)
	args = append(args, "--yes", "--fleet", r.Key)
	if !r.Window.NotBefore.IsZero() {
		args = append(args, "--not-before", r.Window.NotBefore.Format(time.RFC3339))
	}
	if !r.Window.NotAfter.IsZero() {
		args = append(args, "--not-after", r.Window.NotAfter.Format(time.RFC3339))
	}
	return r.child(ctx, c, args, out, report)
}

// Resume implements Runner: `switchover resume RUN_ID --yes --log-format
// json`.
func (r *ExecRunner) Resume(ctx context.Context, c *Cluster, runID, out string, report func(Progress)) Outcome {
	args := []string{"resume", runID, "--yes", "--log-format", "json", "--journal-dir", r.JournalDir}
	if r.Settle != "" {
		args = append(args, "--settle", r.Settle)
	}
	o := r.child(ctx, c, args, out, report)
	if o.RunID == "" {
		o.RunID = runID
	}
	return o
}

// child starts the program with args, its output to out.jsonl and
// out.err, in a session of its own, and follows its events until it
// exits or ctx ends.
func (r *ExecRunner) child(ctx context.Context, c *Cluster, args []string, out string, report func(Progress)) Outcome {
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		return Outcome{ExitCode: 1, Error: err.Error()}
	}
	stdout, err := os.OpenFile(out+".jsonl", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return Outcome{ExitCode: 1, Error: err.Error()}
	}
	defer stdout.Close()
	stderr, err := os.OpenFile(out+".err", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return Outcome{ExitCode: 1, Error: err.Error()}
	}
	defer stderr.Close()
	cmd := exec.Command(r.Binary, args...)
	cmd.Env = r.env(c)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A session of its own: the operator's Ctrl-C and the terminal's
	// hang-up reach the fleet process, which stops starting clusters;
	// each run finishes by its own rules.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Outcome{ExitCode: 1, Error: fmt.Sprintf("start %s: %v", r.Binary, err)}
	}
	report(Progress{PID: cmd.Process.Pid})
	exited := make(chan struct{})
	code := 0
	go func() {
		code = exitCodeOf(cmd.Wait())
		close(exited)
	}()
	fl := &follower{report: report}
	finished := follow(ctx, out+".jsonl", exited, r.poll(), fl.take)
	o := fl.o
	if !finished {
		o.Unfinished = true
		return o
	}
	o.ExitCode = code
	if o.Error == "" && code != 0 {
		b, _ := os.ReadFile(out + ".err")
		o.Error = lastLine(string(b))
	}
	if o.Status == "" && code == ExitLocked {
		o.Status = "locked"
	}
	return o
}

func (r *ExecRunner) poll() time.Duration {
	if r.Poll > 0 {
		return r.Poll
	}
	return 100 * time.Millisecond
}

// follower reads a run's events into its outcome, reporting the run id
// and each step it comes to.
type follower struct {
	o      Outcome
	step   string
	from   string // the primary the run started from (its variable primary)
	report func(Progress)
}

func (f *follower) take(e childEvent) {
	o := &f.o
	switch e.Event {
	case "run.started", "run.resumed":
		if e.Run != nil && f.from == "" {
			f.from = e.Run.Vars["primary"]
		}
		if o.RunID == "" {
			o.RunID = e.RunID
			f.report(Progress{RunID: e.RunID})
		}
	case "step":
		if (e.State == "checking" || e.State == "running") && e.Step != f.step {
			f.step = e.Step
			f.report(Progress{RunID: e.RunID, Step: e.Step})
		}
	case "run.suspended":
		o.Status = "suspended"
	case "run.finished":
		o.Status, o.Step, o.Error = e.Outcome, e.Step, e.Error
		o.NewPrimary, o.OldPrimary = e.NewPrimary, e.OldPrimary
		if e.DurationMS != nil {
			o.DurationMS = *e.DurationMS
		}
		if e.Canary != nil {
			o.Figures = *e.Canary
		}
		if o.OldPrimary == "" && o.NewPrimary != "" {
			o.OldPrimary = f.from // the role moved from the primary it started with
		}
	case "error", "validation.error":
		if o.Error == "" {
			o.Error = e.Message
		}
	}
}

// follow reads the JSON lines a child appends to path, handing each to
// each, until the child has exited (exited closed: the rest is read) or
// ctx ends (false).
func follow(ctx context.Context, path string, exited <-chan struct{}, poll time.Duration, each func(childEvent)) bool {
	f, err := os.Open(path)
	if err != nil {
		<-exited
		return true
	}
	defer f.Close()
	rd := bufio.NewReader(f)
	var partial []byte
	drain := func() {
		for {
			line, err := rd.ReadBytes('\n')
			if err != nil {
				partial = append(partial, line...)
				return
			}
			if len(partial) > 0 {
				line = append(partial, line...)
				partial = nil
			}
			var e childEvent
			if json.Unmarshal(line, &e) == nil {
				each(e)
			}
		}
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		drain()
		select {
		case <-exited:
			drain()
			return true
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// exitCodeOf is a finished command's exit code: 1 when it could not run
// or a signal ended it.
func exitCodeOf(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() >= 0 {
		return ee.ExitCode()
	}
	return 1
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
