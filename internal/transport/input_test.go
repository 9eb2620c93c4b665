package transport

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// inputCase is a command given standard input, and what it prints.
type inputCase struct {
	name    string
	command string
	input   string
	want    Output // Elapsed is not compared
}

// inputCases are the inputs every InputRunner must pass on byte for byte.
func inputCases() []inputCase {
	big := strings.Repeat("line of a configuration file = 'quoted' \\ back\n", 3000) // past a pipe's 64 KiB
	return []inputCase{
		{name: "the command reads it", command: "cat", input: "[databases]\napp = host=a password=s3cret\n",
			want: Output{Stdout: "[databases]\napp = host=a password=s3cret\n"}},
		{name: "trailing newlines are kept", command: "cat", input: "a\n\n\n", want: Output{Stdout: "a\n\n\n"}},
		{name: "no final newline", command: "cat", input: "no newline", want: Output{Stdout: "no newline"}},
		{name: "quotes, dollars, backslashes and percents", command: "cat", input: `'it'\''s' "$HOME" $(id) \n %s %%` + "\t\r\n",
			want: Output{Stdout: `'it'\''s' "$HOME" $(id) \n %s %%` + "\t\r\n"}},
		{name: "not UTF-8", command: "od -An -tx1 | tr -d ' \\n'", input: "\xff\xfe\x01.", want: Output{Stdout: "fffe012e"}},
		{name: "a single dot", command: "cat", input: ".", want: Output{Stdout: "."}},
		{name: "empty", command: "cat; echo end", input: "", want: Output{Stdout: "end\n"}},
		{name: "more than a pipe holds", command: "wc -c | tr -d ' '", input: big, want: Output{Stdout: strconv.Itoa(len(big)) + "\n"}},
		{name: "read in part", command: "head -c 3; echo", input: "abcdef", want: Output{Stdout: "abc\n"}},
		{name: "not read at all", command: "echo ignored; exit 4", input: big, want: Output{Stdout: "ignored\n", ExitCode: 4}},
		{name: "written to a file", command: `f=$(mktemp) && cat > "$f" && cat "$f" && rm -f "$f"`, input: "x = 1\ny = 2\n",
			want: Output{Stdout: "x = 1\ny = 2\n"}},
	}
}

func TestLocalRunInput(t *testing.T) {
	t.Parallel()
	for _, tt := range inputCases() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := Local{}.RunInput(ctx, tt.command, strings.NewReader(tt.input))
			if err != nil {
				t.Fatalf("RunInput: %v", err)
			}
			got.Elapsed = 0
			if got != tt.want {
				t.Errorf("RunInput(%q) = %+v, want %+v", tt.command, got, tt.want)
			}
		})
	}
}

// TestLocalRunInputAsUser: the input reaches a command that runs as
// another user.
func TestLocalRunInputAsUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("switching user needs root")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("no user nobody here")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := Local{User: "nobody"}.RunInput(ctx, "id -un; cat", strings.NewReader("password=s3cret\n"))
	if err != nil {
		t.Fatalf("RunInput: %v", err)
	}
	if want := "nobody\npassword=s3cret\n"; got.Stdout != want || got.ExitCode != 0 {
		t.Errorf("RunInput = %+v, want exit code 0 and stdout %q", got, want)
	}
}

// TestRunInputRefuses: an input that is too long or not text, or an
// executor that cannot give input, runs nothing.
func TestRunInputRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ex      Executor
		input   string
		wantErr string
		wantIs  error
	}{
		{name: "more than MaxInput", ex: Local{}, input: strings.Repeat("x", MaxInput+1), wantErr: "the command's input is more than 1048576 bytes; nothing ran"},
		{name: "a NUL byte", ex: Local{}, input: "a\x00b", wantErr: "the command's input holds a NUL byte, which is not text; nothing ran"},
		{name: "a NUL byte over ssh", ex: SSH{Address: "test"}, input: "a\x00b", wantErr: "the command's input holds a NUL byte, which is not text; nothing ran"},
		{name: "an executor without input", ex: runOnly{}, input: "x", wantErr: "run only: cannot give a command standard input", wantIs: ErrNoInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ran := filepath.Join(t.TempDir(), "ran")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := RunInput(ctx, tt.ex, "touch "+ShellQuote(ran), strings.NewReader(tt.input))
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("RunInput error = %v, want %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("RunInput error = %v, want it to wrap %v", err, tt.wantIs)
			}
			if _, err := os.Stat(ran); err == nil {
				t.Errorf("the command ran")
			}
		})
	}
}

// runOnly is an Executor that cannot give a command input.
type runOnly struct{}

func (runOnly) Run(context.Context, string) (Output, error) { return Output{}, errors.New("ran") }
func (runOnly) Where() string                               { return "run only" }

// TestWrapperInputShort: when the connection ends before all of the input
// has come, the wrapper on the host says how much came and runs nothing.
func TestWrapperInputShort(t *testing.T) {
	t.Parallel()
	const prefix = "\x1eswitchover:0123:"
	ran := filepath.Join(t.TempDir(), "ran")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", wrapperScript(prefix, "", 10), "/bin/sh", "cat > "+ShellQuote(ran))
	cmd.Stdin = strings.NewReader("abc") // then end of file, as when ssh goes away
	stderr := newMarkedStream(prefix)
	cmd.Stderr = stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Errorf("the wrapper: %v, want exit status 1", err)
	}
	if got := stderr.result(); !got.started || got.exited || got.input != "3" {
		t.Errorf("the wrapper's markers: %+v, want it started, not exited, and input 3", got)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Errorf("the command ran on a short input")
	}
}
