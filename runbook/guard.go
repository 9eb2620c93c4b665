package runbook

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/steps"
)

// A guard keeps the promise that clients are never held in a paused pooler
// past the run's budget, whatever happens to the run's process. The run
// starts it, detached from the terminal, before it pauses the pooler, and
// tells it when the clients go on again. If the run's process ends first
// (killed, or the bastion lost), or the budget runs out, the guard resumes
// the pooler itself, pointed at whichever node is then the one writable
// primary, and writes what it did beside the run's journal.

// GuardSpec is what a guard is told when it starts, on its standard input
// (it holds connection strings, so never on a command line).
type GuardSpec struct {
	RunID      string           `json:"run_id"`
	JournalDir string           `json:"journal_dir"`
	Until      time.Time        `json:"until"`
	Cluster    *cluster.Cluster `json:"cluster"`
}

// GuardRelease is the line a run sends its guard when its clients go on.
const GuardRelease = "release"

// GuardRecord is one line of a guard's record (runs/RUN_ID.guard).
type GuardRecord struct {
	Time    time.Time `json:"time"`
	RunID   string    `json:"run_id"`
	Event   string    `json:"event"` // started, released, acted
	Why     string    `json:"why,omitempty"`
	Primary string    `json:"primary,omitempty"` // the writable primary the pooler was pointed at
	Message string    `json:"message,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// GuardPath is where the guard of run id writes its record.
func GuardPath(dir, id string) string { return filepath.Join(runsDir(dir), id+".guard") }

// ReadGuard returns what the guard of run id recorded; nothing when it
// left no record.
func ReadGuard(dir, id string) ([]GuardRecord, error) {
	f, err := os.Open(GuardPath(dir, id))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []GuardRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r GuardRecord
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			out = append(out, r)
		}
	}
	return out, sc.Err()
}

// guardPoll is how often the guard looks for the writable primary once it
// must act.
const guardPoll = 50 * time.Millisecond

// guardActTimeout bounds the guard's own repoint and resume.
const guardActTimeout = 15 * time.Second

// Guard watches a run's held clients: it returns when the run releases
// them (a GuardRelease line on run), or, when the run's end of the pipe
// closes without it or spec.Until passes, after resuming the pooler itself.
func Guard(ctx context.Context, spec GuardSpec, run io.Reader) error {
	rec := &guardRecorder{path: GuardPath(spec.JournalDir, spec.RunID), runID: spec.RunID}
	rec.write(GuardRecord{Event: "started", Message: fmt.Sprintf("clients may be held until %s", spec.Until.UTC().Format(time.RFC3339Nano))})
	released, gone := make(chan struct{}), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(run)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == GuardRelease {
				close(released)
				return
			}
		}
		close(gone)
	}()
	budget := time.NewTimer(time.Until(spec.Until))
	defer budget.Stop()
	var why string
	select {
	case <-released:
		rec.write(GuardRecord{Event: "released", Message: "the run let its clients go on"})
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-gone:
		why = "the run's process ended while clients were held"
	case <-budget.C:
		why = "clients were held for the run's whole budget"
	}
	primary, err := actForRun(ctx, spec, rec, why)
	r := GuardRecord{Event: "acted", Why: why, Primary: primary}
	switch {
	case err != nil:
		r.Error = err.Error()
	case primary == "":
		r.Message = "no node takes writes: the pooler was resumed so clients fail at once instead of waiting"
	default:
		r.Message = fmt.Sprintf("the pooler was resumed, routing to %s, the one writable primary", primary)
	}
	rec.write(r)
	return err
}

// actForRun finds the one writable primary (waiting for it until the
// budget ends, since a promotion may be under way), points the pooler at
// it and resumes the pooler; with none, or more than one, it resumes the
// pooler as it is.
func actForRun(ctx context.Context, spec GuardSpec, rec *guardRecorder, why string) (string, error) {
	c := spec.Cluster
	var primary string
	for {
		writable := writableNodes(ctx, c)
		if len(writable) == 1 {
			primary = writable[0]
			break
		}
		if !time.Now().Before(spec.Until) || ctx.Err() != nil {
			if len(writable) > 1 {
				rec.write(GuardRecord{Event: "note", Why: why, Message: "more than one node takes writes (" + strings.Join(writable, ", ") + "): the pooler is resumed without moving it"})
			}
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(guardPoll):
		}
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), guardActTimeout)
	defer cancel()
	// The guard exists because this run paused the poolers (it starts
	// only once none is paused by another): the resume of every one is
	// this run's to send.
	facts := &cluster.Facts{}
	facts.Restore(steps.PausedFact, "sent")
	t := &cluster.Target{RunID: spec.RunID, Cluster: c, Facts: facts, Output: func(line string) {
		rec.write(GuardRecord{Event: "output", Message: line})
	}}
	var errs []string
	if primary != "" && len(c.Poolers) > 0 {
		if err := (&steps.PgBouncerRepoint{To: primary}).Apply(actx, t); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if err := (&steps.PgBouncerResume{}).Apply(actx, t); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return primary, fmt.Errorf("guard of run %s: %s", spec.RunID, strings.Join(errs, "; "))
	}
	return primary, nil
}

// writableNodes returns the nodes that answer as a primary taking writes
// (out of recovery, not read-only), in name order.
func writableNodes(ctx context.Context, c *cluster.Cluster) []string {
	var mu sync.Mutex
	var out []string
	var wg sync.WaitGroup
	for name, n := range c.Nodes {
		wg.Add(1)
		go func(name, conninfo string) {
			defer wg.Done()
			qctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			conn, err := pg.Connect(qctx, conninfo, time.Second)
			if err != nil {
				return
			}
			defer pg.Release(conn)
			var inRecovery, readOnly bool
			if err := conn.QueryRow(qctx, "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')::bool").Scan(&inRecovery, &readOnly); err != nil {
				return
			}
			if !inRecovery && !readOnly {
				mu.Lock()
				out = append(out, name)
				mu.Unlock()
			}
		}(name, n.Conninfo)
	}
	wg.Wait()
	sort.Strings(out)
	return out
}

// guardRecorder appends the guard's records, each synced.
type guardRecorder struct {
	mu    sync.Mutex
	path  string
	runID string
}

func (g *guardRecorder) write(r GuardRecord) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r.Time = time.Now().UTC()
	r.RunID = g.runID
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	f, err := os.OpenFile(g.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.Write(append(b, '\n'))
	_ = f.Sync()
}
