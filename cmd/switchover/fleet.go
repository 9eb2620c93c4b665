package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/internal/fleet"
	"github.com/switchover/switchover/playbooks"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

// fleetOpts are the flags of the fleet commands.
type fleetOpts struct {
	g               *globalOpts
	file            string
	logFormat       string
	yes             bool
	approveEachWave bool
	skipRefused     bool
	lockedWait      time.Duration
	settle          string
	retry           []string
	sel             []string // --select LABEL=VALUE
}

// addSelect gives a fleet command --select.
func (o *fleetOpts) addSelect(c *cobra.Command) {
	c.Flags().StringArrayVar(&o.sel, "select", nil, "take part with only the clusters labelled `LABEL=VALUE` (repeatable: every one must match); waves stay the whole fleet's")
}

// selection reads --select: LABEL=VALUE each, one value per label.
func (o *fleetOpts) selection() (map[string]string, error) {
	if len(o.sel) == 0 {
		return nil, nil
	}
	sel := map[string]string{}
	for _, s := range o.sel {
		k, v, ok := strings.Cut(s, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, usagef("--select %q: want LABEL=VALUE, such as dc=a", s)
		}
		if prev, dup := sel[k]; dup && prev != v {
			return nil, usagef("--select %s=%s and %s=%s: a cluster has one value of a label; run one selection per bastion", k, prev, k, v)
		}
		sel[k] = v
	}
	return sel, nil
}

func newFleetCmd(io *streams, g *globalOpts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Switch many clusters in one window: waves, limits, halt rules, resume",
		Long: `A fleet file names a playbook and the clusters (inventories) to run it on, in waves
(a canary cluster first), with limits on how many run at once, rules that halt the
fleet when a finished run breaches them, and a window. Each cluster's switchover is
an ordinary run with its own journal, claim and report. See docs/fleet.md.`,
		Args: unknownCommand,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newFleetPlanCmd(io, g), newFleetRunCmd(io, g), newFleetResumeCmd(io, g), newFleetStatusCmd(io, g), newFleetReportCmd(io, g))
	return cmd
}

func (o *fleetOpts) addLogFormat(c *cobra.Command) {
	c.Flags().StringVar(&o.logFormat, "log-format", "human", "output: human, or json (one event per line, each carrying cluster)")
}

func newFleetPlanCmd(io *streams, g *globalOpts) *cobra.Command {
	opts := &fleetOpts{g: g}
	cmd := &cobra.Command{
		Use:   "plan FLEET",
		Short: "Dry-run every cluster of a fleet and show one table: ready or refused, and why",
		Long: `Plan dry-runs every cluster of the fleet (switchover plan, in parallel within the
fleet's limits) and shows, wave by wave, each cluster's primary and candidate, its
verdict (ready, or refused and why) and its estimated duration (the longest of the
last five done runs of the playbook in the journal directory; — when there is none).
Exit 3 when a cluster is refused; --skip-refused shows them skipped instead.`,
		Args: exactArgs(1, "a FLEET file"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.file = args[0]
			return opts.said(io, runFleetPlan(c.Context(), io, opts))
		},
	}
	opts.addLogFormat(cmd)
	opts.addSelect(cmd)
	cmd.Flags().BoolVar(&opts.skipRefused, "skip-refused", false, "show refused clusters as skipped, and exit 0")
	return cmd
}

func newFleetRunCmd(io *streams, g *globalOpts) *cobra.Command {
	opts := &fleetOpts{g: g}
	cmd := &cobra.Command{
		Use:   "run FLEET",
		Short: "Switch every cluster of a fleet, wave after wave, within its limits and halt rules",
		Long: `Run plans the fleet first (as fleet plan) and asks once for the whole fleet: at a
terminal, type the fleet's name; scripted, --yes. Then the waves run one after another,
the clusters of a wave in parallel within the limits, each an ordinary run of this
program (its own journal, claim, guard and report) that outlives the fleet process.
When a finished run breaches a halt rule, no new cluster starts, the running ones
finish, and the fleet exits 4; when the window has no room left, 5. A killed, halted
or interrupted fleet continues with 'switchover fleet resume'.

Exit codes: 0 every cluster done or skipped, 2 invalid fleet file, 3 a cluster refused
by the plan, 4 halted (or a cluster failed), 5 declined, interrupted or out of the
window, 6 another fleet process drives this fleet, or its last run must be resumed.`,
		Args: exactArgs(1, "a FLEET file"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.file = args[0]
			return opts.said(io, runFleetRun(c.Context(), io, opts))
		},
	}
	opts.addLogFormat(cmd)
	opts.addSelect(cmd)
	opts.addRunFlags(cmd)
	cmd.Flags().BoolVar(&opts.skipRefused, "skip-refused", false, "skip the clusters the plan refuses (listed as skipped) instead of refusing to start")
	return cmd
}

