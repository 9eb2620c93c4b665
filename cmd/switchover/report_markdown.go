package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

// writeMarkdownReport renders a report for a change ticket: the answer in
// one line, the picture of the window (svgName, when one was written
// beside it), a header table, the topology before and after, the steps at
// a glance, each step's timeline, the canary's figures, and the outcome.
func writeMarkdownReport(w *strings.Builder, r *journal.Report, svgName string) {
	kind := "Run"
	if r.DryRun {
		kind = "Dry run"
	}
	fmt.Fprintf(w, "# %s %s: %s on %s\n\n", kind, r.RunID, r.Runbook.Name, r.Cluster)
	fmt.Fprintf(w, "**%s**\n\n", mdLine(r.Headline))
	if svgName != "" {
		fmt.Fprintf(w, "![the window: canary commits over time, the pause and each step](%s)\n\n", svgName)
	}
	writeHeader(w, r)
	if rows := topologyRows(r); len(rows) > 0 {
		fmt.Fprintf(w, "\n## Topology\n\n")
		t := &mdTable{head: []string{"node", "before", "after"}}
		for _, row := range rows {
			t.rows = append(t.rows, []string{row.Name, row.Before, row.After})
		}
		t.write(w)
	}
	if len(r.Vars) > 0 {
		writeVars(w, r)
	}
	writeStepTable(w, r)
	writeStepDetails(w, r)
	if r.Canary != nil {
		writeCanary(w, r)
	}
	writeOutcome(w, r)
}

func writeHeader(w *strings.Builder, r *journal.Report) {
	t := &mdTable{head: []string{"field", "value"}}
	row := func(k, v string) { t.rows = append(t.rows, []string{k, v}) }
	row("run", r.RunID)
	row("runbook", r.Runbook.Name)
	row("runbook file", r.Runbook.File)
	row("runbook digest", "sha256:"+r.Runbook.Digest)
	if r.Inventory != "" {
		row("inventory", r.Inventory)
		if r.InventoryDigest != "" {
			row("inventory digest", "sha256:"+r.InventoryDigest)
		}
	}
	row("cluster", r.Cluster)
	row("started by", r.StartedBy)
	row("started", reportStamp(r.Started))
	for _, s := range r.Suspensions {
		text := fmt.Sprintf("at %s (%s)", reportStamp(s.Time), reportOffset(s.AtMS))
		if s.Step != "" {
			text += ", before step " + s.Step
		}
		row("suspended", text)
	}
	for _, rs := range r.Resumes {
		row("resumed", fmt.Sprintf("by %s@%s at %s (%s)", rs.User, rs.Host, reportStamp(rs.Time), reportOffset(rs.AtMS)))
	}
	if r.Finished != nil {
		row("finished", reportStamp(*r.Finished))
		row("duration", ms(r.DurationMS))
	} else {
		row("finished", "not yet: the journal ends at "+reportStamp(r.LastEvent))
		row("duration", ms(r.DurationMS)+" so far")
	}
	row("outcome", string(r.Outcome))
	row("dry run", yesNo(r.DryRun))
	if p := r.PointOfNoReturn; p != nil {
		switch {
		case p.Passed:
			row("point of no return", fmt.Sprintf("step %s: passed at %s (%s)", p.Step, reportStamp(*p.PassedAt), reportOffset(p.AtMS)))
		case r.DryRun:
			row("point of no return", fmt.Sprintf("step %s: not reached (dry run)", p.Step))
		default:
			row("point of no return", fmt.Sprintf("step %s: not passed", p.Step))
		}
	} else {
		row("point of no return", "none in this runbook")
	}
	t.write(w)
}

