package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchover/switchover/internal/fleet"
	"github.com/switchover/switchover/internal/oneline"
)

// fleetView renders a fleet's plan, events and status for a person (one
// line per event, aligned tables), or as JSON lines (--log-format json),
// each about one cluster carrying `cluster`.
type fleetView struct {
	mu   sync.Mutex
	w    io.Writer
	json hclog.Logger // nil: for a person
	f    *fleet.Fleet
	// live is the block of running clusters at a terminal, nil
	// otherwise (see startLive).
	live *fleetLive
}

func newFleetView(w io.Writer, format string, f *fleet.Fleet) (*fleetView, error) {
	v := &fleetView{w: maskingWriter{w}, f: f}
	switch format {
	case "human":
	case "json":
		v.json = hclog.New(&hclog.LoggerOptions{Name: "switchover", Output: maskingWriter{w}, JSONFormat: true, Level: hclog.Debug,
			TimeFormat: "2006-01-02T15:04:05.000000Z07:00"})
	default:
		return nil, usagef("--log-format %q: want human or json", format)
	}
	return v, nil
}

// Observe renders one record of a fleet run.
func (v *fleetView) Observe(r fleet.Record) {
	v.mu.Lock()
	defer v.mu.Unlock()
	msg := recordMessage(r)
	if v.json != nil {
		kv := []any{"event", r.Event, "fleet", r.Fleet, "fleet_run", r.FleetRun}
		add := func(k string, val any, ok bool) {
			if ok {
				kv = append(kv, k, val)
			}
		}
		add("seq", r.Seq, r.Seq != 0)
		add("cluster", r.Cluster, r.Cluster != "")
		add("wave", r.Wave, r.Wave != "")
		add("run_id", r.RunID, r.RunID != "")
		add("mode", r.Mode, r.Mode != "")
		add("pid", r.PID, r.PID != 0)
		add("attempt", r.Attempt, r.Attempt != 0)
		add("step", r.Step, r.Step != "")
		add("state", string(r.State), r.State != "")
		add("outcome", r.Outcome, r.Outcome != nil)
		add("reason", r.Reason, r.Reason != "")
		add("left", r.Left, r.Left != nil)
		add("result", r.Result, r.Result != "")
		add("user", r.User, r.User != "")
		add("host", r.Host, r.Host != "")
		switch {
		case r.Event == fleet.EventHalted, r.Event == fleet.EventFleetFinished && r.Result != fleet.ResultDone,
			r.Event == fleet.EventClusterFinished && r.State != fleet.StateDone:
			v.json.Error(msg, kv...)
		case r.Event == "cluster.step":
			v.json.Debug(msg, kv...)
		default:
			v.json.Info(msg, kv...)
		}
		return
	}
	if v.live != nil {
		v.live.erase()
		v.live.observe(r)
		defer v.live.draw()
	}
	if r.Event == fleet.EventClusterSpawned || r.Event == "cluster.step" {
		return // the run id follows at once; the live block or `fleet status` shows the steps
	}
	fmt.Fprintf(v.w, "%s  %s\n", r.Time.Local().Format("15:04:05"), msg)
}

// recordMessage is a record's one line for a person.
func recordMessage(r fleet.Record) string {
	who := r.User + "@" + r.Host
	switch r.Event {
	case fleet.EventFleetStarted:
		return fmt.Sprintf("fleet %s: run %s started by %s: %s", r.Fleet, r.FleetRun, who, r.Message)
	case fleet.EventFleetResumed:
		return fmt.Sprintf("fleet %s: run %s resumed by %s", r.Fleet, r.FleetRun, who)
	case fleet.EventWaveStarted:
		return r.Message
	case fleet.EventWaveApproved:
		return fmt.Sprintf("wave %s approved by %s", r.Wave, who)
	case fleet.EventClusterStarting:
		if r.Mode == fleet.ModeRun {
			if r.Attempt > 1 {
				return fmt.Sprintf("%s: starting a run again (attempt %d)", r.Cluster, r.Attempt)
			}
			return fmt.Sprintf("%s: starting a run", r.Cluster)
		}
		return r.Cluster + ": " + r.Message
	case fleet.EventClusterSpawned:
		return fmt.Sprintf("%s: process %d", r.Cluster, r.PID)
	case fleet.EventClusterStarted:
		if r.Message != "" {
			return r.Cluster + ": " + r.Message
		}
		return fmt.Sprintf("%s: run %s", r.Cluster, r.RunID)
	case "cluster.step":
		return fmt.Sprintf("%s: step %s", r.Cluster, r.Step)
	case fleet.EventClusterWaiting:
		return r.Cluster + ": " + r.Message
	case fleet.EventClusterFinished:
		return r.Cluster + ": " + finishedText(r)
	case fleet.EventClusterSkipped:
		return fmt.Sprintf("%s: skipped: %s", r.Cluster, r.Reason)
	case fleet.EventHalted:
		return fmt.Sprintf("HALTED by %s: %s; no new cluster starts, running ones finish", r.Cluster, r.Reason)
	case fleet.EventHaltAcknowledged:
		return r.Message
	case fleet.EventWindowEnded:
		return r.Message
	case fleet.EventFleetFinished:
		s := fmt.Sprintf("fleet %s: run %s %s: %s", r.Fleet, r.FleetRun, r.Result, r.Message)
		if len(r.Left) > 0 && r.Result != fleet.ResultDone {
			s += "; left: " + strings.Join(r.Left, ", ")
		}
		return s
	}
	if r.Message != "" {
		return r.Message
	}
	return r.Event
}

