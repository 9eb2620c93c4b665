package main

// Tests of the CLI layer in-process: execute() with buffers (never a
// terminal), and the one place that maps errors to exit codes.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/fleet"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/spec"
)

// executeT runs execute in-process with empty stdin and buffers.
func executeT(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = execute(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	stepErr := func(sentinel error) error {
		return &runbook.StepError{Step: "promote", Phase: "action", Err: fmt.Errorf("%w: pg_promote timed out", sentinel)}
	}
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitOK},
		{"plain error", errors.New("boom"), exitInternal},
		{"context canceled", context.Canceled, exitInternal},
		{"wrapped plain error", fmt.Errorf("journal: %w", os.ErrPermission), exitInternal},
		{"usage error", usagef("--log-format %q: want human or json", "xml"), exitUsage},
		{"wrapped usage error", fmt.Errorf("resuming run x: %w", usagef("no run")), exitUsage},
		{"ErrInvalid", runbook.ErrInvalid, exitUsage},
		{"wrapped ErrInvalid", fmt.Errorf("%w: run x already finished", runbook.ErrInvalid), exitUsage},
		{"ValidationError", &spec.ValidationError{Problems: []spec.Problem{{Msg: "bad"}}}, exitUsage},
		{"ErrPrecondition", runbook.ErrPrecondition, exitPrecondition},
		{"StepError precondition", stepErr(runbook.ErrPrecondition), exitPrecondition},
		{"ErrAction", runbook.ErrAction, exitAction},
		{"StepError action", stepErr(runbook.ErrAction), exitAction},
		{"wrapped StepError action", fmt.Errorf("resume: %w", stepErr(runbook.ErrAction)), exitAction},
		{"ErrDeclined", runbook.ErrDeclined, exitDeclined},
		{"StepError declined", stepErr(runbook.ErrDeclined), exitDeclined},
		{"ErrLocked", runbook.ErrLocked, exitLocked},
		{"LockedError", &runbook.LockedError{Cluster: "main", Holder: runbook.Holder{RunID: "r1", PID: 42}}, exitLocked},
		{"stale LockedError", &runbook.LockedError{Cluster: "main", Stale: true}, exitLocked},
		{"wrapped LockedError", fmt.Errorf("resume: %w", &runbook.LockedError{Cluster: "main"}), exitLocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := exitCode(tt.err); got != tt.want {
				t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

const cliRunbook = `name: cli
vars:
  dir: /nonexistent
steps:
  - name: first
    action: {exec: {command: "echo one >> ${dir}/log"}}
  - name: second
    destructive: true
    action: {exec: {command: "echo two >> ${dir}/log"}}
`

// TestExecuteUsageErrors: every way of calling the tool wrongly exits 2
// with one line on stderr that says what was wrong, and runs nothing.
func TestExecuteUsageErrors(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	d := t.TempDir()
	file := filepath.Join(work, "cli.yaml")
	// A runbook that would write to d if anything ran.
	writeFile(t, file, strings.Replace(cliRunbook, "/nonexistent", d, 1))
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown command", []string{"rnu"}, `unknown command "rnu" for "switchover" (did you mean "run"?)`},
		{"unknown flag", []string{"run", "--no-such-flag", file}, "unknown flag: --no-such-flag (see"},
		{"mistyped flag", []string{"run", "--candiate", "pg2", file}, "unknown flag: --candiate; did you mean --candidate?"},
		{"mistyped global flag", []string{"runs", "--jounal-dir", "x"}, "did you mean --journal-dir?"},
		{"mistyped command", []string{"pln", file}, `(did you mean "plan"?)`},
		{"plan without an inventory", []string{"plan", "postgres-streaming-switchover"}, "problems:\n  no inventory given: pass -i FILE"},
		{"unknown global flag", []string{"--verbose", "runs"}, "unknown flag: --verbose"},
		{"unknown shorthand", []string{"run", "-z", file}, "unknown shorthand flag: 'z'"},
		{"flag without value", []string{"run", file, "--var"}, "flag needs an argument: --var"},
		{"bad bool", []string{"run", file, "--yes=perhaps"}, `invalid argument "perhaps"`},
		{"bad bool on checks", []string{"checks", "--json=2"}, `invalid argument "2"`},
		{"run without file", []string{"run"}, "run needs a runbook FILE, or --plan FILE"},
		{"run with two files", []string{"run", file, file}, "want at most a runbook FILE, got 2 arguments"},
		{"plan without file", []string{"plan"}, "want a runbook FILE"},
		{"validate without file", []string{"validate"}, "want a runbook FILE"},
		{"runs with an argument", []string{"runs", "x"}, "want no arguments"},
		{"version with an argument", []string{"version", "x"}, "want no arguments"},
		{"checks with an argument", []string{"checks", "x"}, "want no arguments"},
		{"playbooks with an argument", []string{"playbooks", "x"}, "want no arguments"},
		{"resume with two ids", []string{"resume", "a", "b"}, "want at most one RUN_ID, got 2"},
		{"bad log format", []string{"run", file, "--log-format", "xml"}, `--log-format "xml": want human or json`},
		{"bad log format on plan", []string{"plan", file, "--log-format", "yaml"}, `--log-format "yaml"`},
		{"no such runbook", []string{"run", filepath.Join(work, "nope.yaml")}, "no such file, and no shipped playbook"},
		{"runbook is a directory", []string{"run", work}, "is a directory"},
		{"no such playbook", []string{"validate", "playbook:nope"}, `no shipped playbook "nope"`},
		{"show no such playbook", []string{"playbooks", "show", "nope"}, `no shipped playbook "nope"`},
		{"var without value", []string{"run", file, "--var", "dir"}, "dir"},
		{"approve unknown step", []string{"run", file, "--approve", "secnd"}, `(did you mean "second"?)`},
		{"approve a step that needs none", []string{"run", file, "--approve", "first"}, "nothing to approve"},
		{"no inventory file", []string{"run", file, "-i", filepath.Join(work, "nope.yaml")}, "inventory"},
		{"resume with nothing to resume", []string{"resume"}, "no unfinished run in"},
		{"resume unknown run", []string{"resume", "20260101T000000Z-abcdef"}, `no journal of run 20260101T000000Z-abcdef in `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"--journal-dir", t.TempDir()}, tt.args...)
			code, stdout, stderr := executeT(t, args...)
			if code != exitUsage {
				t.Fatalf("switchover %s: want exit %d, got %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), exitUsage, code, stdout, stderr)
			}
			if !strings.HasPrefix(stderr, "error: ") || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr: want \"error: ...%s...\", got:\n%s", tt.wantErr, stderr)
			}
			if strings.Contains(stderr, "goroutine ") || strings.Contains(stdout, "Usage:") {
				t.Errorf("want a short message, no stack trace and no usage dump; stdout:\n%s\nstderr:\n%s", stdout, stderr)
			}
			assertNotExist(t, filepath.Join(d, "log"))
		})
	}
}

