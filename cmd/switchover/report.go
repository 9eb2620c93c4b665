package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/internal/secret"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

type reportOpts struct {
	g      *globalOpts
	format string
	out    string // write the Markdown here, the picture and the HTML beside it
}

func newReportCmd(io *streams, g *globalOpts) *cobra.Command {
	opts := &reportOpts{g: g}
	cmd := &cobra.Command{
		Use:   "report [RUN_ID]",
		Short: "Write a run's timeline for a change ticket or a postmortem",
		Long: `Report reads a run's journal and writes its timeline: who ran which runbook on which
cluster and when, the outcome and the point of no return, then every step (rollback,
repair and finally steps included) with its start, duration and state, its checks
(what was seen, what was wanted), approvals (who, how, when), actions (the exact
command, the node, what it printed), the facts recorded, the canary writer's figures
when the run recorded them, and the run's closing summary.
Without RUN_ID, the newest run in the journal directory. Secrets are masked.`,
		Args: maxArgs(1, "one RUN_ID"),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			runs, _ := runbook.ListRuns(g.journalDir)
			var ids []string
			for _, r := range runs {
				ids = append(ids, r.ID+"\t"+r.Runbook+" "+r.Status)
			}
			return ids, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			return runReport(c.Context(), io, opts, id)
		},
	}
	cmd.Flags().StringVar(&opts.format, "format", "markdown", "markdown, json, html (one page with the picture), or svg (the picture of the window alone)")
	cmd.Flags().StringVar(&opts.out, "out", "", "write the Markdown report to `FILE.md`, the picture of the window to FILE.svg and the HTML report to FILE.html beside it, instead of to stdout")
	return cmd
}

// reportFormats are the values --format takes.
var reportFormats = []string{"markdown", "json", "html", "svg"}

func runReport(_ context.Context, io *streams, opts *reportOpts, id string) error {
	if !slices.Contains(reportFormats, opts.format) {
		return usagef("--format %q: want markdown, json, html or svg", opts.format)
	}
	if opts.out != "" && opts.format != "markdown" {
		return usagef("--out writes the Markdown, the SVG and the HTML together; it takes no --format")
	}
	dir := opts.g.journalDir
	if id == "" {
		runs, err := runbook.ListRuns(dir)
		if err != nil {
			return err
		}
		for _, r := range runs {
			if !r.Started.IsZero() { // unreadable journals have no start
				id = r.ID
				break
			}
		}
		if id == "" {
			return usagef("no runs in %s (see --journal-dir)", dir)
		}
	}
	evs, err := journal.ReadJournal(dir, id)
	if err != nil {
		return err
	}
	rep, err := journal.BuildReport(evs, reportRedactor(evs[0].Run))
	if err != nil {
		return err
	}
	switch {
	case opts.out != "":
		return writeReportFiles(io, rep, opts.out)
	case opts.format == "json":
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case opts.format == "html":
		return writeHTMLReport(io.out, rep)
	case opts.format == "svg":
		if !hasWindowPicture(rep) {
			return usagef("report %s: the run recorded no canary timeline, so there is no window to draw", rep.RunID)
		}
		return writeWindowSVG(io.out, rep)
	}
	var b strings.Builder
	writeMarkdownReport(&b, rep, "")
	_, err = fmt.Fprint(io.out, b.String())
	return err
}

// writeReportFiles writes FILE.md, and beside it FILE.svg (when the run
// recorded a canary timeline) and FILE.html, each mode 0644, and says where.
func writeReportFiles(io *streams, rep *journal.Report, out string) error {
	stem := strings.TrimSuffix(out, filepath.Ext(out))
	mdPath, svgPath, htmlPath := stem+".md", stem+".svg", stem+".html"
	svgName := ""
	if hasWindowPicture(rep) {
		var svg strings.Builder
		if err := writeWindowSVG(&svg, rep); err != nil {
			return err
		}
		if err := os.WriteFile(svgPath, []byte(svg.String()), 0o644); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		svgName = filepath.Base(svgPath)
	}
	var md strings.Builder
	writeMarkdownReport(&md, rep, svgName)
	if err := os.WriteFile(mdPath, []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var page strings.Builder
	if err := writeHTMLReport(&page, rep); err != nil {
		return err
	}
	if err := os.WriteFile(htmlPath, []byte(page.String()), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	fmt.Fprintf(io.out, "%s\n", rep.Headline)
	fmt.Fprintf(io.out, "report: %s\n", mdPath)
	if svgName != "" {
		fmt.Fprintf(io.out, "picture of the window: %s\n", svgPath)
	}
	fmt.Fprintf(io.out, "html: %s\n", htmlPath)
	return nil
}

// reportRedactor learns the secrets the run's inventory still holds, if it
// can be read, so that the report masks them even where no pattern would
// find them. The journal is masked already: this is a second guard.
func reportRedactor(info *journal.RunInfo) *secret.Redactor {
	red := &secret.Redactor{}
	red.Add(os.Getenv("PGPASSWORD"))
	for k, v := range info.Vars {
		if secret.LooksSecret(k) && v != secret.Mask {
			red.Add(v)
		}
	}
	if info.Inventory == "" {
		return red
	}
	src, err := os.ReadFile(info.Inventory)
	if err != nil {
		return red
	}
	inv, _ := spec.LoadInventory(info.Inventory, src) // a partial inventory still names its passwords
	if inv == nil || inv.Cluster == nil {
		return red
	}
	for _, n := range inv.Cluster.Nodes {
		if n != nil {
			red.AddConninfo(n.Conninfo)
		}
	}
	for _, p := range inv.Cluster.Poolers {
		red.AddConninfo(p.Admin)
	}
	return red
}