func writeVars(w *strings.Builder, r *journal.Report) {
	given := map[string]bool{}
	for _, v := range r.VarFlags {
		given[v] = true
	}
	names := make([]string, 0, len(r.Vars))
	for k := range r.Vars {
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\n## Variables\n\n")
	t := &mdTable{head: []string{"variable", "value", "from"}}
	for _, k := range names {
		from := "runbook or inventory"
		switch {
		case given[k]:
			from = "--var"
		case k == "cluster":
			from = "the cluster's name"
		}
		t.rows = append(t.rows, []string{k, r.Vars[k], from})
	}
	t.write(w)
}

func writeStepTable(w *strings.Builder, r *journal.Report) {
	fmt.Fprintf(w, "\n## Steps\n\n")
	t := &mdTable{head: []string{"#", "step", "section", "start", "duration", "state"}, right: []bool{true, false, false, true, true, false}}
	for _, s := range r.Steps {
		start, took := "-", "-"
		if s.Started != nil {
			start, took = reportOffset(s.StartMS), ms(s.DurationMS)
		}
		t.rows = append(t.rows, []string{reportStepNumber(s), reportStepName(s), string(s.Section), start, took, reportStepState(s, r.DryRun)})
	}
	t.write(w)
}

func reportStepNumber(s journal.ReportStep) string {
	if s.Index > 0 {
		return fmt.Sprint(s.Index)
	}
	return ""
}

func reportStepName(s journal.ReportStep) string {
	if s.PointOfNoReturn {
		return s.Name + " (point of no return)"
	}
	return s.Name
}

// stepState says where a step ended, in the words of the run.
func reportStepState(s journal.ReportStep, dry bool) string {
	switch {
	case s.State == journal.StatePending && dry:
		return "shown, not run"
	case s.State == journal.StatePending:
		return "not run"
	case s.State == journal.StateSkipped && dry:
		return "not run (dry run)"
	case s.State == journal.StateFailed && s.Failure != nil && s.Failure.Phase != "":
		return fmt.Sprintf("failed (%s)", s.Failure.Phase)
	case s.State == journal.StateSkipped && s.Failure != nil:
		return "skipped (declined)"
	case s.State != journal.StateDone && s.State != journal.StateFailed && s.State != journal.StateSkipped:
		return string(s.State) + " (cut off)"
	case s.State == journal.StateDone && s.Unchanged:
		return "done (nothing to do)"
	}
	return string(s.State)
}

// factText is a fact's value as the report shows it: the canary's
// timeline, which the picture draws, in a few words.
func factText(f journal.ReportFact) string {
	if f.Key == journal.FactCanaryTimeline {
		return fmt.Sprintf("(%d numbers: commits over time, drawn in the picture of the window)", strings.Count(f.Value, ",")+1)
	}
	return f.Value
}

// reportLine is one line of a step's timeline.
type reportLine struct {
	at   time.Time
	rank int // orders lines recorded at the same instant
	text string
}

func writeStepDetails(w *strings.Builder, r *journal.Report) {
	fmt.Fprintf(w, "\n## Step details\n")
	sections := map[spec.Section][]journal.ReportSection{}
	for _, sec := range r.Sections {
		sections[sec.Section] = append(sections[sec.Section], sec)
	}
	var cur spec.Section = spec.SectionSteps
	for _, s := range r.Steps {
		if s.Section != cur {
			cur = s.Section
			for _, sec := range sections[cur] {
				fmt.Fprintf(w, "\n> **%s** started at %s (%s): %s\n", sec.Section, reportOffset(sec.AtMS), reportStamp(sec.Time), sec.Message)
				if sec.Error != "" {
					fmt.Fprintf(w, ">\n> cause: %s\n", mdLine(sec.Error))
				}
			}
		}
		writeStep(w, r, s)
	}
}

func writeStep(w *strings.Builder, r *journal.Report, s journal.ReportStep) {
	title := s.Name
	switch {
	case s.Index > 0:
		title = fmt.Sprintf("%d. %s", s.Index, s.Name)
	case s.Section != spec.SectionSteps:
		title = fmt.Sprintf("[%s] %s", s.Section, s.Name)
	}
	fmt.Fprintf(w, "\n### %s — %s\n\n", title, reportStepState(s, r.DryRun))
	final := s.State == journal.StateDone || s.State == journal.StateFailed || s.State == journal.StateSkipped
	switch {
	case s.Started != nil && r.DryRun:
		fmt.Fprintf(w, "Shown at %s (%s).", reportOffset(s.StartMS), reportStamp(*s.Started))
	case s.Started != nil && final && s.ApprovalWaitMS > 0:
		fmt.Fprintf(w, "Started at %s (%s), took %s, not counting the %s it waited for approval.", reportOffset(s.StartMS), reportStamp(*s.Started), ms(s.DurationMS), ms(s.ApprovalWaitMS))
	case s.Started != nil && final:
		fmt.Fprintf(w, "Started at %s (%s), took %s.", reportOffset(s.StartMS), reportStamp(*s.Started), ms(s.DurationMS))
	case s.Started != nil:
		fmt.Fprintf(w, "Started at %s (%s); the journal's last word on it came %s later.", reportOffset(s.StartMS), reportStamp(*s.Started), ms(s.DurationMS))
	default:
		fmt.Fprintf(w, "Never started.")
	}
	if s.PointOfNoReturn {
		fmt.Fprintf(w, " This is the point of no return: once it is done, no rollback.")
	}
	if s.Message != "" {
		fmt.Fprintf(w, " %s.", strings.TrimSuffix(upperFirst(s.Message), "."))
	}
	fmt.Fprintln(w)
	var lines []reportLine
	add := func(at time.Time, rank int, text string) { lines = append(lines, reportLine{at, rank, text}) }
	for _, c := range s.Checks {
		rank := 0
		if c.Phase == "ensures" {
			rank = 4
		}
		add(c.Time, rank, checkItem(r, c))
	}
	for _, a := range s.Approvals {
		add(a.Time, 1, approvalItem(a))
	}
	for _, a := range s.Actions {
		add(a.Time, 2, actionItem(r, a))
	}
	if len(s.Output) > 0 {
		t := time.Time{}
		if s.Started != nil {
			t = *s.Started
		}
		add(t, 2, "- output:\n"+mdFence("  ", strings.Join(s.Output, "\n")))
	}
	for _, f := range s.Facts {
		add(f.Time, 3, fmt.Sprintf("- fact recorded at %s: %s = %s", reportOffset(ms64(r, f.Time)), f.Key, factText(f)))
	}
	for _, n := range s.Notes {
		add(n.Time, 5, fmt.Sprintf("- note at %s: %s", reportOffset(ms64(r, n.Time)), mdLine(n.Message)))
	}
	sort.SliceStable(lines, func(i, j int) bool {
		if !lines[i].at.Equal(lines[j].at) {
			return lines[i].at.Before(lines[j].at)
		}
		return lines[i].rank < lines[j].rank
	})
	if len(lines) > 0 {
		fmt.Fprintln(w)
	}
	for _, l := range lines {
		fmt.Fprintln(w, l.text)
	}
	if f := s.Failure; f != nil {
		phase := f.Phase
		if phase == "" {
			phase = "step"
		}
		fmt.Fprintf(w, "\n**Failed** (%s): %s\n", phase, mdLine(f.Error))
		if f.Phase == "requires" {
			fmt.Fprintf(w, "\nA precondition failed: this step changed nothing.\n")
		}
	}
}

func ms64(r *journal.Report, t time.Time) int64 { return t.Sub(r.Started).Milliseconds() }

func checkItem(r *journal.Report, c journal.ReportCheck) string {
	var b strings.Builder
	status := c.Status
	if c.NotEvaluated != "" {
		status = "not evaluated"
	} else if c.Status != "pass" {
		status = "**" + strings.ToUpper(c.Status) + "**"
	}
	fmt.Fprintf(&b, "- %s · %s · %s: %s", c.Phase, status, c.Kind, mdLine(c.Describe))
	var extra []string
	if c.NotEvaluated == "" {
		extra = append(extra, "at "+reportOffset(ms64(r, c.Time)), "took "+ms(c.ElapsedMS))
	}
	if c.Attempts > 1 {
		extra = append(extra, fmt.Sprintf("%d attempts", c.Attempts))
	}
	if c.WithinMS > 0 {
		extra = append(extra, "within "+ms(c.WithinMS))
	}
	if len(extra) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(extra, ", "))
	}
	if c.NotEvaluated != "" {
		fmt.Fprintf(&b, "\n  - not evaluated: %s", mdLine(c.NotEvaluated))
	}
	if c.Observed != "" {
		fmt.Fprintf(&b, "\n  - observed: %s", mdLine(c.Observed))
	}
	if c.Wanted != "" {
		fmt.Fprintf(&b, "\n  - wanted: %s", mdLine(c.Wanted))
	}
	if c.Detail != "" {
		fmt.Fprintf(&b, "\n  - detail:\n%s", mdFence("    ", c.Detail))
	}
	return b.String()
}

