package journal

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/switchover/switchover/runbook/spec"
)

// Journal is the append-only record of one run: one JSON event per line,
// on disk before the engine acts on it (see Durable), readable only by its
// owner.
type Journal struct {
	mu   sync.Mutex
	f    File
	path string
}

// File is what the journal writes to: an *os.File, or in tests a
// file that fails the way a full disk does.
type File interface {
	Write([]byte) (int, error)
	Sync() error
	Close() error
}

// OpenFile opens a journal's file; a test replaces it (a disk that fills up).
var OpenFile = func(path string, flag int) (File, error) {
	return os.OpenFile(path, flag, 0o600)
}

// DefaultJournalDir is where journals go when --journal-dir is not given:
// $XDG_STATE_HOME/switchover, else ~/.local/state/switchover.
func DefaultJournalDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "switchover")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "switchover")
	}
	return filepath.Join(os.TempDir(), "switchover-state")
}

// RunsDir is where the journals of dir's runs live.
func RunsDir(dir string) string { return filepath.Join(dir, "runs") }

// JournalPath is where the journal of run id lives.
func JournalPath(dir, id string) string { return filepath.Join(RunsDir(dir), id+".jsonl") }

// NewRunID returns a run id that sorts by start time: 20261121T102530Z-3f2a9c.
func NewRunID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// Create starts the journal of a new run, proving on the way that the
// directory is writable: a run that cannot keep its record does not start.
func Create(dir, id string) (*Journal, error) {
	if err := os.MkdirAll(RunsDir(dir), 0o700); err != nil {
		return nil, fmt.Errorf("journal directory %s: %w", dir, err)
	}
	path := JournalPath(dir, id)
	f, err := OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	return &Journal{f: f, path: path}, nil
}

// Open reopens the journal of a run to append to it (resume). A
// last line cut short by a crash (a kill in the middle of a write) is cut
// off first: it was never synced whole, so nothing acted on it, and
// appending after it would glue the next event onto it.
func Open(dir, id string) (*Journal, error) {
	path := JournalPath(dir, id)
	if err := dropPartialLine(path); err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	f, err := OpenFile(path, os.O_WRONLY|os.O_APPEND)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	return &Journal{f: f, path: path}, nil
}

// Path is the journal's file name.
func (j *Journal) Path() string { return j.path }

// Durable reports whether Append syncs an event to disk before it
// returns: the transitions a resume acts on (a run or section begun, a
// step about to act, a fact, the run's end). Every other event (a check's
// verdict, a line an action printed, an effect, an approval, a step done)
// is written at once and reaches the disk with the next durable one,
// which always comes before the next action: so no action runs before
// every event ahead of it is on disk, and clients held in the pooler do
// not wait on the disk for each line an action prints. A killed process
// loses none of them (they are in the file); a crash of the machine
// itself can lose only those since the last action began, and a resume
// then settles that step by its postconditions, as after any crash.
func Durable(e Event) bool {
	switch e.Type {
	case EventRunStarted, EventRunResumed, EventSection, EventFact, EventRunSuspended, EventRunFinished:
		return true
	case EventStep:
		return e.State == StateRunning
	}
	return false
}

// Append writes one event, and syncs it to disk when it is Durable.
func (j *Journal) Append(e Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("journal: encode %s event: %w", e.Type, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	if !Durable(e) {
		return nil
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal %s: sync: %w", j.path, err)
	}
	return nil
}

// Close syncs what is not on disk yet and closes the journal file.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	serr := j.f.Sync()
	if err := j.f.Close(); err != nil {
		return err
	}
	return serr
}

// ReadJournal reads the events of a run. A last line cut short by a crash
// is ignored: everything before it was synced whole.
func ReadJournal(dir, id string) ([]Event, error) {
	f, err := os.Open(JournalPath(dir, id))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: no run %q in %s", spec.ErrInvalid, id, dir)
		}
		return nil, err
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	line := 0
	var bad error
	for sc.Scan() {
		line++
		if bad != nil {
			return nil, bad // a bad line that was not the last one
		}
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			bad = fmt.Errorf("journal %s:%d: %w", JournalPath(dir, id), line, err)
			continue
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 || out[0].Type != EventRunStarted || out[0].Run == nil {
		return nil, fmt.Errorf("journal %s: does not start with a run.started event", JournalPath(dir, id))
	}
	return out, nil
}

// RunSummary is one journaled run as `switchover runs` lists it.
type RunSummary struct {
	ID       string    `json:"run_id"`
	Started  time.Time `json:"started"`
	Runbook  string    `json:"runbook"`
	Cluster  string    `json:"cluster"`
	DryRun   bool      `json:"dry_run,omitempty"`
	Status   string    `json:"status"` // an Outcome, or running, interrupted
	LastStep string    `json:"last_step,omitempty"`
	User     string    `json:"user"`
}

// Finished reports whether the run reached an end (anything but
// interrupted, suspended or still running).
func (s RunSummary) Finished() bool {
	switch s.Status {
	case "running", "interrupted", string(OutcomeSuspended):
		return false
	}
	return true
}

// ListRuns returns the journaled runs in dir, newest first.
func ListRuns(dir string) ([]RunSummary, error) {
	entries, err := os.ReadDir(RunsDir(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []RunSummary
	for _, ent := range entries {
		id, ok := strings.CutSuffix(ent.Name(), ".jsonl")
		if !ok {
			continue
		}
		evs, err := ReadJournal(dir, id)
		if err != nil {
			out = append(out, RunSummary{ID: id, Status: "unreadable: " + err.Error()})
			continue
		}
		out = append(out, Summarize(dir, id, evs))
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].ID > out[j].ID
	})
	return out, nil
}

// Summarize is the summary of run id from its events (the first is
// run.started).
func Summarize(dir, id string, evs []Event) RunSummary {
	info := evs[0].Run
	s := RunSummary{ID: id, Started: evs[0].Time, Runbook: info.Runbook, Cluster: info.Cluster,
		DryRun: evs[0].DryRun, User: info.User, Status: "interrupted"}
	for _, e := range evs {
		switch e.Type {
		case EventStep:
			s.LastStep = e.Step
		case EventRunFinished:
			s.Status = string(e.Outcome)
		case EventRunSuspended:
			s.Status = string(OutcomeSuspended)
		case EventRunResumed:
			s.Status = "interrupted"
		}
	}
	return s
}

// dropPartialLine truncates a journal to its last complete line.
func dropPartialLine(path string) error {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 || b[len(b)-1] == '\n' {
		return err
	}
	keep := bytes.LastIndexByte(b, '\n') + 1
	return os.Truncate(path, int64(keep))
}
