package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/internal/fleet"
)

// fleetReportOpts are the flags of fleet report, beside the fleet's.
type fleetReportOpts struct {
	fleetOpts
	format   string
	out      string
	fleetRun string
}

func newFleetReportCmd(io *streams, g *globalOpts) *cobra.Command {
	opts := &fleetReportOpts{fleetOpts: fleetOpts{g: g, logFormat: "human"}}
	cmd := &cobra.Command{
		Use:   "report FLEET",
		Short: "Write a fleet run's report for a change ticket: every cluster, the totals, the halt, a chart of the windows",
		Long: `Report reads the fleet's last run (or --fleet-run ID) from its journal and writes one
report: the fleet file and its digest, who ran it and when, the waves, limits and halt
rules; one row per cluster in wave order (outcome, primary → candidate, client window,
commits lost, client errors, duration, and the run id whose own 'switchover report'
has the details); the totals; the halt, if any; and a chart of the client windows,
one bar per cluster in the order they ran, the halt's window_over drawn as a line.

Markdown goes to stdout, or to -o FILE with the chart written beside it as FILE's
name with .svg; --format html writes one self-contained page with the chart inline.`,
		Args: exactArgs(1, "a FLEET file"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.file = args[0]
			return runFleetReport(c.Context(), io, opts)
		},
	}
	opts.addSelect(cmd)
	cmd.Flags().StringVar(&opts.format, "format", "markdown", "markdown, or html (one page, the chart inline)")
	cmd.Flags().StringVarP(&opts.out, "out", "o", "", "write the report to `FILE` (Markdown: the chart beside it, as FILE's name with .svg)")
	cmd.Flags().StringVar(&opts.fleetRun, "fleet-run", "", "the fleet run `ID` to report; default the last")
	return cmd
}

func runFleetReport(ctx context.Context, io *streams, opts *fleetReportOpts) error {
	if opts.format != "markdown" && opts.format != "html" {
		return usagef("--format %q: want markdown or html", opts.format)
	}
	d, _, err := fleetDriver(ctx, io, &opts.fleetOpts)
	if err != nil {
		return err
	}
	rep, err := d.Report(opts.fleetRun)
	switch {
	case errors.Is(err, fleet.ErrNothing):
		return usagef("fleet %s has no run in %s", d.Fleet.Name, opts.g.journalDir)
	case errors.Is(err, os.ErrNotExist):
		return usagef("fleet %s has no run %s in %s", d.Fleet.Name, opts.fleetRun, opts.g.journalDir)
	case err != nil:
		return err
	}
	var b strings.Builder
	if opts.format == "html" {
		if err := writeFleetHTML(&b, rep); err != nil {
			return err
		}
		if opts.out == "" {
			_, err := fmt.Fprint(io.out, b.String())
			return err
		}
		if err := os.WriteFile(opts.out, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("fleet report: %w", err)
		}
		fmt.Fprintf(io.out, "%s\nhtml: %s\n", fleetHeadline(rep), opts.out)
		return nil
	}
	if opts.out == "" {
		writeFleetMarkdown(&b, rep, "")
		_, err := fmt.Fprint(io.out, b.String())
		return err
	}
	svgPath := strings.TrimSuffix(opts.out, filepath.Ext(opts.out)) + ".svg"
	if svgPath == opts.out {
		svgPath = opts.out + ".svg"
	}
	var svg strings.Builder
	writeFleetSVG(&svg, rep)
	if err := os.WriteFile(svgPath, []byte(svg.String()), 0o644); err != nil {
		return fmt.Errorf("fleet report: %w", err)
	}
	writeFleetMarkdown(&b, rep, filepath.Base(svgPath))
	if err := os.WriteFile(opts.out, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("fleet report: %w", err)
	}
	fmt.Fprintf(io.out, "%s\nreport: %s\nchart of the client windows: %s\n", fleetHeadline(rep), opts.out, svgPath)
	return nil
}

