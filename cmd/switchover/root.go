package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/internal/secret"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

// Exit codes, as DESIGN.md fixes them.
const (
	exitOK           = 0
	exitInternal     = 1
	exitUsage        = 2
	exitPrecondition = 3
	exitAction       = 4
	exitDeclined     = 5
	exitLocked       = 6
	// status only: no node answers as a primary; two or more do.
	exitNoPrimary    = 7
	exitTwoPrimaries = 8
)

// usageError marks a mistake in how the command was called (exit 2).
type usageError struct{ err error }

func (u *usageError) Error() string { return u.err.Error() }
func (u *usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// exitCode maps an error to the process's exit status; it is the only place
// that does.
func exitCode(err error) int {
	var u *usageError
	var h *healthError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &h):
		return h.code
	case errors.As(err, &u), errors.Is(err, runbook.ErrInvalid):
		return exitUsage
	case errors.Is(err, runbook.ErrLocked):
		return exitLocked
	case errors.Is(err, runbook.ErrPrecondition):
		return exitPrecondition
	case errors.Is(err, runbook.ErrAction):
		return exitAction
	case errors.Is(err, runbook.ErrDeclined):
		return exitDeclined
	}
	return exitInternal
}

// streams are the process's standard files; tests pass buffers.
type streams struct {
	in       io.Reader
	out, err io.Writer
	// interactive is true when a person is at a terminal to answer prompts.
	interactive bool
}

// globalOpts are flags every command shares.
type globalOpts struct {
	journalDir string
}

func execute(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	io := &streams{in: stdin, out: stdout, err: stderr, interactive: isTerminal(stdin)}
	root := newRootCmd(io)
	root.SetArgs(args)
	ctx, stop := newSignalContext(context.Background(), io)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err != nil {
		printError(stderr, err)
	}
	return exitCode(err)
}

func newRootCmd(io *streams) *cobra.Command {
	g := &globalOpts{}
	root := &cobra.Command{
		Use:   "switchover",
		Short: "Move the primary role of a PostgreSQL cluster to a standby, step by checked step",
		Long: `switchover runs a declarative runbook step by step: each step has preconditions,
an action and postconditions, and the tool asks before anything destructive.
Every run is journaled; an interrupted run continues with 'switchover resume'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Without Args and RunE, cobra reports an unknown command as a
		// plain error (exit 1, not 2).
		Args: unknownCommand,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	root.SetIn(io.in)
	root.SetOut(io.out)
	root.SetErr(io.err)
	root.SetFlagErrorFunc(flagError)
	root.SuggestionsMinimumDistance = 2
	root.PersistentFlags().StringVar(&g.journalDir, "journal-dir", journal.DefaultJournalDir(), "where run journals and locks are kept")
	root.AddCommand(
		newValidateCmd(io),
		newPlanCmd(io, g),
		newRunCmd(io, g),
		newResumeCmd(io, g),
		newRunsCmd(io, g),
		newReportCmd(io, g),
		newChecksCmd(io),
		newStepsCmd(io),
		newPlaybooksCmd(io),
		newSandboxCmd(io),
		newInventoryCmd(io),
		newStatusCmd(io),
		newSchemaCmd(io),
		newFleetCmd(io, g),
		newVersionCmd(io),
		newGenManCmd(io),
	)
	registerCompletions(root)
	return root
}

// unknownCommand refuses arguments to a command that only has subcommands,
// as a usage error.
func unknownCommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	if sug := c.SuggestionsFor(args[0]); len(sug) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", sug[0])
	}
	return usagef("%s (see '%s --help')", msg, c.CommandPath())
}

// exactArgs is cobra.ExactArgs with a usage error and a clearer message.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s: want %s, got %d arguments (see '%s --help')", c.CommandPath(), what, len(args), c.CommandPath())
		}
		return nil
	}
}

func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) > n {
			return usagef("%s: want at most %s, got %d arguments", c.CommandPath(), what, len(args))
		}
		return nil
	}
}

// printError writes the final error for a person: validation problems one
// per line, everything else on one line.
func printError(w io.Writer, err error) {
	// The engine masks what it knows to be secret; mask what still looks
	// like a password on the way out as well.
	w = maskingWriter{w}
	var reported *reportedError
	if errors.As(err, &reported) {
		return // the JSON events said it
	}
	var v *spec.ValidationError
	if errors.As(err, &v) {
		fmt.Fprintf(w, "error: %d problem%s:\n", len(v.Problems), plural(len(v.Problems)))
		for _, p := range v.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
		return
	}
	var se *runbook.StepError
	if errors.As(err, &se) {
		// The renderer has shown the details; say where it stopped and why.
		msg := se.Err.Error()
		if !strings.Contains(msg, fmt.Sprintf("%q", se.Step)) {
			msg = se.Error()
		}
		fmt.Fprintf(w, "error: %s\n", msg)
		return
	}
	fmt.Fprintf(w, "error: %v\n", err)
}

// maskingWriter masks password fields in what is written through it.
type maskingWriter struct{ w io.Writer }

func (m maskingWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(m.w, (*secret.Redactor)(nil).Redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func isTerminal(f any) bool {
	type fder interface{ Fd() uintptr }
	if x, ok := f.(fder); ok {
		return termIsTerminal(int(x.Fd()))
	}
	return false
}
