package transport

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPollScript runs the polling loop over the local transport: it reads
// until done holds or its deadline, and leaves behind the last reading's
// stdout, stderr and exit code, as if that reading had run alone.
func TestPollScript(t *testing.T) {
	t.Parallel()
	// counter reads a counter file, adds one, and prints it.
	counter := func(file string) string {
		f := ShellQuote(file)
		return fmt.Sprintf(`n=$(( $(cat %s 2>/dev/null || echo 0) + 1 )); echo $n > %s; echo "reading $n"`, f, f)
	}
	tests := []struct {
		name         string
		read         func(file string) string
		done         string
		within       time.Duration
		wantStdout   string // exact, when not ""
		wantStderr   string // a substring
		wantExit     int
		wantReadings int // exact; 0: at least 2
		minDur       time.Duration
	}{
		{name: "done at the third reading: the third reading is the output",
			read:       func(f string) string { return counter(f) + `; [ $n -ge 3 ] || exit 1` },
			done:       `[ "$rc" -eq 0 ]`,
			within:     10 * time.Second,
			wantStdout: "reading 3\n", wantExit: 0, wantReadings: 3},
		{name: "done tests the reading's stdout",
			read:       func(f string) string { return counter(f) + `; [ $n -ge 2 ] && echo ready; true` },
			done:       `grep -q '^ready$' "$out"`,
			within:     10 * time.Second,
			wantStdout: "reading 2\nready\n", wantExit: 0, wantReadings: 2},
		{name: "never done: the last reading at the deadline, stderr kept apart",
			read:       func(f string) string { return `echo "not yet"; echo "a warning" >&2; exit 3` },
			done:       `[ "$rc" -eq 0 ]`,
			within:     300 * time.Millisecond,
			wantStdout: "not yet\n", wantStderr: "a warning", wantExit: 3,
			minDur: 300 * time.Millisecond},
		{name: "done at the first reading: one reading",
			read:       func(f string) string { return counter(f) },
			done:       `[ "$rc" -eq 0 ]`,
			within:     10 * time.Second,
			wantStdout: "reading 1\n", wantExit: 0, wantReadings: 1},
		{name: "a done that exits does not end the loop",
			read:       func(f string) string { return counter(f) + `; [ $n -ge 2 ]` },
			done:       `[ "$rc" -eq 0 ] || exit 1`,
			within:     10 * time.Second,
			wantStdout: "reading 2\n", wantExit: 0, wantReadings: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "n")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			out, err := Local{}.Run(ctx, PollScript(tt.read(file), tt.done, tt.within, 10*time.Millisecond))
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantStdout != "" && out.Stdout != tt.wantStdout {
				t.Errorf("stdout %q, want %q", out.Stdout, tt.wantStdout)
			}
			if !strings.Contains(out.Stderr, tt.wantStderr) || strings.Count(out.Stderr, "a warning") > 1 {
				t.Errorf("stderr %q, want %q once", out.Stderr, tt.wantStderr)
			}
			if out.ExitCode != tt.wantExit {
				t.Errorf("exit code %d, want %d", out.ExitCode, tt.wantExit)
			}
			if tt.wantReadings > 0 {
				b, _ := os.ReadFile(file)
				if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n != tt.wantReadings {
					t.Errorf("%d readings, want %d", n, tt.wantReadings)
				}
			}
			if took < tt.minDur {
				t.Errorf("returned after %s, before its deadline of %s", took, tt.minDur)
			}
			if took > tt.within+10*time.Second {
				t.Errorf("took %s, far past its deadline of %s", took, tt.within)
			}
		})
	}
}

// TestPollScriptOnce: without a deadline the command is the reading itself.
func TestPollScriptOnce(t *testing.T) {
	t.Parallel()
	if got := PollScript("echo hi", `[ "$rc" -eq 0 ]`, 0, time.Second); got != "echo hi" {
		t.Errorf("PollScript with no within = %q, want the reading alone", got)
	}
}

// TestPollScriptCutOff: the caller's deadline still ends a poll that the
// host would run longer, and nothing of it keeps running.
func TestPollScriptCutOff(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "n")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Local{}.Run(ctx, PollScript("echo x >> "+ShellQuote(file)+"; exit 1", `[ "$rc" -eq 0 ]`, time.Minute, 10*time.Millisecond))
	if err == nil {
		t.Fatal("a poll cut off by its caller's deadline returned no error")
	}
	b1, _ := os.ReadFile(file)
	// Nothing marks a loop that goes on reading: this waits a while to see
	// no more readings.
	time.Sleep(200 * time.Millisecond)
	b2, _ := os.ReadFile(file)
	if len(b2) != len(b1) {
		t.Errorf("the loop kept reading after it was cut off (%d then %d bytes)", len(b1), len(b2))
	}
}
