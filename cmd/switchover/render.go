package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

// humanView renders run events for a person: one block per step, the
// verdict of every check with what it saw, and one closing line that says
// what changed.
type humanView struct {
	w         io.Writer
	index     map[string]int
	total     int
	started   map[string]time.Time
	runStart  time.Time
	lastWait  map[string]time.Time
	dry       bool
	ponr      string
	finalLine string
	// At a terminal: waits show on one line rewritten in place, colour
	// marks verdicts (unless NO_COLOR is set), lines fit the width.
	tty      bool
	color    bool
	width    int
	spinning bool
	spin     int
	lastSpin time.Time
	lastOut  map[string]string // the last line each step's action printed
}

// terminal makes the view draw for a person at a terminal width wide.
func (h *humanView) terminal(width int, color bool) {
	h.tty, h.color, h.width = true, color, max(width, 40)
}

// fit fits a line of the plan's overview to the terminal's width: one
// line, cut after its last whole word that fits (the plan itself, `switchover
// plan`, shows every step whole).
func (h *humanView) fit(s string) string {
	if !h.tty {
		return s
	}
	return fitLabelled("", s, h.width, 1)
}

// paint colours s with an ANSI code when colour is on.
func (h *humanView) paint(code, s string) string {
	if !h.color {
		return s
	}
	return "\033[" + code + "m" + s + "\033[0m"
}

// unspin clears a wait line being rewritten, before anything else prints.
func (h *humanView) unspin() {
	if h.spinning {
		fmt.Fprint(h.w, "\r\033[K")
		h.spinning = false
	}
}

func newHumanView(w io.Writer) *humanView {
	return &humanView{w: w, index: map[string]int{}, started: map[string]time.Time{}, lastWait: map[string]time.Time{}, lastOut: map[string]string{}}
}

// waitEvery throttles "still waiting" lines on a scrolling output.
const waitEvery = 5 * time.Second

const pad = "      "

func (h *humanView) line(label, text string) { h.lineN(label, text, 0) }

// lineN prints a labelled line; at a terminal its text wraps under itself
// and takes maxLines lines at most (0: as many as it needs).
func (h *humanView) lineN(label, text string, maxLines int) {
	h.prefixed(pad+padLabel(label, 9)+" ", text, maxLines)
}

// prefixed prints text after prefix, fitted to the terminal.
func (h *humanView) prefixed(prefix, text string, maxLines int) {
	h.unspin()
	if !h.tty {
		fmt.Fprintln(h.w, prefix+text)
		return
	}
	fmt.Fprintln(h.w, fitLabelled(prefix, text, h.width, maxLines))
}

func (h *humanView) more(text string) { h.moreN(text, 0) }

func (h *humanView) moreN(text string, maxLines int) {
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		h.lineN("", l, maxLines)
	}
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// wait shows a check still waiting: at a terminal one line rewritten in
// place with a spinner, elsewhere a line every few seconds.
func (h *humanView) wait(e journal.Event) {
	clock := fmt.Sprintf(" (%s of %s)", ms(e.Check.ElapsedMS), ms(e.Check.WithinMS))
	text := fmt.Sprintf("%s: %s", e.Check.Describe, e.Check.Observed) + clock
	if h.tty {
		if e.Time.Sub(h.lastSpin) < 80*time.Millisecond && h.spinning {
			return
		}
		h.lastSpin = e.Time
		h.spin = (h.spin + 1) % len(spinner)
		fmt.Fprint(h.w, "\r\033[K"+h.spinLine(spinner[h.spin]+" waiting", e.Check.Describe+": "+e.Check.Observed, clock))
		h.spinning = true
		return
	}
	key := e.Step + "/" + e.Check.Describe
	if last, ok := h.lastWait[key]; ok && e.Time.Sub(last) < waitEvery {
		return
	}
	h.lastWait[key] = e.Time
	h.line("waiting", text)
}

// spinLine is the one line a wait rewrites in place: it must never wrap
// (the carriage return would then leave lines behind), and the elapsed time
// and the deadline stay visible, so the description is what gets cut.
func (h *humanView) spinLine(label, desc, clock string) string {
	head := fmt.Sprintf("%s%-9s ", pad, label)
	room := h.width - 1 - runeLen(head) - runeLen(clock)
	if room < 1 {
		return cutEnd(head+clock, h.width-1)
	}
	return head + cutEnd(desc, room) + clock
}

