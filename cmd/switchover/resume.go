package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/internal/secret"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

type resumeOpts struct {
	runOpts
	settle string
}

func newResumeCmd(io *streams, g *globalOpts) *cobra.Command {
	opts := &resumeOpts{runOpts: runOpts{g: g}}
	cmd := &cobra.Command{
		Use:   "resume [RUN_ID]",
		Short: "Continue a run that was interrupted, killed or suspended",
		Long: `Resume continues a journaled run with the runbook, inventory and variables it started
with (both files must be unchanged). Done steps are skipped. A step cut off while its
action ran is settled: done if its postconditions hold; run again if it is marked
idempotent; otherwise the operator chooses (at a terminal), or --settle says.
A recovery or finally section under way continues where it stopped.
Without RUN_ID, the newest unfinished run in the journal directory is resumed.`,
		Args: maxArgs(1, "one RUN_ID"),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			runs, _ := runbook.ListRuns(g.journalDir)
			var ids []string
			for _, r := range runs {
				if !r.Finished() && !r.DryRun {
					ids = append(ids, r.ID+"\t"+r.Runbook+" "+r.Status)
				}
			}
			return ids, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			return runResume(c.Context(), io, opts, id)
		},
	}
	cmd.Flags().StringArrayVar(&opts.vars, "var", nil, "give again a `NAME=VALUE` the journal kept masked (a secret)")
	cmd.Flags().StringVar(&opts.settle, "settle", "", "without a terminal, settle a step cut off mid-action: rerun or done")
	opts.addEngineFlags(cmd)
	return cmd
}

func runResume(ctx context.Context, io *streams, opts *resumeOpts, id string) error {
	opts.vars = append(envVars(), opts.vars...)
	dir := opts.g.journalDir
	if id == "" {
		latest, err := runbook.LatestUnfinished(dir)
		if err != nil {
			return err
		}
		if latest == "" {
			return usagef("no unfinished run in %s; %s", dir, lostJournalHint)
		}
		id = latest
	}
	if _, err := os.Stat(journal.JournalPath(dir, id)); errors.Is(err, fs.ErrNotExist) {
		return usagef("no journal of run %s in %s; %s", id, dir, lostJournalHint)
	}
	rec, err := runbook.ReadRun(dir, id)
	if err != nil {
		return err
	}
	// Rebuild the plan the run started with: same files, same --var values
	// (a masked secret must be given again).
	given, err := spec.ParseVarFlags(opts.vars)
	if err != nil {
		return err
	}
	byName := map[string]string{}
	for _, v := range given {
		byName[v.Name] = v.Value
	}
	var vars []string
	for _, name := range rec.Info.VarFlags {
		v, ok := byName[name]
		if !ok {
			v = rec.Info.Vars[name]
			if v == secret.Mask {
				return usagef("run %s was started with --var %s, a secret the journal does not keep: give it again with --var %s=VALUE", id, name, name)
			}
		}
		vars = append(vars, name+"="+v)
		delete(byName, name)
	}
	for _, name := range rec.Info.Found {
		vars = append(vars, name+"="+rec.Info.Vars[name]) // as the run found it, not again
	}
	if len(byName) > 0 {
		extra := make([]string, 0, len(byName))
		for k := range byName {
			extra = append(extra, k)
		}
		sort.Strings(extra)
		return usagef("--var %s: run %s was not started with it; a resumed run keeps the variables it started with", extra[0], id)
	}
	opts.planInput = planInput{file: rec.Info.Runbook, inventory: rec.Info.Inventory, vars: vars}
	o, hv, err := engineOptions(ctx, io, &opts.runOpts)
	if err != nil {
		return err
	}
	o.Settle = opts.settle
	p, err := loadPlan(opts.planInput)
	if err != nil {
		return fmt.Errorf("%w (resuming run %s)", err, id)
	}
	for _, name := range rec.Info.Found {
		markFound(p, name)
	}
	ann := opts.ann.start(io, &o, opts.g.journalDir)
	res, err := runbook.Resume(ctx, p, id, o)
	ann.finish(res, err)
	report(io, hv, res)
	return err
}

// lostJournalHint is what resume says when it finds no journal to resume:
// a run's journal may be on another machine, or lost with it.
const lostJournalHint = "a run whose journal is on another machine is resumed there (--journal-dir); if it is lost, `switchover status -i INVENTORY` shows the claim the run left in the cluster and whether the cluster is switched, and docs/runs.md (finishing another operator's run) says how to finish it from the cluster's state"