// TestExecuteHelp: help is not an error.
func TestExecuteHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{}, {"--help"}, {"help"}, {"run", "--help"}, {"help", "resume"}} {
		code, stdout, stderr := executeT(t, args...)
		if code != exitOK || !strings.Contains(stdout, "Usage:") || stderr != "" {
			t.Errorf("switchover %s: want exit 0 and usage on stdout, got %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
	_, stdout, _ := executeT(t, "run", "--help")
	assertContains(t, "run --help", stdout, "Exit codes:", "--approve", "--yes", "--dry-run", "--journal-dir")
}

// TestExecuteOutcomes runs small runbooks in-process: each outcome's exit
// code, and what the output says changed.
func TestExecuteOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		runbook  string
		args     []string
		want     int
		wantOut  []string // in stdout
		wantErr  string   // in stderr
		wantLog  string
		wantFile string // a file the run must have created
	}{
		{
			name: "done", runbook: cliRunbook, args: []string{"--yes"},
			want: exitOK, wantOut: []string{"[1/2] first", "[2/2] second", "approved", "done in", "actions ran: first, second", "journal: "},
			wantLog: "one\ntwo\n",
		},
		{
			name: "approve by name", runbook: cliRunbook, args: []string{"--approve", "second"},
			want: exitOK, wantOut: []string{"(--approve)"}, wantLog: "one\ntwo\n",
		},
		{
			name: "no approval without a terminal", runbook: cliRunbook,
			want: exitDeclined, wantOut: []string{"nothing was changed"}, wantErr: "pass --approve second, or --yes",
		},
		{
			name: "dry run", runbook: cliRunbook, args: []string{"--dry-run"},
			want: exitOK, wantOut: []string{"dry run", "would run", "nothing will be changed"},
		},
		{
			name: "precondition fails", want: exitPrecondition,
			runbook: `name: pre
vars: {dir: /nonexistent}
steps:
  - name: guarded
    requires: [{exec: {command: "test -f ${dir}/absent"}}]
    action: {exec: {command: "echo one >> ${dir}/log"}}
  - name: second
    action: {exec: {command: "echo two >> ${dir}/log"}}
`,
			wantOut: []string{"FAIL", "this step changed nothing", "saw:", "want:", "nothing was changed"},
			wantErr: `step "guarded"`,
		},
		{
			// Exit 3 promises that nothing changed; an earlier step had acted.
			name: "precondition fails after a step acted", want: exitAction,
			runbook: `name: pre
vars: {dir: /nonexistent}
steps:
  - name: first
    action: {exec: {command: "echo one >> ${dir}/log"}}
  - name: guarded
    requires: [{exec: {command: "test -f ${dir}/absent"}}]
    action: {exec: {command: "echo two >> ${dir}/log"}}
`,
			wantOut: []string{"FAIL", "this step changed nothing", "actions ran: first"},
			wantErr: `step "guarded"`, wantLog: "one\n",
		},
		{
			name: "postcondition fails", want: exitAction,
			runbook: `name: post
vars: {dir: /nonexistent}
steps:
  - name: act
    action: {exec: {command: "echo one >> ${dir}/log"}}
    ensures: [{exec: {command: "grep -q two ${dir}/log"}}]
  - name: never
    action: {exec: {command: "echo never >> ${dir}/log"}}
`,
			wantOut: []string{"FAILED", "ensures", "actions ran: act"}, wantErr: `step "act"`, wantLog: "one\n",
		},
		{
			name: "action fails, finally runs", want: exitAction,
			runbook: `name: fin
vars: {dir: /nonexistent}
steps:
  - name: act
    action: {exec: {command: "echo broke; exit 3"}}
finally:
  - name: cleanup
    action: {exec: {command: "touch ${dir}/cleaned"}}
`,
			wantOut: []string{"| broke", "== finally", "[finally] cleanup"}, wantErr: `step "act"`, wantFile: "cleaned",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			work, d := t.TempDir(), t.TempDir()
			file := filepath.Join(work, "rb.yaml")
			writeFile(t, file, tt.runbook)
			args := append([]string{"run", file, "--var", "dir=" + d, "--journal-dir", t.TempDir()}, tt.args...)
			code, stdout, stderr := executeT(t, args...)
			if code != tt.want {
				t.Fatalf("want exit %d, got %d\nstdout:\n%s\nstderr:\n%s", tt.want, code, stdout, stderr)
			}
			assertContains(t, "stdout", stdout, tt.wantOut...)
			if tt.wantErr == "" && stderr != "" {
				t.Errorf("stderr: want nothing, got %q", stderr)
			}
			if tt.wantErr != "" {
				assertContains(t, "stderr", stderr, "error: ", tt.wantErr)
				if n := strings.Count(stderr, "\n"); n != 1 {
					t.Errorf("stderr: want one line, got %d:\n%s", n, stderr)
				}
			}
			assertLog(t, filepath.Join(d, "log"), tt.wantLog)
			if tt.wantFile != "" {
				if _, err := os.Stat(filepath.Join(d, tt.wantFile)); err != nil {
					t.Errorf("want %s created: %v", tt.wantFile, err)
				}
			}

			// The same run as JSON lines: stdout holds nothing else, and the
			// exit code does not depend on the format.
			d2 := t.TempDir()
			args = append([]string{"run", file, "--var", "dir=" + d2, "--journal-dir", t.TempDir(), "--log-format", "json"}, tt.args...)
			code, stdout, _ = executeT(t, args...)
			if code != tt.want {
				t.Fatalf("--log-format json: want exit %d, got %d", tt.want, code)
			}
			lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
			for _, line := range lines {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil || m["event"] == nil || m["run_id"] == nil {
					t.Fatalf("--log-format json: not an event line: %q (%v)", line, err)
				}
			}
			var last map[string]any
			_ = json.Unmarshal([]byte(lines[len(lines)-1]), &last)
			if last["event"] != "run.finished" {
				t.Errorf("--log-format json: last event %v, want run.finished", last["event"])
			}
		})
	}
}