func approvalItem(a journal.ReportApproval) string {
	who := fmt.Sprintf("%s@%s", a.User, a.Host)
	var text string
	switch {
	case a.Phase == "settle":
		text = fmt.Sprintf("- settled by %s (%s) at %s (%s)", who, a.How, reportOffset(a.AtMS), reportStamp(a.Time))
	case a.Granted:
		text = fmt.Sprintf("- approval granted by %s (%s) at %s (%s)", who, a.How, reportOffset(a.AtMS), reportStamp(a.Time))
	case a.How == "none":
		text = fmt.Sprintf("- approval **not given**: nobody could be asked (%s) at %s (%s)", who, reportOffset(a.AtMS), reportStamp(a.Time))
	default:
		text = fmt.Sprintf("- approval **declined** by %s (%s) at %s (%s)", who, a.How, reportOffset(a.AtMS), reportStamp(a.Time))
	}
	if a.Note != "" {
		text += ": " + mdLine(a.Note)
	}
	return text
}

func actionItem(r *journal.Report, a journal.ReportAction) string {
	var b strings.Builder
	verb := "action"
	if r.DryRun {
		verb = "would run"
	}
	fmt.Fprintf(&b, "- %s on %s at %s:\n%s", verb, a.Node, reportOffset(a.AtMS), mdFence("  ", a.Command))
	if a.Changes != "" {
		fmt.Fprintf(&b, "\n  changes: %s", mdLine(a.Changes))
	}
	if len(a.Output) > 0 {
		fmt.Fprintf(&b, "\n  output:\n%s", mdFence("  ", strings.Join(a.Output, "\n")))
	}
	return b.String()
}

