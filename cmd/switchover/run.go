package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/runbook"
)

// runOpts are the flags of run, plan and resume.
type runOpts struct {
	planInput
	dryRun    bool
	yes       bool
	approve   []string
	logFormat string
	takeOver  bool
	notBefore string
	notAfter  string
	candidate string
	out       string // plan --out: save the reviewed plan here
	planFile  string // run --plan: run exactly this reviewed plan
	ann       announceOpts
	fleet     string // run --fleet: the fleet run this run is part of
	g         *globalOpts
}

func (o *runOpts) addEngineFlags(c *cobra.Command) {
	fs := c.Flags()
	fs.BoolVar(&o.yes, "yes", false, "approve every destructive step (scripted runs)")
	fs.StringArrayVar(&o.approve, "approve", nil, "approve one destructive or manual `STEP` by name (repeatable)")
	fs.StringVar(&o.logFormat, "log-format", "human", "output: human, or json (one event per line)")
	fs.BoolVar(&o.takeOver, "take-over", false, "take the cluster over from a run that was killed or suspended and never finished")
	o.ann.addFlags(fs)
}

func newRunCmd(io *streams, g *globalOpts) *cobra.Command {
	opts := &runOpts{g: g}
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a runbook: check, ask, act, verify, step by step",
		Long: `Run executes a runbook step by step. Each step's preconditions must pass before it
acts; a destructive step asks first (at a terminal), or needs --yes or --approve STEP
(without one). After the action, the postconditions are checked. A failure runs the
step's rollback (before the point of no return) or repair section; the finally
section always runs. Every transition is journaled; an interrupted run continues
with 'switchover resume'.

Exit codes: 0 done, 1 internal error, 2 invalid runbook or usage, 3 a precondition
failed, 4 an action or postcondition failed, 5 declined or interrupted,
6 another run holds the cluster.`,
		Example: `  switchover run monthly.yaml -i prod.yaml                 # at a terminal: asks before each destructive step
  switchover run monthly.yaml -i prod.yaml --dry-run       # rehearse: checks for real, changes nothing
  switchover run monthly.yaml -i prod.yaml --approve promote --log-format json   # scripted`,
		Args: maxArgs(1, "a runbook FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.file = args[0]
			}
			return runRun(c.Context(), io, opts)
		},
	}
	opts.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.dryRun, "dry-run", false, "evaluate preconditions and describe every action; change nothing")
	cmd.Flags().StringVar(&opts.candidate, "candidate", "", "the standby to promote (sets variable candidate), or auto: the most caught-up healthy standby")
	cmd.Flags().StringVar(&opts.planFile, "plan", "", "run exactly the reviewed plan saved by `plan --out` (`FILE`); refused if the runbook, inventory or topology changed")
	cmd.Flags().StringVar(&opts.notBefore, "not-before", "", "refuse to start before this `TIME` (RFC 3339, or \"2006-01-02 15:04\" local time)")
	cmd.Flags().StringVar(&opts.notAfter, "not-after", "", "refuse to start after this `TIME` (RFC 3339, or \"2006-01-02 15:04\" local time)")
	cmd.Flags().StringVar(&opts.fleet, "fleet", "", "the fleet run this run is part of (`KEY`, set by `fleet run`): refused when that fleet switched the cluster already; recorded in the cluster when done")
	opts.addEngineFlags(cmd)
	return cmd
}

// parseWindowTime reads a --not-before/--not-after time.
func parseWindowTime(flag, v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("%s %q: want a time such as 2026-11-22T02:00:00+01:00 or \"2026-11-22 02:00\" (local time)", flag, v)
}

// checkWindow refuses a run that starts outside its maintenance window.
func checkWindow(opts *runOpts, now time.Time) error {
	var from, to time.Time
	var err error
	if opts.notBefore != "" {
		if from, err = parseWindowTime("--not-before", opts.notBefore); err != nil {
			return err
		}
	}
	if opts.notAfter != "" {
		if to, err = parseWindowTime("--not-after", opts.notAfter); err != nil {
			return err
		}
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return usagef("--not-before %s is not before --not-after %s", opts.notBefore, opts.notAfter)
	}
	const layout = "2006-01-02 15:04:05 MST"
	switch {
	case !from.IsZero() && now.Before(from):
		return fmt.Errorf("%w: it is %s, before the window opens at %s (--not-before); nothing was done", runbook.ErrDeclined, now.Format(layout), from.Format(layout))
	case !to.IsZero() && now.After(to):
		return fmt.Errorf("%w: it is %s, after the window closed at %s (--not-after); nothing was done", runbook.ErrDeclined, now.Format(layout), to.Format(layout))
	}
	return nil
}

func newPlanCmd(io *streams, g *globalOpts) *cobra.Command {
	opts := &runOpts{g: g, dryRun: true}
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Dry run: evaluate every precondition for real and show what each action would do",
		Long: `Plan is 'run --dry-run': it evaluates every precondition against the cluster (checks
are read-only), prints the exact effect of every action, marks postconditions as not
evaluated, shows the point of no return, and changes nothing. It exits 3 when a real
run would stop at a precondition.`,
		Args: exactArgs(1, "a runbook FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.file = args[0]
			return runRun(c.Context(), io, opts)
		},
	}
	opts.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.logFormat, "log-format", "human", "output: human, or json (one event per line)")
	cmd.Flags().StringVar(&opts.candidate, "candidate", "", "the standby to promote (sets variable candidate), or auto: the most caught-up healthy standby")
	cmd.Flags().StringVar(&opts.out, "out", "", "save the reviewed plan to `FILE` (JSON), for `run --plan`")
	return cmd
}