// Observe implements journal.Observer.
func (h *humanView) Observe(e journal.Event) {
	switch e.Type {
	case journal.EventRunStarted, journal.EventRunResumed:
		h.runStart, h.dry, h.ponr = e.Time, e.DryRun, e.Run.PointOfNoReturn
		for i, s := range e.Run.Steps {
			h.index[s] = i + 1
		}
		h.total = len(e.Run.Steps)
		verb := "run"
		switch {
		case e.Type == journal.EventRunResumed:
			verb = "resuming run"
		case e.DryRun:
			verb = "dry run"
		}
		fmt.Fprintf(h.w, "%s %s: runbook %s, cluster %s, by %s@%s\n", verb, e.RunID, e.Run.RunbookName, e.Run.Cluster, e.Run.User, e.Run.Host)
		if e.DryRun {
			fmt.Fprintf(h.w, "nothing will be changed: preconditions are evaluated, actions are only described\n")
		}
		if e.Run.PointOfNoReturn != "" && e.Type == journal.EventRunStarted {
			fmt.Fprintf(h.w, "point of no return: step %q (after it, no rollback)\n", e.Run.PointOfNoReturn)
		}
	case journal.EventClusters:
		for _, l := range clusterLines(e.Clusters, true) {
			h.prefixed("", l, 0)
		}
		if e.Message != "" {
			h.prefixed("", e.Message, 0)
		}
	case journal.EventSection:
		fmt.Fprintf(h.w, "\n== %s: %s\n", e.Section, e.Message)
	case journal.EventStep:
		h.step(e)
	case journal.EventCheck:
		h.check(e)
	case journal.EventWaiting:
		h.wait(e)
	case journal.EventApproval:
		a := e.Approval
		switch {
		case a.Granted && e.Phase == "settle":
			h.line("settled", fmt.Sprintf("%s by %s@%s (%s)", strings.TrimPrefix(a.Note, "settle: "), a.User, a.Host, a.How))
		case a.Granted && strings.HasPrefix(a.Note, "approved ahead"):
			h.line("approved", fmt.Sprintf("step %s too, ahead: by %s@%s (%s)", e.Step, a.User, a.Host, a.How))
		case a.Granted:
			h.line("approved", fmt.Sprintf("by %s@%s (%s)", a.User, a.Host, a.How))
		case a.How == "none":
			h.line("stopped", a.Note)
		default:
			h.line("declined", fmt.Sprintf("by %s@%s (%s) %s", a.User, a.Host, a.How, a.Note))
		}
	case journal.EventEffect:
		label := "action"
		if e.DryRun {
			label = "would run"
		}
		first, rest, _ := strings.Cut(e.Effect.Command, "\n")
		h.lineN(label, fmt.Sprintf("%s: %s", e.Effect.Node, first), commandLines)
		if rest != "" {
			h.moreN(rest, commandLines)
		}
	case journal.EventOutput:
		h.lastOut[e.Step] = e.Output
		h.unspin()
		h.prefixed(pad+strings.Repeat(" ", 9)+" | ", e.Output, 0)
	case journal.EventNote:
		h.line("note", e.Message)
	case journal.EventFact:
		v := e.Fact.Value
		if runeLen(v) > 120 { // a series (the canary's timeline): the report draws it
			v = fmt.Sprintf("(%d characters: in the journal, drawn by `switchover report`)", runeLen(v))
		}
		h.line("recorded", fmt.Sprintf("%s = %s", e.Fact.Key, v))
	case journal.EventRunSuspended:
		fmt.Fprintf(h.w, "\nsuspended: %s\n", e.Message)
	case journal.EventRunFinished:
		h.finish(e)
	}
}

func (h *humanView) step(e journal.Event) {
	switch e.State {
	case journal.StateChecking:
		h.started[e.Step] = e.Time
		h.header(e)
	case journal.StateAwaitingApproval:
		if _, ok := h.started[e.Step]; !ok { // asked ahead, before any step acts
			h.unspin()
			h.header(e)
			fmt.Fprintln(h.w, pad+"its approval is asked now, before the run's first action; the step itself runs in its turn")
		}
	case journal.StateRunning, journal.StateVerifying:
		if _, ok := h.started[e.Step]; !ok { // a resumed step
			h.started[e.Step] = e.Time
			h.header(e)
		}
	case journal.StateDone:
		text := ms(e.Time.Sub(h.started[e.Step]).Milliseconds())
		switch {
		case e.Message != "":
			text += ": " + e.Message
		case h.lastOut[e.Step] != "":
			text += ": " + h.lastOut[e.Step] // what changed, in the action's own words
		}
		h.line(h.paint("32", "done"), text)
	case journal.StateFailed:
		h.line(h.paint("1;31", "FAILED"), fmt.Sprintf("%s: %s", e.Phase, e.Error))
		if e.Phase == "requires" {
			h.more("this step changed nothing")
		}
	case journal.StateSkipped:
		if !h.dry {
			h.line("skipped", e.Message)
		}
	}
	if e.Step == h.ponr && (e.State == journal.StateDone || (h.dry && e.State == journal.StateSkipped)) {
		fmt.Fprintf(h.w, "\n---- point of no return: from here on, no rollback; a failure is repaired forward or finished by hand ----\n")
	}
}