func (o *fleetOpts) addRunFlags(c *cobra.Command) {
	c.Flags().BoolVar(&o.yes, "yes", false, "approve the fleet run (scripted); each cluster's run is started with --yes")
	c.Flags().DurationVar(&o.lockedWait, "locked-wait", 10*time.Minute, "how long a cluster another run holds is waited for before the fleet halts")
	c.Flags().BoolVar(&o.approveEachWave, "approve-each-wave", false, "ask before each wave (at a terminal; with --yes it proceeds)")
}

func newFleetResumeCmd(io *streams, g *globalOpts) *cobra.Command {
	opts := &fleetOpts{g: g}
	cmd := &cobra.Command{
		Use:   "resume FLEET",
		Short: "Continue a fleet run that was killed, halted, interrupted or ran out of its window",
		Long: `Resume continues the fleet's last run from its journal: a finished cluster is never
taken on again; a cluster whose run was interrupted is resumed through its own journal
(switchover resume RUN_ID); one whose run still runs is waited for; one journaled as
starting is looked for in the journal directory before anything else. A halt is shown
and must be acknowledged: typing the fleet's name at a terminal, or --yes.`,
		Args: exactArgs(1, "a FLEET file"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.file = args[0]
			return opts.said(io, runFleetResume(c.Context(), io, opts))
		},
	}
	opts.addLogFormat(cmd)
	opts.addSelect(cmd)
	opts.addRunFlags(cmd)
	cmd.Flags().StringVar(&opts.settle, "settle", "", "resume each interrupted cluster run with --settle rerun|done")
	cmd.Flags().StringArrayVar(&opts.retry, "retry", nil, "take a failed `CLUSTER` on again with a new run (repeatable)")
	return cmd
}

func newFleetStatusCmd(io *streams, g *globalOpts) *cobra.Command {
	opts := &fleetOpts{g: g}
	cmd := &cobra.Command{
		Use:   "status FLEET",
		Short: "Show every cluster of a fleet's last run: wave, state, step, figures, the halt",
		Args:  exactArgs(1, "a FLEET file"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.file = args[0]
			return opts.said(io, runFleetStatus(c.Context(), io, opts))
		},
	}
	opts.addLogFormat(cmd)
	opts.addSelect(cmd)
	return cmd
}

// said reports, with --log-format json, the error that ends a fleet
// command as JSON events too (validation.error per problem, or error).
func (o *fleetOpts) said(io *streams, err error) error {
	if err == nil || o.logFormat != "json" {
		return err
	}
	return newJSONView(io.out).refused(err)
}

// loadFleet reads and checks a fleet file.
func loadFleet(path string) (*fleet.Fleet, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, usagef("fleet %s: %v", path, err)
	}
	if st.Size() > spec.MaxFileSize {
		return nil, &spec.ValidationError{Problems: []spec.Problem{{Pos: spec.Pos{File: path},
			Msg: fmt.Sprintf("file is %d bytes; the limit is %d (is this the right file?)", st.Size(), spec.MaxFileSize)}}}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("fleet %s: %v", path, err)
	}
	return spec.LoadFleet(path, b, playbooks.Names())
}