// engineOptions builds what run and resume share.
func engineOptions(ctx context.Context, io *streams, opts *runOpts) (runbook.Options, *humanView, error) {
	o := runbook.Options{
		DryRun: opts.dryRun, Yes: opts.yes, Approve: opts.approve, JournalDir: opts.g.journalDir,
		TakeOver: opts.takeOver, Interrupt: interruptOf(ctx), Fleet: opts.fleet,
	}
	var hv *humanView
	switch opts.logFormat {
	case "human":
		hv = newHumanView(io.out)
		if isTerminal(io.out) {
			hv.terminal(terminalWidth(io.out), os.Getenv("NO_COLOR") == "")
		}
		o.Observer = hv
	case "json":
		o.Observer = newJSONView(io.out)
	default:
		return o, nil, usagef("--log-format %q: want human or json", opts.logFormat)
	}
	if io.interactive && !opts.dryRun {
		o.Operator = newPromptOperator(io)
	}
	return o, hv, opts.ann.check()
}

func runRun(ctx context.Context, io *streams, opts *runOpts) error {
	opts.vars = append(envVars(), opts.vars...)
	o, hv, err := engineOptions(ctx, io, opts)
	if err != nil {
		return err
	}
	err = runEngine(ctx, io, opts, o, hv)
	if jv, ok := o.Observer.(*jsonView); ok {
		// With --log-format json, what stopped the command before the
		// run said anything is said as JSON events too.
		err = jv.refused(err)
	}
	return err
}

// runEngine loads, settles the candidate and the primary, checks a
// reviewed plan and the window, and runs.
func runEngine(ctx context.Context, io *streams, opts *runOpts, o runbook.Options, hv *humanView) error {
	var reviewed *reviewedPlan
	var err error
	if opts.planFile != "" {
		if opts.file != "" || opts.inventory != "" || opts.candidate != "" {
			return usagef("run --plan takes no runbook, -i or --candidate: the plan names them")
		}
		if reviewed, opts.planInput, err = loadReviewedPlan(opts.planFile, opts.vars); err != nil {
			return err
		}
	} else if opts.file == "" {
		return usagef("run needs a runbook FILE, or --plan FILE")
	}
	l, err := loadInput(opts.planInput)
	if err != nil {
		return err
	}
	var cand *candidate
	if reviewed == nil {
		if cand, err = settleCandidate(ctx, io, opts, l); err != nil {
			return heldInstead(ctx, l, opts.takeOver, err)
		}
	}
	if reviewed == nil {
		// A reviewed plan runs with the primary it was reviewed with; the
		// drift check below says what changed since.
		if err := settlePrimary(ctx, io, l); err != nil {
			return heldInstead(ctx, l, opts.takeOver, err)
		}
	}
	if err := refuseCandidateIsPrimary(ctx, l, cand); err != nil {
		return err
	}
	given := append([]string(nil), opts.vars...)
	if cand != nil {
		given = append(given, "candidate="+cand.Node)
	}
	if l.primary != nil {
		given = append(given, primaryVar+"="+l.primary.Value)
	}
	p, err := l.plan(cand)
	if err != nil {
		return noInventoryFirst(err, opts.inventory)
	}
	recordAbsolutePaths(p)
	if reviewed != nil {
		if diffs := planDifferences(ctx, reviewed, p); len(diffs) > 0 {
			return fmt.Errorf("%w: the cluster or the files changed since plan %s was reviewed (%s by %s); nothing was done:\n  %s\nmake and review a new plan",
				runbook.ErrPrecondition, opts.planFile, reviewed.Created.Format("2006-01-02 15:04 MST"), reviewed.CreatedBy, strings.Join(diffs, "\n  "))
		}
		fmt.Fprintf(io.err, "running reviewed plan %s (%s by %s): runbook, inventory and topology unchanged\n", opts.planFile, reviewed.Created.Format("2006-01-02 15:04 MST"), reviewed.CreatedBy)
	}
	if err := checkWindow(opts, time.Now()); err != nil {
		return err
	}
	if hv != nil && hv.tty && !opts.dryRun {
		planOverview(io.out, p, hv.fit)
	}
	ann := opts.ann.start(io, &o, opts.g.journalDir)
	res, err := runbook.Run(ctx, p, o)
	ann.finish(res, err)
	report(io, hv, res)
	if opts.out != "" && err == nil {
		if serr := saveReviewedPlan(ctx, opts.out, p, given, res); serr != nil {
			return serr
		}
		fmt.Fprintf(io.out, "plan saved: %s (run it with `switchover run --plan %s`)\n", opts.out, opts.out)
	}
	return err
}

// report ends human output with where the journal is.
func report(io *streams, hv *humanView, res *runbook.Result) {
	if hv == nil || res == nil || res.Journal == "" {
		return
	}
	fmt.Fprintf(io.out, "journal: %s\n", res.Journal)
}
