package fleet

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Status is a fleet's last run as `fleet status` shows it.
type Status struct {
	FleetRun string    `json:"fleet_run"`
	Started  time.Time `json:"started"`
	// Result is fleet.finished's, or "running" while a fleet process
	// drives it, or "unfinished" (killed).
	Result      string      `json:"result"`
	Halt        *Record     `json:"halt,omitempty"`
	WindowEnded *Record     `json:"window_ended,omitempty"`
	Clusters    []StatusRow `json:"clusters"`
}

// StatusRow is one cluster in a fleet's status.
type StatusRow struct {
	Wave    string `json:"wave"`
	Cluster string `json:"cluster"`
	// State is the cluster's state; a cluster not started while the
	// fleet is halted shows "halted".
	State State  `json:"state"`
	RunID string `json:"run_id,omitempty"`
	// Step and Elapsed: where a running cluster's run is, since when.
	Step    string        `json:"step,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns,omitempty"`
	Outcome *Outcome      `json:"outcome,omitempty"`
	Reason  string        `json:"reason,omitempty"`
}

// StateHalted is how status shows a cluster the halt kept from starting.
const StateHalted State = "halted"

// Status reads the fleet's last run: each cluster's state, the running
// ones' steps from their own journals, and the halt.
func (d *Driver) Status() (*Status, error) {
	id, err := Latest(d.dir())
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, ErrNothing
	}
	recs, err := ReadJournal(d.dir(), id)
	if err != nil {
		return nil, err
	}
	st := replay(id, recs)
	s := &Status{FleetRun: id, Started: st.Started, Halt: st.Halt, WindowEnded: st.WindowEnded, Result: "unfinished"}
	switch {
	case st.Finished != nil:
		s.Result = st.Finished.Result
	case lockHeld(d.dir()):
		s.Result = "running"
	}
	for _, w := range st.Start.Waves {
		for _, name := range w.Clusters {
			cs := st.cluster(name)
			row := StatusRow{Wave: w.Name, Cluster: name, State: cs.State, RunID: cs.RunID, Outcome: cs.Outcome, Reason: cs.Reason}
			if cs.State == StatePending && st.Halt != nil {
				row.State = StateHalted
			}
			if (cs.State == StateRunning || cs.State == StateStarting) && cs.RunID != "" && d.Runs != nil {
				if rs, err := d.Runs.Run(cs.RunID); err == nil {
					row.Step = rs.Step
					if !rs.Started.IsZero() {
						row.Elapsed = d.now().Sub(rs.Started)
					}
					switch {
					case rs.Finished():
						row.Outcome, row.State = &rs.Outcome, stateOf(rs.Outcome)
					case rs.Status != "running":
						row.Reason = "its run is " + rs.Status + ": `switchover fleet resume` resumes it"
					}
				}
			}
			s.Clusters = append(s.Clusters, row)
		}
	}
	return s, nil
}

// lockHeld reports whether a fleet process holds the lock of the fleet
// journaled in dir.
func lockHeld(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, "fleet.lock"), os.O_RDONLY, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}