func writeCanary(w *strings.Builder, r *journal.Report) {
	c := r.Canary
	fmt.Fprintf(w, "\n## Canary writes\n\n")
	if c.Endpoint != "" {
		fmt.Fprintf(w, "A canary writer committed through %s during the run.\n\n", c.Endpoint)
	}
	num := func(p *int64) string {
		if p == nil {
			return "not recorded"
		}
		return fmt.Sprint(*p)
	}
	gap := "not recorded"
	if c.LongestGapMS != nil {
		gap = gapText(*c.LongestGapMS)
		if c.GapFrom != "" || c.GapTo != "" {
			gap += fmt.Sprintf(", from %s to %s", canaryTime(r, c.GapFrom), canaryTime(r, c.GapTo))
		}
	}
	lost := num(c.Lost)
	switch {
	case c.Lost != nil && *c.Lost == 0:
		lost = "none"
	case len(c.LostIDs) > 0:
		lost += ": ids " + strings.Join(c.LostIDs, ", ")
	}
	t := &mdTable{head: []string{"figure", "value"}}
	t.rows = [][]string{
		{"commits acknowledged", num(c.Acked)},
		{"client errors", num(c.Errors)},
		{"longest write gap", gap},
		{"lost commits", lost},
	}
	for _, u := range c.Unreadable {
		t.rows = append(t.rows, []string{"unreadable figure", u})
	}
	t.write(w)
}

// gapText renders the canary's longest write gap: 267.2ms, 1.3s.
func gapText(v float64) string {
	if v < 1000 {
		return strconv.FormatFloat(v, 'f', -1, 64) + "ms"
	}
	return ms(int64(v + 0.5))
}

// canaryTime shows a recorded time as a clock time and its offset into
// the run when it is RFC 3339, and as recorded otherwise.
func canaryTime(r *journal.Report, v string) string {
	if v == "" {
		return "?"
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return v
	}
	return fmt.Sprintf("%s (%s)", reportStamp(t), reportOffset(ms64(r, t)))
}