// TestPrintError: a validation error lists every problem on its own line;
// a step error says the step once.
func TestPrintError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"plain", errors.New("boom"), "error: boom\n"},
		{"validation", &spec.ValidationError{Problems: []spec.Problem{
			{Pos: spec.Pos{File: "a.yaml", Line: 3, Col: 5}, Msg: `unknown key "acton"`},
			{Pos: spec.Pos{File: "a.yaml", Line: 9, Col: 1}, Msg: `undefined variable "x"`},
		}}, "error: 2 problems:\n  a.yaml:3:5: unknown key \"acton\"\n  a.yaml:9:1: undefined variable \"x\"\n"},
		{"one problem", &spec.ValidationError{Problems: []spec.Problem{{Msg: "bad"}}}, "error: 1 problem:\n  bad\n"},
		{"step error naming its step", &runbook.StepError{Step: "second", Err: fmt.Errorf(`%w: step "second" needs approval`, runbook.ErrDeclined)},
			"error: declined: step \"second\" needs approval\n"},
		{"step error not naming its step", &runbook.StepError{Step: "second", Err: fmt.Errorf("%w: exit 1", runbook.ErrAction)},
			"error: step \"second\": action failed: exit 1\n"},
		{"a password is masked on the way out", errors.New(`connect "host=db1 password=hunter22": refused`),
			"error: connect \"host=db1 password=********\": refused\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			printError(&b, tt.err)
			if b.String() != tt.want {
				t.Errorf("printError:\nwant %q\ngot  %q", tt.want, b.String())
			}
		})
	}
}

