package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

type validateOpts struct {
	planInput
}

func newValidateCmd(io *streams) *cobra.Command {
	opts := &validateOpts{}
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a runbook (and inventory) for every problem, without touching any cluster",
		Long: `Validate reads a runbook, and its inventory when given, and lists every problem with
file:line:col: unknown keys, checks or steps, wrong types, undefined variables, nodes
missing from the inventory. It connects to nothing. FILE may name a shipped playbook.`,
		Args: exactArgs(1, "a runbook FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.file = args[0]
			return runValidate(c.Context(), io, opts)
		},
	}
	opts.addFlags(cmd.Flags())
	return cmd
}

func runValidate(_ context.Context, io *streams, opts *validateOpts) error {
	l, err := loadInput(opts.planInput)
	if err != nil {
		return err
	}
	l.validating = true
	p, err := l.plan(nil)
	if err != nil {
		return err
	}
	destructive := 0
	for _, s := range p.Steps {
		if s.Destructive {
			destructive++
		}
	}
	fmt.Fprintf(io.out, "%s: valid: runbook %s, %d step%s (%d destructive), %d rollback and %d repair section%s, %d finally step%s\n",
		p.Runbook.File, p.Runbook.Name, len(p.Steps), plural(len(p.Steps)), destructive,
		len(p.Rollback), len(p.Repair), plural(len(p.Repair)), len(p.Finally), plural(len(p.Finally)))
	return nil
}