func writeOutcome(w *strings.Builder, r *journal.Report) {
	fmt.Fprintf(w, "\n## Outcome\n\n")
	switch r.Outcome {
	case journal.OutcomeDone, journal.OutcomeDryRun:
		fmt.Fprintf(w, "**%s** after %s.\n", r.Outcome, ms(r.DurationMS))
	case journal.OutcomeSuspended:
		fmt.Fprintf(w, "**suspended** after %s: the run stopped at a safe point and waits for `switchover resume %s`.\n", ms(r.DurationMS), r.RunID)
	case journal.OutcomeUnfinished:
		fmt.Fprintf(w, "**unfinished**: the journal ends %s after the start without an outcome (the run was killed, or is still running); `switchover runs` tells which.\n", ms(r.DurationMS))
	default:
		at := ""
		if r.Failure != nil && r.Failure.Step != "" {
			at = fmt.Sprintf(" at step %s", r.Failure.Step)
		}
		fmt.Fprintf(w, "**%s**%s after %s.\n", r.Outcome, at, ms(r.DurationMS))
	}
	if f := r.Failure; f != nil {
		phase := ""
		if f.Phase != "" {
			phase = " (" + f.Phase + ")"
		}
		fmt.Fprintf(w, "\nError%s: %s\n", phase, mdLine(f.Error))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nNote at %s: %s\n", reportOffset(ms64(r, n.Time)), mdLine(n.Message))
	}
	for _, f := range r.Facts {
		fmt.Fprintf(w, "\nFact recorded at %s: %s = %s\n", reportOffset(ms64(r, f.Time)), f.Key, f.Value)
	}
	if r.Summary != "" {
		fmt.Fprintf(w, "\nSummary: %s\n", mdLine(r.Summary))
	}
}

// mdTable is a Markdown table whose columns are padded to line up, so it
// reads as well in a plain-text ticket as rendered.
type mdTable struct {
	head  []string
	right []bool // right-align this column
	rows  [][]string
}

func (t *mdTable) write(w io.Writer) {
	width := make([]int, len(t.head))
	cells := func(row []string) []string {
		out := make([]string, len(t.head))
		for i := range out {
			if i < len(row) {
				out[i] = strings.ReplaceAll(mdLine(row[i]), "|", `\|`)
			}
		}
		return out
	}
	all := [][]string{cells(t.head)}
	for _, r := range t.rows {
		all = append(all, cells(r))
	}
	for _, r := range all {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c), 3)
		}
	}
	line := func(r []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i < len(t.right) && t.right[i] {
				b.WriteString(" " + pad + c + " |")
			} else {
				b.WriteString(" " + c + pad + " |")
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(all[0])
	var sep strings.Builder
	sep.WriteString("|")
	for i, wd := range width {
		if i < len(t.right) && t.right[i] {
			sep.WriteString(strings.Repeat("-", wd+1) + ":|")
		} else {
			sep.WriteString(strings.Repeat("-", wd+2) + "|")
		}
	}
	fmt.Fprintln(w, sep.String())
	for _, r := range all[1:] {
		line(r)
	}
}

// mdFence puts text in a fenced code block indented by indent, with a fence
// longer than any run of backticks inside.
func mdFence(indent, text string) string {
	f := "```"
	for strings.Contains(text, f) {
		f += "`"
	}
	var b strings.Builder
	b.WriteString("\n" + indent + f + "\n")
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString(indent + l + "\n")
	}
	b.WriteString(indent + f)
	return b.String()
}

// mdLine keeps a value on its line: a table cell or list item.
func mdLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return strings.Join(strings.Split(s, "\n"), " ⏎ ")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// reportStamp is an absolute time in a report: UTC, to the millisecond.
func reportStamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 UTC") }

// reportOffset is a time since the run started: +850ms, +1.2s, +2m05s.
func reportOffset(v int64) string {
	if v < 0 {
		return "-" + ms(-v)
	}
	return "+" + ms(v)
}
