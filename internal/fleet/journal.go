package fleet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The events of a fleet journal, each written and synced before the
// fleet acts on it. The names are stable: scripts read them in the JSON
// output and the journal keeps them.
const (
	EventFleetStarted     = "fleet.started"     // Start holds the fleet file, its waves, who
	EventFleetResumed     = "fleet.resumed"     // a fleet run continues
	EventWaveStarted      = "wave.started"      // a wave begins
	EventWaveApproved     = "wave.approved"     // --approve-each-wave: the operator said go
	EventClusterStarting  = "cluster.starting"  // a cluster run is about to be spawned (Mode: run, resume)
	EventClusterSpawned   = "cluster.spawned"   // its process (PID) runs
	EventClusterStarted   = "cluster.started"   // its run id is known
	EventClusterWaiting   = "cluster.waiting"   // a run of a fleet process before this one still runs: waited for
	EventClusterFinished  = "cluster.finished"  // its outcome, figures and state
	EventClusterSkipped   = "cluster.skipped"   // not run: refused by the plan (--skip-refused), or done by another run of this fleet
	EventHalted           = "halted"            // a finished run breached a halt rule: no new cluster starts
	EventHaltAcknowledged = "halt.acknowledged" // resume: the operator saw the breach and goes on
	EventWindowEnded      = "window.ended"      // the window has no room for the clusters left
	EventFleetFinished    = "fleet.finished"    // how the fleet run ended (Result)
)

// Results of a fleet run, as fleet.finished says them.
const (
	ResultDone        = "done"
	ResultHalted      = "halted"
	ResultWindowEnded = "window-ended"
	ResultInterrupted = "interrupted"
	ResultDeclined    = "declined"
)

// Record is one line of a fleet journal, and one event of a fleet run as
// the command line shows it.
type Record struct {
	Seq      int       `json:"seq"`
	Time     time.Time `json:"time"`
	Event    string    `json:"event"`
	FleetRun string    `json:"fleet_run"`
	Fleet    string    `json:"fleet"`
	Cluster  string    `json:"cluster,omitempty"`
	Wave     string    `json:"wave,omitempty"`
	RunID    string    `json:"run_id,omitempty"`
	// Mode is how a cluster is taken on: run (a new run), resume (its
	// interrupted run), wait (its run still runs).
	Mode    string   `json:"mode,omitempty"`
	PID     int      `json:"pid,omitempty"`
	Attempt int      `json:"attempt,omitempty"`
	Outcome *Outcome `json:"outcome,omitempty"`
	// State is a cluster's state after cluster.finished or
	// cluster.skipped.
	State   State    `json:"state,omitempty"`
	Reason  string   `json:"reason,omitempty"` // a skip's or a halt's why
	Left    []string `json:"left,omitempty"`   // the clusters not run
	Start   *Start   `json:"start,omitempty"`
	Result  string   `json:"result,omitempty"` // fleet.finished
	User    string   `json:"user,omitempty"`
	Host    string   `json:"host,omitempty"`
	Message string   `json:"message,omitempty"`
	// Step is a cluster run's current step (shown, never journaled).
	Step string `json:"step,omitempty"`
}

// Start is what fleet.started and fleet.resumed record of the fleet.
type Start struct {
	File     string `json:"file"`
	Digest   string `json:"digest"`
	Key      string `json:"key"`
	Playbook string `json:"playbook"`
	PID      int    `json:"pid"`
	Waves    []Wave `json:"waves"`
	// Select is the label selection the run takes part with (see
	// Fleet.Select); empty: the whole fleet.
	Select map[string]string `json:"select,omitempty"`
}

// Dir is where the journals of fleet name live, under journalDir.
func Dir(journalDir, name string) string {
	return filepath.Join(journalDir, "fleets", unsafeName.ReplaceAllString(name, "_"))
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// Journal is the append-only record of one fleet run: one JSON record per
// line, synced before the fleet acts on it, readable by its owner only.
type Journal struct {
	mu   sync.Mutex
	f    *os.File
	path string
	seq  int
}

// journalPath is where fleet run id's journal is.
func journalPath(dir, id string) string { return filepath.Join(dir, id+".jsonl") }

// OutputDir is where the output of fleet run id's cluster runs goes.
func OutputDir(dir, id string) string { return filepath.Join(dir, id) }

// createJournal starts the journal of a new fleet run.
func createJournal(dir, id string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("fleet journal directory %s: %w", dir, err)
	}
	path := journalPath(dir, id)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("fleet journal %s: %w", path, err)
	}
	return &Journal{f: f, path: path}, nil
}