// fleetDriver loads the fleet file and builds its driver and view.
func fleetDriver(ctx context.Context, io *streams, opts *fleetOpts) (*fleet.Driver, *fleetView, error) {
	sel, err := opts.selection()
	if err != nil {
		return nil, nil, err
	}
	f, err := loadFleet(opts.file)
	if err != nil {
		return nil, nil, err
	}
	if err := f.Select(sel); err != nil {
		return nil, nil, usagef("%v", err)
	}
	v, err := newFleetView(io.out, opts.logFormat, f)
	if err != nil {
		return nil, nil, err
	}
	dir, err := filepath.Abs(opts.g.journalDir)
	if err != nil {
		return nil, nil, err
	}
	bin, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("fleet: find this program to run each cluster: %w", err)
	}
	if opts.settle != "" && opts.settle != runbook.SettleRerun && opts.settle != runbook.SettleDone {
		return nil, nil, usagef("--settle %s: want rerun or done", opts.settle)
	}
	id := runbook.CurrentIdentity()
	d := &fleet.Driver{
		Fleet: f, JournalDir: dir, Runs: newJournalRuns(dir), Records: fleet.ClaimRecords{}, User: id.User, Host: id.Host,
		Runner: &fleet.ExecRunner{Binary: bin, JournalDir: dir, Playbook: f.Playbook, Candidate: f.Candidate, Key: f.Key(),
			Window: f.Window, Settle: opts.settle},
		Observe: v.Observe, Interrupt: interruptOf(ctx), Retry: opts.retry, LockedWait: opts.lockedWait,
		NewID: func() string { return journal.NewRunID(time.Now()) },
	}
	return d, v, nil
}

// fleetErr gives a fleet's refusal the sentinel of its exit code.
func fleetErr(err error) error {
	var le *fleet.LockedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &le), errors.Is(err, fleet.ErrUnfinished):
		return fmt.Errorf("%w: %w", runbook.ErrLocked, err)
	case errors.Is(err, fleet.ErrRefused):
		return fmt.Errorf("%w: %w", runbook.ErrPrecondition, err)
	case errors.Is(err, fleet.ErrWindow):
		return fmt.Errorf("%w: %w", runbook.ErrDeclined, err)
	case errors.Is(err, fleet.ErrNothing), errors.Is(err, fleet.ErrChanged):
		return &usageError{err: err}
	}
	return err
}

// resultErr is the error, and so the exit code, of how a fleet run ended.
func resultErr(res *fleet.Result) error {
	switch res.Result {
	case fleet.ResultDone:
		return nil
	case fleet.ResultHalted:
		h := res.Halt
		if h == nil {
			return fmt.Errorf("%w: fleet halted; left: %s", runbook.ErrAction, strings.Join(res.Left, ", "))
		}
		return fmt.Errorf("%w: fleet halted by %s: %s; left: %s; `switchover fleet resume` continues once the breach is understood",
			runbook.ErrAction, h.Cluster, h.Reason, strings.Join(res.Left, ", "))
	case fleet.ResultFailed:
		return fmt.Errorf("%w: clusters failed: %s (their runs may have changed them: see `switchover report RUN_ID`)", runbook.ErrAction, strings.Join(res.Failed, ", "))
	case fleet.ResultWindowEnded:
		return fmt.Errorf("%w: the window has no room left; clusters left: %s", runbook.ErrDeclined, strings.Join(res.Left, ", "))
	}
	return fmt.Errorf("%w: fleet run %s %s; clusters left: %s; `switchover fleet resume` continues", runbook.ErrDeclined, res.FleetRun, res.Result, strings.Join(res.Left, ", "))
}

func runFleetPlan(ctx context.Context, io *streams, opts *fleetOpts) error {
	d, v, err := fleetDriver(ctx, io, opts)
	if err != nil {
		return err
	}
	verdicts := d.Plan(ctx)
	v.plan(verdicts, opts.skipRefused)
	if n := refusedCount(verdicts); n > 0 && !opts.skipRefused {
		return fmt.Errorf("%w: %d of %d clusters refused by the plan; nothing was done", runbook.ErrPrecondition, n, len(verdicts))
	}
	return nil
}

func refusedCount(verdicts []fleet.Verdict) int {
	n := 0
	for _, v := range verdicts {
		if !v.Ready {
			n++
		}
	}
	return n
}

func runFleetRun(ctx context.Context, io *streams, opts *fleetOpts) error {
	d, v, err := fleetDriver(ctx, io, opts)
	if err != nil {
		return err
	}
	verdicts := d.Plan(ctx)
	v.plan(verdicts, opts.skipRefused)
	if n := refusedCount(verdicts); n > 0 && !opts.skipRefused {
		return fmt.Errorf("%w: %d of %d clusters refused by the plan; nothing was done (--skip-refused skips them)", runbook.ErrPrecondition, n, len(verdicts))
	}
	if err := approveFleet(io, opts, d.Fleet.Name, "run the fleet"); err != nil {
		return err
	}
	if interrupted(ctx) {
		return fmt.Errorf("%w: interrupted before the fleet started; nothing was done", runbook.ErrDeclined)
	}
	return drive(io, opts, d, v, func() (*fleet.Result, error) { return d.Run(ctx, verdicts, opts.skipRefused) })
}