// fleetHeadline is a fleet report's answer in one line: how many
// clusters ended how, and the halt.
func fleetHeadline(r *fleet.Report) string {
	s := fmt.Sprintf("Fleet %s: %s", r.Fleet, countsText(r.Totals))
	switch {
	case r.Finished != nil:
		s += "; the fleet run ended " + r.Finished.Result
	default:
		s += "; the fleet run has not finished (killed, or still running)"
	}
	if n := len(r.Halts); n > 0 {
		h := r.Halts[n-1]
		s += fmt.Sprintf("; halted by %s: %s", h.Cluster, h.Reason)
	}
	return s
}

// fleetStateOrder is the order the counts of states are said in.
var fleetStateOrder = []fleet.State{fleet.StateDone, fleet.StateFailed, fleet.StateRefused, fleet.StateDeclined, fleet.StateLocked,
	fleet.StateSkipped, fleet.StateHalted, fleet.StateRunning, fleet.StateStarting, fleet.StatePending}

// countsText says how many clusters ended how: "3 of 4 clusters done, 1 skipped".
func countsText(t fleet.ReportTotals) string {
	var parts []string
	seen := map[fleet.State]bool{}
	for _, st := range fleetStateOrder {
		seen[st] = true
		if n := t.ByState[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	for _, st := range slices.Sorted(maps.Keys(t.ByState)) {
		if !seen[st] && t.ByState[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", t.ByState[st], st))
		}
	}
	if len(parts) == 0 {
		return "no clusters"
	}
	if t.ByState[fleet.StateDone] > 0 {
		parts[0] = fmt.Sprintf("%d of %d clusters done", t.ByState[fleet.StateDone], t.Clusters)
	} else {
		parts[0] = fmt.Sprintf("%d clusters: %s", t.Clusters, parts[0])
	}
	return strings.Join(parts, ", ")
}

// fleetOutcome is a row's outcome in words: the state, why a cluster was
// skipped, and where and why a run that did not finish done stopped.
func fleetOutcome(row fleet.ReportRow) string {
	s := string(row.State)
	switch {
	case row.Reason != "":
		s += ": " + row.Reason
	case row.State == fleet.StateHalted:
		s += ": not started after the halt"
	case row.Outcome != nil && row.State != fleet.StateDone:
		s += fmt.Sprintf(" (exit %d", row.Outcome.ExitCode)
		if row.Outcome.Step != "" {
			s += " at " + row.Outcome.Step
		}
		s += ")"
		if row.Outcome.Error != "" {
			s += ": " + row.Outcome.Why()
		}
	}
	if row.Halted {
		s += " — halted the fleet"
	}
	return s
}

// fleetMoved is a row's primary → candidate, or "".
func fleetMoved(o *fleet.Outcome) string {
	if o == nil || (o.OldPrimary == "" && o.NewPrimary == "") {
		return ""
	}
	return orDash(o.OldPrimary) + " → " + orDash(o.NewPrimary)
}

// fleetFigures are a row's window, lost, errors and duration, "" when
// the run did not say.
func fleetFigures(o *fleet.Outcome) (window, lost, errs, took string) {
	if o == nil {
		return "", "", "", ""
	}
	window, lost, errs = windowText(o.Figures.WindowMS), countText(o.Figures.Lost), countText(o.Figures.Errors)
	if o.DurationMS > 0 {
		took = ms(o.DurationMS)
	}
	return window, lost, errs, took
}

// selectionText is a label selection as --select flags say it: dc=a, tier=gold.
func selectionText(sel map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		parts = append(parts, k+"="+sel[k])
	}
	return strings.Join(parts, ", ")
}

// fleetHeader is the fields of a fleet report's header, in order.
func fleetHeader(r *fleet.Report) [][2]string {
	var rows [][2]string
	row := func(k, v string) { rows = append(rows, [2]string{k, v}) }
	row("fleet", r.Fleet)
	row("fleet run", r.FleetRun)
	row("fleet file", r.File)
	digest := "sha256:" + r.Digest
	if r.FileChanged {
		digest += " (the file has changed since: limits and halt rules below are its current ones)"
	}
	row("file digest", digest)
	row("playbook", r.Playbook)
	if r.Key != r.Fleet {
		row("key", r.Key)
	}
	if len(r.Select) > 0 {
		row("selection", selectionText(r.Select)+" (only these clusters took part)")
	}
	row("started by", r.StartedBy)
	row("started", reportStamp(r.Started))
	for _, rs := range r.Resumes {
		row("resumed", fmt.Sprintf("by %s@%s at %s", rs.User, rs.Host, reportStamp(rs.Time)))
	}
	if f := r.Finished; f != nil {
		row("finished", fmt.Sprintf("%s, %s after the start: %s", reportStamp(f.Time), ms(f.Time.Sub(r.Started).Milliseconds()), f.Result))
	} else {
		row("finished", "not yet (killed, or still running: `switchover fleet status` tells)")
	}
	var waves []string
	for _, w := range r.Waves {
		waves = append(waves, fmt.Sprintf("%s (%d)", w.Name, len(w.Clusters)))
	}
	row("waves", strings.Join(waves, ", "))
	row("limits", r.Limits.String())
	row("halt rules", r.Halt.String())
	return rows
}

// fleetTotals are the totals' lines.
func fleetTotals(r *fleet.Report) []string {
	t := r.Totals
	lines := []string{countsText(t)}
	if t.LostMeasured > 0 {
		lines = append(lines, fmt.Sprintf("acknowledged commits lost: %d in all (%d run%s measured)", t.Lost, t.LostMeasured, plural(t.LostMeasured)))
	} else {
		lines = append(lines, "acknowledged commits lost: not measured by any run")
	}
	if t.Windows > 0 {
		lines = append(lines, fmt.Sprintf("client window: min %s, median %s, max %s (%d run%s measured)",
			windowText(&t.WindowMin), windowText(&t.WindowMedian), windowText(&t.WindowMax), t.Windows, plural(t.Windows)))
	} else {
		lines = append(lines, "client window: not measured by any run")
	}
	return lines
}

// haltText says a halt and who acknowledged it.
func haltText(h fleet.ReportHalt) string {
	s := fmt.Sprintf("halted by %s at %s: %s", h.Cluster, reportStamp(h.Time), h.Reason)
	if h.AcknowledgedBy != "" {
		s += fmt.Sprintf("; acknowledged by %s at %s", h.AcknowledgedBy, reportStamp(h.Acknowledged))
	} else {
		s += "; not acknowledged: no new cluster starts until `switchover fleet resume`"
	}
	return s
}

// writeFleetMarkdown renders a fleet report for a change ticket; svgName
// is the chart written beside it, or "".
func writeFleetMarkdown(w *strings.Builder, r *fleet.Report, svgName string) {
	fmt.Fprintf(w, "# Fleet %s: run %s\n\n", r.Fleet, r.FleetRun)
	fmt.Fprintf(w, "**%s**\n\n", mdLine(fleetHeadline(r)))
	h := &mdTable{head: []string{"field", "value"}}
	for _, kv := range fleetHeader(r) {
		h.rows = append(h.rows, kv[:])
	}
	h.write(w)
	fmt.Fprintf(w, "\n## Clusters\n\n")
	t := &mdTable{head: []string{"wave", "cluster", "outcome", "primary → candidate", "window", "lost", "errors", "duration", "run"},
		right: []bool{false, false, false, false, true, true, true, true, false}}
	for _, row := range r.Clusters {
		window, lost, errs, took := fleetFigures(row.Outcome)
		t.rows = append(t.rows, []string{row.Wave, row.Cluster, fleetOutcome(row), fleetMoved(row.Outcome), window, lost, errs, took, row.RunID})
	}
	t.write(w)
	fmt.Fprintf(w, "\nEach run's own report: `switchover report RUN_ID`.\n")
	fmt.Fprintf(w, "\n## Totals\n\n")
	for _, l := range fleetTotals(r) {
		fmt.Fprintf(w, "- %s\n", mdLine(l))
	}
	if len(r.Halts) > 0 {
		fmt.Fprintf(w, "\n## Halt\n\n")
		for _, hl := range r.Halts {
			fmt.Fprintf(w, "- %s\n", mdLine(haltText(hl)))
		}
	}
	fmt.Fprintf(w, "\n## Client windows\n\n")
	if svgName != "" {
		fmt.Fprintf(w, "![the client window of each cluster, in the order they ran](%s)\n", svgName)
	} else {
		fmt.Fprintf(w, "The chart of the client windows is written beside the report with `-o FILE.md`, or inline with `--format html`.\n")
	}
}
