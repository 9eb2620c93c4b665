package fleet

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Report is one fleet run as a change ticket tells it: the fleet and who
// ran it, every cluster in wave order with its outcome and figures, the
// totals, and the halts. It is plain data read from the fleet journal;
// the command line renders it.
type Report struct {
	Fleet    string `json:"fleet"`
	FleetRun string `json:"fleet_run"`
	// File, Digest, Key and Playbook are what the fleet run started with.
	File     string `json:"file"`
	Digest   string `json:"digest"`
	Key      string `json:"key"`
	Playbook string `json:"playbook"`
	// Select is the label selection the fleet run took part with (see
	// Fleet.Select); empty: the whole fleet.
	Select map[string]string `json:"select,omitempty"`
	// StartedBy is user@host; Started when.
	StartedBy string    `json:"started_by"`
	Started   time.Time `json:"started"`
	// Resumes are the fleet.resumed records: who, when.
	Resumes []Record `json:"resumes,omitempty"`
	// Finished is the last fleet.finished, or nil (killed, or running).
	Finished *Record `json:"finished,omitempty"`
	Waves    []Wave  `json:"waves"`
	// Limits and Halt are the fleet file's, as loaded now; FileChanged
	// says the file's digest is not the one the run started with.
	Limits      Limits      `json:"limits"`
	Halt        HaltRules   `json:"halt"`
	FileChanged bool        `json:"file_changed,omitempty"`
	Clusters    []ReportRow `json:"clusters"`
	// Halts are every halt of the run, in order, acknowledged or not.
	Halts  []ReportHalt `json:"halts,omitempty"`
	Totals ReportTotals `json:"totals"`
}

// ReportRow is one cluster of a fleet report.
type ReportRow struct {
	Wave    string `json:"wave"`
	Cluster string `json:"cluster"`
	// State is the cluster's state; a cluster the halt kept from
	// starting is StateHalted.
	State   State    `json:"state"`
	Reason  string   `json:"reason,omitempty"` // a skip's why
	RunID   string   `json:"run_id,omitempty"`
	Outcome *Outcome `json:"outcome,omitempty"`
	// Order is when the cluster was first taken on in the fleet run (1
	// first); 0 never.
	Order int `json:"order,omitempty"`
	// Halted: this cluster's run halted the fleet.
	Halted bool `json:"halted,omitempty"`
}

// ReportHalt is a halt of a fleet run: the cluster whose finished run
// breached a rule, the rule and figure in words, and who acknowledged it.
type ReportHalt struct {
	Cluster string    `json:"cluster"`
	Reason  string    `json:"reason"`
	Time    time.Time `json:"time"`
	// AcknowledgedBy is user@host, or "" when not acknowledged.
	AcknowledgedBy string    `json:"acknowledged_by,omitempty"`
	Acknowledged   time.Time `json:"acknowledged,omitzero"`
}

// ReportTotals sums a fleet run up.
type ReportTotals struct {
	Clusters int `json:"clusters"`
	// ByState counts the clusters in each state.
	ByState map[State]int `json:"by_state"`
	// Lost is the acknowledged commits lost over the runs that measured
	// it (LostMeasured of them).
	Lost         int64 `json:"lost"`
	LostMeasured int   `json:"lost_measured"`
	// Windows is how many runs measured their client window; the
	// shortest, median and longest in milliseconds (0 when none).
	Windows      int     `json:"windows"`
	WindowMin    float64 `json:"window_min_ms"`
	WindowMedian float64 `json:"window_median_ms"`
	WindowMax    float64 `json:"window_max_ms"`
}

// Ran returns the clusters taken on, in the order they were first taken on.
func (r *Report) Ran() []ReportRow {
	var out []ReportRow
	for _, row := range r.Clusters {
		if row.Order > 0 {
			out = append(out, row)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Order < out[j].Order })
	return out
}

// BuildReport reads fleet run id's records into a report; f is the fleet
// file as loaded now, which gives the limits and halt rules (the journal
// keeps the waves, the file, its digest and the selection).
func BuildReport(f *Fleet, id string, recs []Record) *Report {
	st := replay(id, recs)
	r := &Report{Fleet: f.Name, FleetRun: id, File: st.Start.File, Digest: st.Start.Digest, Key: st.Start.Key,
		Playbook: st.Start.Playbook, Select: st.Start.Select, Started: st.Started, Waves: st.Start.Waves,
		Limits: f.Limits, Halt: f.Halt, FileChanged: st.Start.Digest != f.Digest}
	order := map[string]int{}
	halter := map[string]bool{}
	for _, rec := range recs {
		switch rec.Event {
		case EventFleetStarted:
			r.StartedBy = rec.User + "@" + rec.Host
		case EventFleetResumed:
			r.Resumes = append(r.Resumes, Record{Time: rec.Time, User: rec.User, Host: rec.Host})
		case EventClusterStarting, EventClusterStarted, EventClusterWaiting:
			if _, ok := order[rec.Cluster]; !ok {
				order[rec.Cluster] = len(order) + 1
			}
		case EventHalted:
			r.Halts = append(r.Halts, ReportHalt{Cluster: rec.Cluster, Reason: rec.Reason, Time: rec.Time})
			halter[rec.Cluster] = true
		case EventHaltAcknowledged:
			for i := range r.Halts {
				if h := &r.Halts[i]; h.AcknowledgedBy == "" {
					h.AcknowledgedBy, h.Acknowledged = rec.User+"@"+rec.Host, rec.Time
				}
			}
		}
	}
	r.Finished = st.Finished
	r.Totals.ByState = map[State]int{}
	var windows []float64
	for _, w := range st.Start.Waves {
		for _, name := range w.Clusters {
			cs := st.cluster(name)
			row := ReportRow{Wave: w.Name, Cluster: name, State: cs.State, Reason: cs.Reason, RunID: cs.RunID, Outcome: cs.Outcome,
				Order: order[name], Halted: halter[name]}
			if cs.State == StatePending && st.Halt != nil {
				row.State = StateHalted
			}
			r.Clusters = append(r.Clusters, row)
			r.Totals.Clusters++
			r.Totals.ByState[row.State]++
			if o := cs.Outcome; o != nil {
				if o.Figures.Lost != nil {
					r.Totals.Lost += *o.Figures.Lost
					r.Totals.LostMeasured++
				}
				if o.Figures.WindowMS != nil {
					windows = append(windows, *o.Figures.WindowMS)
				}
			}
		}
	}
	if n := len(windows); n > 0 {
		slices.Sort(windows)
		r.Totals.Windows, r.Totals.WindowMin, r.Totals.WindowMax = n, windows[0], windows[n-1]
		r.Totals.WindowMedian = windows[n/2]
		if n%2 == 0 {
			r.Totals.WindowMedian = (windows[n/2-1] + windows[n/2]) / 2
		}
	}
	return r
}

// Report reads fleet run id's journal (the last fleet run when id is "")
// into a report.
func (d *Driver) Report(id string) (*Report, error) {
	if id == "" {
		var err error
		if id, err = Latest(d.dir()); err != nil {
			return nil, err
		}
		if id == "" {
			return nil, fmt.Errorf("%w: fleet %s has no run in %s", ErrNothing, d.Fleet.Name, d.JournalDir)
		}
	}
	recs, err := ReadJournal(d.dir(), id)
	if err != nil {
		return nil, fmt.Errorf("fleet %s: run %s: %w", d.Fleet.Name, id, err)
	}
	return BuildReport(d.Fleet, id, recs), nil
}
