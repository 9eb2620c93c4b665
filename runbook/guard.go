package runbook

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/kinds"
	"github.com/switchover/switchover/internal/topology"
	"github.com/switchover/switchover/runbook/journal"
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
	// Until is when the clients' budget ends (event started): the guard
	// has acted by then, or soon after.
	Until time.Time `json:"until,omitzero"`
	// Refused are the databases the guard closed to clients, by pooler,
	// when no node could be trusted with writes; the run's resume enables
	// them again.
	Refused cluster.Refused `json:"refused,omitempty"`
	Message string          `json:"message,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// GuardPath is where the guard of run id writes its record.
func GuardPath(dir, id string) string { return filepath.Join(journal.RunsDir(dir), id+".guard") }

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

// guardMargin is how long before the end of the clients' budget the
// guard decides, so that what it does (a repoint, a RESUME, or closing
// the database) is done by then.
const guardMargin = 300 * time.Millisecond

// guardDecideBy is when the guard decides for a budget ending at until.
func guardDecideBy(until time.Time) time.Time { return until.Add(-guardMargin) }

// guardActTimeout bounds the guard's own repoint and resume.
const guardActTimeout = 15 * time.Second

// Guard watches a run's held clients: it returns when the run releases
// them (a GuardRelease line on run), or, when the run's end of the pipe
// closes without it or spec.Until passes, after resuming the pooler itself.
func Guard(ctx context.Context, spec GuardSpec, run io.Reader) error {
	rec := &guardRecorder{path: GuardPath(spec.JournalDir, spec.RunID), runID: spec.RunID}
	rec.write(GuardRecord{Event: "started", Until: spec.Until, Message: fmt.Sprintf("clients may be held until %s", spec.Until.UTC().Format(time.RFC3339Nano))})
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
	budget := time.NewTimer(time.Until(guardDecideBy(spec.Until)))
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
	r, err := actForRun(ctx, spec, rec, why, released)
	rec.write(r)
	return err
}

// actForRun finds where the clients may go (topology.FindWriter: the one
// node that takes writes, and the one the cluster's manager has settled as
// its primary), waiting for it until the budget ends since a promotion may
// be under way; points the poolers at it and resumes them. When the budget
// ends with none found, the clients are refused (steps.RefuseClients): if
// no node takes writes, resumed they would wait in the pooler for a server
// far past the cap; if some node does but cannot be trusted with writes
// (two do, or the manager may be demoting it), no commit may be
// acknowledged that a promotion then loses.
//
// A run still alive when its budget runs out may let its clients go while
// the guard looks: then the guard leaves the poolers to it.
func actForRun(ctx context.Context, spec GuardSpec, rec *guardRecorder, why string, released <-chan struct{}) (GuardRecord, error) {
	c := spec.Cluster
	out := GuardRecord{Event: "acted", Why: why}
	// Decided a little before the cap, so that the clients are let go by
	// it; a question still out then is not waited for, and its answer not
	// taken (a node cut off mid-question would look like no primary).
	decideBy := guardDecideBy(spec.Until)
	var w topology.Writer
	asked := false
	for {
		fctx, cancel := context.WithDeadline(ctx, decideBy)
		got := topology.FindWriter(fctx, c)
		late := fctx.Err() != nil
		cancel()
		if !late {
			w, asked = got, true
		}
		select {
		case <-released:
			return GuardRecord{Event: "released", Message: "the run let its clients go on while the guard looked for where to send them"}, nil
		default:
		}
		if w.Node != "" || !time.Now().Before(decideBy) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-released:
		case <-time.After(guardPoll):
		}
	}
	if !asked {
		w = topology.Writer{Why: "the cluster did not answer before the budget ended"}
	}
	held := kinds.HeldClients()
	if held == nil {
		err := fmt.Errorf("guard of run %s: this program provides no way to act on held clients (it links no steps)", spec.RunID)
		out.Error = err.Error()
		return out, err
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), guardActTimeout)
	defer cancel()
	// The guard exists because this run paused the poolers (it starts
	// only once none is paused by another): the resume of every one is
	// this run's to send.
	facts := &cluster.Facts{}
	facts.Restore(cluster.PausedByRunFact, "sent")
	t := &cluster.Target{RunID: spec.RunID, Cluster: c, Facts: facts, Output: func(line string) {
		rec.write(GuardRecord{Event: "output", Message: line})
	}}
	var errs []string
	switch {
	case w.Node != "":
		out.Primary = w.Node
		out.Message = fmt.Sprintf("the pooler was resumed, routing to %s, the one writable primary", w.Node)
		if w.Agrees != "" {
			out.Message += " (" + w.Agrees + ")"
		}
		if len(c.Poolers) > 0 {
			if err := held.RouteTo(actx, t, w.Node); err != nil {
				errs = append(errs, err.Error())
			}
		}
	default:
		refused, err := held.Refuse(actx, t)
		out.Refused = refused
		if err != nil {
			errs = append(errs, err.Error())
		}
		if asked && len(w.Writable) == 0 {
			// Resumed, they would wait inside the pooler for a server
			// (its query_wait_timeout, minutes) far past the cap.
			out.Message = fmt.Sprintf("no node takes writes (the run died between the stop and the promotion, or a stop hangs): clients are refused at once instead of waiting in the pooler for a server; `switchover resume %s` finishes or rolls back the switchover and enables %s again", spec.RunID, refused.Describe())
			break
		}
		out.Message = fmt.Sprintf("no node could be trusted with writes (%s): clients are refused, not resumed, so that none is acknowledged on a node about to lose its writes; `switchover resume %s` enables %s again once it has finished", w.Why, spec.RunID, refused.Describe())
	}
	if len(out.Refused) == 0 {
		if err := held.Resume(actx, t); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		err := fmt.Errorf("guard of run %s: %s", spec.RunID, strings.Join(errs, "; "))
		out.Error = err.Error()
		return out, err
	}
	return out, nil
}

// guardLive says until when the guard whose records these are may still
// be at work: it started, has neither been released nor acted, and its
// budget (plus the time it takes to act) has not run out. ok is false when
// it is done, or left no record.
func guardLive(recs []GuardRecord) (until time.Time, ok bool) {
	for _, r := range recs {
		switch r.Event {
		case "started":
			until, ok = r.Until.Add(guardActTimeout+guardPoll), !r.Until.IsZero()
		case "released", "acted":
			ok = false
		}
	}
	if ok && !time.Now().Before(until) {
		ok = false
	}
	return until, ok
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