// finishedText says how a cluster run ended: its figures when done, its
// error when not.
func finishedText(r fleet.Record) string {
	o := r.Outcome
	if o == nil {
		return string(r.State)
	}
	if r.State == fleet.StateDone {
		s := "done"
		if o.DurationMS > 0 {
			s += " in " + fmtDuration(time.Duration(o.DurationMS)*time.Millisecond)
		}
		if o.OldPrimary != "" || o.NewPrimary != "" {
			s += fmt.Sprintf(": %s → %s", orDash(o.OldPrimary), orDash(o.NewPrimary))
		}
		return s + ", " + figuresText(o.Figures)
	}
	if r.State == fleet.StateLocked {
		return r.Message
	}
	s := fmt.Sprintf("%s (exit %d)", r.State, o.ExitCode)
	if o.Step != "" {
		s += " at step " + o.Step
	}
	if o.Error != "" {
		s += ": " + oneLine(o.Why(), 200)
	}
	return s
}

// figuresText is a run's canary figures in words.
func figuresText(f fleet.Figures) string {
	if f.WindowMS == nil && f.Lost == nil && f.Errors == nil {
		return "no canary figures"
	}
	return fmt.Sprintf("window %s, %s lost, %s client errors", windowText(f.WindowMS), countText(f.Lost), countText(f.Errors))
}

func windowText(ms *float64) string {
	if ms == nil {
		return "—"
	}
	return time.Duration(*ms * float64(time.Millisecond)).Round(time.Millisecond).String()
}

func countText(n *int64) string {
	if n == nil {
		return "—"
	}
	return fmt.Sprint(*n)
}

// fmtDuration rounds a duration for a table: 1.2s, 3m10s.
func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// oneLine puts s on one line, cut to n columns.
func oneLine(s string, n int) string { return cutEnd(oneline.Of(s), n) }