func (h *humanView) header(e journal.Event) {
	where := ""
	if e.Section == spec.SectionSteps || e.Section == "" {
		if i := h.index[e.Step]; i > 0 {
			where = fmt.Sprintf("[%d/%d] ", i, h.total)
		}
	} else {
		where = fmt.Sprintf("[%s] ", e.Section)
	}
	fmt.Fprintf(h.w, "\n%s%s\n", where, e.Step)
}

func (h *humanView) check(e journal.Event) {
	c := e.Check
	if c.NotEvaluated != "" {
		h.lineN(e.Phase, fmt.Sprintf("-     %s (not evaluated: %s)", c.Describe, c.NotEvaluated), describeLines)
		return
	}
	verdict := h.paint("1;31", fmt.Sprintf("%-5s", strings.ToUpper(c.Status)))
	if c.Status == "pass" {
		verdict = h.paint("32", "pass ")
	}
	h.lineN(e.Phase, fmt.Sprintf("%s %s", verdict, c.Describe), describeLines)
	if c.Status != "pass" {
		if c.Observed != "" {
			h.more("saw:  " + c.Observed)
		}
		if c.Wanted != "" {
			h.more("want: " + c.Wanted)
		}
		if c.Detail != "" {
			h.more(c.Detail)
		}
	}
}

func (h *humanView) finish(e journal.Event) {
	took := ms(e.Time.Sub(h.runStart).Milliseconds())
	switch e.Outcome {
	case journal.OutcomeDone:
		h.finalLine = fmt.Sprintf("done in %s; %s", took, e.Message)
	case journal.OutcomeDryRun:
		h.finalLine = fmt.Sprintf("%s (%s)", e.Message, took)
	default:
		h.finalLine = fmt.Sprintf("%s at step %q after %s; %s", e.Outcome, e.Step, took, e.Message)
	}
	final := h.finalLine
	if h.tty {
		final = strings.Join(fitText(final, h.width, 0), "\n")
	}
	fmt.Fprintf(h.w, "\n%s\n", final)
}

// ms renders milliseconds for a person: 850ms, 1.2s, 2m05s.
func ms(v int64) string {
	d := time.Duration(v) * time.Millisecond
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", v)
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// planOverview prints what a run will do before it starts, for a person at
// a terminal: every step with the node it acts on, the checks that gate it,
// the destructive steps marked, the point of no return, the recovery
// sections.
func planOverview(w io.Writer, p *spec.Plan, fit func(string) string) {
	t := &cluster.Target{Cluster: p.Cluster, Facts: &cluster.Facts{}}
	destructive := 0
	for _, s := range p.Steps {
		if s.Destructive {
			destructive++
		}
	}
	fmt.Fprintf(w, "plan: %s on cluster %s: %d steps, %d destructive (marked !)\n", p.Runbook.Name, p.LockName, len(p.Steps), destructive)
	for i, s := range p.Steps {
		mark := " "
		if s.Destructive {
			mark = "!"
		}
		what := "checks only"
		if s.Action != nil {
			what = fmt.Sprintf("%s on %s", s.ActionKind, s.Action.Describe(t).Node)
		}
		line := fmt.Sprintf("%s %2d  %-22s %s", mark, i+1, s.Name, what)
		if len(s.Requires) > 0 {
			kinds := make([]string, len(s.Requires))
			for j, c := range s.Requires {
				kinds[j] = c.Kind
			}
			if len(kinds) > 3 {
				line += fmt.Sprintf("; gated by %d checks: %s", len(kinds), strings.Join(kinds, ", "))
			} else {
				line += "; gated by " + strings.Join(kinds, ", ")
			}
		}
		fmt.Fprintln(w, fit(line))
		if s.PointOfNoReturn {
			fmt.Fprintln(w, fit("    ---- point of no return: after this step, no rollback ----"))
		}
	}
	for _, sec := range p.Runbook.Rollback {
		fmt.Fprintln(w, fit(fmt.Sprintf("  rollback %s: %s", sec.Name, stepNames(p.Rollback[sec.Name]))))
	}
	for _, sec := range p.Runbook.Repair {
		fmt.Fprintln(w, fit(fmt.Sprintf("  repair %s: %s", sec.Name, stepNames(p.Repair[sec.Name]))))
	}
	if len(p.Finally) > 0 {
		fmt.Fprintln(w, fit("  finally (always): "+stepNames(p.Finally)))
	}
	fmt.Fprintln(w)
}

func stepNames(list []*spec.Step) string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.Name
	}
	return strings.Join(out, ", ")
}
