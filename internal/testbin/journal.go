package testbin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Event is the part of a journal line or JSON log line the tests read,
// under the names scripts rely on.
type Event struct {
	Seq     int    `json:"seq"`
	Event   string `json:"event"`
	RunID   string `json:"run_id"`
	Section string `json:"section"`
	Step    string `json:"step"`
	State   string `json:"state"`
	Phase   string `json:"phase"`
	Outcome string `json:"outcome"`
	Message string `json:"message"`
	Error   string `json:"error"`
	Output  string `json:"output"`
	Fact    *struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"fact"`
}

// String is the event in a few words: "step promote running", with the
// section when it is not the main steps.
func (e Event) String() string {
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

// StepState matches a step, of any section, reaching state.
func StepState(step, state string) func(Event) bool {
	return func(e Event) bool { return e.Event == "step" && e.Step == step && e.State == state }
}

// MainStep matches a main-section step reaching state.
func MainStep(step, state string) func(Event) bool {
	return func(e Event) bool {
		return e.Event == "step" && (e.Section == "" || e.Section == "steps") && e.Step == step && e.State == state
	}
}

// NewestJournal returns the most recently written journal under
// journalDir/runs, or "" when there is none yet.
func NewestJournal(t testing.TB, journalDir string) string {
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

// parseJournal parses the complete lines of a journal; a line being
// written is left out.
func parseJournal(b []byte) ([]Event, error) {
	var out []Event
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 || line[len(line)-1] != '\n' {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			return out, fmt.Errorf("line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// ReadJournal parses the complete lines of the journal at path.
func ReadJournal(t testing.TB, path string) []Event {
	t.Helper()
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

// ReadJournalDir parses the newest journal under journalDir; none there
// fails the test.
func ReadJournalDir(t testing.TB, journalDir string) []Event {
	t.Helper()
	path := NewestJournal(t, journalDir)
	if path == "" {
		t.Fatalf("no journal under %s", journalDir)
	}
	return ReadJournal(t, path)
}

// WaitJournal polls the newest journal under journalDir until an event
// matches; the process exiting first, or limit passing, fails the test.
func (p *Proc) WaitJournal(journalDir, what string, limit time.Duration, match func(Event) bool) {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if path := NewestJournal(p.t, journalDir); path != "" {
			for _, e := range ReadJournal(p.t, path) {
				if match(e) {
					return
				}
			}
		}
		if p.Exited() {
			p.t.Fatalf("waiting for %s: switchover %s exited first: %s", what, strings.Join(p.args, " "), p.WaitWithin(time.Second))
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waiting for %s: not in the journal after %s\n--- stdout:\n%s--- stderr:\n%s", what, limit, p.Stdout, p.Stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// KillWhen watches the run's journal and sends SIGKILL the moment an
// event matches. It reads what was appended every 100µs (the engine syncs
// each transition to the journal before acting on it, so the kill lands
// before the next step acts, or, when the engine is faster than the
// watcher, as early in it as can be: the journal's last event says
// where). The wait is bounded: it fails the test if the journal does not
// grow for stall. With after, the kill lands that long after the matching
// event, inside what it started. A process that exits by itself first
// fails the test.
func (p *Proc) KillWhen(journalDir, what string, stall, after time.Duration, match func(Event) bool) {
	p.t.Helper()
	p.SignalWhen(journalDir, what, stall, after, syscall.SIGKILL, match)
}

// SignalWhen is KillWhen with another signal: the process is sent sig and
// left to go on (SIGKILL: KillWhen's wait for it to die).
func (p *Proc) SignalWhen(journalDir, what string, stall, after time.Duration, sig syscall.Signal, match func(Event) bool) {
	t := p.t
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
			if path := NewestJournal(t, journalDir); path != "" {
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
								if p.Exited() {
									t.Fatalf("waiting for %s: switchover exited by itself before the %s: %s", what, sig, p.Wait())
								}
								_ = p.Cmd.Process.Signal(sig)
								return
							}
							if !p.Kill() {
								t.Fatalf("waiting for %s: switchover exited by itself before the kill: %s", what, p.Wait())
							}
							return
						}
					}
				}
				continue
			}
		}
		if p.Exited() {
			t.Fatalf("waiting for %s: switchover %s exited first: %s", what, strings.Join(p.args, " "), p.Wait())
		}
		if time.Since(progress) > stall {
			t.Fatalf("waiting for %s: the journal did not move for %s\n--- stdout:\n%s--- stderr:\n%s", what, stall, p.Stdout, p.Stderr)
		}
		time.Sleep(100 * time.Microsecond)
	}
}