// plan renders the fleet's dry runs: one aligned table, the waves in
// order.
func (v *fleetView) plan(verdicts []fleet.Verdict, skipRefused bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ready, refused, done := 0, 0, 0
	for _, vd := range verdicts {
		switch {
		case vd.Done:
			done++
		case vd.Ready:
			ready++
		default:
			refused++
		}
	}
	if v.json != nil {
		for _, vd := range verdicts {
			kv := []any{"event", "plan.cluster", "fleet", v.f.Name, "cluster", vd.Cluster, "wave", vd.Wave, "ready", vd.Ready,
				"verdict", verdictWord(vd, skipRefused), "exit_code", vd.ExitCode}
			if vd.Primary != "" {
				kv = append(kv, "primary", vd.Primary)
			}
			if vd.Candidate != "" {
				kv = append(kv, "candidate", vd.Candidate)
			}
			if vd.Why != "" {
				kv = append(kv, "why", vd.Why)
			}
			if vd.RunID != "" {
				kv = append(kv, "run_id", vd.RunID)
			}
			if vd.Estimate > 0 {
				kv = append(kv, "estimate_ms", vd.Estimate.Milliseconds())
			}
			msg := fmt.Sprintf("%s: %s", vd.Cluster, verdictWord(vd, skipRefused))
			if vd.Ready || skipRefused {
				v.json.Info(msg, kv...)
			} else {
				v.json.Error(msg, kv...)
			}
		}
		v.json.Info(fmt.Sprintf("fleet %s: %d ready, %d refused, %d done already", v.f.Name, ready, refused, done), "event", "plan.finished", "fleet", v.f.Name,
			"ready", ready, "refused", refused, "done", done, "skip_refused", skipRefused)
		return
	}
	var waves []string
	for _, w := range v.f.Waves {
		waves = append(waves, fmt.Sprintf("%s %d", w.Name, len(w.Clusters)))
	}
	selected := ""
	if len(v.f.Selection) > 0 {
		selected = fmt.Sprintf(" (--select %s: %d of %d)", selectionText(v.f.Selection), len(v.f.Clusters), len(v.f.Clusters)+v.f.Unselected)
	}
	fmt.Fprintf(v.w, "fleet %s: %s on %d cluster%s%s in %d wave%s (%s); %s; %s\n\n", v.f.Name, v.f.Playbook, len(v.f.Clusters), plural(len(v.f.Clusters)),
		selected, len(v.f.Waves), plural(len(v.f.Waves)), strings.Join(waves, ", "), v.f.Limits, v.f.Halt)
	tw := tabwriter.NewWriter(v.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WAVE\tCLUSTER\tPRIMARY → CANDIDATE\tVERDICT\tEST. DURATION")
	for _, vd := range verdicts {
		move := "—"
		if vd.Primary != "" || vd.Candidate != "" {
			move = orDash(vd.Primary) + " → " + orDash(vd.Candidate)
		}
		verdict := verdictWord(vd, skipRefused)
		if vd.Why != "" {
			verdict += ": " + oneLine(vd.Why, 110)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", vd.Wave, vd.Cluster, move, verdict, fmtDuration(vd.Estimate))
	}
	tw.Flush()
	fmt.Fprintf(v.w, "\n%d ready, %d refused, %d done already", ready, refused, done)
	switch {
	case refused > 0 && skipRefused:
		fmt.Fprintf(v.w, "; the refused are skipped (--skip-refused)\n")
	case refused > 0:
		fmt.Fprintf(v.w, "; a fleet run refuses to start (exit 3) unless --skip-refused skips them\n")
	default:
		fmt.Fprintln(v.w)
	}
}

func verdictWord(vd fleet.Verdict, skipRefused bool) string {
	switch {
	case vd.Done:
		return "done already"
	case vd.Busy:
		return "busy"
	case vd.Ready:
		return "ready"
	case skipRefused:
		return "skipped (refused)"
	}
	return "refused"
}

// status renders a fleet's last run: one row per cluster, then the halt.
func (v *fleetView) status(s *fleet.Status) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.json != nil {
		for _, r := range s.Clusters {
			kv := []any{"event", "status.cluster", "fleet", v.f.Name, "fleet_run", s.FleetRun, "cluster", r.Cluster, "wave", r.Wave, "state", string(r.State)}
			if r.RunID != "" {
				kv = append(kv, "run_id", r.RunID)
			}
			if r.Step != "" {
				kv = append(kv, "step", r.Step, "elapsed_ms", r.Elapsed.Milliseconds())
			}
			if r.Outcome != nil {
				kv = append(kv, "outcome", r.Outcome)
			}
			if r.Reason != "" {
				kv = append(kv, "reason", r.Reason)
			}
			v.json.Info(fmt.Sprintf("%s: %s", r.Cluster, r.State), kv...)
		}
		kv := []any{"event", "status.fleet", "fleet", v.f.Name, "fleet_run", s.FleetRun, "result", s.Result}
		if s.Halt != nil {
			kv = append(kv, "halt", map[string]string{"cluster": s.Halt.Cluster, "reason": s.Halt.Reason})
		}
		v.json.Info(fmt.Sprintf("fleet %s: run %s %s", v.f.Name, s.FleetRun, s.Result), kv...)
		return
	}
	name := v.f.Name
	if len(v.f.Selection) > 0 {
		name += " (--select " + selectionText(v.f.Selection) + ")"
	}
	fmt.Fprintf(v.w, "fleet %s: run %s, started %s: %s\n\n", name, s.FleetRun, s.Started.Local().Format("2006-01-02 15:04:05"), s.Result)
	tw := tabwriter.NewWriter(v.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WAVE\tCLUSTER\tSTATE\tMOVED\tWINDOW\tLOST\tERRORS\tDURATION\tRUN\tDETAIL")
	for _, r := range s.Clusters {
		moved, window, lost, errs, dur, detail := "", "", "", "", "", r.Reason
		if o := r.Outcome; o != nil {
			if o.OldPrimary != "" || o.NewPrimary != "" {
				moved = orDash(o.OldPrimary) + " → " + orDash(o.NewPrimary)
			}
			window, lost, errs = windowText(o.Figures.WindowMS), countText(o.Figures.Lost), countText(o.Figures.Errors)
			dur = fmtDuration(time.Duration(o.DurationMS) * time.Millisecond)
			if r.State != fleet.StateDone && detail == "" {
				detail = fmt.Sprintf("exit %d", o.ExitCode)
				if o.Step != "" {
					detail += " at " + o.Step
				}
				if o.Error != "" {
					detail += ": " + oneLine(o.Why(), 90)
				}
			}
		}
		state := string(r.State)
		if r.Step != "" {
			state += fmt.Sprintf(" (%s, %s)", r.Step, fmtDuration(r.Elapsed))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Wave, r.Cluster, state, moved, window, lost, errs, dur, r.RunID, oneLine(detail, 100))
	}
	tw.Flush()
	if s.Halt != nil {
		fmt.Fprintf(v.w, "\nhalted by %s: %s\n", s.Halt.Cluster, s.Halt.Reason)
	}
	if s.WindowEnded != nil {
		fmt.Fprintf(v.w, "\n%s\n", s.WindowEnded.Message)
	}
}
