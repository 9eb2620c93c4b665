package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
)

type runsOpts struct {
	g    *globalOpts
	json bool
}

func newRunsCmd(io *streams, g *globalOpts) *cobra.Command {
	opts := &runsOpts{g: g}
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List journaled runs, newest first, with their status",
		Args:  exactArgs(0, "no arguments"),
		RunE:  func(c *cobra.Command, _ []string) error { return runRuns(c.Context(), io, opts) },
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "one JSON object per run")
	return cmd
}

func runRuns(_ context.Context, io *streams, opts *runsOpts) error {
	runs, err := runbook.ListRuns(opts.g.journalDir)
	if err != nil {
		return err
	}
	if opts.json {
		enc := json.NewEncoder(io.out)
		for _, r := range runs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(runs) == 0 {
		fmt.Fprintf(io.out, "no runs in %s\n", opts.g.journalDir)
		return nil
	}
	tw := tabwriter.NewWriter(io.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTARTED\tRUNBOOK\tCLUSTER\tSTATUS\tLAST STEP\tBY")
	for _, r := range runs {
		status := r.Status
		if r.DryRun {
			status = "dry-run"
			if r.Status != string(journal.OutcomeDryRun) {
				status += " (" + r.Status + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Started.Local().Format("2006-01-02 15:04"), r.Runbook, r.Cluster, status, r.LastStep, r.User)
	}
	return tw.Flush()
}