// drive runs the fleet (a run or a resume) with the live view at a
// terminal, then shows where every cluster stands.
func drive(io *streams, opts *fleetOpts, d *fleet.Driver, v *fleetView, run func() (*fleet.Result, error)) error {
	d.ApproveWave = waveApproval(io, opts)
	stop := v.startLive(io.out)
	res, err := run()
	stop()
	if err != nil {
		return fleetErr(err)
	}
	showFinalStatus(d, v)
	return resultErr(res)
}

func runFleetResume(ctx context.Context, io *streams, opts *fleetOpts) error {
	d, v, err := fleetDriver(ctx, io, opts)
	if err != nil {
		return err
	}
	st, err := d.Resumable()
	if err != nil {
		return fleetErr(err)
	}
	showFinalStatus(d, v)
	what := "resume the fleet"
	if st.Halt != nil {
		what = fmt.Sprintf("acknowledge the halt by %s (%s) and resume the fleet", st.Halt.Cluster, st.Halt.Reason)
		if !opts.yes && !io.interactive {
			return fmt.Errorf("%w: fleet %s was halted by %s: %s; acknowledge it with --yes (or at a terminal) to resume; nothing was done",
				runbook.ErrDeclined, d.Fleet.Name, st.Halt.Cluster, st.Halt.Reason)
		}
	}
	if err := approveFleet(io, opts, d.Fleet.Name, what); err != nil {
		return err
	}
	return drive(io, opts, d, v, func() (*fleet.Result, error) { return d.Resume(ctx) })
}

func runFleetStatus(ctx context.Context, io *streams, opts *fleetOpts) error {
	d, v, err := fleetDriver(ctx, io, opts)
	if err != nil {
		return err
	}
	s, err := d.Status()
	if errors.Is(err, fleet.ErrNothing) {
		return usagef("fleet %s has no run in %s", d.Fleet.Name, opts.g.journalDir)
	}
	if err != nil {
		return err
	}
	v.status(s)
	return nil
}

// interrupted reports whether the operator has interrupted the command.
func interrupted(ctx context.Context) bool {
	select {
	case <-interruptOf(ctx):
		return true
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// showFinalStatus shows the status table after a run (for a person; the
// JSON events said it all).
func showFinalStatus(d *fleet.Driver, v *fleetView) {
	if v.json != nil {
		return
	}
	if s, err := d.Status(); err == nil {
		fmt.Fprintln(v.w)
		v.status(s)
	}
}

// approveFleet asks once for the whole fleet: at a terminal, the fleet's
// name typed back; scripted, --yes.
func approveFleet(io *streams, opts *fleetOpts, name, what string) error {
	if opts.yes {
		return nil
	}
	if !io.interactive {
		return fmt.Errorf("%w: to %s without a terminal, give --yes; nothing was done", runbook.ErrDeclined, what)
	}
	p := newPromptOperator(io)
	fmt.Fprintf(p.out, "\nabout to %s %q\n", what, name)
	a, err := p.confirm("fleet", name)
	if err != nil {
		return fmt.Errorf("%w: %v; nothing was done", runbook.ErrDeclined, err)
	}
	if !a.Yes {
		return fmt.Errorf("%w: fleet %s not approved; nothing was done", runbook.ErrDeclined, name)
	}
	return nil
}

// waveApproval asks before each wave with --approve-each-wave at a
// terminal; with --yes each wave proceeds (and is journaled as approved).
func waveApproval(io *streams, opts *fleetOpts) func(context.Context, fleet.Wave) error {
	if !opts.approveEachWave {
		return nil
	}
	return func(_ context.Context, w fleet.Wave) error {
		if opts.yes || !io.interactive {
			return nil
		}
		p := newPromptOperator(io)
		fmt.Fprintf(p.out, "\nwave %s: %s\n", w.Name, strings.Join(w.Clusters, ", "))
		choice, err := p.selectOne("start wave "+w.Name+"?", []string{"start", "stop here"})
		if err != nil {
			return err
		}
		if choice != "start" {
			return errors.New("the operator stopped here")
		}
		return nil
	}
}