// One validation lists every problem: those in the file's shape (an
// unknown key, an unknown action) and those found when it is resolved (an
// undefined variable, a bad duration), not the first kind only.
func TestValidateListsShapeAndResolveProblemsTogether(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "two.yaml")
	src := `name: two-pass
steps:
  - name: a
    acton:
      exec: {command: "echo a"}
  - name: b
    action:
      exek: {command: "echo b"}
  - name: c
    requires:
      - tcp.reachable: {address: "${nope}:5432", within: soon}
`
	if err := os.WriteFile(f, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := executeT(t, "validate", f)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr)
	}
	for _, want := range []string{
		f + `:4:5: step "a": unknown key "acton" (did you mean "action"?)`,
		f + `:8:7: step "b": action: unknown action "exek" (did you mean "exec"?)`,
		`undefined variable "nope"`,
		`within: want a duration such as 500ms, 30s or 5m, got "soon"`,
		"4 problems",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "no action, requires or ensures") {
		t.Errorf("step a's misspelt action key is also reported as a step without an action:\n%s", stderr)
	}
}

// TestPlaybooksListAligned: every shipped playbook's description starts in
// the same column, however long the longest name.
func TestPlaybooksListAligned(t *testing.T) {
	t.Parallel()
	code, out, _ := executeT(t, "playbooks")
	if code != exitOK {
		t.Fatalf("playbooks exited %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	col, longest := -1, ""
	for _, l := range lines {
		name, rest, ok := strings.Cut(l, " ")
		if !ok {
			t.Fatalf("line without a description: %q", l)
		}
		at := len(l) - len(strings.TrimLeft(rest, " "))
		if col == -1 {
			col = at
		}
		if at != col || at < len(name)+2 {
			t.Errorf("%q: description at column %d, want %d with two spaces at least after the name", l, at, col)
		}
		if len(name) > len(longest) {
			longest = name
		}
	}
	if len(lines) < 2 || len(longest) < len("pg-auto-failover-switchover") {
		t.Errorf("the list %q does not hold the long names it is meant to align", lines)
	}
}

// TestVarsFromTheEnvironment: variables given in the environment (one
// NAME=VALUE a line, as a fleet gives them, off the command line) are
// taken as --var given before the flags: a --var of the same name wins.
func TestVarsFromTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(fleet.VarsEnv, "dir="+dir+"\n\n")
	code, out, errOut := executeT(t, "run", "example", "--yes", "--journal-dir", t.TempDir())
	if code != exitOK {
		t.Fatalf("run example with dir from the environment: exit %d\n%s%s", code, out, errOut)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "log")); err != nil || string(b) != "one\ntwo\n" {
		t.Fatalf("%s/log = %q, %v; want the run to have written there", dir, b, err)
	}
	other := t.TempDir()
	code, out, errOut = executeT(t, "run", "example", "--yes", "--var", "dir="+other, "--journal-dir", t.TempDir())
	if code != exitOK {
		t.Fatalf("run example with --var over the environment: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(other, "log")); err != nil {
		t.Errorf("--var dir=%s did not win over the environment: %v", other, err)
	}
}