// openJournal reopens fleet run id's journal to append to it, a last line
// cut short by a crash cut off first.
func openJournal(dir, id string, seq int) (*Journal, error) {
	path := journalPath(dir, id)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fleet journal %s: %w", path, err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		if err := os.Truncate(path, int64(bytes.LastIndexByte(b, '\n')+1)); err != nil {
			return nil, fmt.Errorf("fleet journal %s: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("fleet journal %s: %w", path, err)
	}
	return &Journal{f: f, path: path, seq: seq}, nil
}

// Path is the journal's file name.
func (j *Journal) Path() string { return j.path }

// append numbers r, writes it and syncs it.
func (j *Journal) append(r *Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	r.Seq = j.seq
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("fleet journal: encode %s: %w", r.Event, err)
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("fleet journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("fleet journal %s: sync: %w", j.path, err)
	}
	return nil
}

func (j *Journal) close() error { return j.f.Close() }

// ReadJournal reads fleet run id's records. A last line cut short by a
// crash is left out: everything before it was synced whole.
func ReadJournal(dir, id string) ([]Record, error) {
	path := journalPath(dir, id)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var bad error
	for n := 1; sc.Scan(); n++ {
		if bad != nil {
			return nil, bad
		}
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			bad = fmt.Errorf("fleet journal %s:%d: %w", path, n, err)
			continue
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 || out[0].Event != EventFleetStarted || out[0].Start == nil {
		return nil, fmt.Errorf("fleet journal %s: does not start with a fleet.started record", path)
	}
	return out, nil
}

// Latest returns the id of the newest fleet run journaled in dir, or ""
// when there is none. Ids sort by their start.
func Latest(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".jsonl"); ok && !e.IsDir() {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return "", nil
	}
	slices.Sort(ids)
	return ids[len(ids)-1], nil
}

// Holder is the fleet process that drives a fleet's journals.
type Holder struct {
	FleetRun string    `json:"fleet_run,omitempty"`
	User     string    `json:"user"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	Since    time.Time `json:"since"`
}

// LockedError is a fleet another fleet process on this machine drives.
type LockedError struct {
	Fleet  string
	Holder Holder
}

func (e *LockedError) Error() string {
	h := e.Holder
	return fmt.Sprintf("fleet %q is driven by another fleet process: pid %d (%s@%s) since %s; wait for it, or stop it and `switchover fleet resume`",
		e.Fleet, h.PID, h.User, h.Host, h.Since.Format("2006-01-02 15:04:05 MST"))
}

// Lock keeps a second fleet process on this machine off a fleet's
// journals: the kernel's flock, let go when the process dies, even by
// SIGKILL. Its cluster runs do not inherit it.
type Lock struct{ f *os.File }

// AcquireLock takes the lock of the fleet journaled in dir for h.
func AcquireLock(dir, fleet string, h Holder) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("fleet journal directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, "fleet.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("fleet lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		var prev Holder
		if b, rerr := io.ReadAll(f); rerr == nil {
			_ = json.Unmarshal(b, &prev)
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Fleet: fleet, Holder: prev}
		}
		return nil, fmt.Errorf("fleet lock %s: %w", path, err)
	}
	l := &Lock{f: f}
	if err := l.write(h); err != nil {
		l.Release()
		return nil, err
	}
	return l, nil
}

func (l *Lock) write(h Holder) error {
	b, _ := json.Marshal(h)
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("fleet lock: %w", err)
	}
	if _, err := l.f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("fleet lock: %w", err)
	}
	return l.f.Sync()
}

// Release lets go of the lock.
func (l *Lock) Release() {
	if l != nil {
		_ = l.f.Truncate(0)
		_ = l.f.Close()
	}
}
